"""Removing what the runner no longer needs, and only that: ``cw-runner clean``.

A run's worktrees and folder go only when all of these hold: its run has ended (the
runner finished it, or cw says it is over), its agent's process is gone, nothing in its
worktrees is uncommitted, each worktree's commit is on a branch of origin, and cw has
acknowledged all its output. Anything else is kept, with the reason.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from runner import agent, gitwork
from runner.client import ApiError, Client
from runner.config import Config
from runner.state import RunState


@dataclass(frozen=True)
class Verdict:
    run_id: str
    paths: tuple[str, ...]
    remove: bool
    reason: str


def in_use_elsewhere(config: Config, state: RunState) -> set[str]:
    """The worktrees a run of this workspace that has not ended holds (a resumed run
    works in its predecessor's): never removed with another run's."""
    return {
        checkout.path
        for other in RunState.all(config.workspace)
        if other.run_id != state.run_id and not other.ended
        for checkout in other.checkouts
    }


def verdict(config: Config, state: RunState, client: Client | None = None) -> Verdict:
    folder = RunState.folder(config.workspace, state.run_id)
    paths = (*(c.path for c in state.checkouts), str(folder))

    def keep(reason: str) -> Verdict:
        return Verdict(state.run_id, paths, False, reason)

    if not state.ended:
        if client is None:
            return keep("its run has not ended")
        try:
            run = client.call("GET", f"/api/runs/{state.run_id}", retry_seconds=5)
        except ApiError as error:
            if error.status != 404:
                return keep(f"cw cannot say whether its run ended ({error.code})")
        else:
            if run.get("outcome") == "running":
                return keep("its run is live")
    if agent.alive(state.pid, state.boot_id, state.pid_started):
        return keep(f"its agent (pid {state.pid}) is still running")
    if agent.leftovers(state.pid, state.boot_id):
        return keep(f"processes its agent started (group {state.pid}) still run")
    if state.unshipped():
        return keep("cw has not taken all of its output yet")
    held = in_use_elsewhere(config, state)
    for checkout in state.checkouts:
        path = Path(checkout.path)
        if checkout.path in held:
            return keep(f"{path} belongs to a run that has not ended")
        if not path.exists():
            continue
        try:
            if gitwork.is_dirty(path):
                return keep(f"{path} has uncommitted changes")
            commit = gitwork.head(path)
            if not gitwork.Mirror(Path(checkout.mirror)).reachable_from_origin(commit):
                return keep(f"{path}: commit {commit[:12]} is on no branch of origin")
        except gitwork.GitError as error:
            return keep(f"{path}: {error}")
    return Verdict(state.run_id, paths, True, "its run ended and its work is on origin")


def clean_run(
    config: Config, state: RunState, *, dry_run: bool, client: Client | None = None
) -> Verdict:
    found = verdict(config, state, client)
    if found.remove and not dry_run:
        for checkout in state.checkouts:
            if Path(checkout.path).exists():
                try:
                    gitwork.Mirror(Path(checkout.mirror)).remove_worktree(
                        Path(checkout.path), checkout.branch
                    )
                except gitwork.GitError as error:  # e.g. a locked worktree: keep the run
                    return Verdict(state.run_id, found.paths, False, f"not removed: {error}")
        own = config.workspace / "worktrees" / state.run_id
        if not any(Path(path).is_relative_to(own) for path in in_use_elsewhere(config, state)):
            shutil.rmtree(own, ignore_errors=True)
        for checkout in state.checkouts:  # a resumed run's are in its predecessor's folder
            parent = Path(checkout.path).parent
            if (
                parent.parent == config.workspace / "worktrees"
                and parent.is_dir()
                and not any(parent.iterdir())
            ):
                parent.rmdir()
        shutil.rmtree(RunState.folder(config.workspace, state.run_id), ignore_errors=True)
    return found


def end_here(config: Config, state: RunState) -> Verdict:
    """The run is over for this runner: say so on its record, then remove what is safe."""
    state.ended = True
    state.save(config.workspace)
    return clean_run(config, state, dry_run=False)


def clean(config: Config, client: Client | None, *, dry_run: bool) -> list[Verdict]:
    """Every run the workspace holds, removed (or, with ``dry_run``, judged) in turn."""
    verdicts = [
        clean_run(config, state, dry_run=dry_run, client=client)
        for state in RunState.all(config.workspace)
    ]
    known = {v.run_id for v in verdicts}
    worktrees = config.workspace / "worktrees"
    if worktrees.is_dir():
        for entry in sorted(worktrees.iterdir()):
            if entry.name not in known:
                verdicts.append(
                    Verdict(entry.name, (str(entry),), False, "no record of its run: kept")
                )
    return verdicts
