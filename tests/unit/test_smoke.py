"""smoke, check-dags and the report files: the decisions, without Docker."""

import argparse
import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from junitparser import Error, JUnitXml
from python_on_whales.exceptions import DockerException

from airflow_ha import argtypes
from airflow_ha.commands.check_dags import require_clean
from airflow_ha.commands.smoke import (
    INHERITED_KEYS,
    select_dags,
    shielded,
    sigterm_interrupts,
    smoke_overrides,
)
from airflow_ha.console import Progress
from airflow_ha.dag_check import DagCheck
from airflow_ha.errors import ClusterError, VerificationError
from airflow_ha.report_files import ReportFiles
from airflow_ha.settings import Settings

CHECK = DagCheck({"a.py": ["a1", "a2"], "b.py": ["b"]}, {}, 1.0)


def test_select_dags_runs_every_dag_of_the_folder_unless_named() -> None:
    assert select_dags([], CHECK, Path("/d")) == ["a1", "a2", "b"]
    assert select_dags(["b", "a1", "b"], CHECK, Path("/d")) == ["b", "a1"]


def test_select_dags_refuses_a_dag_the_folder_does_not_define() -> None:
    with pytest.raises(
        VerificationError, match=r"unknown DAG id\(s\) nope, zz: /d defines a1, a2, b"
    ):
        select_dags(["a1", "zz", "nope"], CHECK, Path("/d"))


def test_require_clean_refuses_import_errors_and_an_empty_folder() -> None:
    require_clean(CHECK, Path("/d"))
    with pytest.raises(VerificationError, match=r"1 DAG file\(s\) in /d failed to import: x.py"):
        require_clean(DagCheck({"a.py": ["a"]}, {"x.py": "E"}, 1.0), Path("/d"))
    with pytest.raises(VerificationError, match="no DAG found in /d"):
        require_clean(DagCheck({"lib.py": []}, {}, 1.0), Path("/d"))


def test_smoke_overrides_isolate_the_cluster(valid_values: dict[str, str]) -> None:
    overrides = smoke_overrides("afha-smoke-1", Path("/ci/dags"), "single", None)
    assert overrides == {
        "COMPOSE_PROJECT_NAME": "afha-smoke-1",
        "BIND_ADDRESS": "127.0.0.1",
        "AIRFLOW_API_PORT": "0",
        "FLOWER_PORT": "0",
        "AIRFLOW_DAGS_DIR": "/ci/dags",
        "TOPOLOGY": "single",
        "AIRFLOW_LOAD_EXAMPLES": "false",
    }


def test_smoke_overrides_take_images_and_build_settings_from_the_developers_env(
    valid_values: dict[str, str],
) -> None:
    developer = Settings.model_validate(
        valid_values
        | {"AIRFLOW_IMAGE": "corp/airflow:1", "BIND_ADDRESS": "0.0.0.0", "AIRFLOW_API_PORT": "80"}
    )
    overrides = smoke_overrides("p", Path("/d"), "ha", developer)
    assert overrides["AIRFLOW_IMAGE"] == "corp/airflow:1"
    assert set(INHERITED_KEYS) <= set(overrides)
    # Never the developer's project, ports, address or secrets.
    assert overrides["BIND_ADDRESS"] == "127.0.0.1"
    assert overrides["AIRFLOW_API_PORT"] == "0"
    assert overrides["COMPOSE_PROJECT_NAME"] == "p"
    assert not {k for k in overrides if "PASSWORD" in k or "SECRET" in k or "FERNET" in k}


def test_sigterm_interrupts_like_ctrl_c_and_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_shielded_teardown_ignores_ctrl_c_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    # Compared with the handlers found, not with Python's defaults: a shell
    # that starts the tests in the background has them ignore SIGINT.
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with shielded(Progress()):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert capsys.readouterr().err.count("still removing the smoke cluster") == 2
    assert {sig: signal.getsignal(sig) for sig in before} == before


