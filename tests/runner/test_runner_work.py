"""``runner.work.RunWork`` parts that need no cw: keeping a run's work in git."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runner import agent, gitwork
from runner.client import ApiError
from runner.config import AgentConfig, Config
from runner.gitwork import Mirror, Project
from runner.state import Checkout
from runner.work import RunWork

from .gitwork_helpers import commit_file, has_branch, make_origin, someone_pushes, tip

pytestmark = pytest.mark.processes


class FakeRunner:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: Any = None
        self.draining = threading.Event()
        self.stop_now = threading.Event()


def config_for(workspace: Path, *command: str, **timings: float) -> Config:
    """A runner whose one agent (``claude``) is ``command``."""
    return Config(
        server="http://cw.invalid",
        token="t",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={"claude": AgentConfig("claude", command)},
        **timings,  # type: ignore[arg-type]
    )


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


AGENT = r"""
import json, os, subprocess, sys, time
prompt = open(sys.argv[1]).read()
def say(record):
    print(json.dumps(record), flush=True)
say({"type": "system", "subtype": "init", "session_id": "sess-1", "model": "opus"})
print("secret visible:", "CW_RUNNER_TOKEN" in os.environ, flush=True)
print("run id:", os.environ.get("CW_RUN_ID"), "token:", os.environ.get("CW_RUN_TOKEN"), flush=True)
print("prompt says task:", "# Task: Write it" in prompt, flush=True)
say({"type": "assistant", "session_id": "sess-1",
     "message": {"id": "m1", "model": "opus", "usage": {"input_tokens": 5, "output_tokens": 1}}})
say({"type": "assistant", "session_id": "sess-1",
     "message": {"id": "m1", "model": "opus", "usage": {"input_tokens": 5, "output_tokens": 4}}})
open("done.txt", "w").write("done\n")
sys.stderr.write("a warning on stderr\n")
time.sleep(float(os.environ.get("AGENT_SLEEP", "0.5")))
say({"type": "result", "subtype": "success", "is_error": False, "result": "Wrote done.txt.",
     "session_id": "sess-1", "total_cost_usd": 0.25})
