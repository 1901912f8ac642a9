"""The fake Claude Code CLI (``tests/runner/fake_agent.py``) that the runner's tests start:
it runs in a scratch git repository, prints records ``agents.logformat`` reads, commits
what it writes, crashes, resumes and traces as its directives say."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agents.logformat import parse_chunk

pytestmark = pytest.mark.processes

SCRIPT = Path(__file__).with_name("fake_agent.py")
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603  (git, with arguments the test chose)
        [*GIT, *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git checkout on a branch with one commit, as a run's worktree is."""
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    git(worktree, "init", "-q", "-b", "work")
    (worktree / "README").write_text("scratch\n")
    git(worktree, "add", "README")
    git(worktree, "commit", "-q", "-m", "initial")
    return worktree


def environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {**env, **extra}


def fake(repo: Path, prompt: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    prompt_file = repo.parent / "prompt.md"
    prompt_file.write_text(prompt)
    return subprocess.run(  # noqa: S603  (our own script, with arguments we chose)
        [sys.executable, str(SCRIPT), "--prompt-file", str(prompt_file), *args],
        cwd=repo,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_its_records_are_what_cw_reads(repo: Path) -> None:
    prompt = (
        "Do the thing.\n"
        "FAKE: say hello, world\n"
        "  not a directive: FAKE in the middle\n"
        "FAKE: write notes/a.txt hé  there\n"
        "FAKE: tokens 1000\n"
    )
    run = fake(repo, prompt, "-p", "--output-format", "stream-json", "--verbose")
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("\n")
    lines = records(run.stdout)
    session_id = lines[0]["session_id"]
    assert lines[0]["type"] == "system" and lines[0]["subtype"] == "init"
    assert lines[0]["model"] == "fake-model-1" and lines[0]["cwd"] == str(repo)
    assert lines[-1]["type"] == "result"
    assert all(line["session_id"] == session_id for line in lines)

    messages = [line["message"] for line in lines if line["type"] == "assistant"]
    assert len({message["id"] for message in messages}) == len(messages) == 3
    assert all(message["model"] == "fake-model-1" for message in messages)
    assert messages[2]["usage"] == {
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    result = lines[-1]
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["usage"]["input_tokens"] == 1020
    assert result["usage"]["output_tokens"] == 510
    assert result["num_turns"] == 3
    assert result["total_cost_usd"] > 0
    assert "wrote notes/a.txt" in result["result"]

    parsed = parse_chunk(run.stdout)
    assert [record["kind"] for record in parsed] == [
        "system",
        "assistant_text",
        "tool_call",
        "tool_result",
        "assistant_text",
        "result",
    ]
    assert parsed[1]["text"] == "hello, world"
    assert parsed[2]["tool"] == "Write"
    assert parsed[2]["summary"] == str(repo / "notes" / "a.txt")
    assert parsed[5]["is_error"] is False


def test_write_commits_the_file(repo: Path) -> None:
    run = fake(repo, "FAKE: write notes/a.txt hé  there\nFAKE: write b.txt two\n")
    assert run.returncode == 0, run.stderr
    assert (repo / "notes" / "a.txt").read_text(encoding="utf-8") == "hé  there\n"
    assert git(repo, "log", "--format=%s", "-3").splitlines() == [
        "fake: b.txt",
        "fake: notes/a.txt",
        "initial",
    ]
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "work"


def test_a_crash_exits_with_its_code(repo: Path) -> None:
    run = fake(repo, "FAKE: say before\nFAKE: crash 7\nFAKE: say never\n")
    assert run.returncode == 7
    assert run.stderr == "fake agent crashing with 7\n"
    kinds = [record["kind"] for record in parse_chunk(run.stdout)]
    assert kinds == ["system", "assistant_text"]  # no result


def test_crash_once_then_resume_keeps_the_session(repo: Path) -> None:
    prompt = "FAKE: write a.txt one\nFAKE: crash-once 9\nFAKE: say after\n"
    first = fake(repo, prompt)
    assert first.returncode == 9
    session_id = records(first.stdout)[0]["session_id"]

    second = fake(repo, prompt, "--resume", session_id)
    assert second.returncode == 0, second.stderr
    lines = records(second.stdout)
    assert {line["session_id"] for line in lines} == {session_id}
    texts = [r.get("text") for r in parse_chunk(second.stdout) if r["kind"] == "assistant_text"]
    assert texts == [f"resumed session {session_id}", "after"]
    assert lines[-1]["type"] == "result" and lines[-1]["session_id"] == session_id
    # The write ran again with the same text: nothing more to commit.
    assert git(repo, "log", "--format=%s").splitlines() == ["fake: a.txt", "initial"]


def test_plain_stderr_lines_and_the_trace(repo: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    prompt = "FAKE: stderr plain words\nFAKE: lines 25\nFAKE: sleep 0.05\nFAKE: say end\n"
    run = fake(repo, prompt, FAKE_AGENT_TRACE=str(trace))
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == ["plain words"] + [f"plain {i} of 25" for i in range(1, 26)]
    texts = [r.get("text") for r in parse_chunk(run.stdout) if r["kind"] == "assistant_text"]
    assert texts == [f"line {i} of 25" for i in range(1, 26)] + ["end"]

    traced = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert all(entry["newline"] for entry in traced)
    for stream, output in (("stdout", run.stdout), ("stderr", run.stderr)):
        assert [e["text"] for e in traced if e["stream"] == stream] == output.splitlines()
    # The stderr lines come in tens, after every tenth assistant text (and the last).
    order = [(e["stream"], e["text"]) for e in traced]
    tenth = order.index(
        ("stdout", next(line for line in run.stdout.splitlines() if "line 10 " in line))
    )
    assert order[tenth + 1 : tenth + 11] == [("stderr", f"plain {i} of 25") for i in range(1, 11)]


def test_partial_splits_a_line_and_ends_without_a_newline(repo: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    prompt_file = tmp_path / "prompt.md"
    # The sleep lets this test catch up and wait in a read when the first piece comes.
    prompt_file.write_text("FAKE: say first\nFAKE: sleep 0.5\nFAKE: partial\n")
    process = subprocess.Popen(  # noqa: S603  (our own script, with arguments we chose)
        [sys.executable, str(SCRIPT), "--prompt-file", str(prompt_file)],
        cwd=repo,
        env=environment(FAKE_AGENT_TRACE=str(trace)),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    received, ends = b"", []
    while piece := os.read(process.stdout.fileno(), 65536):
        received += piece
        ends.append(received.rsplit(b"\n", 1)[-1])
    assert b'{"type":"assistant",' in ends  # a read got the first piece alone
    assert process.wait(timeout=30) == 0
    output = received.decode()
    assert not output.endswith("\n")
    lines = records(output)
    assert [line["type"] for line in lines] == ["system", "assistant", "assistant", "result"]
    traced = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [e["text"] for e in traced] == output.split("\n")
    assert [e["newline"] for e in traced] == [True, True, True, False]


def test_hang_ends_on_sigterm(repo: Path, tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text("FAKE: say waiting\nFAKE: hang\nFAKE: say never\n")
    process = subprocess.Popen(  # noqa: S603  (our own script, with arguments we chose)
        [sys.executable, str(SCRIPT), "--prompt-file", str(prompt_file)],
        cwd=repo,
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["type"] == "system"
    assert "waiting" in process.stdout.readline()
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.3)
    process.terminate()
    assert process.wait(timeout=10) == -signal.SIGTERM
    assert process.stdout.read() == ""


@pytest.mark.parametrize(
    "directive",
    ["FAKE: dance", "FAKE: crash x", "FAKE: lines -1", "FAKE: sleep soon", "FAKE: write /a x"],
)
def test_a_bad_directive_is_refused_before_anything(repo: Path, directive: str) -> None:
    run = fake(repo, f"FAKE: say hi\n{directive}\n")
    assert run.returncode == 2
    assert run.stdout == ""
    assert "prompt line 2" in run.stderr


# --- ask, against a stand-in for cw's conversation endpoints -----------------------------


class Conversations(BaseHTTPRequestHandler):
    """``POST /api/conversations``, ``GET /api/conversations/{id}`` (answered on the
    ``answer_on``-th read) and an agent ``agent2`` named ``bob``."""

    answer_on: int  # the read that finds the answer
    asked: list[dict[str, Any]]
    reads: list[str]
    headers_seen: list[str]

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.headers_seen.append(self.headers.get("Authorization", ""))
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        if self.path != "/api/conversations":
            self._reply(404, {"code": "not_found"})
            return
        self.asked.append(body)
        self._reply(201, {"id": "c1", "status": "pending", "answer": None, **body})

    def do_GET(self) -> None:
        if self.path in ("/api/agents/agent2", "/api/agents/by-name/bob"):
            self._reply(200, {"id": "agent2", "name": "bob"})
            return
        if self.path != "/api/conversations/c1":
            self._reply(404, {"code": "conversation_not_found"})
            return
        self.reads.append(self.path)
        if len(self.reads) < self.answer_on:
            self._reply(200, {"id": "c1", "status": "pending", "answer": None})
        else:
            self._reply(200, {"id": "c1", "status": "answered", "answer": "docs/design.md"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Conversations]]]:
    handler = type(
        "Handler", (Conversations,), {"answer_on": 2, "asked": [], "reads": [], "headers_seen": []}
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ask_waits_for_the_answer(repo: Path, server: tuple[str, type[Conversations]]) -> None:
    url, handler = server
    run = fake(
        repo,
        "FAKE: ask Which file holds the design?\n",
        CW_SERVER=url,
        CW_RUN_TOKEN="cw_secret",
        CW_AGENT_ID="agent1",
        CW_TASK_ID="task1",
    )
    assert run.returncode == 0, run.stderr
    assert handler.asked == [
        {
            "from_agent_id": "agent1",
            "to_agent_id": "agent1",
            "question": "Which file holds the design?",
            "task_id": "task1",
        }
    ]
    assert handler.headers_seen == ["Bearer cw_secret"]
    texts = [r.get("text") for r in parse_chunk(run.stdout) if r["kind"] == "assistant_text"]
    assert texts == ["answer: docs/design.md"]


def test_ask_gives_up_when_refused(repo: Path, server: tuple[str, type[Conversations]]) -> None:
    url, _handler = server
    run = fake(
        repo,
        "FAKE: ask @nobody where?\n",
        CW_SERVER=url,
        CW_RUN_TOKEN="cw_secret",
        CW_AGENT_ID="agent1",
    )
    assert run.returncode == 3
    assert "asking failed" in run.stderr
    assert records(run.stdout)[-1]["type"] == "system"  # no result


def test_ask_an_agent_by_name(repo: Path, server: tuple[str, type[Conversations]]) -> None:
    url, handler = server
    run = fake(
        repo,
        "FAKE: ask @bob Which file?\nFAKE: ask @agent2 And which line?\n",
        CW_SERVER=url + "/api",
        CW_RUN_TOKEN="cw_secret",
        CW_AGENT_ID="agent1",
    )
    assert run.returncode == 0, run.stderr
    assert [(q["to_agent_id"], q["question"]) for q in handler.asked] == [
        ("agent2", "Which file?"),
        ("agent2", "And which line?"),
    ]
    assert "task_id" not in handler.asked[0]


def test_ask_gives_up_after_its_timeout(
    repo: Path, server: tuple[str, type[Conversations]]
) -> None:
    url, handler = server
    handler.answer_on = 10**6
    run = fake(
        repo,
        "FAKE: ask Anyone?\nFAKE: say never\n",
        CW_SERVER=url,
        CW_RUN_TOKEN="cw_secret",
        CW_AGENT_ID="agent1",
        FAKE_AGENT_ASK_TIMEOUT="1",
    )
    assert run.returncode == 3
    assert "no answer to conversation c1" in run.stderr
    assert 2 <= len(handler.reads) <= 4
    assert [line["type"] for line in records(run.stdout)] == ["system"]
