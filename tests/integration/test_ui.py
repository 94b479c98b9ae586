"""The UI in a real browser, through the load balancer, as a person uses it:
log in, see the DAG list, trigger a DAG, watch its run succeed, read a task's
log; and Flower behind its password. (The log of a task whose worker was
removed by a scale-down is read in test_scale.py, where that worker goes.)

Each step is checked in the page a person would look at, then against the
REST API, so a page that shows something stale or wrong fails too.
Screenshots: test-artifacts/ui/ (browser.py).
"""

import time

import pytest
from selenium.webdriver.common.by import By

from airflow_ha.airflow_api import JSON
from airflow_ha.flower_api import FlowerClient

from .browser import Browser, run_page, task_page
from .conftest import Cluster, wait_for

pytestmark = pytest.mark.integration

DAG = "example_fanout_xcom"
RUN_TIMEOUT_S = 300


def log_in(cluster: Cluster, browser: Browser) -> str:
    base = cluster.stack.api_url()
    settings = cluster.settings
    browser.log_in(base, settings.airflow_admin_user, settings.airflow_admin_password)
    return base


def new_run(cluster: Cluster, before: set[str]) -> JSON:
    (run,) = wait_for(
        f"a new run of {DAG} after the UI's Trigger",
        lambda: [r for r in cluster.client.dag_runs(DAG) if r["dag_run_id"] not in before],
        timeout=60,
    )
    return run


def test_the_login_page_refuses_a_wrong_password(cluster: Cluster, browser: Browser) -> None:
    base = cluster.stack.api_url()
    browser.open(base + "/")
    browser.forget_logins()
    browser.open(base + "/")
    browser.wait_until("the login form", lambda: "/auth/login" in browser.url)
    browser.type_into(By.NAME, "username", cluster.settings.airflow_admin_user)
    browser.type_into(By.NAME, "password", "not-the-password")
    browser.click(By.CSS_SELECTOR, "input[type=submit]")
    browser.wait_for_text("Invalid login")
    assert "/auth/login" in browser.url
    browser.screenshot("login-refused")


def test_log_in_trigger_a_dag_and_watch_its_run_succeed(cluster: Cluster, browser: Browser) -> None:
    base = log_in(cluster, browser)

    browser.open(f"{base}/dags")
    dag_ids = [d["dag_id"] for d in cluster.client.dags_tagged("airflow-ha-example")]
    assert DAG in dag_ids
    for dag_id in dag_ids:
        browser.wait_for_text(dag_id)
    browser.screenshot("dag-list")

    before = {r["dag_run_id"] for r in cluster.client.dag_runs(DAG)}
    browser.open(f"{base}/dags/{DAG}")
    browser.click(By.CSS_SELECTOR, "button[aria-label='Trigger Dag']")
    browser.wait_for_text(f"Trigger Dag - {DAG}")
    browser.screenshot("trigger-form")
    # The form's own button (the page's has an aria-label); the form unpauses
    # the DAG on trigger, as it offers by default.
    browser.click(By.XPATH, "//button[normalize-space()='Trigger' and not(@aria-label)]")

    run = new_run(cluster, before)
    run_id = str(run["dag_run_id"])
    assert (run["run_type"], run["triggered_by"]) == ("manual", "ui"), run
    assert run["triggering_user_name"] == cluster.settings.airflow_admin_user, run

    # The run's page refreshes itself while the run is active: its header shows
    # the run id, then its state.
    browser.open(run_page(base, DAG, run_id))
    browser.wait_for_text(f"{run_id}\nSuccess", timeout=RUN_TIMEOUT_S)
    browser.screenshot("run-succeeded")
    assert cluster.client.dag_run(DAG, run_id)["state"] == "success"

    # The last task's log, as written by the worker that ran it.
    (total,) = [t for t in cluster.client.task_instances(DAG, run_id) if t["task_id"] == "total"]
    browser.open(task_page(base, DAG, run_id, "total"))
    browser.wait_for_text("results from")
    browser.wait_for_text("Done. Returned value was:")
    browser.screenshot("task-log")
    assert total["state"] == "success", total


def test_flower_shows_the_workers_only_with_its_password(
    cluster: Cluster, browser: Browser
) -> None:
    flower = cluster.stack.url("flower", 5555)
    running = {
        s.hostname
        for s in cluster.stack.services()
        if s.service in ("worker", "worker-heavy") and s.state == "running"
    }
    registered = FlowerClient(flower, cluster.settings.flower_password).queues_by_worker()
    assert {f"celery@{h}" for h in running} == set(registered)
    try:
        for password in (None, "not-the-password"):
            if password is not None:
                browser.basic_auth("flower", password)
            browser.open(f"{flower}/workers")
            time.sleep(2)  # an answer that would show the workers has had time to
            assert "Online workers" not in browser.text()
            assert not running & set(browser.text().split())

        browser.basic_auth("flower", cluster.settings.flower_password)
        browser.open(f"{flower}/workers")
        browser.wait_for_text("Online workers")
        for hostname in running:
            browser.wait_for_text(hostname)
        browser.screenshot("flower-workers")
    finally:
        browser.forget_basic_auth()
