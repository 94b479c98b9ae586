"""The stack file made from `docker compose config`'s model (airflow_ha.swarm.stack_file)."""

from typing import Any

import pytest

from airflow_ha.swarm.stack_file import (
    NODE_LABELS,
    config_name,
    node_label,
    stack_file,
    tmpfs_volume,
)

PROJECT = "/srv/airflow-ha"


def resolved(**services: dict[str, Any]) -> dict[str, Any]:
    """A model shaped like `docker compose config --format json` prints it."""
    return {
        "name": "airflow-ha",
        "services": services,
        "networks": {"default": {"name": "airflow-ha_default"}},
        "volumes": {"mysql-data": {"name": "airflow-ha_mysql-data"}},
        "secrets": {
            "redis_password": {"name": "airflow-ha_redis_password", "file": f"{PROJECT}/s/r"}
        },
    }


def service(**extra: Any) -> dict[str, Any]:
    return {
        "image": "airflow-ha/airflow:3.3.2",
        "build": {"context": f"{PROJECT}/images/airflow"},
        "depends_on": {"mysql": {"condition": "service_healthy"}},
        "restart": "unless-stopped",
        "oom_score_adj": 200,
        "security_opt": ["no-new-privileges:true"],
        "entrypoint": None,
        "networks": {"default": None},
        **extra,
    }


def test_keys_swarm_ignores_or_refuses_are_dropped_and_the_rest_kept() -> None:
    stack = stack_file(resolved(scheduler=service(cap_drop=["ALL"], read_only=True)), PROJECT)
    scheduler = stack["services"]["scheduler"]
    for key in ("build", "depends_on", "restart", "oom_score_adj", "security_opt", "entrypoint"):
        assert key not in scheduler
    assert scheduler["cap_drop"] == ["ALL"]
    assert scheduler["read_only"] is True
    assert scheduler["image"] == "airflow-ha/airflow:3.3.2"
    assert scheduler["networks"] == ["default"]


def test_the_model_given_is_not_changed() -> None:
    model = resolved(scheduler=service(deploy={"replicas": 2}))
    stack_file(model, PROJECT)
    assert model["services"]["scheduler"]["deploy"] == {"replicas": 2}
    assert "build" in model["services"]["scheduler"]


def test_restart_policy_moves_under_deploy_and_init_runs_once() -> None:
    stack = stack_file(resolved(**{"airflow-init": service(), "scheduler": service()}), PROJECT)
    init = stack["services"]["airflow-init"]["deploy"]
    assert init["restart_policy"]["condition"] == "on-failure"
    assert init["replicas"] == 1
    scheduler = stack["services"]["scheduler"]["deploy"]
    assert scheduler["restart_policy"]["condition"] == "any"
    assert "replicas" not in scheduler


def test_every_service_is_reached_by_dns_round_robin() -> None:
    stack = stack_file(resolved(lb=service(), redis=service(), scheduler=service()), PROJECT)
    assert {s["deploy"]["endpoint_mode"] for s in stack["services"].values()} == {"dnsrr"}


def test_replicas_and_limits_are_kept() -> None:
    deploy = {"replicas": 2, "resources": {"limits": {"memory": "1073741824", "pids": 512}}}
    stack = stack_file(resolved(scheduler=service(deploy=deploy)), PROJECT)
    assert stack["services"]["scheduler"]["deploy"]["replicas"] == 2
    assert stack["services"]["scheduler"]["deploy"]["resources"] == deploy["resources"]


def test_published_ports_bind_on_the_node_that_runs_the_service() -> None:
    ports = [
        {
            "mode": "ingress",
            "host_ip": "127.0.0.1",
            "target": 8080,
            "published": "8080",
            "protocol": "tcp",
        }
    ]
    stack = stack_file(resolved(lb=service(ports=ports)), PROJECT)
    assert stack["services"]["lb"]["ports"] == [
        {"target": 8080, "published": 8080, "protocol": "tcp", "mode": "host"}
    ]