# --- report files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (VerificationError("no DAG found in /d", details="why"), "no DAG found in /d"),
        (KeyboardInterrupt(), "interrupted"),
        (DockerException(["docker", "run"], 125), "docker failed (exit 125)"),
    ],
)
def test_an_error_before_a_report_writes_a_failing_one(
    tmp_path: Path, error: BaseException, message: str
) -> None:
    reports = ReportFiles(tmp_path / "j.xml", tmp_path / "r.json")
    with pytest.raises(type(error)), reports.on_error("smoke"):
        raise error
    [case] = [case for suite in JUnitXml.fromfile(str(tmp_path / "j.xml")) for case in suite]
    [result] = case.result
    assert isinstance(result, Error)
    assert result.message == message
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is False
    assert data["error"] == message


def test_a_written_report_is_kept_when_the_command_then_fails(tmp_path: Path) -> None:
    reports = ReportFiles(tmp_path / "j.xml", None)

    def check_then_fail() -> None:
        with reports.on_error("check-dags"):
            reports.write("<testsuites/>", {"ok": False})
            raise ClusterError("import errors")

    with pytest.raises(ClusterError):
        check_then_fail()
    assert (tmp_path / "j.xml").read_text() == "<testsuites/>"


def test_bugs_are_not_turned_into_reports(tmp_path: Path) -> None:
    reports = ReportFiles(tmp_path / "j.xml", None)
    with pytest.raises(ZeroDivisionError), reports.on_error("smoke"):
        raise ZeroDivisionError
    assert not (tmp_path / "j.xml").exists()


def test_no_file_asked_for_none_written(tmp_path: Path) -> None:
    reports = ReportFiles(None, None)
    with pytest.raises(ClusterError), reports.on_error("smoke"):
        raise ClusterError("x")
    assert list(tmp_path.iterdir()) == []


# --- argument types ------------------------------------------------------------


def test_output_file(tmp_path: Path) -> None:
    assert argtypes.output_file(str(tmp_path / "r.xml")) == tmp_path / "r.xml"
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        argtypes.output_file(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match=r"the folder of .* does not exist"):
        argtypes.output_file(str(tmp_path / "no" / "r.xml"))


def test_dag_conf() -> None:
    assert argtypes.dag_conf('d={"n": 1}') == ("d", {"n": 1})
    assert argtypes.dag_conf("d={}") == ("d", {})
    for bad, why in [
        ("d", "expected DAG_ID=JSON"),
        ('={"n": 1}', "expected DAG_ID=JSON"),
        ("d={n}", "the conf of d is not JSON"),
        ("d=[1]", "the conf of d must be a JSON object"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            argtypes.dag_conf(bad)


def test_dag_conf_file(tmp_path: Path) -> None:
    good = tmp_path / "conf.json"
    good.write_text('{"a": {"n": 1}, "b": {}}')
    assert argtypes.dag_conf_file(str(good)) == {"a": {"n": 1}, "b": {}}
    bad = tmp_path / "bad.json"
    for text, why in [
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"a": 1}', "the conf of a"),
    ]:
        bad.write_text(text)
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            argtypes.dag_conf_file(str(bad))
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        argtypes.dag_conf_file(str(tmp_path / "missing.json"))
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        argtypes.dag_conf_file(str(bad))


def test_logical_date() -> None:
    assert argtypes.logical_date("now") == "now"
    assert argtypes.logical_date("none") == "none"
    assert argtypes.logical_date("2026-12-02T10:00:00+00:00") == datetime(
        2026, 12, 2, 10, tzinfo=UTC
    )
    with pytest.raises(argparse.ArgumentTypeError, match="needs a time zone"):
        argtypes.logical_date("2026-12-02T10:00:00")
    with pytest.raises(argparse.ArgumentTypeError, match="expected now, none or an ISO 8601 time"):
        argtypes.logical_date("yesterday")
