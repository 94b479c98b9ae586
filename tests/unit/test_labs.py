"""The labs' pure parts: answers, comparisons, the first missing step, the guides."""

from pathlib import Path

import pytest

from airflow_ha.cli import main
from airflow_ha.context import Context
from airflow_ha.errors import ExitCode
from airflow_ha.labs import LABS, lab_by_number
from airflow_ha.labs.base import LabEnv, Step, first_missing, guide, number_in, same_text


def test_ten_labs_numbered_from_one_and_each_has_a_guide() -> None:
    assert [lab.number for lab in LABS] == list(range(1, 11))
    assert all(guide(lab).is_file() for lab in LABS)
    assert lab_by_number(2) is LABS[1]
    assert lab_by_number(0) is None


def test_answers_are_read_by_key_case_and_space_insensitive(tmp_path: Path) -> None:
    env = LabEnv(Context(tmp_path / ".env"), tmp_path / "work", print)
    assert env.answers(1) == {}
    env.write_answers(1, {"SCHEDULERS": "2", "UI_URL": "http://x"})
    assert env.answers(1) == {"SCHEDULERS": "2", "UI_URL": "http://x"}
    env.answers_file(1).write_text("schedulers =  2  \n# a comment\nEMPTY=\n")
    assert env.answers(1) == {"SCHEDULERS": "2", "EMPTY": ""}


def test_same_text_and_number_in() -> None:
    assert same_text(" Max_Allowed_Packet ", "max_allowed_packet")
    assert not same_text(None, "x")
    assert not same_text("y", "x")
    assert number_in(" 3 ") == 3
    assert number_in("three") is None
    assert number_in(None) is None
    assert number_in("3 4") is None


def test_first_missing_is_the_first_step_not_done() -> None:
    steps = [Step("a", True), Step("b", False, "do b"), Step("c", False)]
    assert first_missing(steps) == Step("b", False, "do b")
    assert first_missing([Step("a", True)]) is None


@pytest.mark.parametrize("argument", ["99", "x", "-1", ""])
def test_an_unknown_lab_is_one_line_with_the_list(
    argument: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lab", "check", argument]) == ExitCode.USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"airflow-ha: error: no lab {argument!r}; the labs are: 1 (tour), ")
