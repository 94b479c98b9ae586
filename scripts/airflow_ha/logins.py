"""Logins of the FAB auth manager: roles, names, passwords, and the users table.

Pure decisions; `commands/users.py` does the talking to the cluster.
"""

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zxcvbn import zxcvbn

from airflow_ha.console import table
from airflow_ha.errors import UsageError

# The CLI's role names and Airflow's built-in FAB roles they stand for.
ROLES = {"viewer": "Viewer", "user": "User", "op": "Op", "admin": "Admin"}

# Letters, digits and . _ - : safe in a URL path, a shell and a log line.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

MIN_PASSWORD_LENGTH = 12
# zxcvbn's score: 3 is "safely unguessable: moderate protection from offline
# slow-hash scenario" (10^8 guesses or more).
MIN_PASSWORD_SCORE = 3


def check_usernames(names: Iterable[str]) -> list[str]:
    """The names, each checked; a name given twice is refused."""
    checked: list[str] = []
    for name in names:
        if not USERNAME.fullmatch(name):
            raise UsageError(
                f"user name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        if name in checked:
            raise UsageError(f"user name {name!r} is given twice")
        checked.append(name)
    return checked


def password_problem(password: str, username: str = "") -> str | None:
    """Why `password` is too weak (for `username`), or None if it is not."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"it has {len(password)} characters, fewer than {MIN_PASSWORD_LENGTH}"
    verdict = zxcvbn(password, user_inputs=[username, "airflow"] if username else ["airflow"])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        warning = verdict["feedback"].get("warning") or "it is easy to guess"
        score = verdict["score"]
        return f"{warning.rstrip('.')} (strength {score} of 4, needs {MIN_PASSWORD_SCORE})"
    return None


def generate_password() -> str:
    """20 URL-safe random characters (120 bits)."""
    return secrets.token_urlsafe(15)


def user_body(username: str, role: str, password: str) -> dict[str, Any]:
    """The FAB API's new-user body. FAB wants a unique e-mail address and names;
    .invalid (RFC 2606) is never a real domain."""
    return {
        "username": username,
        "email": f"{username}@airflow-ha.invalid",
        "first_name": username,
        "last_name": role,
        "roles": [{"name": role}],
        "password": password,
    }


@dataclass(frozen=True)
class Login:
    username: str
    roles: tuple[str, ...]
    last_login: str
    login_count: int

    @classmethod
    def from_api(cls, user: dict[str, Any]) -> "Login":
        return cls(
            username=str(user["username"]),
            roles=tuple(sorted(str(role.get("name")) for role in user.get("roles") or [])),
            last_login=str(user.get("last_login") or "never")[:19].replace("T", " "),
            login_count=int(user.get("login_count") or 0),
        )


def logins_table(logins: list[Login]) -> str:
    header = ["user", "roles", "last login (UTC)", "logins"]
    rows = [
        [login.username, ",".join(login.roles) or "-", login.last_login, str(login.login_count)]
        for login in sorted(logins, key=lambda login: login.username)
    ]
    return table([header, *rows])
