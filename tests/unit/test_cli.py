"""cli.py: usage and setting errors are one line with their exit code, before any Docker call."""

import socket
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn, cast

import pytest
from python_on_whales.exceptions import DockerException

from airflow_ha import airflow_api, cli
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError, ExitCode
from airflow_ha.stack import Stack

from .conftest import WriteEnv


def one_line(text: str) -> str:
    """The single line of `text` (which must be exactly one line)."""
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command reaches for the stack or a Docker client."""

    def fail(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail("a Docker client was created or checked")

    monkeypatch.setattr("airflow_ha.context.Stack", fail)
    monkeypatch.setattr("airflow_ha.context.check_docker", fail)
    monkeypatch.setattr("airflow_ha.stack.compose_client", fail)


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch, no_docker: None) -> None:
    """Like no_docker, and Context.stack itself must not even be looked up."""

    def fail(self: Context) -> NoReturn:
        pytest.fail("Context.stack was used")

    monkeypatch.setattr(Context, "stack", property(fail))


@dataclass
class FakeStack:
    project: str = "airflow-ha"
    down_calls: list[bool] = field(default_factory=list)
    error: Exception | None = None

    def down(self, remove_volumes: bool = False) -> None:
        if self.error is not None:
            raise self.error
        self.down_calls.append(remove_volumes)


@pytest.fixture
def fake_stack(monkeypatch: pytest.MonkeyPatch, no_docker: None) -> FakeStack:
    stack = FakeStack()
    monkeypatch.setattr(Context, "stack", property(lambda self: stack))
    return stack


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        cli.main(list(argv))
    assert caught.value.code == 2  # ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    return one_line(err)


def test_no_command(capsys: pytest.CaptureFixture[str], no_stack: None) -> None:
    line = usage_error(capsys)
    assert line.startswith("airflow-ha: error: ")
    assert "required" in line


def test_unknown_command(capsys: pytest.CaptureFixture[str], no_stack: None) -> None:
    line = usage_error(capsys, "frobnicate")
    assert line.startswith("airflow-ha: error: ")
    assert "invalid choice" in line
    assert "frobnicate" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["verify", "--timeout", "abc"], "verify: error: argument --timeout: not a number: 'abc'"),
        (
            ["verify", "--timeout", "-5"],
            "verify: error: argument --timeout: must be a positive number of seconds: '-5'",
        ),
        (
            ["verify", "--timeout", "0"],
            "verify: error: argument --timeout: must be a positive number of seconds: '0'",
        ),
        (
            ["up", "--timeout", "nan"],
            "up: error: argument --timeout: must be a positive number of seconds: 'nan'",
        ),
        (
            ["up", "--timeout", "inf"],
            "up: error: argument --timeout: must be a positive number of seconds: 'inf'",
        ),
        (
            ["up", "--timeout=-inf"],
            "up: error: argument --timeout: must be a positive number of seconds: '-inf'",
        ),
        (["verify", "--discover-timeout", "x"], "verify: error: argument --discover-timeout: "),
        (["verify", "--timeout"], "verify: error: argument --timeout: expected one argument"),
        (["up", "--timeout", "soon"], "up: error: argument --timeout: not a number: 'soon'"),
        (["clean", "--force"], ": error: unrecognized arguments: --force"),
        (["scale"], "scale: error: the following arguments are required: workers"),
        (["scale", "three"], "scale: error: argument workers: not a whole number: 'three'"),
        (["scale", "-1"], "scale: error: argument workers: must be between 0 and 16: '-1'"),
        (["scale", "2.5"], "scale: error: argument workers: not a whole number: '2.5'"),
        (["scale", "17"], "scale: error: argument workers: must be between 0 and 16: '17'"),
        (
            ["scale", "2", "--drain-timeout", "0"],
            "scale: error: argument --drain-timeout: must be a positive number of seconds: '0'",
        ),
    ],
)
def test_bad_arguments(
    capsys: pytest.CaptureFixture[str], no_stack: None, argv: list[str], expected: str
) -> None:
    line = usage_error(capsys, *argv)
    assert line.startswith("airflow-ha")
    assert expected in line


def test_verify_timeouts_are_parsed_as_floats() -> None:
    args = cli.build_parser().parse_args(
        ["verify", "--timeout", "1.5", "--discover-timeout", "7", "--dag", "a", "--dag", "b"]
    )
    assert args.timeout == 1.5
    assert args.discover_timeout == 7.0
    assert args.dag == ["a", "b"]


def test_clean_without_yes_refuses_without_docker(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    code = cli.main(["--env-file", str(valid_env_file), "clean"])

    assert code == 2  # ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line(err)
    assert line.startswith("airflow-ha: error: clean deletes every volume of project airflow-ha")
    assert "--yes" in line


def test_clean_with_yes_removes_the_volumes(
    capsys: pytest.CaptureFixture[str], fake_stack: FakeStack, write_env: WriteEnv
) -> None:
    env_file = write_env(COMPOSE_PROJECT_NAME="unit-clean")
    code = cli.main(["--env-file", str(env_file), "clean", "--yes"])

    assert code == 0
    assert fake_stack.down_calls == [True]
    assert "project unit-clean stopped, its volumes deleted" in capsys.readouterr().out


def test_down_keeps_the_volumes(
    capsys: pytest.CaptureFixture[str], fake_stack: FakeStack, valid_env_file: Path
) -> None:
    assert cli.main(["--env-file", str(valid_env_file), "down"]) == 0
    assert fake_stack.down_calls == [False]


def test_cluster_error_prints_details_then_one_error_line(
    capsys: pytest.CaptureFixture[str], fake_stack: FakeStack, valid_env_file: Path
) -> None:
    fake_stack.error = ClusterError("scheduler failed", details="log line 1\nlog line 2")
    code = cli.main(["--env-file", str(valid_env_file), "down"])

    assert code == ExitCode.FAILED
    err = capsys.readouterr().err
    assert err == "log line 1\nlog line 2\nairflow-ha: error: scheduler failed\n"


def test_docker_failure_shows_dockers_words_then_one_line_with_exit_code_4(
    capsys: pytest.CaptureFixture[str], fake_stack: FakeStack, valid_env_file: Path
) -> None:
    fake_stack.error = DockerException(
        ["docker", "compose", "down", "--volumes"], 17, stdout=b"", stderr=b"boom\nmore"
    )
    code = cli.main(["--env-file", str(valid_env_file), "down"])

    assert code == 4  # ExitCode.DOCKER
    lines = capsys.readouterr().err.strip().splitlines()
    # Docker's own explanation first, then one summary line.
    assert lines == ["boom", "more", "airflow-ha: error: docker compose failed (exit 17)"]


def test_verify_user_without_password_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_stack: None,
    valid_env_file: Path,
) -> None:
    monkeypatch.delenv("AIRFLOW_PASSWORD", raising=False)
    code = cli.main(["--env-file", str(valid_env_file), "verify", "--user", "x"])

    assert code == 2  # ExitCode.USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith("airflow-ha: error: --user needs the password")
    assert "AIRFLOW_PASSWORD" in line


def test_verify_user_with_empty_password_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_stack: None,
    valid_env_file: Path,
) -> None:
    monkeypatch.setenv("AIRFLOW_PASSWORD", "")
    code = cli.main(["--env-file", str(valid_env_file), "verify", "--user", "x"])
    assert code == ExitCode.USAGE
    assert "AIRFLOW_PASSWORD" in one_line(capsys.readouterr().err)


def test_verify_with_an_unreachable_url_needs_no_docker(
    capsys: pytest.CaptureFixture[str],
    no_stack: None,
    valid_env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(airflow_api, "RETRY_BACKOFF_FACTOR", 0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code = cli.main(["--env-file", str(valid_env_file), "verify", "--url", url, "--dag", "d"])

    assert code == ExitCode.FAILED
    *retries, error = capsys.readouterr().err.splitlines()
    assert error.startswith(f"airflow-ha: error: cannot reach the Airflow API at {url}")
    assert retries == [
        "airflow-ha: POST /auth/token got NewConnectionError; "
        f"sending it again in 0 s (retry {n} of {airflow_api.RETRIES})"
        for n in range(1, airflow_api.RETRIES + 1)
    ]


def test_status_with_a_missing_env_file(
    capsys: pytest.CaptureFixture[str], no_docker: None, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.env"
    code = cli.main(["--env-file", str(missing), "status"])

    assert code == 3  # ExitCode.CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line(err)
    assert line == f"airflow-ha: error: {missing} does not exist: run `make up` to create it"


def test_a_bad_setting_is_reported_before_docker(
    capsys: pytest.CaptureFixture[str], no_docker: None, write_env: WriteEnv
) -> None:
    env_file = write_env(BIND_ADDRESS="everywhere")
    code = cli.main(["--env-file", str(env_file), "status"])

    assert code == ExitCode.CONFIG
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"airflow-ha: error: {env_file}: BIND_ADDRESS ")


def test_credentials_prints_both_logins(
    capsys: pytest.CaptureFixture[str], no_stack: None, write_env: WriteEnv
) -> None:
    admin = "admin-password-0123456789"
    flower = "flower-password-0123456789"
    env_file = write_env(AIRFLOW_ADMIN_PASSWORD=admin, FLOWER_PASSWORD=flower)

    assert cli.main(["--env-file", str(env_file), "credentials"]) == 0

    out = capsys.readouterr().out
    assert f"user: admin  password: {admin}" in out
    assert f"user: flower  password: {flower}" in out


def test_scale_of_an_unknown_queue_touches_nothing(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    code = cli.main(["--env-file", str(valid_env_file), "scale", "2", "--queue", "gpu"])

    assert code == 2  # ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err) == (
        "airflow-ha: error: unknown queue 'gpu': the worker pools serve default, heavy"
    )


@pytest.mark.parametrize("command", [["scale", "3"], ["bench"]])
def test_a_command_on_a_stopped_cluster_says_to_start_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    valid_env_file: Path,
    command: list[str],
) -> None:
    stack = SimpleNamespace(project="airflow-ha", services=list)
    stack.require_running = partial(Stack.require_running, cast(Stack, stack))
    monkeypatch.setattr(Context, "stack", property(lambda self: stack))

    code = cli.main(["--env-file", str(valid_env_file), *command])

    assert code == 1
    assert one_line(capsys.readouterr().err) == (
        "airflow-ha: error: project airflow-ha is not running: run `make up` first"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bench", "--runs", "0"], "airflow-ha: error: --runs must be between 1 and 10"),
        (["bench", "--runs", "11"], "airflow-ha: error: --runs must be between 1 and 10"),
        (
            ["bench", "--profile", "ha", "--profile", "ha"],
            "airflow-ha: error: --profile: each profile once",
        ),
        (
            ["bench", "--json", "/nonexistent-folder/bench.json"],
            "airflow-ha: error: --json: folder /nonexistent-folder does not exist",
        ),
        (
            ["bench", "--charts", "/etc/hostname"],
            "airflow-ha: error: --charts: /etc/hostname is not a folder",
        ),
    ],
)
def test_bad_bench_requests_touch_nothing(
    capsys: pytest.CaptureFixture[str],
    no_stack: None,
    valid_env_file: Path,
    argv: list[str],
    expected: str,
) -> None:
    code = cli.main(["--env-file", str(valid_env_file), *argv])
    assert code == ExitCode.USAGE
    assert one_line(capsys.readouterr().err) == expected


def test_bench_of_an_unknown_profile_or_stage(
    capsys: pytest.CaptureFixture[str], no_stack: None
) -> None:
    assert "invalid choice: 'fast'" in usage_error(capsys, "bench", "--profile", "fast")
    assert "invalid choice: 'warm'" in usage_error(capsys, "bench", "--stage", "warm")


def test_up_refuses_a_dags_folder_the_containers_cannot_read(
    capsys: pytest.CaptureFixture[str], no_stack: None, write_env: WriteEnv, tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "mine.py").write_text("")
    (dags / "mine.py").chmod(0o600)
    env_file = write_env(AIRFLOW_DAGS_DIR=str(dags))

    assert cli.main(["--env-file", str(env_file), "up"]) == ExitCode.CONFIG

    assert one_line(capsys.readouterr().err) == (
        f"airflow-ha: error: AIRFLOW_DAGS_DIR: the containers' user (uid 50000, group 0) "
        f"cannot read 1 path(s) in {dags}: mine.py (chmod o+r files, o+rx folders)"
    )


def test_logs_of_an_unknown_service_lists_the_services(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_docker: None,
    valid_env_file: Path,
) -> None:
    followed: list[object] = []

    def logs(**kwargs: object) -> list[tuple[str, bytes]]:
        followed.append(kwargs)
        return []

    compose = SimpleNamespace(
        config=lambda return_json: {"services": {"scheduler": {}, "lb": {}}}, logs=logs
    )
    monkeypatch.setattr(
        Context,
        "stack",
        property(lambda self: SimpleNamespace(docker=SimpleNamespace(compose=compose))),
    )

    code = cli.main(["--env-file", str(valid_env_file), "logs", "x; echo INJECTED"])

    assert code == ExitCode.USAGE
    assert one_line(capsys.readouterr().err) == (
        "airflow-ha: error: no service 'x; echo INJECTED'; the services are: lb, scheduler"
    )
    assert followed == []
    assert cli.main(["--env-file", str(valid_env_file), "logs", "lb", "--no-follow"]) == 0
    assert followed == [{"services": ["lb"], "tail": "100", "follow": False, "stream": True}]
