"""The Swarm stack file, made from the same Compose file `make up` runs.

`docker compose config` resolves the Compose file (anchors, variables, the
secret files of the project); `stack_file` then turns that resolved model into
what `docker stack deploy` accepts and what several hosts need. It is a pure
function of the model, so every rule below is unit-tested:

- keys Swarm ignores or refuses go (build, depends_on, restart, oom_score_adj,
  security_opt, container_name); restart policies move under `deploy`, the
  one-shot airflow-init restarting only on failure, unless the Compose files
  set one there;
- every service is reached by DNS round robin (`endpoint_mode: dnsrr`): HAProxy
  and the clients already resolve replicas by name, and the routing mesh's
  virtual IPs need IPVS, which not every kernel has (the three-engine harness's
  does not);
- published ports bind on the node that runs the service (`mode: host`);
- tmpfs mounts become tmpfs volumes with their size (Swarm drops the short form);
- a bind-mounted file of the project (HAProxy's configuration, the start
  scripts of Redis and its sentinels) becomes a Swarm config, so it reaches
  whichever node runs the service; the DAG folder stays a bind mount and must
  exist at the same path on every node;
- placement: replicas of the components that have several are spread over
  nodes, one per node; the MySQL group's members, the Redis primary and
  replica and the load balancer go to the nodes labelled for them (their
  volumes and published ports live there), the members one per node; Celery
  workers to the nodes labelled for workers.
"""

import re
from collections.abc import Mapping
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

STACK_FILE_VERSION = "3.9"
LABEL_PREFIX = "airflow-ha"

# Keys of a resolved Compose service that `docker stack deploy` ignores or refuses.
SWARM_IGNORED_KEYS = (
    "build",
    "container_name",
    "depends_on",
    "oom_score_adj",
    "restart",
    "security_opt",
    "tmpfs",
)

ONE_SHOT_SERVICES = frozenset({"airflow-init"})
SPREAD_SERVICES = frozenset(
    {"api-server", "scheduler", "triggerer", "redis-sentinel", "mysql-server", "mysql"}
)
# Service -> node label it needs (`airflow-ha.<label>=true` on the node).
PINNED_SERVICES: Mapping[str, str] = {
    "mysql-server": "mysql",
    "redis": "redis",
    "redis-replica": "redis-replica",
    "lb": "lb",
    "worker": "workers",
    "worker-heavy": "workers",
}
NODE_LABELS = tuple(sorted(set(PINNED_SERVICES.values())))
# Bind-mounted files of the project with these suffixes become Swarm configs.
PROJECT_FILE_SUFFIXES = (".cfg", ".sh")

_SIZE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def node_label(label: str) -> str:
    return f"{LABEL_PREFIX}.{label}"


def tmpfs_volume(spec: str) -> dict[str, Any]:
    """`/tmp:size=64m,exec` -> a tmpfs volume of that size.

    Swarm's tmpfs mounts take a size and a mode, not mount flags: `exec` is
    dropped (tasks on Swarm workers cannot run programs from /tmp).
    """
    target, _, options = spec.partition(":")
    volume: dict[str, Any] = {"type": "tmpfs", "target": target}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key == "size":
            match = _SIZE.match(value)
            if match is None:
                raise ValueError(f"tmpfs {target}: size {value!r} is not a size")
            volume["tmpfs"] = {"size": int(match[1]) * _UNITS[match[2].lower()]}
    return volume


def config_name(source: str) -> str:
    """A Swarm config's name for a project file: `haproxy.cfg` -> `haproxy_cfg`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", PurePosixPath(source).name)


def _placement(name: str) -> dict[str, Any]:
    placement: dict[str, Any] = {}
    if name in SPREAD_SERVICES:
        placement |= {"max_replicas_per_node": 1, "preferences": [{"spread": "node.id"}]}
    if name in PINNED_SERVICES:
        placement["constraints"] = [f"node.labels.{node_label(PINNED_SERVICES[name])} == true"]
    return placement


def _service(
    name: str, service: Mapping[str, Any], project_dir: str, configs: dict[str, Any]
) -> dict[str, Any]:
    out = {
        k: deepcopy(v)
        for k, v in service.items()
        if k not in SWARM_IGNORED_KEYS and v is not None  # (`entrypoint: null`)
    }
    deploy = out.setdefault("deploy", {})
    deploy["endpoint_mode"] = "dnsrr"
    # One the Compose files set (compose/swarm.yaml, for the Redis servers) wins.
    deploy.setdefault(
        "restart_policy",
        {"condition": "on-failure" if name in ONE_SHOT_SERVICES else "any", "delay": "5s"},
    )
    if name in ONE_SHOT_SERVICES:
        deploy["replicas"] = 1
    placement = _placement(name)
    if placement:
        deploy["placement"] = placement
    if "ports" in out:
        out["ports"] = [
            {
                "target": int(port["target"]),
                "published": int(port["published"]),
                "protocol": port.get("protocol", "tcp"),
                "mode": "host",
            }
            for port in out["ports"]
        ]
    volumes = []
    for volume in out.get("volumes", []):
        source = str(volume.get("source", ""))
        is_project_file = (
            volume.get("type") == "bind" and PurePosixPath(source).suffix in PROJECT_FILE_SUFFIXES
        )
        if is_project_file and source.startswith(project_dir):
            config = config_name(source)
            configs[config] = {"file": source}
            out.setdefault("configs", []).append({"source": config, "target": volume["target"]})
        elif volume.get("type") == "tmpfs" and "size" in volume.get("tmpfs", {}):
            # `docker compose config` writes the size as a string; stack files take a number.
            volumes.append(
                {**volume, "tmpfs": {**volume["tmpfs"], "size": int(volume["tmpfs"]["size"])}}
            )
        else:
            volumes.append({k: v for k, v in volume.items() if k != "bind"})
    volumes += [tmpfs_volume(spec) for spec in service.get("tmpfs", [])]
    if volumes:
        out["volumes"] = volumes
    else:
        out.pop("volumes", None)
    out["networks"] = ["default"]
    return out


def stack_file(config: Mapping[str, Any], project_dir: str) -> dict[str, Any]:
    """The stack file for `docker stack deploy`, from `docker compose config`'s model."""
    configs: dict[str, Any] = {}
    services = {
        name: _service(name, service, project_dir, configs)
        for name, service in config["services"].items()
    }
    stack: dict[str, Any] = {
        "version": STACK_FILE_VERSION,
        "services": services,
        "networks": {"default": {"driver": "overlay"}},
        "volumes": {name: {} for name in config.get("volumes", {})},
        "secrets": {
            name: {"file": secret["file"]} for name, secret in config.get("secrets", {}).items()
        },
    }
    if configs:
        stack["configs"] = configs
    return stack
