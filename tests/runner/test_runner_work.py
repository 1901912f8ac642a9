"""``runner.work.RunWork`` parts that need no cw: keeping a run's work in git."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from runner import gitwork
from runner.config import AgentConfig, Config
from runner.gitwork import Mirror, Project
from runner.state import Checkout
from runner.work import RunWork

from .gitwork_helpers import commit_file, make_origin, someone_pushes, tip

pytestmark = pytest.mark.processes


class FakeRunner:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: Any = None
        self.draining = threading.Event()
        self.stop_now = threading.Event()


def run_work(workspace: Path) -> RunWork:
    config = Config(
        server="http://127.0.0.1:9",
        token="t",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={"claude": AgentConfig(provider="claude", command=("true",))},
    )
    answer = {
        "run": {"id": "r1", "session_number": 1},
        "task": {"id": "t1", "name": "Task"},
        "agent": {"id": "a1", "provider": "claude"},
        "account": {"provider": "claude"},
    }
    return RunWork(FakeRunner(config), answer)  # type: ignore[arg-type]


def checkout(root: Path, workspace: Path, name: str, *, conflict: bool) -> tuple[Checkout, Path]:
    """A project whose initiative branch ``feature`` someone else changed after the run
    started, on the same line as the run (``conflict``) or elsewhere; its origin."""
    place = root / name
    origin = make_origin(place)
    someone_pushes(origin, place, "main", "shared.txt", "base\n")
    mirror = Mirror.of(workspace, Project(name, name, str(origin), "main"))
    mirror.fetch()
    path = workspace / "worktrees" / "r1" / name
    start = mirror.add_worktree(path, "feature-run-r1", "feature")
    someone_pushes(origin, place, "main", "shared.txt" if conflict else "other.txt", "theirs\n")
    # The initiative branch: main as someone else left it.
    mirror.fetch()
    gitwork.git("push", "-q", str(origin), "refs/remotes/origin/main:refs/heads/feature",
                cwd=mirror.path)  # fmt: skip
    commit_file(path, "shared.txt", "ours\n")
    return Checkout(name, str(mirror.path), str(path), "feature-run-r1", start), origin


def test_a_conflict_in_one_project_is_not_hidden_by_the_next(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    work = run_work(workspace)
    first, first_origin = checkout(tmp_path, workspace, "alpha", conflict=True)
    second, second_origin = checkout(tmp_path, workspace, "beta", conflict=False)
    work.state.initiative_branch = "feature"
    work.state.checkouts = [first, second]
    before = tip(first_origin, "feature")

    end_commits, integration = work._keep_work(succeeded=True)

    assert set(end_commits) == {"alpha", "beta"}
    assert tip(first_origin, "feature") == before  # alpha could not be merged
    assert tip(first_origin, "feature-run-r1") == end_commits["alpha"]
    assert gitwork.Mirror(Path(second.mirror)).reachable_from_origin(end_commits["beta"])
    assert tip(second_origin, "feature") == gitwork.head(Path(second.path))  # beta merged
    assert integration == "conflict"


def test_a_failed_run_is_published_but_not_merged(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    work = run_work(workspace)
    only, origin = checkout(tmp_path, workspace, "alpha", conflict=False)
    (Path(only.path) / "left.txt").write_text("uncommitted\n")
    work.state.initiative_branch = "feature"
    work.state.checkouts = [only]
    before = tip(origin, "feature")
    end_commits, integration = work._keep_work(succeeded=False)
    assert integration == "none"
    assert tip(origin, "feature") == before
    assert tip(origin, "feature-run-r1") == end_commits["alpha"]
    assert not gitwork.is_dirty(Path(only.path))
