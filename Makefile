# Front door of the Airflow HA cluster: thin targets over the `airflow-ha` CLI
# (scripts/airflow_ha). Every target first makes the scripts' virtualenv.
#   make up | down | status | resources | maintenance | logs [SERVICE=x] | verify [DAG=id] | credentials
#   make verify [DAG="id ..."] [URL=url] [JUNIT=file] [JSON=file]   run DAGs on this cluster (or the
#                              one at URL, e.g. the Swarm stack's), report each task
#   make check-dags [DAGS_DIR=path] [JUNIT=file]   import every DAG file in seconds, no cluster
#   make smoke DAGS_DIR=path [DAG="id ..."] [TOPOLOGY=single|ha] [CONF=file.json] [JUNIT=file] [JSON=file]
#                              CI: import check, a throw-away cluster, verify, reports, removal
#   make scale WORKERS=N [QUEUE=heavy] [FORCE=yes] [ENGINES=1 | SWARM_HOST=url]   resize a worker pool; drains on the way down
#   make lab-list | lab-check LAB=n | lab-solve LAB=n   training labs (labs/): check a result, solve
#   make lab-ssh-up | lab-ssh-down   lab 10's SSH target (compose/labs.yaml)
#   make users-add USERS="name ..." ROLE=viewer|user|op|admin | users-list | users-remove USERS="name ..."
#   make chaos [FAULT=name ...] [JSON=file] [ENGINES=1]   fault injection with a recovery report
#   make bench [JSON=file] [PROFILE=ha] [STAGE=idle] [RUNS=3]   this cluster against Airflow's
#                              defaults, side by side: idle CPU, memory, tasks/s, latency, contention
#   make bench-scaling [JSON=file]   scaling figures: registration, tasks/s per pool size, drain wait
#   make backup [DIR=path]     dump the metadata database to backups/ (the cluster keeps running)
#   make restore FILE=path [FORCE=yes]   put a backup back (also after clean), then start
#   make clean CONFIRM=yes     delete the cluster's volumes
#   make swarm-engines [NODES=3] | swarm-engines-down   Docker engines in containers, one Swarm
#   make swarm-up | swarm-status | swarm-down [ENGINES=1 | SWARM_HOST=url]   the cluster as a
#                              Swarm stack: on those engines, or on the Swarm whose manager SWARM_HOST is
#   make test-swarm            the Swarm tests on three engines (not in `test`)
#   make test                  lint, type checks, unit and integration tests
#   make unit-test             the tests that need no Docker
#   make test-examples         Airflow's own example DAGs on a throw-away cluster (not in `test`)
#   make mutation [MODULE="scripts/airflow_ha/x.py ..."] [REF=HEAD]   mutmut on the outcome-deciding modules
#                              (unit tests only, no Docker; not part of make test): kill rate per module

PYTHON ?= python3
# A make variable as one shell word, whatever it holds (q = quote).
q = '$(subst ','\'',$(1))'
REPORT_ARGS = $(if $(JUNIT),--junit $(call q,$(JUNIT))) $(if $(JSON),--json $(call q,$(JSON)))
VENV := .venv
CLI := $(VENV)/bin/airflow-ha
STAMP := $(VENV)/.installed

.PHONY: test-examples host-tools test-tools check-dags smoke lab-list lab-check lab-solve lab-ssh-up lab-ssh-down users-add users-list users-remove up down clean swarm-engines swarm-engines-down swarm-up swarm-status swarm-down test-swarm backup restore status resources maintenance scale logs verify chaos bench bench-scaling credentials images test unit-test integration-test lint mutation lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Compose v2, buildx, debootstrap, python3-venv: installed when missing if run as
# root, otherwise one line naming the sudo command (scripts/install-host-tools.sh).
host-tools:
	@bash scripts/install-host-tools.sh --ensure

# The same plus chromium and chromium-driver, for the UI test (tests/integration/test_ui.py).
test-tools:
	@bash scripts/install-host-tools.sh --ensure-test

up: host-tools $(STAMP)
	$(CLI) up

down: $(STAMP)
	$(CLI) down

clean: $(STAMP)
	$(CLI) clean $(if $(filter yes,$(CONFIRM)),--yes)

status: $(STAMP)
	$(CLI) status

resources: $(STAMP)
	$(CLI) resources

maintenance: $(STAMP)
	$(CLI) maintenance

backup: $(STAMP)
	$(CLI) backup $(if $(DIR),--dir $(call q,$(DIR)))

restore: host-tools $(STAMP)
	$(CLI) restore $(call q,$(FILE)) $(if $(filter yes,$(FORCE)),--force)

scale: $(STAMP)
	$(CLI) scale $(call q,$(WORKERS)) $(if $(QUEUE),--queue $(call q,$(QUEUE))) $(if $(filter yes,$(FORCE)),--force) $(SWARM_ARGS)

