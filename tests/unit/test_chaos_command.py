"""commands/chaos.py through the CLI: bad arguments are one line with exit 2 before any
Docker use; with a fake stack and runner, the table, the JSON and the exit code."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import pytest

from airflow_ha import cli
from airflow_ha.airflow_api import AirflowClient
from airflow_ha.chaos.evidence import Restart
from airflow_ha.chaos.faults import FAULTS, Fault
from airflow_ha.chaos.runner import FaultResult
from airflow_ha.commands.chaos import DEFAULT_FAULTS
from airflow_ha.context import Context
from airflow_ha.errors import ExitCode
from airflow_ha.stack import Stack
from airflow_ha.swarm import chaos as swarm_chaos

from .conftest import WriteEnv

VALID = ", ".join(FAULTS)


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command looks up the stack or creates a Docker client."""

    def fail(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail("a Docker client was created or checked")

    def fail_stack(self: Context) -> NoReturn:
        pytest.fail("Context.stack was used")

    monkeypatch.setattr("airflow_ha.context.Stack", fail)
    monkeypatch.setattr("airflow_ha.context.check_docker", fail)
    monkeypatch.setattr("airflow_ha.stack.compose_client", fail)
    monkeypatch.setattr(Context, "stack", property(fail_stack))


def chaos_usage_error(capsys: pytest.CaptureFixture[str], env_file: Path, *argv: str) -> str:
    """Run `chaos ARGV`: it must exit 2 with one line on stderr and nothing on stdout."""
    code = cli.main(["--env-file", str(env_file), "chaos", *argv])
    assert code == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    return one_line(err)


# --- usage errors, before Docker ------------------------------------------------------------


def test_unknown_fault_names_it_and_lists_the_valid_ones(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    line = chaos_usage_error(capsys, valid_env_file, "--fault", "disk-fill")
    assert line == f"airflow-ha: error: unknown fault disk-fill; choose from {VALID}"
    for name in FAULTS:
        assert name in line


def test_every_unknown_fault_is_named_even_among_valid_ones(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    line = chaos_usage_error(
        capsys,
        valid_env_file,
        *("--fault", "nope", "--fault", "worker-kill", "--fault", "scheduler_kill"),
    )
    assert line == f"airflow-ha: error: unknown fault nope, scheduler_kill; choose from {VALID}"


def test_a_compose_fault_against_the_swarm_names_the_swarms_faults(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    line = chaos_usage_error(capsys, valid_env_file, "--engines", "--fault", "worker-kill")
    assert line == (
        "airflow-ha: error: unknown fault worker-kill against the Swarm (--engines); "
        f"choose from {', '.join(swarm_chaos.FAULTS)}"
    )


def test_a_swarm_fault_without_engines_is_unknown(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path
) -> None:
    line = chaos_usage_error(capsys, valid_env_file, "--fault", "host-kill")
    assert line == f"airflow-ha: error: unknown fault host-kill; choose from {VALID}"


@pytest.mark.parametrize("runs", ["0", "-2"])
def test_runs_below_one(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path, runs: str
) -> None:
    line = chaos_usage_error(capsys, valid_env_file, "--runs", runs)
    assert line == "airflow-ha: error: --runs must be at least 1"


def test_json_into_a_missing_folder(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder"
    line = chaos_usage_error(capsys, valid_env_file, "--json", str(missing / "chaos.json"))
    assert line == f"airflow-ha: error: --json: folder {missing} does not exist"
    assert not missing.exists()


def test_json_into_a_file_used_as_a_folder(
    capsys: pytest.CaptureFixture[str], no_stack: None, valid_env_file: Path, tmp_path: Path
) -> None:
    line = chaos_usage_error(capsys, valid_env_file, "--json", str(valid_env_file / "x.json"))
    assert line == f"airflow-ha: error: --json: folder {valid_env_file} does not exist"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--runs", "many"], "argument --runs: invalid int value: 'many'"),
        (["--timeout", "soon"], "argument --timeout: not a number: 'soon'"),
        *(
            ([f"--timeout={bad}"], f"--timeout: must be a positive number of seconds: '{bad}'")
            for bad in ("0", "-5", "nan", "inf")
        ),
        (["--fault"], "argument --fault: expected one argument"),
    ],
)
def test_malformed_arguments_are_argparse_errors(
    capsys: pytest.CaptureFixture[str],
    no_stack: None,
    valid_env_file: Path,
    argv: list[str],
    expected: str,
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--env-file", str(valid_env_file), "chaos", *argv])
    assert caught.value.code == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line(err)
    assert line.startswith("airflow-ha chaos: error: ")
    assert expected in line


def test_defaults() -> None:
    args = cli.build_parser().parse_args(["chaos"])
    assert (args.fault, args.runs, args.timeout, args.json) == ([], 3, 900.0, None)


# --- with a fake stack and runner -----------------------------------------------------------


@dataclass
class FakeStack:
    url: str = "http://127.0.0.1:18080"

    def api_url(self) -> str:
        return self.url


@dataclass
class Call:
    faults: list[str]
    runs: int
    timeout: float
    base_url: str
    user: str


@dataclass
class FakeRunner:
    """Stands for run_all: yields canned results and notes what it was asked."""

    results: list[FaultResult] = field(default_factory=list)
    json_path: Path | None = None
    calls: list[Call] = field(default_factory=list)
    json_seen: list[list[str]] = field(default_factory=list)

    def __call__(
        self,
        faults: list[Fault],
        stack: Stack,
        client: AirflowClient,
        runs: int,
        timeout: float,
        log: object,
    ) -> Iterator[FaultResult]:
        user = client._credentials.username
        self.calls.append(Call([f.name for f in faults], runs, timeout, client.base_url, user))
        for r in self.results:
            if self.json_path is not None and self.json_path.exists():
                self.json_seen.append([x["fault"] for x in json.loads(self.json_path.read_text())])
            yield r


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    def fail(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail("a Docker client was created or checked")

    stack = FakeStack()
    runner = FakeRunner()
    monkeypatch.setattr("airflow_ha.context.Stack", fail)
    monkeypatch.setattr("airflow_ha.context.check_docker", fail)
    monkeypatch.setattr(Context, "stack", property(lambda self: stack))
    monkeypatch.setattr("airflow_ha.commands.chaos.run_all", runner)
    return runner


def outcome(
    fault: str,
    succeeded: int = 3,
    failed: int = 0,
    back: float | None = 9.0,
    details: dict[str, float | int | str] | None = None,
    restarts: list[Restart] | None = None,
) -> FaultResult:
    return FaultResult(
        fault=fault,
        description=FAULTS[fault].description,
        target=f"airflow-ha-{FAULTS[fault].service}-1",
        injected_at=datetime(2026, 3, 1, tzinfo=UTC),
        evidence="died (Docker FinishedAt)",
        runs=3,
        succeeded=succeeded,
        failed=failed,
        stuck=3 - succeeded - failed,
        retries=0,
        run_seconds=[60.0, 61.0, 62.0],
        container_back_s=back,
        next_task_start_s=1.0,
        longest_stall_s=20.0,
        stall_limit_s=390.0,
        deadlocks=0,
        restarts=restarts or [],
        details=details or {},
    )


def test_runs_the_default_faults_and_prints_the_table(
    capsys: pytest.CaptureFixture[str], fake_runner: FakeRunner, write_env: WriteEnv
) -> None:
    env_file = write_env(AIRFLOW_ADMIN_USER="chaos-admin")
    fake_runner.results = [outcome("scheduler-kill"), outcome("redis-outage")]

    assert cli.main(["--env-file", str(env_file), "chaos"]) == 0

    assert fake_runner.calls == [
        Call(DEFAULT_FAULTS, 3, 900.0, "http://127.0.0.1:18080", "chaos-admin")
    ]
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["FAULT", "TARGET"]
    assert out[1].startswith("scheduler-kill")
    assert out[2].startswith("redis-outage")
    assert all(" ok " in line + " " for line in out[1:])


def test_chosen_faults_in_the_given_order(
    capsys: pytest.CaptureFixture[str], fake_runner: FakeRunner, valid_env_file: Path
) -> None:
    argv = ["--fault", "worker-partition", "--fault", "mysql-restart", "--runs", "2"]
    argv += ["--timeout", "90.5"]
    assert cli.main(["--env-file", str(valid_env_file), "chaos", *argv]) == 0
    (call,) = fake_runner.calls
    assert (call.faults, call.runs, call.timeout) == (
        ["worker-partition", "mysql-restart"],
        2,
        90.5,
    )


def test_json_is_rewritten_after_every_fault(
    capsys: pytest.CaptureFixture[str],
    fake_runner: FakeRunner,
    valid_env_file: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "chaos.json"
    fake_runner.json_path = path
    fake_runner.results = [
        outcome("worker-kill"),
        outcome("triggerer-kill"),
        outcome("mysql-restart"),
    ]

    assert cli.main(["--env-file", str(valid_env_file), "chaos", "--json", str(path)]) == 0

    # Before the 2nd and 3rd results, the file already held the ones before them.
    assert fake_runner.json_seen == [["worker-kill"], ["worker-kill", "triggerer-kill"]]
    final = json.loads(path.read_text())
    assert [(r["fault"], r["ok"]) for r in final] == [
        ("worker-kill", True),
        ("triggerer-kill", True),
        ("mysql-restart", True),
    ]


def test_a_bad_result_fails_with_one_line_after_the_table_and_the_crash_logs(
    capsys: pytest.CaptureFixture[str], fake_runner: FakeRunner, valid_env_file: Path
) -> None:
    crash = Restart("airflow-ha-triggerer-2", "triggerer", "restarted", "Traceback: deadlock")
    fake_runner.results = [
        outcome("redis-outage", succeeded=2, failed=1),
        outcome("api-server-kill"),
        outcome("scheduler-kill", back=None),
        outcome("api-server-kill", details={"api_requests": 579, "api_failed": 40}),
        outcome("mysql-restart", restarts=[crash]),
    ]
    code = cli.main(["--env-file", str(valid_env_file), "chaos"])

    assert code == ExitCode.VERIFY
    out, err = capsys.readouterr()
    table, restarts = out.split("\n\n")
    assert len(table.splitlines()) == 6  # the table is printed whatever the outcome
    assert "LOST/STUCK" in table
    assert "NOT BACK" in table
    assert "CRASHED" in table
    assert restarts.splitlines() == [
        "Containers that restarted although no fault aimed at them:",
        "mysql-restart: airflow-ha-triggerer-2 (triggerer) restarted",
        "Traceback: deadlock",
    ]
    assert one_line(err) == (
        "airflow-ha: error: redis-outage: 1 failed, 0 stuck of 3 runs; "
        "scheduler-kill: airflow-ha-scheduler-1 not back; "
        "api-server-kill: 40 API requests failed; "
        "mysql-restart: airflow-ha-triggerer-2 restarted"
    )
