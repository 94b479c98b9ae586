"""`swarm-engines`, `swarm-up`, `swarm-status`, `swarm-down`: the cluster as a Swarm stack.

`swarm-up` deploys the stack onto the Swarm whose manager SWARM_HOST names
(`--host`; a Docker host URL: unix://…, ssh://user@host, tcp://…), or onto
this machine's engine. `swarm-engines up` makes such a Swarm on this machine:
three engines in containers (airflow_ha.swarm.engines); `swarm-up --engines`
deploys onto them, first giving them this machine's current images.
"""

import argparse
import json
from datetime import UTC, datetime, timedelta

from python_on_whales import DockerClient

from airflow_ha.console import Progress, table
from airflow_ha.context import Context
from airflow_ha.docker_host import check_docker
from airflow_ha.errors import ConfigError
from airflow_ha.images import ImageBuilder
from airflow_ha.paths import REPO_ROOT, STATE_DIR, SWARM_COMPOSE_FILE
from airflow_ha.secret_files import swarm_secret_values, swarm_secrets_dir, write_secret_files
from airflow_ha.stack import Stack
from airflow_ha.swarm import deploy, engines
from airflow_ha.swarm.stack_file import ONE_SHOT_SERVICES, stack_file

MAX_ENGINES = 5
CLOCK_MARGIN = timedelta(seconds=10)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "swarm-engines", help="Docker engines in containers, joined into a Swarm (tests, labs)"
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument(
        "--nodes",
        type=int,
        default=3,
        help=f"engines to start (up), 1 to {MAX_ENGINES} (default 3)",
    )
    parser.set_defaults(run=run_engines)

    target = target_parser(default="this engine")
    up = subparsers.add_parser("swarm-up", parents=[target], help="deploy the stack onto a Swarm")
    up.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
    up.set_defaults(run=run_up)
    status = subparsers.add_parser(
        "swarm-status", parents=[target], help="services, replicas and nodes of the stack"
    )
    status.set_defaults(run=run_status)
    down = subparsers.add_parser(
        "swarm-down", parents=[target], help="remove the stack (its volumes stay)"
    )
    down.set_defaults(run=run_down)


def target_parser(default: str) -> argparse.ArgumentParser:
    """--host and --engines: the Swarm a command works on (read by `swarm_client`)."""
    target = argparse.ArgumentParser(add_help=False)
    where = target.add_mutually_exclusive_group()
    where.add_argument("--host", help=f"a Swarm manager's Docker host URL (default: {default})")
    where.add_argument(
        "--engines", action="store_true", help="the engines of `swarm-engines up` on this machine"
    )
    return target


def engine_set(ctx: Context, count: int | None = None) -> engines.EngineSet:
    """The engines of `swarm-engines up`: `count` of them, or as many as run."""
    project = ctx.tool_settings.compose_project_name
    prefix, state_dir = f"{project}-swarm", STATE_DIR / project / "swarm-engines"
    if count is None:
        return engines.discover(ctx.docker, prefix, state_dir)
    return engines.EngineSet(prefix, count, state_dir)


def run_engines(args: argparse.Namespace, ctx: Context) -> int:
    if not 1 <= args.nodes <= MAX_ENGINES:
        raise ConfigError(f"--nodes: {args.nodes} is not between 1 and {MAX_ENGINES}")
    progress = Progress()
    docker = ctx.docker
    if args.action == "down":
        harness = engine_set(ctx)
        engines.stop(docker, harness, progress)
        print(f"engines of {harness.prefix} removed")
        return 0
    existing = engine_set(ctx)
    if existing.count and engines.is_up(docker, existing):
        if existing.count != args.nodes:
            raise ConfigError(
                f"{existing.count} engines are up already: `make swarm-engines-down` "
                f"first to start {args.nodes}"
            )
        print(f"{existing.count} engines already up; their manager: {existing.manager.host}")
        return 0
    if existing.count:
        # A host lost (a test, or by hand): the others may hold a running stack.
        raise ConfigError(
            f"{existing.count} engines of {existing.prefix} exist but not all answer: "
            "`make swarm-engines-down` removes them all, then `make swarm-engines`"
        )
    harness = engine_set(ctx, args.nodes)
    ctx.create_env_file_if_missing(progress)
    images = ctx.build_images(progress)
    node_image = ImageBuilder(docker, ctx.settings, progress).ensure_swarm_node(engines.NODE_IMAGE)
    stack_images = [images.airflow, images.mysql, images.redis, images.haproxy]
    engines.start(docker, harness, node_image, stack_images, [ctx.default_dags_dir()], progress)
    print(f"{harness.count} engines in one Swarm; their manager: {harness.manager.host}")
    print("Deploy the cluster onto them: make swarm-up ENGINES=1")
    return 0


def swarm_client(args: argparse.Namespace, ctx: Context) -> DockerClient:
    """The Docker client of the Swarm manager that --host or --engines names."""
    if args.engines:
        manager = engines.reachable_manager(engine_set(ctx))
        if manager is None:
            raise ConfigError("no engine of `make swarm-engines` answers: run it first")
        client = manager.client()
    elif args.host:
        client = DockerClient(host=args.host)
        if not engines.answers(client):
            raise ConfigError(f"--host {args.host}: no Docker engine answers there")
    else:
        client = DockerClient()
        check_docker(client)
    return client


def run_up(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    client = swarm_client(args, ctx)
    deploy.check_manager(client)
    deploy.check_labels(client)
    deploy.check_overlay(client)
    ctx.create_env_file_if_missing(progress)
    images = ctx.build_images(progress)
    if args.engines:
        stack_images = [images.airflow, images.mysql, images.redis, images.haproxy]
        engines.sync_images(ctx.docker, engine_set(ctx), stack_images, progress)
    write_secret_files(swarm_secrets_dir(ctx.state_dir), swarm_secret_values(ctx.settings))
    compose = Stack(ctx.settings, ctx.env_files, overrides=(SWARM_COMPOSE_FILE,)).docker.compose
    model = compose.config(return_json=True)
    stack = ctx.settings.compose_project_name
    # JSON, which is YAML too: what `docker stack deploy -c` reads.
    path = ctx.state_dir / "stack.json"
    path.write_text(json.dumps(stack_file(model, str(REPO_ROOT)), indent=2))
    progress(f"deploying stack {stack} ({path.relative_to(REPO_ROOT)})")
    # A margin for the manager's clock, which stamps the tasks.
    since = datetime.now(UTC) - CLOCK_MARGIN
    deploy.deploy(client, stack, path)
    deploy.wait_ready(client, stack, since, args.timeout, progress)
    print(f"stack {stack} running; Airflow UI and REST API: {deploy.api_url(client, stack)}")
    return 0


def run_status(args: argparse.Namespace, ctx: Context) -> int:
    client = swarm_client(args, ctx)
    deploy.check_manager(client)
    stack = ctx.settings.compose_project_name
    states = deploy.service_states(client, stack)
    if not states:
        print(f"stack {stack} is not deployed on this Swarm")
        return 1
    rows = [["SERVICE", "RUNNING", "NODES"]]
    for state in states:
        running = (
            "completed"
            if state.service in ONE_SHOT_SERVICES and state.ready
            else (f"{state.running}/{state.replicas}")
        )
        rows.append([state.service, running, ", ".join(state.nodes) or "-"])
    print(table(rows))
    print(f"Airflow UI and REST API: {deploy.api_url(client, stack)}")
    return 0 if all(s.ready for s in states) else 1


def run_down(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    client = swarm_client(args, ctx)
    deploy.check_manager(client)
    deploy.remove(client, ctx.settings.compose_project_name, progress)
    return 0
