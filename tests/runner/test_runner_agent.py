"""``runner.agent``: the agent's environment, its credentials on disk, its process group;
and ``runner.loop.Runner``'s workspace lock, signals and a refusal no retry cures."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner import agent
from runner.client import ApiError
from runner.config import AgentConfig, Config
from runner.loop import Runner, RunnerError


def test_the_runners_secrets_never_reach_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CW_RUNNER_TOKEN", "CW_RUN_TOKEN", "CW_SERVER", "CW_AGENT_ID", "CW_TASK_ID"):
        monkeypatch.setenv(name, "inherited")
    monkeypatch.setenv("HOME_LIKE", "kept")
    env = agent.environment({"CW_RUN_TOKEN": "the run's", "EXTRA": "1"})
    assert "CW_RUNNER_TOKEN" not in env
    assert env["CW_RUN_TOKEN"] == "the run's"
    assert "CW_SERVER" not in env and "CW_AGENT_ID" not in env and "CW_TASK_ID" not in env
    assert env["HOME_LIKE"] == "kept" and env["EXTRA"] == "1"


def test_credentials_are_private_files(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "credentials"
    agent.write_credentials(folder, {"credentials": '{"token": 1}', "config_json": "", "x": "y"})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = folder / ".credentials.json"
    assert written.read_text() == '{"token": 1}'
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [".credentials.json"]
    agent.remove_credentials(folder)
    assert not folder.exists()


def test_alive_without_a_pid_or_of_another_boot() -> None:
    assert not agent.alive(None)
    assert not agent.alive(0)
    assert not agent.alive(os.getpid(), "not this boot")


@pytest.mark.processes
def test_stop_group_ends_the_agent_and_its_children(tmp_path: Path) -> None:
    spool = tmp_path / "output.log"
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"  # it will need a SIGKILL
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = agent.start(
        [sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ), spool=spool
    )
    deadline = time.monotonic() + 10
    while not spool.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(spool.read_text().split()[0])
    assert agent.alive(process.pid, agent.boot_id())
    assert os.getpgid(child) == process.pid
    started = time.monotonic()
    agent.stop_group(process.pid, grace=0.5, process=process)
    assert time.monotonic() - started < 5
    assert process.returncode == -signal.SIGKILL
    assert not agent.alive(process.pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # A zombie (its parent is gone, init reaps it) counts as ended.
        if "Z" in subprocess.run(  # noqa: S603
            ["ps", "-o", "stat=", "-p", str(child)],  # noqa: S607
            capture_output=True, text=True, check=False,
        ).stdout:  # fmt: skip
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the agent's child {child} outlived its group")


def config(workspace: Path) -> Config:
    return Config(
        server="http://cw.invalid",
        token="t",
        name="runner-1",
        host="box",
        workspace=workspace,
        agents={"claude": AgentConfig("claude", ("claude",))},
        grace_seconds=1,
    )


def test_one_runner_per_workspace(tmp_path: Path) -> None:
    first = Runner(config(tmp_path), client=object())  # type: ignore[arg-type]
    first.lock_workspace()
    with pytest.raises(RunnerError, match="another cw-runner"):
        Runner(config(tmp_path), client=object()).lock_workspace()  # type: ignore[arg-type]


def test_a_first_signal_drains_a_second_stops(tmp_path: Path) -> None:
    runner = Runner(config(tmp_path), client=object())  # type: ignore[arg-type]
    runner.on_signal(signal.SIGTERM, None)
    assert runner.draining.is_set() and not runner.stop_now.is_set()
    runner.on_signal(signal.SIGINT, None)
    assert runner.stop_now.is_set()


class Refusing:
    def __init__(self, error: ApiError) -> None:
        self.error = error
        self.bodies: list[Any] = []

    def take_next(self, body: dict[str, Any], wait: float) -> Any:
        self.bodies.append(body)
        raise self.error


def test_a_refusal_no_retry_cures_stops_the_runner(tmp_path: Path) -> None:
    client = Refusing(ApiError(401, "unauthorized", "bad token"))
    runner = Runner(config(tmp_path), client=client)  # type: ignore[arg-type]
    runner._slot(0)  # returns instead of looping
    assert runner.fatal is not None and "bad token" in runner.fatal
    assert runner.draining.is_set()
    assert client.bodies == [
        {
            "runner_name": "runner-1",
            "runner_host": "box",
            "providers": ["claude"],
            "heartbeat_timeout_seconds": 120,
        }
    ]


@pytest.mark.processes
def test_what_an_exited_agent_left_running_in_its_group_is_stopped(tmp_path: Path) -> None:
    """The agent exits but a child it started keeps the spool open: the runner stops the
    rest of the group, so nothing writes after the run has ended."""
    import sys
    import time

    from runner import agent as agent_module

    marker = tmp_path / "child.pid"
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
    )
    spool = tmp_path / "out.log"
    process = agent_module.start([sys.executable, "-c", script], cwd=tmp_path, env={}, spool=spool)
    assert process.wait(timeout=20) == 0
    child = int(marker.read_text())
    assert agent_module.group_exists(process.pid)
    agent_module.stop_leftovers(process.pid)
    deadline = time.monotonic() + 10
    while agent_module.group_exists(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not agent_module.group_exists(process.pid)
    try:
        os.kill(child, 0)
        with open(f"/proc/{child}/stat") as stat:  # reaped by init, or a zombie at most
            assert stat.read().split(") ")[1][0] == "Z"
    except ProcessLookupError:
        pass


@pytest.mark.processes
def test_the_runner_makes_itself_undumpable_so_agents_cannot_read_its_token() -> None:
    """An agent runs as the runner's user: ``/proc/<runner>/environ`` would show it the
    runner's token. ``hide_from_agents`` turns the process undumpable (those files become
    root's), which ``PR_GET_DUMPABLE`` tells."""
    code = (
        "import ctypes, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from runner.agent import hide_from_agents\n"
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(3, 0, 0, 0, 0)\n"
        "took = hide_from_agents()\n"
        "print(before, took, libc.prctl(3, 0, 0, 0, 0))\n"
    )
    done = subprocess.run(  # noqa: S603  (this Python, code the test wrote)
        [sys.executable, "-c", code, str(Path(__file__).resolve().parents[2])],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.split() == ["1", "True", "0"]


@pytest.mark.processes
def test_a_pid_is_the_agent_only_with_its_start_time(tmp_path: Path) -> None:
    """After a restart, a recorded pid names the agent only if the process there started
    when the agent did: a reused pid (another group leader) is never stopped."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        started = agent.start_time(process.pid)
        assert started
        assert agent.alive(process.pid, agent.boot_id(), started)
        assert not agent.alive(process.pid, agent.boot_id(), str(int(started) + 1))
        assert not agent.alive(process.pid, "another boot", started)
        assert not agent.leftovers(process.pid, agent.boot_id())  # its leader lives
    finally:
        process.kill()
        process.wait()
    assert not agent.alive(process.pid, agent.boot_id(), started)
