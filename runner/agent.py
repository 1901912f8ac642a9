"""The agent's process: started in its own process group with the run's environment and
the account's credentials in a private folder, its output to the run's spool file,
stopped as a group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Variables of the runner that never reach an agent (its own token above all).
PRIVATE_PREFIXES = ("CW_RUNNER_", "CW_RUN_", "CW_SERVER", "CW_AGENT_", "CW_TASK_")
PR_SET_DUMPABLE = 4
CREDENTIAL_FILES = {"credentials": ".credentials.json", "config_json": ".claude.json"}


def hide_from_agents() -> bool:
    """Make this process undumpable (Linux ``prctl(PR_SET_DUMPABLE, 0)``): its
    ``/proc/<pid>/environ`` and memory, which hold the runner's token, become unreadable
    to the agents it starts (same user) and it cannot be ptraced by them. Whether it
    took; elsewhere nothing happens."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def boot_id() -> str:
    """This boot of the machine (a pid from another boot names another process)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def write_credentials(folder: Path, account: Mapping[str, object]) -> None:
    """The account's secrets as files in ``folder`` (mode 0700, files 0600)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for field, filename in CREDENTIAL_FILES.items():
        value = account.get(field)
        if isinstance(value, str) and value:
            path = folder / filename
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(value)


def remove_credentials(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_PREFIXES)}
    return {**base, **extra}


def start(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], spool: Path
) -> subprocess.Popen[bytes]:
    """Start the agent in a new session (its own process group), stdin closed, stdout and
    stderr appended to ``spool`` through one open file (so their lines keep their order)."""
    with open(spool, "ab") as output:
        return subprocess.Popen(  # noqa: S603
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )


def start_time(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot (/proc); "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int | None, recorded_boot: str | None = None, started: str = "") -> bool:
    """Whether ``pid`` is a live process of this boot still leading its group (and, with
    ``started``, the very process that started then: a reused pid is another)."""
    if not pid or (recorded_boot and recorded_boot != boot_id()):
        return False
    if started and start_time(pid) not in ("", started):
        return False
    try:
        os.kill(pid, 0)
        if os.getpgid(pid) != pid:
            return False
    except (ProcessLookupError, PermissionError):
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped (where /proc tells)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][:1] == "Z"
    except (OSError, IndexError):
        return False


def stop_group(
    pid: int, *, grace: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        elif not alive(pid):
            break
        time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def leftovers(pid: int | None, recorded_boot: str | None = None) -> bool:
    """Whether a process group ``pid`` of this boot lives on without its leader: what an
    exited agent left. (Linux reuses no pid still naming a group, so such a group is the
    agent's own.)"""
    if not pid or (recorded_boot and recorded_boot != boot_id()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return group_exists(pid)
    except PermissionError:
        return False
    return _zombie(pid) and group_exists(pid)


def group_exists(pid: int) -> bool:
    """Whether a process of group ``pid`` still runs (a zombie waiting to be reaped does
    not count), read from /proc where there is one."""
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pid) and fields[0] != "Z":
            return True
    return False


def stop_leftovers(pid: int, grace: float = 2.0) -> None:
    """The agent has exited: stop what is left of its process group (children it
    started), SIGTERM then SIGKILL after ``grace`` seconds."""
    if not group_exists(pid):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, number)
