"""Bad input against the real CLI, next to a running cluster: each one exits non-zero
with one line on stderr and no traceback, and changes no file and no container."""

import gzip
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_ha.backups import Manifest, fernet_fingerprint
from airflow_ha.errors import ExitCode
from airflow_ha.paths import REPO_ROOT, STATE_DIR

from .conftest import CliResult, Cluster, run_cli

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    """`argv` for the CLI; `env` edits of a copy of the cluster's .env (None: its own)."""

    name: str
    argv: tuple[str, ...]
    code: ExitCode
    says: str
    env: dict[str, str] | None = None


def cases(tmp: Path, admin: str) -> list[Case]:
    unreadable_dags = tmp / "private-dags"
    colon_dags = tmp / "dags:v2"
    return [
        Case("timeout nan", ("up", "--timeout", "nan"), ExitCode.USAGE, "positive number"),
        Case("timeout inf", ("up", "--timeout", "inf"), ExitCode.USAGE, "positive number"),
        Case("timeout negative", ("up", "--timeout=-5"), ExitCode.USAGE, "positive number"),
        Case("env file typo", ("--env-file", str(tmp / ".evn"), "up"), ExitCode.CONFIG,
             "does not exist: `up` creates only"),
        Case("env file in a missing folder", ("--env-file", "/nonexistent/dir/.env", "up"),
             ExitCode.CONFIG, "does not exist"),
        Case("env file is a folder", ("--env-file", str(tmp), "status"), ExitCode.CONFIG,
             "is a folder, not a settings file"),
        Case("env file not UTF-8", ("--env-file", str(tmp / "latin1.env"), "status"),
             ExitCode.CONFIG, "is not UTF-8 text"),
        Case("same port twice", ("up",), ExitCode.CONFIG, "are both 18080",
             {"AIRFLOW_API_PORT": "18080", "FLOWER_PORT": "18080"}),
        Case("port out of range", ("up",), ExitCode.CONFIG, "AIRFLOW_API_PORT",
             {"AIRFLOW_API_PORT": "70000"}),
        Case("unknown topology", ("up",), ExitCode.CONFIG, "TOPOLOGY",
             {"TOPOLOGY": "triple"}),
        Case("unknown key", ("status",), ExitCode.CONFIG, "NOT_A_SETTING is not a known setting",
             {"NOT_A_SETTING": "1"}),
        Case("bind address not an IP", ("up",), ExitCode.CONFIG, "BIND_ADDRESS",
             {"BIND_ADDRESS": "localhost:80"}),
        Case("weak admin password", ("up",), ExitCode.CONFIG,
             "AIRFLOW_ADMIN_PASSWORD is too weak", {"AIRFLOW_ADMIN_PASSWORD": "a" * 16}),
        Case("CA certificates from /", ("up",), ExitCode.CONFIG, "is the root folder",
             {"BUILD_EXTRA_CA_CERTS": "/"}),
        Case("colon in the DAG folder", ("up",), ExitCode.CONFIG, "holds a ':'",
             {"AIRFLOW_DAGS_DIR": str(colon_dags)}),
        Case("DAG folder uid 50000 cannot read", ("up",), ExitCode.CONFIG,
             "cannot read 1 path(s)", {"AIRFLOW_DAGS_DIR": str(unreadable_dags)}),
        Case("scale below 0", ("scale", "-1"), ExitCode.USAGE, "must be between 0 and 16"),
        Case("scale above the limit", ("scale", "99"), ExitCode.USAGE, "must be between 0 and 16"),
        Case("scale an unknown queue", ("scale", "2", "--queue", "gpu"), ExitCode.USAGE, "gpu"),
        Case("scale drain timeout 0", ("scale", "2", "--drain-timeout", "0"), ExitCode.USAGE,
             "positive number"),
        Case("logs of an unknown service", ("logs", "x; echo INJECTED"), ExitCode.USAGE,
             "no service 'x; echo INJECTED'"),
        Case("verify an unknown DAG", ("verify", "--dag", "no_such_dag", "--discover-timeout",
             "5"), ExitCode.VERIFY, "no_such_dag"),
        Case("verify conf not JSON", ("verify", "--conf", "x={bad"), ExitCode.USAGE, "not JSON"),
        Case("verify conf file missing", ("verify", "--conf-file", "/nonexistent.json"),
             ExitCode.USAGE, "cannot read"),
        Case("verify JUnit into a missing folder", ("verify", "--junit", "/nonexistent/r.xml"),
             ExitCode.USAGE, "does not exist"),
        Case("verify logical date tomorrow", ("verify", "--logical-date", "tomorrow"),
             ExitCode.USAGE, "expected now, none or an ISO 8601 time"),
        Case("chaos unknown fault", ("chaos", "--fault", "meteor"), ExitCode.USAGE,
             "unknown fault meteor"),
        Case("chaos timeout nan", ("chaos", "--timeout=nan"), ExitCode.USAGE, "positive number"),
        Case("bench no runs", ("bench", "--runs", "0"), ExitCode.USAGE, "--runs"),
        Case("lab that does not exist", ("lab", "check", "99"), ExitCode.USAGE, "no lab '99'"),
        Case("clean without confirmation", ("clean",), ExitCode.USAGE, "confirm with --yes"),
        Case("check-dags of a missing folder", ("check-dags", "--dags-dir", "/nonexistent"),
             ExitCode.VERIFY, "does not exist or is not a folder"),
        Case("smoke of a missing folder", ("smoke", "--dags-dir", "/nonexistent"),
             ExitCode.VERIFY, "does not exist or is not a folder"),
        Case("user name with a semicolon", ("users", "add", "x;y", "--role", "viewer"),
             ExitCode.USAGE, "is not allowed"),
        Case("unknown role", ("users", "add", "ana", "--role", "boss"), ExitCode.USAGE,
             "invalid choice: 'boss'"),
        Case("user that exists", ("users", "add", admin, "--role", "viewer"), ExitCode.FAILED,
             f"user {admin} exists already"),
        Case("remove the admin", ("users", "remove", admin), ExitCode.USAGE,
             "is the admin of .env"),
        Case("remove a user that does not exist", ("users", "remove", "nobody-here"),
             ExitCode.FAILED, "no such user: nobody-here"),
        Case("restore without a file", ("restore", ""), ExitCode.USAGE, "no backup file named"),
        Case("restore a missing file", ("restore", str(tmp / "nope.sql.gz")), ExitCode.FAILED,
             "does not exist"),
        Case("restore a folder", ("restore", str(tmp)), ExitCode.FAILED, "is a folder"),
        Case("restore a file that is not gzip", ("restore", str(tmp / "latin1.env")),
             ExitCode.FAILED, "not a complete gzip file"),
        Case("restore a cut-off dump", ("restore", str(tmp / "cut.sql.gz")), ExitCode.FAILED,
             "an incomplete dump"),
        Case("restore with another Fernet key", ("restore", str(tmp / "other-key.sql.gz")),
             ExitCode.FAILED, "put the key of that time back in .env"),
        Case("backup into a file", ("backup", "--dir", str(tmp / "latin1.env")),
             ExitCode.FAILED, "is not a folder"),
    ]  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """What a mistaken command must not change: containers, volumes and files."""

    containers: dict[str, tuple[str, str, int]]  # name: (id, started at, restarts)
    volumes: frozenset[str]
    files: dict[str, str]  # path: sha256 of content and mode

    @classmethod
    def take(cls, cluster: Cluster, paths: list[Path]) -> "Snapshot":
        docker = cluster.stack.docker
        containers = {
            c.name: (c.id, str(c.state.started_at), int(c.restart_count or 0))
            for c in docker.container.list(all=True)
        }
        files = {}
        for path in paths:
            for file in sorted(p for p in ([path] if path.is_file() else path.rglob("*"))):
                if file.is_file():
                    data = file.read_bytes() + oct(file.stat().st_mode).encode()
                    files[str(file)] = hashlib.sha256(data).hexdigest()
        return cls(containers, frozenset(v.name for v in docker.volume.list()), files)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "latin1.env").write_bytes(b"BIND_ADDRESS=127.0.0.1\nFLOWER_PORT=55\xe955\n")
    (tmp_path / "dags:v2").mkdir()
    private = tmp_path / "private-dags"
    private.mkdir()
    (private / "secret.py").write_text("")
    (private / "secret.py").chmod(0o600)
    dump = b"CREATE TABLE `dag_run` (\n"
    (tmp_path / "cut.sql.gz").write_bytes(gzip.compress(dump))
    other_key = Manifest("2026-01-01T00:00:00+00:00", "p", fernet_fingerprint("other"), "x")
    (tmp_path / "other-key.sql.gz").write_bytes(gzip.compress(dump + other_key.trailer()))
    return tmp_path


