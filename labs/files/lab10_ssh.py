"""Lab 10: two long remote commands over SSH, one with a pseudo-terminal, one without."""

from datetime import datetime

from airflow.providers.ssh.operators.ssh import SSHOperator
from airflow.sdk import dag


@dag(
    dag_id="lab10_ssh",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 0},
)
def ssh() -> None:
    # `sleep 901` and `sleep 902` tell the two remote processes apart in `ps`.
    SSHOperator(
        task_id="with_pty", ssh_conn_id="lab10_ssh", command="sleep 901", get_pty=True,
        cmd_timeout=None,
    )  # fmt: skip
    SSHOperator(
        task_id="without_pty", ssh_conn_id="lab10_ssh", command="sleep 902", get_pty=False,
        cmd_timeout=None,
    )  # fmt: skip


ssh()
