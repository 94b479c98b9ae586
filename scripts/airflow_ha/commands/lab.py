"""`lab`: list the training labs, check a trainee's result, or solve a lab."""

import argparse
from pathlib import Path

from airflow_ha.console import Progress, table
from airflow_ha.context import Context
from airflow_ha.errors import UsageError, VerificationError
from airflow_ha.labs import LABS, lab10_ssh_pty, lab_by_number
from airflow_ha.labs.base import DEFAULT_WORK_DIR, Lab, LabEnv, first_missing, guide


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("lab", help="training labs: list, check a result, solve")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    actions.add_parser("list", help="the labs and their guides")
    target = actions.add_parser("ssh-target", help="lab 10's SSH target: start it or remove it")
    target.add_argument("state", choices=["up", "down"])
    for action, what in (("check", "check a trainee's result"), ("solve", "do a lab")):
        sub = actions.add_parser(action, help=what)
        sub.add_argument("number", help="the lab's number (`lab list`)")
        sub.add_argument(
            "--work-dir",
            type=Path,
            default=DEFAULT_WORK_DIR,
            help="the trainee's answers folder (default: lab-work/)",
        )
    parser.set_defaults(run=run)


def _lab(text: str) -> Lab:
    lab = lab_by_number(int(text)) if text.strip().isdigit() else None
    if lab is None:
        known = ", ".join(f"{lab.number} ({lab.slug})" for lab in LABS)
        raise UsageError(f"no lab {text!r}; the labs are: {known}")
    return lab


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "list":
        rows = [("LAB", "TITLE", "GUIDE")]
        rows += [
            (str(lab.number), lab.title, str(guide(lab).relative_to(guide(lab).parents[1])))
            for lab in LABS
        ]
        print(table(rows))
        return 0
    if args.action == "ssh-target":
        ctx.stack.require_running()
        env = LabEnv(ctx, DEFAULT_WORK_DIR, Progress())
        (lab10_ssh_pty.target_up if args.state == "up" else lab10_ssh_pty.target_down)(env)
        return 0
    lab = _lab(args.number)
    ctx.stack.require_running()
    env = LabEnv(ctx, args.work_dir, Progress())
    if args.action == "solve":
        env.log(f"lab {lab.number}, {lab.title}: solving")
        lab.solve(env)
    steps = lab.check(env)
    for step in steps:
        print(f"[{'x' if step.done else ' '}] {step.description}")
    missing = first_missing(steps)
    if missing:
        raise VerificationError(
            f"lab {lab.number}: not done yet: {missing.description}"
            + (f" ({missing.hint})" if missing.hint else "")
        )
    print(f"lab {lab.number} ({lab.title}): done")
    return 0