@pytest.mark.parametrize(
    ("spec", "volume"),
    [
        ("/tmp:size=64m", {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 64 * 1024**2}}),
        ("/tmp:size=1g,exec", {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024**3}}),
        (
            "/run/mysqld:size=1m",
            {"type": "tmpfs", "target": "/run/mysqld", "tmpfs": {"size": 1024**2}},
        ),
        ("/x:size=10k", {"type": "tmpfs", "target": "/x", "tmpfs": {"size": 10240}}),
        ("/x:size=4096", {"type": "tmpfs", "target": "/x", "tmpfs": {"size": 4096}}),
        ("/x", {"type": "tmpfs", "target": "/x"}),
    ],
)
def test_tmpfs_mounts_become_tmpfs_volumes_of_their_size(spec: str, volume: dict[str, Any]) -> None:
    assert tmpfs_volume(spec) == volume


def test_a_tmpfs_size_that_is_not_a_size_is_refused() -> None:
    with pytest.raises(ValueError, match="tmpfs /tmp: size '1x' is not a size"):
        tmpfs_volume("/tmp:size=1x")


def test_tmpfs_volumes_join_the_other_volumes() -> None:
    dags = {
        "type": "bind",
        "source": f"{PROJECT}/dags",
        "target": "/opt/airflow/dags",
        "read_only": True,
        "bind": {"create_host_path": True},
    }
    stack = stack_file(
        resolved(worker=service(volumes=[dags], tmpfs=["/tmp:size=1g,exec"])), PROJECT
    )
    assert stack["services"]["worker"]["volumes"] == [
        {
            "type": "bind",
            "source": f"{PROJECT}/dags",
            "target": "/opt/airflow/dags",
            "read_only": True,
        },
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024**3}},
    ]
    assert "tmpfs" not in stack["services"]["worker"]


def test_a_project_configuration_file_becomes_a_swarm_config() -> None:
    cfg = f"{PROJECT}/compose/haproxy/haproxy.cfg"
    mount = {
        "type": "bind",
        "source": cfg,
        "target": "/usr/local/etc/haproxy/haproxy.cfg",
        "read_only": True,
    }
    stack = stack_file(resolved(lb=service(volumes=[mount])), PROJECT)
    assert stack["services"]["lb"]["configs"] == [
        {"source": "haproxy_cfg", "target": "/usr/local/etc/haproxy/haproxy.cfg"}
    ]
    assert "volumes" not in stack["services"]["lb"]
    assert stack["configs"] == {"haproxy_cfg": {"file": cfg}}


def test_a_start_script_of_the_project_becomes_a_swarm_config() -> None:
    script = f"{PROJECT}/compose/redis/redis-server.sh"
    mount = {"type": "bind", "source": script, "target": "/usr/local/lib/s.sh", "read_only": True}
    stack = stack_file(resolved(redis=service(volumes=[mount])), PROJECT)
    assert stack["services"]["redis"]["configs"] == [
        {"source": "redis-server_sh", "target": "/usr/local/lib/s.sh"}
    ]
    assert stack["configs"] == {"redis-server_sh": {"file": script}}


def test_other_project_files_stay_bind_mounts() -> None:
    mount = {"type": "bind", "source": f"{PROJECT}/dags/x.py", "target": "/x.py"}
    stack = stack_file(resolved(worker=service(volumes=[mount])), PROJECT)
    assert stack["services"]["worker"]["volumes"] == [mount]


def test_a_tmpfs_volume_size_written_as_a_string_becomes_a_number() -> None:
    volume = {"type": "tmpfs", "target": "/data", "tmpfs": {"size": "1048576"}}
    stack = stack_file(resolved(sentinel=service(volumes=[volume])), PROJECT)
    assert stack["services"]["sentinel"]["volumes"] == [
        {"type": "tmpfs", "target": "/data", "tmpfs": {"size": 1048576}}
    ]


def test_a_tmpfs_volume_without_a_size_stays_as_it_is() -> None:
    volume = {"type": "tmpfs", "target": "/data"}
    stack = stack_file(resolved(sentinel=service(volumes=[volume])), PROJECT)
    assert stack["services"]["sentinel"]["volumes"] == [volume]


