"""Fault injection: a workload of DAG runs, faults injected one at a time, and
measured recovery (see README, "High availability")."""