sys.exit(int(os.environ.get("AGENT_EXIT", "0")))
"""


class FakeCw:
    """The endpoints a run uses, answering as cw would; records every call."""

    def __init__(self, origin: Path) -> None:
        self.origin = origin
        self.calls: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        with self._lock:
            self.calls.append((method, path, body))
        if path == "/api/initiatives/i1":
            return {"id": "i1", "branch": "feature"}
        if path == "/api/initiatives/i1/projects":
            return [{"id": "p1", "name": "app", "url": str(self.origin), "default_branch": "main"}]
        if path == "/api/tasks/t1/context":
            return [{"name": "Before", "summary": "Laid the ground."}]
        if path.endswith("/heartbeat"):
            return {"decision": "continue"}
        return None

    def bodies(self, suffix: str) -> list[Any]:
        return [body for _, path, body in self.calls if path.endswith(suffix)]


def test_a_whole_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_RUNNER_TOKEN", "cw_runner_secret")
    origin = make_origin(tmp_path)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    workspace = tmp_path / "ws"
    config = Config(
        server="http://cw.invalid",
        token="cw_runner_secret",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={
            "claude": AgentConfig(
                provider="claude",
                command=(sys.executable, str(script), "{prompt_file}"),
                format="claude-stream-json",
            )
        },
        heartbeat_seconds=0.1,
        log_flush_seconds=0.05,
    )
    runner = FakeRunner(config)
    cw = FakeCw(origin)
    runner.client = cw
    answer = {
        "run": {"id": "r1", "session_number": 1, "attempt": 1},
        "task": {"id": "t1", "name": "Write it", "description": "Write done.txt.",
                 "initiative_id": "i1"},
        "agent": {"id": "a1", "provider": "claude"},
        "account": {"provider": "claude", "credentials": "{}"},
        "run_token": "cw_run_token",
    }  # fmt: skip
    work = RunWork(runner, answer)  # type: ignore[arg-type]

    assert work.execute() == "succeeded"

    [finish] = cw.bodies("/api/runs/r1/finish")
    assert finish["outcome"] == "succeeded"
    assert finish["summary"] == "Wrote done.txt."
    assert finish["exit_code"] == 0
    assert finish["runner_name"] == "runner-1"
    end = finish["end_commits"]["p1"]
    assert tip(origin, "feature") == end  # fast-forwarded into a new initiative branch
    assert tip(origin, "feature-run-r1") == end
    assert gitwork.git("show", f"{end}:done.txt", cwd=origin) == "done"
    usage = finish["usage"] + [u for body in cw.bodies("/heartbeat") for u in body["usage"]]
    assert sum(u.get("output_tokens", 0) for u in usage) == 4
    assert sum(u.get("input_tokens", 0) for u in usage) == 5
    assert sum(u.get("cost_micros", 0) for u in usage) == 250_000
    assert any(body.get("session_id") == "sess-1" for body in cw.bodies("/heartbeat"))

    lines = [c["content"] for body in cw.bodies("/api/agents/a1/logs") for c in body]
    assert "secret visible: False" in lines
    assert "run id: r1 token: cw_run_token" in lines
    assert "prompt says task: True" in lines
    assert "a warning on stderr" in lines
    assert len(lines) == len(set(lines))

    patches = cw.bodies("/api/runs/r1")
    assert any("pid" in body for body in patches)
    assert any(body.get("start_commits", {}).get("p1") == tip(origin, "main") for body in patches)
    # Ended and on origin: nothing of the run is left on disk.
    assert not (workspace / "worktrees" / "r1").exists()
    assert not (workspace / "runs" / "r1").exists()


def test_a_failing_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_EXIT", "3")
    monkeypatch.setenv("AGENT_SLEEP", "0")
    origin = make_origin(tmp_path)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    config = config_for(
        tmp_path / "ws", sys.executable, str(script), "{prompt_file}", log_flush_seconds=0.05
    )
    runner = FakeRunner(config)
    cw = FakeCw(origin)
    runner.client = cw
    answer = {
        "run": {"id": "r2", "session_number": 1},
        "task": {"id": "t1", "name": "Write it", "initiative_id": "i1"},
        "agent": {"id": "a1", "provider": "claude"},
        "account": {"provider": "claude"},
    }
    assert RunWork(runner, answer).execute() == "failed"  # type: ignore[arg-type]
    [finish] = cw.bodies("/api/runs/r2/finish")
    assert finish["exit_code"] == 3
    assert finish["error"].startswith("The agent ended with exit code 3.")
    assert "a warning on stderr" in finish["error"]
    # Not merged, but kept on the run's branch.
    assert tip(origin, "feature-run-r2") == finish["end_commits"]["p1"]
    assert not has_branch(origin, "feature")


def test_two_projects_whose_names_look_alike_get_two_worktrees(tmp_path: Path) -> None:
    origins = [make_origin(tmp_path / "one"), make_origin(tmp_path / "two")]
    cw = FakeCw(origins[0])
    projects = [
        {"id": "p1", "name": "my app", "url": str(origins[0]), "default_branch": "main"},
        {"id": "p2", "name": "my-app", "url": str(origins[1]), "default_branch": "main"},
    ]
    answer_of = cw.call

    def call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return projects if path.endswith("/projects") else answer_of(method, path, body, **kw)

    cw.call = call  # type: ignore[method-assign]
    work = run_work(tmp_path / "ws")
    work.client = cw  # type: ignore[assignment]
    work.task = {"id": "t1", "name": "Task", "initiative_id": "i1"}
    work._prepare_worktrees()
    paths = [Path(c.path) for c in work.state.checkouts]
    assert len(set(paths)) == 2
    assert all(
        gitwork.head(path) == tip(origin, "main")
        for path, origin in zip(paths, origins, strict=True)
    )
    assert all(path.parent == Path(work.state.cwd) for path in paths)


def test_a_bug_while_watching_stops_the_agent_instead_of_leaving_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something unexpected breaks the heartbeat loop: the exception goes on (the slot
    logs it), but the agent's process group is stopped first, never left on its own."""
    monkeypatch.setenv("AGENT_SLEEP", "60")
    origin = make_origin(tmp_path)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    config = config_for(
        tmp_path / "ws",
        sys.executable,
        str(script),
        "{prompt_file}",
        heartbeat_seconds=0.1,
        log_flush_seconds=0.05,
    )

    class Broken:
        def is_set(self) -> bool:
            raise ValueError("a bug")

    runner = FakeRunner(config)
    runner.client = FakeCw(origin)
    runner.stop_now = Broken()  # type: ignore[assignment]
    answer = {
        "run": {"id": "r3", "session_number": 1},
        "task": {"id": "t1", "name": "Write it", "initiative_id": "i1"},
        "agent": {"id": "a1", "provider": "claude"},
        "account": {"provider": "claude"},
    }
    work = RunWork(runner, answer)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a bug"):
        work.execute()
    assert work.state.pid is not None
    assert not agent.group_exists(work.state.pid)