def test_a_configuration_file_outside_the_project_stays_a_bind_mount() -> None:
    mount = {"type": "bind", "source": "/etc/other/haproxy.cfg", "target": "/x.cfg"}
    stack = stack_file(resolved(lb=service(volumes=[mount])), PROJECT)
    assert stack["services"]["lb"]["volumes"] == [mount]
    assert "configs" not in stack


def test_config_names_are_made_of_allowed_characters() -> None:
    assert config_name("/a/b/haproxy.cfg") == "haproxy_cfg"


@pytest.mark.parametrize(
    "name", ["api-server", "scheduler", "triggerer", "redis-sentinel", "mysql"]
)
def test_replicated_components_spread_one_per_node(name: str) -> None:
    placement = stack_file(resolved(**{name: service()}), PROJECT)["services"][name]["deploy"][
        "placement"
    ]
    assert placement == {"max_replicas_per_node": 1, "preferences": [{"spread": "node.id"}]}


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("redis", "redis"),
        ("redis-replica", "redis-replica"),
        ("lb", "lb"),
        ("worker", "workers"),
        ("worker-heavy", "workers"),
    ],
)
def test_pinned_services_go_to_the_nodes_labelled_for_them(name: str, label: str) -> None:
    placement = stack_file(resolved(**{name: service()}), PROJECT)["services"][name]["deploy"][
        "placement"
    ]
    assert placement == {"constraints": [f"node.labels.airflow-ha.{label} == true"]}


def test_the_mysql_groups_members_go_one_per_node_labelled_for_them() -> None:
    placement = stack_file(resolved(**{"mysql-server": service()}), PROJECT)["services"][
        "mysql-server"
    ]["deploy"]["placement"]
    assert placement == {
        "max_replicas_per_node": 1,
        "preferences": [{"spread": "node.id"}],
        "constraints": ["node.labels.airflow-ha.mysql == true"],
    }


@pytest.mark.parametrize("name", ["dag-processor", "flower", "airflow-init", "maintenance"])
def test_other_services_go_anywhere(name: str) -> None:
    assert (
        "placement"
        not in stack_file(resolved(**{name: service()}), PROJECT)["services"][name]["deploy"]
    )


def test_node_labels_are_the_pinned_services_labels() -> None:
    assert NODE_LABELS == ("lb", "mysql", "redis", "redis-replica", "workers")
    assert node_label("mysql") == "airflow-ha.mysql"


def test_top_level_volumes_networks_and_secrets_are_the_stacks_own() -> None:
    stack = stack_file(resolved(scheduler=service()), PROJECT)
    assert stack["version"] == "3.9"
    assert stack["networks"] == {"default": {"driver": "overlay"}}
    # Without the Compose project's names: the stack prefixes its own.
    assert stack["volumes"] == {"mysql-data": {}}
    assert stack["secrets"] == {"redis_password": {"file": f"{PROJECT}/s/r"}}
    assert "configs" not in stack


def test_the_restart_policy_waits_5_s_between_restarts() -> None:
    stack = stack_file(resolved(scheduler=service()), PROJECT)
    assert stack["services"]["scheduler"]["deploy"]["restart_policy"] == {
        "condition": "any",
        "delay": "5s",
    }


def test_a_restart_policy_of_the_compose_files_is_kept() -> None:
    policy = {"condition": "any", "delay": "20s"}
    stack = stack_file(resolved(redis=service(deploy={"restart_policy": policy})), PROJECT)
    assert stack["services"]["redis"]["deploy"]["restart_policy"] == policy


def test_a_port_keeps_its_protocol_and_defaults_to_tcp() -> None:
    ports = [
        {"target": 5555, "published": "5555"},
        {"target": 53, "published": "53", "protocol": "udp"},
    ]
    stack = stack_file(resolved(flower=service(ports=ports)), PROJECT)
    assert [p["protocol"] for p in stack["services"]["flower"]["ports"]] == ["tcp", "udp"]


def test_config_names_keep_upper_case_letters() -> None:
    assert config_name("/a/HAProxy-1.cfg") == "HAProxy-1_cfg"


def test_a_model_without_volumes_or_secrets_gives_empty_ones() -> None:
    stack = stack_file({"services": {"scheduler": service()}}, PROJECT)
    assert stack["volumes"] == {}
    assert stack["secrets"] == {}
