"""Lab 10, remote tasks over SSH: stop a running SSHOperator task and see that
the remote command dies with it only when it ran in a pseudo-terminal
(get_pty=True): sshd then hangs up the remote session."""

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.docker_host import compose_client
from airflow_ha.errors import ClusterError
from airflow_ha.images import ImageBuilder
from airflow_ha.labs.base import LabEnv, Step, same_text, wait_for
from airflow_ha.paths import REPO_ROOT

number = 10
slug = "ssh-pty"
title = "Remote tasks over SSH: get_pty and stopping a task"

DAG_ID = "lab10_ssh"
FILE = f"{DAG_ID}.py"
CONN_ID = "lab10_ssh"
TARGET = "ssh-target"
TARGET_IMAGE = "airflow-ha/ssh-target:trixie"
LABS_COMPOSE = REPO_ROOT / "compose" / "labs.yaml"
REMOTE = {"with_pty": "sleep 901", "without_pty": "sleep 902"}


def key_dir(env: LabEnv) -> Path:
    return env.ctx.state_dir / "lab-ssh"


def lab_compose(env: LabEnv) -> DockerClient:
    """The project's Compose client with the lab extras and their settings."""
    key_dir(env).mkdir(parents=True, exist_ok=True)
    settings = key_dir(env) / "compose.env"
    settings.write_text(
        f"LAB_SSH_PUBLIC_KEY={key_dir(env) / 'id_ed25519.pub'}\nSSH_TARGET_IMAGE={TARGET_IMAGE}\n"
    )
    env_files = [env.ctx.env_file, env.ctx.derived_env_file, settings]
    return compose_client(
        env.ctx.settings.compose_project_name, env_files, [LABS_COMPOSE], profiles=["lab"]
    )


def _new_key(folder: Path) -> str:
    """An ed25519 key pair: the public half for the target, the private half returned."""
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    (folder / "id_ed25519.pub").write_bytes(public + b" airflow-ha-lab10\n")
    return private


def target_up(env: LabEnv) -> None:
    """Build and start the SSH target with a new key; (re)write the connection."""
    private_key = _new_key(key_dir(env))
    ImageBuilder(env.ctx.stack.docker, env.ctx.settings, env.log).ensure_ssh_target(TARGET_IMAGE)
    compose = lab_compose(env)
    compose.compose.up(services=[TARGET], detach=True, no_build=True, force_recreate=True)
    wait_for(f"{TARGET} healthy", lambda: _target_health(compose) == "healthy" or None, 120)
    connection = {
        "connection_id": CONN_ID,
        "conn_type": "ssh",
        "host": TARGET,
        "port": 22,
        "login": "lab",
        "extra": json.dumps({"private_key": private_key, "no_host_key_check": "true"}),
    }
    path = f"/api/v2/connections/{CONN_ID}"
    if env.client.request("GET", path, allow_404=True) is None:
        env.client.request("POST", "/api/v2/connections", json=connection, idempotent=False)
    else:
        env.client.request("PATCH", path, json=connection)
    env.log(f"{TARGET} is up; connection {CONN_ID} logs in as lab with a new key")


def target_down(env: LabEnv) -> None:
    lab_compose(env).compose.rm(services=[TARGET], stop=True, volumes=True)
    env.client.request("DELETE", f"/api/v2/connections/{CONN_ID}", allow_404=True)
    env.log(f"{TARGET} removed, connection {CONN_ID} deleted")


def _target_health(compose: DockerClient) -> str:
    containers = compose.compose.ps(services=[TARGET])
    health = containers[0].state.health if containers else None
    return str(health.status) if health and health.status else "absent"


def remote_commands(env: LabEnv) -> list[str] | None:
    """The lab user's processes on the target, or None when the target is not running."""
    compose = lab_compose(env)
    containers = [c for c in compose.compose.ps(services=[TARGET]) if c.state.running]
    if not containers:
        return None
    try:
        output = str(containers[0].execute(["ps", "-u", "lab", "-o", "args="]))
    except DockerException:
        return None
    return [line.strip() for line in output.splitlines() if line.strip()]


def _stopped_run(env: LabEnv) -> str | None:
    """The newest run whose two tasks were both stopped while they ran (marked failed)."""
    for run in env.runs(DAG_ID, ("failed",)):
        states = {
            ti["task_id"]: ti.get("state")
            for ti in env.client.task_instances(DAG_ID, str(run["dag_run_id"]))
        }
        if all(states.get(task) == "failed" for task in REMOTE):
            return str(run["dag_run_id"])
    return None


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def check(env: LabEnv) -> Sequence[Step]:
    commands = remote_commands(env)
    run_id = _stopped_run(env)
    running = {task: any(c == cmd for c in commands or []) for task, cmd in REMOTE.items()}
    answers = env.answers(number)
    return [
        Step("the SSH target runs", commands is not None, "`make lab-ssh-up`"),
        Step(
            f"a run of {DAG_ID} had both tasks stopped while they ran",
            run_id is not None,
            "trigger it, then mark both running tasks failed (UI or REST API)",
        ),
        Step(
            "the remote command of with_pty (sleep 901) died with its task",
            run_id is not None and not running["with_pty"],
            "with get_pty=True, sshd hangs up the remote command when the task stops",
        ),
        Step(
            "the remote command of without_pty (sleep 902) still runs on the target",
            run_id is not None and running["without_pty"],
            "it was killed on the target: run the DAG again and do not kill it by hand yet",
        ),
        Step(
            "WITH_PTY_STILL_RUNNING and WITHOUT_PTY_STILL_RUNNING say what `ps` shows",
            same_text(answers.get("WITH_PTY_STILL_RUNNING"), _yes_no(running["with_pty"]))
            and same_text(
                answers.get("WITHOUT_PTY_STILL_RUNNING"), _yes_no(running["without_pty"])
            ),
            "yes or no, from `ps` on the target (see the guide)",
        ),
    ]


def solve(env: LabEnv) -> None:
    target_up(env)
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)

    def both_remote_running() -> bool | None:
        commands = remote_commands(env) or []
        return all(cmd in commands for cmd in REMOTE.values()) or None

    wait_for("both remote commands running on the target", both_remote_running)
    for task in REMOTE:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task}"
        env.client.request("PATCH", path, json={"new_state": "failed"})
        env.log(f"{task}: marked failed")

    def with_pty_gone() -> bool | None:
        commands = remote_commands(env) or []
        return (REMOTE["with_pty"] not in commands) or None

    wait_for("the remote command of with_pty to end", with_pty_gone, 120)
    commands = remote_commands(env) or []
    if REMOTE["without_pty"] not in commands:
        raise ClusterError(f"lab {number}: {REMOTE['without_pty']} ended too: {commands}")
    env.write_answers(
        number,
        {
            "WITH_PTY_STILL_RUNNING": _yes_no(REMOTE["with_pty"] in commands),
            "WITHOUT_PTY_STILL_RUNNING": _yes_no(REMOTE["without_pty"] in commands),
        },
    )
