"""``runner.clean``: a run's worktrees and folder go only when its run has ended, its
agent is gone, its work is committed and on origin and its output acknowledged."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import gitwork
from runner.clean import clean, clean_run, verdict
from runner.client import ApiError
from runner.config import AgentConfig, Config
from runner.gitwork import Mirror, Project
from runner.state import Checkout, RunState
from tests.runner.command import cw_runner

from .gitwork_helpers import commit_file, git, make_origin

pytestmark = pytest.mark.processes


class FakeClient:
    """cw's answer about a run: ``{"outcome": outcome}``, or ``error`` raised."""

    def __init__(self, outcome: str = "running", error: ApiError | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.calls: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        self.calls.append((method, path))
        if self.error is not None:
            raise self.error
        return {"id": path.rsplit("/", 1)[-1], "outcome": self.outcome}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def config(workspace: Path) -> Config:
    return Config(
        server="http://127.0.0.1:9",
        token="cw_test",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={"claude": AgentConfig(provider="claude", command=("true",))},
    )


@pytest.fixture
def mirror(tmp_path: Path, workspace: Path) -> Mirror:
    origin = make_origin(tmp_path)
    made = Mirror.of(workspace, Project("p-1", "app", str(origin), "main"))
    made.fetch()
    return made


def make_run(
    workspace: Path,
    mirror: Mirror,
    run_id: str,
    *,
    ended: bool = True,
    pushed: bool = True,
    dirty: bool = False,
    unshipped: bool = False,
) -> RunState:
    path = workspace / "worktrees" / run_id / "worktree"
    branch = f"cw-run-{run_id}"
    start = mirror.add_worktree(path, branch, "main")
    commit_file(path, "work.txt", f"{run_id}\n")
    if pushed:
        gitwork.publish(mirror, path, branch)
    if dirty:
        (path / "scratch.txt").write_text("not committed\n")
    folder = RunState.folder(workspace, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    spool = folder / "output.log"
    spool.write_bytes(b"one\ntwo\n")
    state = RunState(
        run_id=run_id,
        task_id="t-1",
        agent_id="a-1",
        provider="claude",
        session_number=1,
        cwd=str(path),
        checkouts=[Checkout("p-1", str(mirror.path), str(path), branch, start)],
        spool=str(spool),
        shipped=spool.stat().st_size - (3 if unshipped else 0),
        ended=ended,
    )
    state.save(workspace)
    return state


def gone(config: Config, mirror: Mirror, state: RunState) -> bool:
    path = state.checkouts[0].path
    return (
        not Path(path).exists()
        and not (config.workspace / "worktrees" / state.run_id).exists()
        and not RunState.folder(config.workspace, state.run_id).exists()
        and path not in git(mirror.path, "worktree", "list")
        and not mirror.has(f"refs/heads/{state.checkouts[0].branch}")
    )


def all_there(config: Config, state: RunState) -> bool:
    return (
        Path(state.checkouts[0].path).is_dir()
        and (RunState.folder(config.workspace, state.run_id) / "state.json").is_file()
    )


def test_an_ended_run_whose_work_is_on_origin_is_removed(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    state = make_run(workspace, mirror, "r1")
    client = FakeClient()
    found = clean_run(config, state, dry_run=False, client=client)  # type: ignore[arg-type]
    assert found.remove, found.reason
    assert found.paths == (state.checkouts[0].path, str(RunState.folder(workspace, "r1")))
    assert client.calls == []  # an ended run is not asked about
    assert gone(config, mirror, state)


def test_ignored_files_do_not_keep_a_worktree(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    state = make_run(workspace, mirror, "r1", pushed=False)
    path = Path(state.checkouts[0].path)
    commit_file(path, ".gitignore", "build/\n")
    gitwork.publish(mirror, path, state.checkouts[0].branch)
    (path / "build").mkdir()
    (path / "build" / "out.o").write_text("binary\n")
    assert clean_run(config, state, dry_run=False).remove
    assert gone(config, mirror, state)


def test_dry_run_removes_nothing(config: Config, workspace: Path, mirror: Mirror) -> None:
    state = make_run(workspace, mirror, "r1")
    found = clean_run(config, state, dry_run=True)
    assert found.remove
    assert all_there(config, state)
    assert state.checkouts[0].path in git(mirror.path, "worktree", "list")


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (None, "has not ended"),
        (FakeClient("running"), "is live"),
        (FakeClient(error=ApiError(503, "unavailable", "down")), "cannot say"),
        (FakeClient(error=ApiError(0, "unreachable", "no answer")), "cannot say"),
    ],
)
def test_a_run_not_known_to_have_ended_is_kept(
    config: Config, workspace: Path, mirror: Mirror, client: FakeClient | None, reason: str
) -> None:
    state = make_run(workspace, mirror, "r1", ended=False)
    found = clean_run(config, state, dry_run=False, client=client)  # type: ignore[arg-type]
    assert not found.remove
    assert reason in found.reason
    assert all_there(config, state)
    if client is not None:
        assert client.calls == [("GET", "/api/runs/r1")]


@pytest.mark.parametrize(
    "client", [FakeClient("succeeded"), FakeClient(error=ApiError(404, "not_found", "no run"))]
)
def test_a_run_cw_says_is_over_or_unknown_is_removed(
    config: Config, workspace: Path, mirror: Mirror, client: FakeClient
) -> None:
    state = make_run(workspace, mirror, "r1", ended=False)
    assert clean_run(config, state, dry_run=False, client=client).remove  # type: ignore[arg-type]
    assert gone(config, mirror, state)


def test_uncommitted_work_is_kept(config: Config, workspace: Path, mirror: Mirror) -> None:
    state = make_run(workspace, mirror, "r1", dirty=True)
    found = clean_run(config, state, dry_run=False)
    assert not found.remove
    assert "uncommitted" in found.reason
    assert all_there(config, state)
    assert (Path(state.checkouts[0].path) / "scratch.txt").exists()


def test_work_not_on_origin_is_kept(config: Config, workspace: Path, mirror: Mirror) -> None:
    state = make_run(workspace, mirror, "r1", pushed=False)
    found = clean_run(config, state, dry_run=False)
    assert not found.remove
    assert "on no branch of origin" in found.reason
    assert all_there(config, state)


def test_output_cw_has_not_taken_is_kept(config: Config, workspace: Path, mirror: Mirror) -> None:
    state = make_run(workspace, mirror, "r1", unshipped=True)
    found = clean_run(config, state, dry_run=False)
    assert not found.remove
    assert "output" in found.reason
    assert all_there(config, state)


@pytest.fixture
def live_group_leader() -> Iterator[int]:
    process = subprocess.Popen(
        ["sleep", "60"],  # noqa: S607
        start_new_session=True,
    )
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_a_live_agent_keeps_its_run(
    config: Config, workspace: Path, mirror: Mirror, live_group_leader: int
) -> None:
    state = make_run(workspace, mirror, "r1")
    state.pid = live_group_leader
    found = verdict(config, state)
    assert not found.remove
    assert f"pid {live_group_leader}" in found.reason
    state.boot_id = "another boot"
    assert verdict(config, state).remove  # a pid of another boot is someone else


def test_clean_judges_every_run_and_keeps_unknown_folders(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    done = make_run(workspace, mirror, "r1")
    dirty = make_run(workspace, mirror, "r2", dirty=True)
    stranger = workspace / "worktrees" / "r9"
    stranger.mkdir(parents=True)
    (stranger / "keep.txt").write_text("mine\n")
    found = {v.run_id: v for v in clean(config, None, dry_run=False)}
    assert set(found) == {"r1", "r2", "r9"}
    assert found["r1"].remove and gone(config, mirror, done)
    assert not found["r2"].remove and all_there(config, dirty)
    assert not found["r9"].remove
    assert found["r9"].paths == (str(stranger),)
    assert (stranger / "keep.txt").exists()


def test_a_workspace_without_runs(config: Config) -> None:
    assert clean(config, None, dry_run=False) == []


def clean_dry_run(tmp_path: Path, config: Config) -> subprocess.CompletedProcess[str]:
    """``cw-runner --config runner.toml clean --dry-run`` on ``config``'s workspace."""
    toml = tmp_path / "runner.toml"
    toml.write_text(
        f'server = "{config.server}"\ntoken = "t"\nworkspace = "{config.workspace}"\n'
        '[agents.claude]\ncommand = ["true"]\n'
    )
    return cw_runner("--config", str(toml), "clean", "--dry-run")


def test_the_command_line_dry_run(
    tmp_path: Path, config: Config, workspace: Path, mirror: Mirror
) -> None:
    done = make_run(workspace, mirror, "r1")
    make_run(workspace, mirror, "r2", dirty=True)
    ran = clean_dry_run(tmp_path, config)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    removed = [line for line in lines if line.startswith("would remove")]
    kept = [line for line in lines if line.startswith("keep")]
    assert len(removed) == 2 and len(kept) == 2 and len(lines) == 4
    assert any(done.checkouts[0].path in line for line in removed)
    assert all("uncommitted" in line for line in kept)
    assert all_there(config, done)  # a dry run


def test_a_worktree_git_will_not_remove_is_kept_with_the_reason(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    locked = make_run(workspace, mirror, "r1")
    git(mirror.path, "worktree", "lock", locked.checkouts[0].path)
    other = make_run(workspace, mirror, "r2")
    found = {v.run_id: v for v in clean(config, None, dry_run=False)}
    assert not found["r1"].remove
    assert "locked" in found["r1"].reason
    assert all_there(config, locked)
    assert found["r2"].remove and gone(config, mirror, other)  # the others still go


def test_a_state_file_of_another_version_does_not_stop_clean(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    state = make_run(workspace, mirror, "r1")
    path = RunState.folder(workspace, "r1") / "state.json"
    path.write_text(path.read_text().replace('"ended"', '"from_the_future": 1, "ended"'))
    assert RunState.load(workspace, "r1") is None
    found = clean(config, None, dry_run=False)
    assert [(v.run_id, v.remove) for v in found] == [("r1", False)]
    assert all_there(config, state)


def test_the_command_line_on_an_empty_workspace_says_so(
    tmp_path: Path, config: Config, workspace: Path
) -> None:
    ran = clean_dry_run(tmp_path, config)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"nothing to clean in {workspace}"


def test_a_resumed_runs_worktree_survives_the_clean_of_its_predecessor(
    config: Config, workspace: Path, mirror: Mirror
) -> None:
    """R1 was resumed as R2, which works in R1's folder: R1's record is over and lets its
    worktrees go, but cleaning it removes nothing R2 holds (even with R2's run not
    known to have ended: cw cannot be asked here)."""
    first = make_run(workspace, mirror, "r1", dirty=True)
    second = RunState(
        **{
            **first.__dict__,
            "run_id": "r2",
            "ended": False,
            "spool": str(RunState.folder(workspace, "r2") / "output.log"),
        }
    )
    second.save(workspace)
    first.checkouts, first.ended = [], True
    first.save(workspace)
    found = {v.run_id: v for v in clean(config, None, dry_run=False)}
    assert found["r1"].remove  # its own folder goes
    assert not found["r2"].remove
    assert (Path(second.cwd) / "scratch.txt").read_text() == "not committed\n"
