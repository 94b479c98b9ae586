"""Lab 1, a tour: the components, the UI through the load balancer, Flower, the
metadata database, and where logs live. The trainee finds six facts."""

from collections.abc import Sequence

from airflow_ha.labs.base import LabEnv, Step, number_in, same_text

number = 1
slug = "tour"
title = "A tour of the cluster"

LOGS_VOLUME_SUFFIX = "_airflow-logs"


def facts(env: LabEnv) -> dict[str, str]:
    """The true answers, read from the running cluster."""
    scheduler = env.services("scheduler")
    [mysql_version] = env.mysql_rows("SELECT VERSION()")[0]
    container = env.ctx.stack.docker.container.inspect(scheduler[0].container)
    [log_dir] = [
        mount.destination
        for mount in container.mounts
        if (mount.name or "").endswith(LOGS_VOLUME_SUFFIX)
    ]
    return {
        "SCHEDULERS": str(sum(1 for s in scheduler if s.state == "running")),
        "API_SERVERS": str(sum(1 for s in env.services("api-server") if s.state == "running")),
        "UI_URL": env.ctx.stack.api_url(),
        # Flower lists every running worker; counting containers does not depend on
        # a busy worker answering Flower's broadcast in time.
        "FLOWER_WORKERS": str(
            sum(
                1
                for pool in ("worker", "worker-heavy")
                for s in env.services(pool)
                if s.state == "running"
            )
        ),
        "MYSQL_VERSION": mysql_version,
        "TASK_LOG_DIR": str(log_dir),
    }


HINTS = {
    "SCHEDULERS": "count the scheduler containers in `make status`",
    "API_SERVERS": "count the api-server containers in `make status`",
    "UI_URL": "`make up` printed it; it is the load balancer's address",
    "FLOWER_WORKERS": "open Flower (`make credentials` has its login) and count the workers",
    "MYSQL_VERSION": "run SELECT VERSION() in the mysql container (see the guide)",
    "TASK_LOG_DIR": "the folder where a worker writes task logs (see the guide)",
}


def check(env: LabEnv) -> Sequence[Step]:
    answers = env.answers(number)
    truth = facts(env)
    steps = []
    for key, value in truth.items():
        given = answers.get(key)
        if key in ("SCHEDULERS", "API_SERVERS", "FLOWER_WORKERS"):
            done = number_in(given) == int(value)
        else:
            done = same_text((given or "").rstrip("/"), value.rstrip("/"))
        steps.append(
            Step(
                f"{key} in {env.answers_file(number).name} is right",
                done,
                HINTS[key] if given is None else f"{key}={given} is not right: {HINTS[key]}",
            )
        )
    return steps


def solve(env: LabEnv) -> None:
    env.write_answers(number, facts(env))