def env_copy(cluster: Cluster, folder: Path, edits: dict[str, str]) -> Path:
    """The cluster's .env with `edits` (new keys appended), mode 0600."""
    lines = cluster.env_file.read_text().splitlines()
    keys = {line.partition("=")[0] for line in lines}
    edited = [
        f"{key}={edits[key]}" if key in edits else line
        for line in lines
        for key in [line.partition("=")[0]]
    ] + [f"{key}={value}" for key, value in edits.items() if key not in keys]
    env_file = folder / f"edited-{len(list(folder.glob('edited-*')))}.env"
    env_file.write_text("\n".join(edited) + "\n")
    env_file.chmod(0o600)
    return env_file


def run_case(cluster: Cluster, case: Case, folder: Path) -> CliResult:
    if case.argv[0] == "--env-file":
        return run_cli(Path(case.argv[1]), *case.argv[2:])
    env_file = cluster.env_file if case.env is None else env_copy(cluster, folder, case.env)
    return run_cli(env_file, *case.argv)


def test_each_bad_input_is_one_clear_line_and_changes_nothing(
    cluster: Cluster, workdir: Path
) -> None:
    watched = [
        cluster.env_file,
        STATE_DIR / cluster.settings.compose_project_name,
        REPO_ROOT / ".env",
    ]
    before = Snapshot.take(cluster, watched)
    wrong = []
    for case in cases(workdir, cluster.settings.airflow_admin_user):
        result = run_case(cluster, case, workdir)
        lines = result.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
        errors = [line for line in lines if not line.startswith("[")]  # progress lines
        if (
            result.code != case.code
            or len(errors) != 1
            or case.says not in last
            or "Traceback" in result.stderr
        ):
            wrong.append(f"{case.name}: {result}")
    assert not wrong, "\n\n".join(wrong)
    assert Snapshot.take(cluster, watched) == before
    assert not (workdir / ".evn").exists()


