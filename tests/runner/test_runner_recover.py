"""``runner.loop.Runner.recover``: a restarted runner settles the runs its predecessor
held — ships the rest of their output, keeps their work on origin, then resumes them or
reports them crashed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from runner import gitwork
from runner.client import ApiError
from runner.config import AgentConfig, Config
from runner.gitwork import Mirror, Project
from runner.loop import Runner
from runner.state import Checkout, RunState

from .gitwork_helpers import has_branch, make_origin, tip

pytestmark = pytest.mark.processes


class FakeCw:
    def __init__(self, held: list[dict[str, Any]]) -> None:
        self.held = held
        self.calls: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()

    def pages(self, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        assert path == "/api/runs"
        assert query == {"runner_name": "runner-1", "outcome": "running"}
        return self.held

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        with self._lock:
            self.calls.append((method, path, body))
        if path.endswith("/resume"):
            return {"run": {"id": "r1-resumed", "session_number": 2}}
        if path == "/api/runs/gone/finish":
            raise ApiError(404, "not_found", "no such run")
        return None

    def bodies(self, suffix: str) -> list[Any]:
        return [body for _, path, body in self.calls if path.endswith(suffix)]


def config_for(workspace: Path, *, resume: bool) -> Config:
    return Config(
        server="http://cw.invalid",
        token="t",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={
            "claude": AgentConfig(
                provider="claude",
                command=("claude",),
                resume=("claude", "--resume", "{session_id}") if resume else None,
            )
        },
    )


def leave_a_run(tmp_path: Path, workspace: Path) -> tuple[RunState, Path]:
    """What a killed runner leaves: a worktree with uncommitted work, a spool of which
    cw took only the first line, a dead agent."""
    origin = make_origin(tmp_path)
    mirror = Mirror.of(workspace, Project("p1", "app", str(origin), "main"))
    mirror.fetch()
    path = workspace / "worktrees" / "r1" / "worktree"
    start = mirror.add_worktree(path, "feature-run-r1", "feature")
    (path / "half-done.txt").write_text("work\n")
    folder = RunState.folder(workspace, "r1")
    folder.mkdir(parents=True)
    spool = folder / "output.log"
    spool.write_bytes(b"taken\nnot taken\nlast, no end")
    state = RunState(
        run_id="r1",
        task_id="t1",
        agent_id="a1",
        provider="claude",
        session_number=1,
        initiative_branch="feature",
        cwd=str(path),
        checkouts=[Checkout("p1", str(mirror.path), str(path), "feature-run-r1", start)],
        pid=2**22 + 12345,  # no such process
        session_id="sess-1",
        shipped=len(b"taken\n"),
        spool=str(spool),
    )
    state.save(workspace)
    return state, origin


def test_a_run_without_resume_is_shipped_kept_and_reported_crashed(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    state, origin = leave_a_run(tmp_path, workspace)
    cw = FakeCw([{"id": "r1", "outcome": "running"}, {"id": "gone", "outcome": "running"}])
    runner = Runner(config_for(workspace, resume=False), cw)  # type: ignore[arg-type]
    runner.recover()

    lines = [c["content"] for body in cw.bodies("/api/agents/a1/logs") for c in body]
    assert lines == ["not taken", "last, no end"]
    [finish] = cw.bodies("/api/runs/r1/finish")
    assert finish["outcome"] == "crashed"
    assert "process was gone" in finish["error"]
    end = finish["end_commits"]["p1"]
    assert tip(origin, "feature-run-r1") == end  # the work is on origin
    assert gitwork.git("show", f"{end}:half-done.txt", cwd=origin) == "work"
    assert not has_branch(origin, "feature")  # a crashed run is not merged
    # Ended, shipped and on origin: cleaned up.
    assert not Path(state.cwd).exists()
    assert not RunState.folder(workspace, "r1").exists()
    # A run with no record here is reported crashed (cw no longer knowing it is fine).
    [gone] = cw.bodies("/api/runs/gone/finish")
    assert gone["outcome"] == "crashed" and "no record" in gone["error"]
    assert runner.resumes.empty()


def test_a_run_with_a_session_is_resumed(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    state, origin = leave_a_run(tmp_path, workspace)
    cw = FakeCw([{"id": "r1", "outcome": "running", "session_id": None}])
    runner = Runner(config_for(workspace, resume=True), cw)  # type: ignore[arg-type]
    runner.recover()

    assert cw.bodies("/api/runs/r1/finish") == []
    assert cw.bodies("/api/runs/r1/resume") == [{"runner_name": "runner-1"}]
    answer, resumed = runner.resumes.get_nowait()
    assert answer["run"]["id"] == "r1-resumed"
    assert resumed.session_id == "sess-1"
    # The worktrees go with the resumed run; the old run's record lets them go, so a
    # clean never removes them with it.
    assert [c.path for c in resumed.checkouts] == [c.path for c in state.checkouts]
    assert Path(state.cwd).is_dir()  # the resumed run goes on in it
    saved = RunState.load(workspace, "r1")
    assert saved is not None and saved.ended and saved.checkouts == []
    assert saved.shipped == Path(state.spool).stat().st_size
    assert tip(origin, "feature-run-r1") == gitwork.head(Path(state.cwd))


def test_a_run_cw_no_longer_holds_is_settled_here_without_a_finish(tmp_path: Path) -> None:
    """The runner was down past the heartbeat timeout: cw swept the run lost, so it is
    not among those held. Its agent, still running, is stopped; what it printed is
    shipped; its work is pushed; its worktree goes; and no finish is sent (cw ended it)."""
    import signal
    import subprocess
    import sys

    workspace = tmp_path / "ws"
    state, origin = leave_a_run(tmp_path, workspace)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    state.pid = orphan.pid
    state.boot_id = ""
    state.save(workspace)
    cw = FakeCw([])
    runner = Runner(config_for(workspace, resume=True), cw)  # type: ignore[arg-type]
    runner.recover()

    assert orphan.wait(timeout=20) == -signal.SIGTERM
    assert cw.bodies("/finish") == [] and cw.bodies("/resume") == []
    shipped = [chunk["content"] for body in cw.bodies("/api/agents/a1/logs") for chunk in body]
    assert shipped == ["not taken", "last, no end"]
    assert has_branch(origin, "feature-run-r1")
    assert not Path(state.cwd).exists()
    assert RunState.load(workspace, "r1") is None  # its folder is gone with the worktree
    assert runner.resumes.empty()


def test_an_ended_run_whose_last_lines_cw_did_not_take_ships_them_on_restart(
    tmp_path: Path,
) -> None:
    """cw was away when a run ended: its state is over but its spool holds lines cw never
    acknowledged. A restarted runner ships them, then cleans the run away."""
    workspace = tmp_path / "ws"
    state, _ = leave_a_run(tmp_path, workspace)
    gitwork.commit_leftovers(Path(state.cwd), "r1")
    gitwork.publish(Mirror(Path(state.checkouts[0].mirror)), Path(state.cwd), "feature-run-r1")
    state.ended = True
    state.save(workspace)
    cw = FakeCw([])
    Runner(config_for(workspace, resume=False), cw).recover()  # type: ignore[arg-type]

    shipped = [chunk["content"] for body in cw.bodies("/api/agents/a1/logs") for chunk in body]
    assert shipped == ["not taken", "last, no end"]
    assert cw.bodies("/finish") == []
    assert RunState.load(workspace, "r1") is None  # shipped, so cleaned away