logs: $(STAMP)
	$(CLI) logs $(if $(SERVICE),$(call q,$(SERVICE)))

verify: $(STAMP)
	$(CLI) verify $(foreach d,$(DAG),--dag $(call q,$(d))) $(if $(URL),--url $(call q,$(URL))) $(REPORT_ARGS)

check-dags: $(STAMP)
	$(CLI) check-dags $(if $(DAGS_DIR),--dags-dir $(call q,$(DAGS_DIR))) $(REPORT_ARGS)

lab-list: $(STAMP)
	$(CLI) lab list

lab-check: $(STAMP)
	$(CLI) lab check $(call q,$(LAB))

lab-solve: $(STAMP)
	$(CLI) lab solve $(call q,$(LAB))

lab-ssh-up: $(STAMP)
	$(CLI) lab ssh-target up

lab-ssh-down: $(STAMP)
	$(CLI) lab ssh-target down

smoke: host-tools $(STAMP)
	$(CLI) smoke $(if $(DAGS_DIR),--dags-dir $(call q,$(DAGS_DIR))) \
	  $(foreach d,$(DAG),--dag $(call q,$(d))) $(if $(TOPOLOGY),--topology $(call q,$(TOPOLOGY))) \
	  $(if $(CONF),--conf-file $(call q,$(CONF))) $(REPORT_ARGS)

chaos: $(STAMP)
	$(CLI) chaos $(if $(ENGINES),--engines) $(foreach f,$(FAULT),--fault $(call q,$(f))) $(if $(JSON),--json $(call q,$(JSON)))

bench: $(STAMP)
	$(CLI) bench $(foreach p,$(PROFILE),--profile $(call q,$(p))) $(foreach s,$(STAGE),--stage $(call q,$(s))) \
	  $(if $(RUNS),--runs $(call q,$(RUNS))) $(if $(JSON),--json $(call q,$(JSON)))

bench-scaling: $(STAMP)
	$(CLI) bench-scaling $(if $(JSON),--json $(call q,$(JSON)))

credentials: $(STAMP)
	$(CLI) credentials

# Beyond one machine (README): the same Compose file as a Docker Swarm stack.
SWARM_ARGS = $(if $(ENGINES),--engines) $(if $(SWARM_HOST),--host $(call q,$(SWARM_HOST)))

swarm-engines: host-tools $(STAMP)
	$(CLI) swarm-engines up $(if $(NODES),--nodes $(call q,$(NODES)))

swarm-engines-down: $(STAMP)
	$(CLI) swarm-engines down

swarm-up: host-tools $(STAMP)
	$(CLI) swarm-up $(SWARM_ARGS)

swarm-status: $(STAMP)
	$(CLI) swarm-status $(SWARM_ARGS)

swarm-down: $(STAMP)
	$(CLI) swarm-down $(SWARM_ARGS)

# One login per person, e.g. a class: make users-add USERS="ana ben" ROLE=user
users-add: $(STAMP)
	$(CLI) users add $(foreach user,$(USERS),$(call q,$(user))) $(if $(ROLE),--role $(call q,$(ROLE)))

users-list: $(STAMP)
	$(CLI) users list

users-remove: $(STAMP)
	$(CLI) users remove $(foreach user,$(USERS),$(call q,$(user)))

images: host-tools $(STAMP)
	$(CLI) build

lint: $(STAMP)
	$(VENV)/bin/ruff check scripts tests dags tools labs
	$(VENV)/bin/ruff format --check scripts tests dags tools labs
	$(VENV)/bin/mypy

unit-test: $(STAMP)
	$(VENV)/bin/pytest -m "not integration"

integration-test: test-tools $(STAMP)
	$(VENV)/bin/pytest -m "integration and not examples and not swarm"

# Three Docker engines, the cluster deployed across them, the Redis primary and a host
# killed: not in `test` (duration in the README, "Beyond one machine"). -rP prints the
# figures the passing tests measured (promotion time, tasks retried, recovery).
test-swarm: host-tools $(STAMP)
	$(VENV)/bin/pytest -m swarm -raP

# Airflow's own example DAGs on a cluster of their own: 5.5 minutes, so not in `test`.
test-examples: $(STAMP)
	$(VENV)/bin/pytest -m examples

test: lint unit-test integration-test

# Mutation testing (tools/mutation.py, config in pyproject's [tool.mutmut]); slow, so not in `test`.
mutation: $(STAMP)
	$(VENV)/bin/python tools/mutation.py $(foreach m,$(MODULE),--module $(m)) $(if $(REF),--ref $(REF))

# Re-resolve the Airflow image's lock from images/airflow/requirements.in.
lock: $(STAMP)
	$(VENV)/bin/pip install --quiet uv==0.13.9
	$(VENV)/bin/uv pip compile images/airflow/requirements.in --python-version 3.13 \
	  --python-platform x86_64-unknown-linux-gnu --generate-hashes --no-header \
	  -o images/airflow/requirements.lock
