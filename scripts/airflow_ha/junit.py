"""JUnit XML for CI systems (GitLab's junit report, Jenkins' junit step, GitHub
reporters), written with junitparser.

Every failure `verify` or `check-dags` reports is a failing testcase here, so a
report that parses as all-passed means the command passed too.
"""

from collections.abc import Iterable

from junitparser import Error, Failure, JUnitXml, Skipped, SystemErr, TestCase, TestSuite

from airflow_ha.dag_check import DagCheck
from airflow_ha.verify import ImportProblem, RunResult, TaskResult

IMPORT_SUITE = "DAG import errors"
CHECK_SUITE = "DAG import check"
RUN_CASE = "(dag run)"
IMPORT_CASE = "import"


def _xml(suites: Iterable[TestSuite]) -> str:
    xml = JUnitXml("airflow-ha")
    for suite in suites:
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.update_statistics()
    body: bytes = xml.tostring()
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body.decode()


def _task_case(dag_id: str, task: TaskResult) -> TestCase:
    case = TestCase(task.name, classname=dag_id, time=task.duration or 0.0)
    if task.failed:
        where = f" on {task.hostname}" if task.hostname else ""
        failure = Failure(f"{task.state} (try {task.try_number}){where}", type_=task.state)
        if task.log_tail:
            failure.text = "\n".join(task.log_tail)
        case.result = [failure]
    elif task.state in ("skipped", "removed"):
        case.result = [Skipped(task.state)]
    if task.try_number > 1:
        case.system_out = f"needed {task.try_number} tries: a first try failed"
    return case


def _run_suite(run: RunResult) -> TestSuite:
    suite = TestSuite(run.dag_id)
    suite.add_property("run_id", run.run_id)
    suite.add_property("run_state", run.state)
    if run.logical_date:
        suite.add_property("logical_date", run.logical_date.isoformat())
    for task in run.tasks:
        suite.add_testcase(_task_case(run.dag_id, task))
    if not run.succeeded and not any(task.failed for task in run.tasks):
        # A run that failed or never finished with no failed task (none created,
        # a DAG-level timeout) must still fail the report.
        case = TestCase(RUN_CASE, classname=run.dag_id)
        message = run.error or f"the run ended {run.state}"
        case.result = [Failure(message, type_=run.state)]
        suite.add_testcase(case)
    return suite


def _import_cases(problems: list[ImportProblem]) -> list[TestCase]:
    cases = []
    for problem in problems:
        case = TestCase(IMPORT_CASE, classname=problem.filename)
        failure = Failure("import error", type_="ImportError")
        failure.text = problem.trace
        case.result = [failure]
        cases.append(case)
    return cases


def verify_report(
    runs: list[RunResult],
    problems: list[ImportProblem] | None = None,
    error: str | None = None,
) -> str:
    """A testsuite per DAG run and a testcase per task instance; import errors
    as failing testcases of their files; `error` (why verify stopped before or
    while running) as an erroring testcase."""
    suites = [_run_suite(run) for run in runs]
    if problems:
        suite = TestSuite(IMPORT_SUITE)
        for case in _import_cases(problems):
            suite.add_testcase(case)
        suites.append(suite)
    if error:
        suites.append(_error_suite("verify", error, ""))
    return _xml(suites)


def _error_suite(command: str, message: str, details: str) -> TestSuite:
    suite = TestSuite(f"airflow-ha {command}")
    case = TestCase(command, classname="airflow-ha")
    failure = Error(message, type_="error")
    if details:
        failure.text = details
    case.result = [failure]
    suite.add_testcase(case)
    return suite


def error_report(command: str, message: str, details: str = "") -> str:
    """A report with one erroring testcase: `command` stopped before it had results."""
    return _xml([_error_suite(command, message, details)])


def dag_check_report(check: DagCheck) -> str:
    """A testcase per DAG file: passing with its DAG ids, or failing with its error."""
    suite = TestSuite(CHECK_SUITE)
    suite.add_property("parse_seconds", f"{check.seconds:.2f}")
    for filename, dag_ids in check.files.items():
        case = TestCase(IMPORT_CASE, classname=filename)
        case.system_out = "DAGs: " + (", ".join(dag_ids) or "(none)")
        suite.add_testcase(case)
    for case in _import_cases(check.problems):
        suite.add_testcase(case)
    if check.output:
        suite.append(SystemErr(check.output))
    return _xml([suite])
