"""``cw-runner``: run agents for cw (``run``, the default) or tidy the workspace
(``clean``). A mistake in the configuration or a refusal that no retry cures ends it
with a one-line reason and exit status 2 (configuration) or 1."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from runner.agent import hide_from_agents
from runner.client import Client
from runner.config import Config, ConfigError, load


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cw-runner", description="Run AI coding agents for cw in git worktrees."
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("CW_RUNNER_CONFIG"),
        help="the runner's TOML file (any key also from CW_RUNNER_<KEY>)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="take runs from cw and work them (the default)")
    clean = commands.add_parser(
        "clean", help="remove worktrees of ended runs whose work is on origin"
    )
    clean.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load(arguments.config)
    except ConfigError as error:
        print(f"cw-runner: {error}", file=sys.stderr)
        return 2
    from runner.loop import Runner, RunnerError

    client = Client(config.server, config.token)
    if arguments.command == "clean":
        return _clean(config, client, dry_run=arguments.dry_run)
    if not hide_from_agents():
        logging.getLogger("cw-runner").warning(
            "could not make the runner undumpable: agents of this user may read its token"
        )
    runner = Runner(config, client)
    signal.signal(signal.SIGTERM, runner.on_signal)
    signal.signal(signal.SIGINT, runner.on_signal)
    try:
        return runner.run()
    except RunnerError as error:
        print(f"cw-runner: {error}", file=sys.stderr)
        return 1


def _clean(config: Config, client: Client, *, dry_run: bool) -> int:
    from runner.clean import clean
    from runner.loop import Runner, RunnerError

    if not dry_run:
        try:
            Runner(config, client).lock_workspace()
        except RunnerError as error:
            print(f"cw-runner: {error}; stop it first, or use --dry-run", file=sys.stderr)
            return 1
    verdicts = clean(config, client, dry_run=dry_run)
    for found in verdicts:
        verb = ("would remove" if dry_run else "removed") if found.remove else "keep"
        for path in found.paths:
            print(f"{verb:12}  {path}  ({found.reason})")
    if not verdicts:
        print(f"nothing to clean in {config.workspace}")
    return 0