def test_make_quotes_what_it_passes_on(cluster: Cluster) -> None:
    # The Makefile runs the CLI on ./.env; the service name must reach it as one word.
    process = subprocess.run(
        ["make", "--no-print-directory", "logs", "SERVICE=x; echo INJECTED"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "INJECTED\n" not in process.stdout, process.stdout
    assert process.returncode != 0


def lb_binding(cluster: Cluster) -> tuple[str, str]:
    """The load balancer's container id and the host address its port 8080 is bound to."""
    [lb] = [c for c in cluster.stack.docker.compose.ps() if c.name.endswith("-lb-1")]
    [binding] = (lb.host_config.port_bindings or {})["8080/tcp"] or []
    return lb.id, str(binding.host_ip)


def test_an_exported_setting_does_not_override_the_env_file(cluster: Cluster) -> None:
    before = lb_binding(cluster)
    assert before[1] == "127.0.0.1"
    env = {**os.environ, "BIND_ADDRESS": "0.0.0.0", "AIRFLOW_API_PORT": "1"}

    result = run_cli(cluster.env_file, "up", "--timeout", "300", env=env)

    assert result.code == 0, str(result)
    assert (
        "airflow-ha: warning: ignoring the exported AIRFLOW_API_PORT, BIND_ADDRESS: the "
        f"settings file decides ({cluster.env_file}); unset them to silence this"
    ) in result.stderr
    assert lb_binding(cluster) == before  # not recreated, still on the loopback only
