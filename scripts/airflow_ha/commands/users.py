"""`users add|list|remove`: one login per person (a class of trainees), each with a role.

Through the FAB auth manager's REST API, as .env's admin. New passwords are
generated and shown once (Airflow keeps only their hashes); `--password-stdin`
takes one chosen password instead, refused if it is weak.
"""

import argparse
import sys

from airflow_ha.console import table
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError, UsageError
from airflow_ha.logins import (
    ROLES,
    Login,
    check_usernames,
    generate_password,
    logins_table,
    password_problem,
    user_body,
)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "users",
        help="add, list or remove UI and API logins",
    )
    actions = parser.add_subparsers(dest="action", required=True)

    add = actions.add_parser(
        "add",
        help="create logins with a role; prints their passwords once",
    )
    add.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="user names (letters, digits, . _ -)",
    )
    add.add_argument(
        "--role",
        required=True,
        type=str.lower,
        choices=list(ROLES),
        help="viewer: reads; user: also triggers, clears; op: also connections, pools; admin: all",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password of the one NAME from stdin instead of generating one",
    )
    add.set_defaults(run=run_add)

    listing = actions.add_parser(
        "list",
        help="every login with its roles and last login",
    )
    listing.set_defaults(run=run_list)

    remove = actions.add_parser(
        "remove",
        help="delete logins (not the admin of .env)",
    )
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.set_defaults(run=run_remove)


def chosen_password(names: list[str]) -> str:
    """The one password on stdin, checked against the one user it is for."""
    if len(names) != 1:
        raise UsageError("--password-stdin sets the password of one user: name exactly one")
    password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password, names[0])
    if problem:
        raise UsageError(f"the password for {names[0]!r} is too weak: {problem}")
    return password


def run_add(args: argparse.Namespace, ctx: Context) -> int:
    names = check_usernames(args.names)
    role = ROLES[args.role]
    password = chosen_password(names) if args.password_stdin else None
    client = ctx.airflow_client()
    # Refuse before creating any, so a command either creates all or none.
    existing = [name for name in names if client.fab_user(name) is not None]
    if existing:
        raise ClusterError(
            f"user {', '.join(existing)} exists already: remove it first, or choose another name"
        )
    rows = [("user", "role", "password")]
    for name in names:
        new_password = password or generate_password()
        client.create_fab_user(user_body(name, role, new_password))
        rows.append((name, role, "(the one from stdin)" if password else new_password))
    print(table(rows))
    if password is None:
        print(
            f"airflow-ha: created {len(names)} login(s) with role {role}; the passwords are "
            "shown only now (Airflow keeps their hashes)",
            file=sys.stderr,
        )
    return 0


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    logins = [Login.from_api(user) for user in ctx.airflow_client().fab_users()]
    print(logins_table(logins))
    return 0


def run_remove(args: argparse.Namespace, ctx: Context) -> int:
    names = check_usernames(args.names)
    admin = ctx.settings.airflow_admin_user
    if admin in names:
        raise UsageError(
            f"{admin!r} is the admin of .env, which this CLI logs in as: it cannot be removed"
        )
    client = ctx.airflow_client()
    missing = [name for name in names if client.fab_user(name) is None]
    if missing:
        raise ClusterError(f"no such user: {', '.join(missing)} (nothing was removed)")
    for name in names:
        if not client.delete_fab_user(name):
            raise ClusterError(f"user {name!r} was removed by someone else meanwhile")
        print(f"removed {name}")
    return 0
