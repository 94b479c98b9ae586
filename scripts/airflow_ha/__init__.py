"""Bring up, inspect and verify an Apache Airflow 3 cluster on Docker Compose."""