def test_heartbeats_go_on_while_the_run_is_prepared_and_a_cancel_then_starts_no_agent(
    tmp_path: Path,
) -> None:
    """Fetching a large repository takes time: the run beats all along, so cw does not
    sweep it as lost; when cw answers that the run is over (a person cancelled it), the
    agent is never started and no finish is sent."""
    origin = make_origin(tmp_path)
    marker = tmp_path / "agent-started"
    config = config_for(
        tmp_path / "ws",
        sys.executable,
        "-c",
        f"open({str(marker)!r}, 'w')",
        heartbeat_seconds=0.05,
    )

    class SlowCw(FakeCw):
        def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
            if path.endswith("/heartbeat") and len(self.bodies("/heartbeat")) >= 3:
                with self._lock:
                    self.calls.append((method, path, body))
                raise ApiError(409, "run_not_live", "The run was cancelled.")
            answer = super().call(method, path, body, **kw)
            if path == "/api/initiatives/i1/projects":
                time.sleep(1.0)  # a slow first fetch
            return answer

    runner = FakeRunner(config)
    cw = SlowCw(origin)
    runner.client = cw
    answer = {
        "run": {"id": "r4", "session_number": 1},
        "task": {"id": "t1", "name": "Write it", "initiative_id": "i1"},
        "agent": {"id": "a1", "provider": "claude"},
        "account": {"provider": "claude"},
    }
    assert RunWork(runner, answer).execute() == "ended by cw"  # type: ignore[arg-type]
    assert len(cw.bodies("/heartbeat")) >= 3
    assert cw.bodies("/finish") == []
    assert not marker.exists()


def test_a_finish_cw_refuses_as_it_is_goes_again_bare(tmp_path: Path) -> None:
    """The error holds what cw will not store (a NUL, a lone surrogate): it is escaped;
    and were the finish refused all the same, it goes again with its outcome and exit
    code alone, so the run never stays live for want of a detail."""
    work = run_work(tmp_path / "ws")

    class RefusingCw:
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []

        def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
            self.sent.append(body)
            if len(self.sent) == 1:
                raise ApiError(422, "validation_error", "no")
            return {}

    cw = RefusingCw()
    work.client = cw  # type: ignore[assignment]
    work._finish({"outcome": "failed", "exit_code": 1, "error": "bad \x00 byte \ud800"})
    first, second = cw.sent
    assert first["error"] == "bad \\x00 byte \\ud800"
    assert second == {"runner_name": "runner-1", "outcome": "failed", "exit_code": 1}
    assert work.state.ended
