"""The training labs: one module per lab (its checks and its solve), one guide
per lab in labs/. `make lab-check LAB=n` and `make lab-solve LAB=n` run them."""

from airflow_ha.labs import (
    lab01_tour,
    lab02_first_dag,
    lab03_queues_pools,
    lab04_scaling,
    lab05_scheduler_kill,
    lab06_worker_kill,
    lab07_triggerer_failover,
    lab08_mysql_redis_restart,
    lab09_big_xcom,
    lab10_ssh_pty,
)
from airflow_ha.labs.base import Lab

LABS: tuple[Lab, ...] = (
    lab01_tour,
    lab02_first_dag,
    lab03_queues_pools,
    lab04_scaling,
    lab05_scheduler_kill,
    lab06_worker_kill,
    lab07_triggerer_failover,
    lab08_mysql_redis_restart,
    lab09_big_xcom,
    lab10_ssh_pty,
)


def lab_by_number(number: int) -> Lab | None:
    return next((lab for lab in LABS if lab.number == number), None)
