"""cw-runner as a team runs it, for tests: a bare git origin, a plan made through the
API of a gunicorn-served scratch database, and ``cw-runner`` processes (the real
console script's module, ``python -m runner``) whose agent is ``fake_agent.py``.

The fake agent appends every line it prints to a trace file of its run
(``FAKE_AGENT_TRACE``, per run through the runner's ``{run_id}`` placeholder), so a test
can compare what was printed with what cw logged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.serverprocess import ScratchDatabase, Server, make_tokens, ok

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def git(*arguments: str, cwd: Path) -> str:
    done = subprocess.run(  # noqa: S603
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *arguments],  # noqa: S607
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def make_origin(directory: Path) -> Path:
    """A bare repository with one commit on ``main``: the project's origin."""
    origin = directory / "origin.git"
    seed = directory / "seed"
    origin.mkdir(parents=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", cwd=origin)
    seed.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    (seed / "README").write_text("the project\n")
    git("add", "README", cwd=seed)
    git("commit", "--quiet", "-m", "init", cwd=seed)
    git("push", "--quiet", str(origin), "main", cwd=seed)
    return origin


def the_log(server: Server, token: str, agent_id: str) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    after = 0
    while True:
        page = ok(server, "GET", f"/api/agents/{agent_id}/logs?after={after}&limit=1000", token)
        chunks += page["items"]
        if not page["more"]:
            return chunks
        after = page["next_after"]


@dataclass
class Plan:
    initiative_id: str
    project_id: str
    branch: str
    tasks: dict[str, str]  # name -> id
    tokens: dict[str, str]

    @property
    def lead(self) -> str:
        return self.tokens["lead"]


def make_plan(
    database: ScratchDatabase,
    server: Server,
    origin: Path,
    runners: list[str],
    tasks: dict[str, tuple[str, list[str]]],
    *,
    accounts: int = 2,
    max_attempts: int = 3,
) -> Plan:
    """An initiative on ``origin`` with one phase of ``tasks`` (name: (description, the
    names it depends on)), ``accounts`` accounts of provider ``claude`` (run by the fake
    agent), plan approved."""
    tokens = make_tokens(database, runners, lead="lead")
    lead = tokens["lead"]
    project = ok(
        server,
        "POST",
        "/api/projects",
        lead,
        {"name": "demo", "url": f"file://{origin}", "default_branch": "main"},
    )
    initiative = ok(
        server,
        "POST",
        "/api/initiatives",
        lead,
        {"name": "Runner plan", "branch": "cw/plan", "execution_mode": "yolo"},
    )
    ok(
        server,
        "PUT",
        f"/api/initiatives/{initiative['id']}/projects",
        lead,
        {"project_ids": [project["id"]]},
    )
    database.manage(
        "shell",
        "-c",
        "from core.models import Initiative\n"
        f"Initiative.objects.filter(pk={initiative['id']!r}).update("
        f"max_attempts={max_attempts}, retry_backoff_seconds=0)\n",
    )
    phase = ok(server, "POST", f"/api/initiatives/{initiative['id']}/phases", lead, {"name": "Do"})
    ids: dict[str, str] = {}
    for name, (description, _) in tasks.items():
        body = {"name": name, "description": description}
        ids[name] = ok(server, "POST", f"/api/phases/{phase['id']}/tasks", lead, body)["id"]
    for name, (_, needs) in tasks.items():
        for need in needs:
            ok(
                server,
                "POST",
                f"/api/tasks/{ids[name]}/dependencies",
                lead,
                {"depends_on_id": ids[need]},
            )
    for number in range(accounts):
        ok(
            server,
            "POST",
            "/api/accounts",
            lead,
            {"email": f"a{number}@x.test", "provider": "claude"},
        )
    ok(server, "POST", f"/api/phases/{phase['id']}/approve-plan", lead)
    return Plan(initiative["id"], project["id"], "cw/plan", ids, tokens)


@dataclass
class RunnerProcess:
    name: str
    config: Path
    workspace: Path
    log: Path
    traces: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> RunnerProcess:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "runner", "--config", str(self.config)],
                cwd=REPOSITORY_ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("CW_")},
            )
        return self

    def restart(self) -> RunnerProcess:
        self.restarts += 1
        return self.start()

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def runner_process(
    directory: Path,
    server: Server,
    name: str,
    token: str,
    *,
    concurrency: int = 1,
    heartbeat_seconds: float = 0.5,
    grace_seconds: float = 30,
    resume: bool = True,
) -> RunnerProcess:
    """A runner's configuration (``runner.toml``) and workspace under ``directory``."""
    home = directory / name
    home.mkdir(parents=True, exist_ok=True)
    traces = directory / "traces"
    traces.mkdir(exist_ok=True)
    agent = [sys.executable, str(FAKE_AGENT), "--prompt-file", "{prompt_file}"]
    lines = [
        f"server = {json.dumps(server.url)}",
        f"token = {json.dumps(token)}",
        f"name = {json.dumps(name)}",
        f"workspace = {json.dumps(str(home / 'workspace'))}",
        f"concurrency = {concurrency}",
        f"heartbeat_seconds = {heartbeat_seconds}",
        "heartbeat_timeout_seconds = 10",
        "wait_seconds = 1",
        "log_flush_seconds = 0.2",
        f"grace_seconds = {grace_seconds}",
        "",
        "[agents.claude]",  # the fake agent, run as Claude Code
        f"command = {json.dumps(agent)}",
    ]
    if resume:
        lines.append(f"resume = {json.dumps([*agent, '--resume', '{session_id}'])}")
    lines += [
        'format = "claude-stream-json"',
        f"env = {{ FAKE_AGENT_TRACE = {json.dumps(str(traces / '{run_id}.jsonl'))} }}",
    ]
    config = home / "runner.toml"
    config.write_text("\n".join(lines) + "\n")
    return RunnerProcess(name, config, home / "workspace", home / "runner.log", traces)


def trace(traces: Path, run_id: str) -> list[dict[str, Any]]:
    path = traces / f"{run_id}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@dataclass
class Answerer:
    """Answers every question agents ask, from the event feed, as the lead."""

    server: Server
    token: str
    answered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Answerer:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        after = 0
        while not self.stop.is_set():
            status, page, _ = self.server.call(
                "GET", f"/api/events?after={after}&limit=500", token=self.token
            )
            if status != 200:
                self.errors.append(f"{status} {page}")
                self.stop.wait(0.5)
                continue
            for event in page["items"]:
                if event["kind"] == "question.asked":
                    answer = f"answer to {event['subject_id']}"
                    status, body, _ = self.server.call(
                        "POST",
                        f"/api/conversations/{event['subject_id']}/answer",
                        token=self.token,
                        body={"answer": answer},
                    )
                    if status == 200:
                        self.answered.append(event["subject_id"])
                    else:
                        self.errors.append(f"{status} {body}")
            if page["items"]:
                after = page["next_after"]
            self.stop.wait(0.2)


def wait_until(what: str, check: Any, seconds: float, *processes: RunnerProcess) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        for runner in processes:
            assert runner.process is not None
            if runner.process.poll() is not None:
                raise AssertionError(
                    f"{runner.name} exited with {runner.process.returncode} while waiting for "
                    f"{what}:\n{runner.output[-3000:]}"
                )
        if time.monotonic() > deadline:
            details = "\n".join(f"--- {r.name}\n{r.output[-3000:]}" for r in processes)
            raise AssertionError(f"no {what} after {seconds} s\n{details}")
        time.sleep(0.2)
