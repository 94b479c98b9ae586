"""logins.py and `users`: names, roles and passwords are checked before any user
is created or removed, and a command does all of its users or none."""

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_ha import cli
from airflow_ha.context import Context
from airflow_ha.errors import UsageError
from airflow_ha.logins import (
    MIN_PASSWORD_LENGTH,
    Login,
    check_usernames,
    generate_password,
    logins_table,
    password_problem,
    user_body,
)

from .conftest import WriteEnv


@pytest.mark.parametrize("name", ["ana", "Ben.2", "c_d-e", "0", "a" * 64])
def test_allowed_user_names(name: str) -> None:
    assert check_usernames([name]) == [name]


@pytest.mark.parametrize("name", ["", ".ana", "-ana", "ana ben", "x;y", "ana/..", "é", "a" * 65])
def test_refused_user_names(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_usernames([name])
    assert str(caught.value) == (
        f"user name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="'ana' is given twice"):
        check_usernames(["ana", "ben", "ana"])


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("a" * (MIN_PASSWORD_LENGTH - 1), "11 characters, fewer than 12"),
        ("aaaaaaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess (strength 0 of 4, needs 3)'),
        ("password1234", "strength"),
        ("qwertyuiop123", "strength"),
        ("trainee-ana-2026", "strength 2 of 4"),  # 4 of 4 for anyone else
        ("airflowqz19k", "strength 2 of 4"),  # the product's name counts as known
        ("correcthorse", "it is easy to guess (strength 2 of 4, needs 3)"),  # no hint from zxcvbn
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    problem = password_problem(password, "trainee-ana")
    assert problem is not None
    assert reason in problem


# mulberry7Tiger is exactly strength 3, the lowest accepted.
@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tq7#vLp2!mZx9w", "mulberry7Tiger"]
)
def test_strong_passwords_pass(password: str) -> None:
    assert password_problem(password, "ana") is None


def test_generated_passwords_are_strong_and_never_repeat() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 20 and password_problem(p, "ana") is None for p in passwords)


def test_user_body_is_what_the_fab_api_wants() -> None:
    assert user_body("ana", "Viewer", "secret") == {
        "username": "ana",
        "email": "ana@airflow-ha.invalid",
        "first_name": "ana",
        "last_name": "Viewer",
        "roles": [{"name": "Viewer"}],
        "password": "secret",
    }


def test_logins_table_is_sorted_with_roles_and_last_login() -> None:
    logins = [
        Login.from_api({"username": "ben", "roles": [{"name": "Viewer"}], "login_count": None}),
        Login.from_api({"username": "cy", "roles": [], "last_login": None}),
        Login.from_api(
            {
                "username": "admin",
                "roles": [{"name": "Op"}, {"name": "Admin"}],
                "last_login": "2026-12-02T06:01:02.123456Z",
                "login_count": 7,
            }
        ),
    ]
    assert logins_table(logins).splitlines() == [
        "user   roles     last login (UTC)     logins",
        "admin  Admin,Op  2026-12-02 06:01:02  7",
        "ben    Viewer    never                0",
        "cy     -         never                0",
    ]


@dataclass
class FakeFabApi:
    """The FAB users API of a cluster: users by name, and the calls made."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def fab_user(self, username: str) -> dict[str, Any] | None:
        return self.users.get(username)

    def fab_users(self) -> list[dict[str, Any]]:
        return list(self.users.values())

    def create_fab_user(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"create {body['username']} {body['roles'][0]['name']}")
        self.users[body["username"]] = body
        return body

    def delete_fab_user(self, username: str) -> bool:
        self.calls.append(f"delete {username}")
        return self.users.pop(username, None) is not None


@pytest.fixture
def fab(monkeypatch: pytest.MonkeyPatch) -> FakeFabApi:
    api = FakeFabApi(users={"admin": {"username": "admin", "roles": [{"name": "Admin"}]}})
    monkeypatch.setattr(Context, "airflow_client", lambda self: api)
    return api


def run_users(env_file: Path, *argv: str) -> int:
    try:
        return cli.main(["--env-file", str(env_file), "users", *argv])
    except SystemExit as stop:
        return int(stop.code or 0)


def test_add_creates_each_user_with_its_own_generated_password(
    capsys: pytest.CaptureFixture[str], fab: FakeFabApi, valid_env_file: Path
) -> None:
    assert run_users(valid_env_file, "add", "ana", "ben", "--role", "VIEWER") == 0

    assert fab.calls == ["create ana Viewer", "create ben Viewer"]
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["user", "role", "password"]
    assert [row[:2] for row in rows[1:]] == [["ana", "Viewer"], ["ben", "Viewer"]]
    printed = {row[0]: row[2] for row in rows[1:]}
    assert printed == {name: fab.users[name]["password"] for name in ("ana", "ben")}
    assert printed["ana"] != printed["ben"]
    assert err == (
        "airflow-ha: created 2 login(s) with role Viewer; the passwords are shown only now "
        "(Airflow keeps their hashes)\n"
    )


def test_add_creates_none_when_one_name_exists(
    capsys: pytest.CaptureFixture[str], fab: FakeFabApi, valid_env_file: Path
) -> None:
    fab.users["ben"] = {"username": "ben"}
    fab.users["cy"] = {"username": "cy"}

    assert run_users(valid_env_file, "add", "ana", "ben", "cy", "--role", "user") == 1

    assert fab.calls == []
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "airflow-ha: error: user ben, cy exists already: remove it first, or choose another name\n"
    )


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["add", "ana", "--role", "boss"], "", "invalid choice: 'boss'"),
        (["add", "ana", "--role", "op", "--password-stdin"], "aaaaaaaaaaaaaaaa\n", "too weak"),
        (
            ["add", "ana", "ben", "--role", "op", "--password-stdin"],
            "x\n",
            "airflow-ha: error: --password-stdin sets the password of one user: name exactly one",
        ),
        # Weak only because it holds the user's name.
        (["add", "trainee-ana", "--role", "op", "--password-stdin"], "trainee-ana-2026\n", "weak"),
        (["add", "ana"], "", "the following arguments are required: --role"),
        ([], "", "the following arguments are required: action"),
        (["add", "a;b", "--role", "op"], "", "is not allowed"),
        (["remove", "admin"], "", "is the admin of .env"),
    ],
)
def test_refusals_change_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fab: FakeFabApi,
    valid_env_file: Path,
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))

    assert run_users(valid_env_file, *argv) == 2  # ExitCode.USAGE

    assert fab.calls == []
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert message in err


# All but the line's end is the password, even a space or an X at its end.
@pytest.mark.parametrize(
    "chosen", ["correct horse battery staple ", "correct horse battery stapleX"]
)
def test_a_chosen_strong_password_is_used_and_not_printed(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fab: FakeFabApi,
    valid_env_file: Path,
    chosen: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(chosen + "\n"))

    assert run_users(valid_env_file, "add", "ana", "--role", "op", "--password-stdin") == 0

    assert fab.users["ana"]["password"] == chosen
    out = capsys.readouterr().out
    assert out.splitlines()[1].split(maxsplit=2) == ["ana", "Op", "(the one from stdin)"]
    assert chosen.strip() not in out


def test_remove_removes_none_when_one_name_is_unknown(
    capsys: pytest.CaptureFixture[str], fab: FakeFabApi, valid_env_file: Path
) -> None:
    fab.users["ana"] = {"username": "ana"}

    assert run_users(valid_env_file, "remove", "ana", "zoe", "yan") == 1

    assert fab.calls == []
    assert "ana" in fab.users
    assert capsys.readouterr().err == (
        "airflow-ha: error: no such user: zoe, yan (nothing was removed)\n"
    )


def test_remove_says_when_a_user_vanished_meanwhile(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fab: FakeFabApi,
    valid_env_file: Path,
) -> None:
    fab.users["ana"] = {"username": "ana"}
    monkeypatch.setattr(fab, "delete_fab_user", lambda username: False)

    assert run_users(valid_env_file, "remove", "ana") == 1

    assert capsys.readouterr().err == (
        "airflow-ha: error: user 'ana' was removed by someone else meanwhile\n"
    )


def test_help_names_the_arguments(capsys: pytest.CaptureFixture[str], valid_env_file: Path) -> None:
    assert run_users(valid_env_file, "add", "--help") == 0
    usage = " ".join(capsys.readouterr().out.split())
    assert "[--password-stdin] NAME [NAME ...]" in usage
    assert "--role {viewer,user,op,admin}" in usage
    assert run_users(valid_env_file, "remove", "--help") == 0
    assert "remove [-h] NAME [NAME ...]" in " ".join(capsys.readouterr().out.split())


def test_remove_then_list(
    capsys: pytest.CaptureFixture[str], fab: FakeFabApi, write_env: WriteEnv
) -> None:
    env_file = write_env()
    fab.users["ana"] = {"username": "ana", "roles": [{"name": "Viewer"}]}

    assert run_users(env_file, "remove", "ana") == 0
    assert run_users(env_file, "list") == 0

    assert fab.calls == ["delete ana"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "removed ana"
    assert [line.split()[0] for line in out[1:]] == ["user", "admin"]
