"""dag_check.py: the checker's output, who may read the folder, the summary."""

import json
import os
import stat
from pathlib import Path

import pytest

from airflow_ha.dag_check import (
    CONTAINER_UID,
    DagCheck,
    check_folder,
    container_can_read,
    format_check,
    parse_check_output,
    unreadable_paths,
)
from airflow_ha.errors import ClusterError, VerificationError
from airflow_ha.verify import ImportProblem


def output(files: dict[str, list[str]], errors: dict[str, str], noise: str = "") -> str:
    data = {"folder": "/d", "files": files, "errors": errors, "seconds": 3.25, "output": "warn\n"}
    return noise + json.dumps(data) + "\n"


def test_parse_keeps_each_files_dags_sorted_and_failing_files_only_as_errors() -> None:
    check = parse_check_output(
        output({"a.py": ["z", "b"], "bad.py": [], "lib/x.py": []}, {"bad.py": "SyntaxError"})
    )
    assert check == DagCheck(
        {"a.py": ["b", "z"], "lib/x.py": []}, {"bad.py": "SyntaxError"}, 3.25, "warn\n"
    )
    assert check.dag_ids == ["b", "z"]
    assert check.problems == [ImportProblem("bad.py", "SyntaxError")]


def test_parse_reads_the_last_line_whatever_came_before() -> None:
    check = parse_check_output(output({"a.py": ["a"]}, {}, noise="INFO something\n\n"))
    assert check.dag_ids == ["a"]


@pytest.mark.parametrize("text", ["", "not json\n", '{"files": {}}\n', "[1, 2]\n"])
def test_parse_of_anything_else_is_one_clear_error(text: str) -> None:
    with pytest.raises(ClusterError, match="airflow-check-dags printed no result"):
        parse_check_output(text)


def test_check_as_json() -> None:
    check = DagCheck({"a.py": ["a"]}, {"b.py": "E"}, 1.0)
    assert check.as_json() == {
        "ok": False,
        "files": {"a.py": ["a"]},
        "errors": {"b.py": "E"},
        "dag_ids": ["a"],
        "seconds": 1.0,
        "output": "",
    }
    assert DagCheck({"a.py": ["a"]}, {}, 1.0).as_json()["ok"] is True


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "directory", "readable"),
    [
        (0o644, 0, 0, False, True),  # world-readable
        (0o640, 1000, 0, False, True),  # group 0 may read
        (0o640, 1000, 1000, False, False),  # neither owner, group nor other
        (0o600, CONTAINER_UID, 1000, False, True),  # owned by the container's user
        (0o200, CONTAINER_UID, 0, False, False),
        (0o600, 0, 0, False, False),  # root's private file
        (0o755, 0, 0, True, True),
        (0o754, 1000, 1000, True, False),  # others may list but not enter
        (0o750, 1000, 0, True, True),
        (0o700, CONTAINER_UID, 0, True, True),
        (0o600, CONTAINER_UID, 0, True, False),
        (0o644, 1000, 1000, False, True),  # others may read
        (0o755, 1000, 1000, True, True),  # others may list and enter
        (0o751, 1000, 1000, True, False),  # others may enter, not list
        (0o004, 1000, 1000, False, True),
    ],
)
def test_container_can_read(mode: int, uid: int, gid: int, directory: bool, readable: bool) -> None:
    assert container_can_read(mode, uid, gid, directory) is readable


def test_unreadable_paths_names_files_and_folders_but_not_pycache(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x")
    (tmp_path / "secret.py").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("x")
    tmp_path.chmod(0o755)
    (tmp_path / "ok.py").chmod(0o644)
    (tmp_path / "secret.py").chmod(0o600)
    (tmp_path / "sub").chmod(0o700)
    (tmp_path / "__pycache__" / "x.pyc").chmod(0o600)
    if os.stat(tmp_path).st_uid == CONTAINER_UID or os.stat(tmp_path).st_gid == 0:
        # Group 0 owns the files (root's default group): make group bits deny too.
        for path in (tmp_path / "secret.py", tmp_path / "sub"):
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o070)
    assert unreadable_paths(tmp_path) == ["secret.py", "sub"]


def test_check_folder_refuses_a_missing_folder_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="does not exist or is not a folder"):
        check_folder(tmp_path / "nope")
    tmp_path.chmod(0o755)
    secret = tmp_path / "secret.py"
    secret.write_text("x")
    secret.chmod(0o600)
    with pytest.raises(VerificationError, match=r"uid 50000, group 0\) cannot read 1 path\(s\)"):
        check_folder(tmp_path)
    secret.chmod(0o644)
    check_folder(tmp_path)


def test_format_check_lists_files_errors_and_a_verdict() -> None:
    check = DagCheck(
        {"a.py": ["a1", "a2"], "lib.py": []}, {"bad.py": "Trace\nNameError: x\n"}, 2.04
    )
    assert format_check(check, Path("/dags")) == (
        "a.py: a1, a2\n"
        "lib.py: (no DAG)\n"
        "bad.py: IMPORT ERROR\nTrace\nNameError: x\n"
        "1 of 3 file(s) failed to import (/dags, parsed in 2.0 s)"
    )
    clean = DagCheck({"a.py": ["a1", "a2"]}, {}, 1.0)
    assert format_check(clean, Path("/d")).endswith(
        "2 DAG(s) in 1 file(s), no import error (/d, parsed in 1.0 s)"
    )


def test_an_unreadable_top_folder_is_named_as_dot(tmp_path: Path) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "a.py").write_text("x")
    (folder / "a.py").chmod(0o644)
    folder.chmod(0o700)
    if os.stat(folder).st_uid == CONTAINER_UID:
        pytest.skip("the test runs as the containers' user")
    assert unreadable_paths(folder) == ["."]


def test_many_unreadable_files_are_named_five_at_most(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    for n in range(7):
        path = tmp_path / f"f{n}.py"
        path.write_text("x")
        path.chmod(0o600)
    with pytest.raises(VerificationError) as caught:
        check_folder(tmp_path)
    assert str(caught.value).endswith(
        f"cannot read 7 path(s) in {tmp_path}: f0.py, f1.py, f2.py, f3.py, f4.py ... "
        "(chmod o+r files, o+rx folders)"
    )
