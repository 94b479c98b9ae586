"""junit.py: the XML parses with a real JUnit library and fails exactly when the
command failed."""

from datetime import UTC, datetime

from junitparser import Error, Failure, JUnitXml, Skipped, SystemErr, TestCase, TestSuite

from airflow_ha.dag_check import DagCheck
from airflow_ha.junit import dag_check_report, error_report, verify_report
from airflow_ha.verify import ImportProblem, RunResult, TaskResult


def properties(suite: TestSuite) -> dict[str, str]:
    return {p.name: p.value for p in suite.properties()}  # type: ignore[no-untyped-call]


def parse(xml: str) -> JUnitXml:
    return JUnitXml.fromstring(xml)


def cases(xml: str) -> dict[tuple[str, str], TestCase]:
    return {(case.classname, case.name): case for suite in parse(xml) for case in suite}


def task(name: str, state: str, tries: int = 1, **extra: object) -> TaskResult:
    return TaskResult(name, -1, state, tries, 1.5, "w1", **extra)  # type: ignore[arg-type]


def test_a_testcase_per_task_instance_named_by_dag_and_map_index() -> None:
    mapped = TaskResult("square", 3, "success", 1, 0.25, "w2")
    run = RunResult("dag_a", "r1", "success", [task("extract", "success"), mapped])
    found = cases(verify_report([run]))
    assert set(found) == {("dag_a", "extract"), ("dag_a", "square[3]")}
    assert found["dag_a", "square[3]"].time == 0.25
    assert all(case.is_passed for case in found.values())
    xml = parse(verify_report([run]))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (2, 0, 0, 0)


def test_a_failed_task_carries_state_try_host_and_log_tail() -> None:
    failed = task("load", "failed", tries=3, log_tail=("line 1", "ValueError: bad"))
    run = RunResult("dag_a", "r1", "failed", [failed, task("after", "upstream_failed", 0)])
    found = cases(verify_report([run]))
    [result] = found["dag_a", "load"].result
    assert isinstance(result, Failure)
    assert result.message == "failed (try 3) on w1"
    assert result.type == "failed"
    assert result.text == "line 1\nValueError: bad"
    [upstream] = found["dag_a", "after"].result
    assert isinstance(upstream, Failure)
    assert upstream.type == "upstream_failed"
    assert ("dag_a", "(dag run)") not in found  # the failed tasks already fail the report
    assert parse(verify_report([run])).failures == 2


def test_skipped_tasks_are_skipped_and_retried_successes_say_so() -> None:
    run = RunResult("d", "r", "success", [task("branch", "skipped", 0), task("t", "success", 2)])
    found = cases(verify_report([run]))
    [skipped] = found["d", "branch"].result
    assert isinstance(skipped, Skipped)
    assert found["d", "t"].is_passed
    assert found["d", "t"].system_out == "needed 2 tries: a first try failed"
    assert found["d", "branch"].system_out is None


def test_a_run_that_did_not_succeed_without_a_failed_task_still_fails() -> None:
    for run in (
        RunResult("d", "r", "running", []),
        RunResult("d", "r", "failed", [task("t", "success")]),
    ):
        found = cases(verify_report([run]))
        [result] = found["d", "(dag run)"].result
        assert isinstance(result, Failure)
        assert result.message == f"the run ended {run.state}"


def test_a_successful_run_has_no_run_case() -> None:
    assert ("d", "(dag run)") not in cases(verify_report([RunResult("d", "r", "success", [])]))


def test_each_run_is_a_suite_with_its_run_id_state_and_logical_date() -> None:
    moment = datetime(2026, 12, 2, tzinfo=UTC)
    xml = parse(verify_report([RunResult("d", "manual__x", "success", [], moment)]))
    [suite] = list(xml)
    assert suite.name == "d"
    assert properties(suite) == {
        "run_id": "manual__x",
        "run_state": "success",
        "logical_date": "2026-12-02T00:00:00+00:00",
    }


def test_import_errors_are_failing_testcases_of_their_files() -> None:
    xml = verify_report([], [ImportProblem("bad.py", "Traceback...\nNameError: x")])
    [result] = cases(xml)["bad.py", "import"].result
    assert isinstance(result, Failure)
    assert (result.message, result.type) == ("import error", "ImportError")
    assert [suite.name for suite in parse(xml)] == ["DAG import errors"]
    assert result.text == "Traceback...\nNameError: x"


def test_an_error_before_any_run_is_an_erroring_testcase() -> None:
    for xml in (
        verify_report([], error="DAG x did not appear"),
        error_report("verify", "DAG x did not appear"),
    ):
        [result] = cases(xml)["airflow-ha", "verify"].result
        assert isinstance(result, Error)
        assert (result.message, result.type) == ("DAG x did not appear", "error")
        assert result.text is None
        assert [suite.name for suite in parse(xml)] == ["airflow-ha verify"]
        assert parse(xml).errors == 1
    [with_details] = cases(error_report("smoke", "up failed", "last logs"))[
        "airflow-ha", "smoke"
    ].result
    assert with_details.text == "last logs"


def test_the_dag_check_report_has_a_testcase_per_file() -> None:
    check = DagCheck({"a.py": ["a1", "a2"], "lib.py": []}, {"bad.py": "SyntaxError"}, 2.5, "w\n")
    found = cases(dag_check_report(check))
    assert set(found) == {("a.py", "import"), ("lib.py", "import"), ("bad.py", "import")}
    assert found["a.py", "import"].is_passed
    assert found["a.py", "import"].system_out == "DAGs: a1, a2"
    assert found["lib.py", "import"].system_out == "DAGs: (none)"
    [result] = found["bad.py", "import"].result
    assert isinstance(result, Failure)
    assert result.text == "SyntaxError"
    xml = parse(dag_check_report(check))
    assert (xml.tests, xml.failures) == (3, 1)
    suite = next(iter(xml))
    assert properties(suite) == {"parse_seconds": "2.50"}
    [output] = suite.iterchildren(SystemErr)  # type: ignore[no-untyped-call]
    assert output.text == "w\n"


def test_a_clean_dag_check_report_passes() -> None:
    xml = parse(dag_check_report(DagCheck({"a.py": ["a"]}, {}, 1.0)))
    assert (xml.tests, xml.failures, xml.errors) == (1, 0, 0)


def test_a_run_not_triggered_fails_with_the_reason() -> None:
    run = RunResult("d", "", "not triggered", [], None, "HTTP 400: required_field")
    [result] = cases(verify_report([run]))["d", "(dag run)"].result
    assert isinstance(result, Failure)
    assert result.message == "HTTP 400: required_field"


def test_failure_details_without_a_host_and_removed_tasks() -> None:
    tasks = [
        TaskResult("t", -1, "failed", 1, None, ""),
        TaskResult("gone", -1, "removed", 0, None, ""),
    ]
    run = RunResult("d", "r", "failed", tasks)
    found = cases(verify_report([run]))
    [failure] = found["d", "t"].result
    assert isinstance(failure, Failure)
    assert failure.message == "failed (try 1)"
    assert found["d", "t"].time == 0.0
    assert found["d", "t"].system_out is None
    [skipped] = found["d", "gone"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "removed"


def test_the_run_case_type_is_the_runs_state() -> None:
    [result] = cases(verify_report([RunResult("d", "r", "queued", [])]))["d", "(dag run)"].result
    assert isinstance(result, Failure)
    assert result.type == "queued"


def test_the_report_is_named_airflow_ha() -> None:
    assert parse(verify_report([])).name == "airflow-ha"
