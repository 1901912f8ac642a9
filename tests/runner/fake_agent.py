#!/usr/bin/env python3
"""A fake Claude Code CLI for tests of cw's agent runner: standard library only, run as
``python tests/runner/fake_agent.py --prompt-file PATH [--resume SESSION_ID]`` in a git
worktree (its working directory).

It prints what ``claude -p --output-format stream-json --verbose`` prints, one complete
JSON record a line (the records ``agents.logformat`` reads): a ``system``/``init`` record
first, ``assistant`` messages (``text`` and ``tool_use`` blocks, each message with its
``id``, ``model`` and ``usage``), ``user`` records with ``tool_result`` blocks, and a
final ``result``. What it does is said by the prompt file's directives, lines starting
with ``FAKE:`` (leading blanks allowed; every other line is ignored), run in order:

``FAKE: write <relpath> <text...>``
    Write ``text`` and a newline to ``relpath`` (inside the worktree), ``git add`` it and
    commit it as ``fake: <relpath>`` (nothing to commit when it holds that already);
    prints a ``Write`` tool call and its tool result.
``FAKE: say <text...>``
    An assistant text record.
``FAKE: stderr <text...>``
    The text as a plain line on stderr.
``FAKE: lines <N>``
    N assistant texts ``line i of N``, and N plain stderr lines ``plain i of N``, these
    in batches of ten after every tenth assistant text (and the last).
``FAKE: sleep <seconds>``
    Sleep (a float).
``FAKE: tokens <N>``
    An assistant text ``tokens N`` whose usage has ``input_tokens`` N and
    ``output_tokens`` N // 2.
``FAKE: ask [@<agent>] <question...>``
    Ask an agent through cw's API (``POST /api/conversations`` from ``CW_AGENT_ID``, with
    ``task_id`` ``CW_TASK_ID``) and poll ``GET /api/conversations/{id}`` until it is
    answered (a plain stderr line ``fake agent: asked conversation <id>`` says which);
    then an assistant text ``answer: <answer>``. A conversation is always
    between two agents (never a person): the question goes to ``@<agent>`` (an agent's
    id or name) when given, else to the asking agent itself (``CW_AGENT_ID``), where a
    test finds it with ``GET /api/agents/{id}/questions`` and answers it with ``POST
    /api/conversations/{id}/answer``. A poll that fails without a 4xx answer (server
    away, 5xx) is tried again; gives up after ``FAKE_AGENT_ASK_TIMEOUT`` seconds (120)
    or on a refusal (4xx, or a missing ``CW_SERVER``/``CW_RUN_TOKEN``/``CW_AGENT_ID``):
    exit 3.
``FAKE: crash <code>``
    A plain stderr line ``fake agent crashing with <code>``, then exit with ``code``.
``FAKE: crash-once <code>``
    The same, in a first session only (no ``--resume``); a resumed one goes on.
``FAKE: hang``
    Sleep forever (no signal handler: SIGTERM ends it).
``FAKE: partial``
    An assistant text record written in two pieces (``{"type":"assistant",`` then the
    rest) with a flush and 0.2 s between; when it is the last directive, the output's
    last line (the result) has no trailing newline.

Other command-line arguments (Claude Code's ``-p``, ``--output-format`` …) are ignored.
A resumed session (``--resume ID``) keeps ``ID`` as its session id and says ``resumed
session ID`` first; it runs the directives again from the start. Exit codes: 0 done (after
the ``result`` record), 2 a bad command line, prompt file or directive (nothing printed on
stdout), 3 ``ask`` failed or timed out, 4 ``git`` failed in ``write``, else a crash's code.

With ``FAKE_AGENT_TRACE`` set to a path, every line printed is also appended there as one
JSON line ``{"stream": "stdout"|"stderr", "text": <the line, without its newline>,
"newline": <whether one was printed>}``, after it is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

MODEL = "fake-model-1"
TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "TodoWrite"]
#: The usage of an assistant message unless a directive says otherwise.
DEFAULT_USAGE = {"input_tokens": 10, "output_tokens": 5}
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
#: Dollars a token (input, output), for ``total_cost_usd``.
INPUT_PRICE = 3e-6
OUTPUT_PRICE = 15e-6
GIT_CONFIG = [
    *("-c", "user.name=fake-agent"),
    *("-c", "user.email=fake-agent@example.invalid"),
    *("-c", "commit.gpgsign=false"),
]
ASK_TIMEOUT_SECONDS = 120.0
ASK_POLL_SECONDS = 0.5
HTTP_TIMEOUT_SECONDS = 10.0

EXIT_USAGE = 2
EXIT_ASK = 3
EXIT_GIT = 4

#: Each directive's verb and the fewest words of arguments it takes.
VERBS = {
    "write": 2,
    "say": 1,
    "stderr": 0,
    "lines": 1,
    "sleep": 1,
    "tokens": 1,
    "ask": 1,
    "crash": 1,
    "crash-once": 1,
    "hang": 0,
    "partial": 0,
}


class UsageError(Exception):
    """A bad command line, prompt file or directive."""


class Stop(Exception):
    """End the session now with ``code`` (the message already said why)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Directive:
    verb: str
    rest: str  # everything after the verb, as written (one blank after the verb removed)
    line: int

    def words(self) -> list[str]:
        return self.rest.split()


# --- directives ------------------------------------------------------------------------------


def parse_directives(prompt: str) -> list[Directive]:
    """The prompt's ``FAKE:`` lines, checked; ``UsageError`` names a bad one."""
    directives = []
    for number, raw in enumerate(prompt.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("FAKE:"):
            continue
        body = line.removeprefix("FAKE:").strip()
        verb, _, rest = body.partition(" ")
        directive = Directive(verb=verb, rest=rest.strip(), line=number)
        check(directive)
        directives.append(directive)
    return directives


def check(directive: Directive) -> None:
    verb, words = directive.verb, directive.words()
    where = f"prompt line {directive.line}: FAKE: {verb}"
    if verb not in VERBS:
        raise UsageError(f"{where}: unknown directive (known: {', '.join(VERBS)})")
    if len(words) < VERBS[verb]:
        raise UsageError(f"{where}: missing arguments")
    if verb in ("hang", "partial") and words:
        raise UsageError(f"{where}: takes no arguments")
    if verb in ("lines", "tokens") and (len(words) != 1 or not words[0].isdigit()):
        raise UsageError(f"{where}: needs one whole number >= 0")
    if verb in ("crash", "crash-once") and not (
        len(words) == 1 and words[0].isdigit() and 0 <= int(words[0]) <= 255
    ):
        raise UsageError(f"{where}: needs an exit code from 0 to 255")
    if verb == "sleep":
        try:
            seconds = float(words[0])
        except ValueError:
            seconds = -1.0
        if len(words) != 1 or not 0 <= seconds < float("inf"):
            raise UsageError(f"{where}: needs a number of seconds >= 0")
    if verb == "write":
        relpath = words[0]
        if Path(relpath).is_absolute() or ".." in Path(relpath).parts:
            raise UsageError(f"{where}: the path must be relative, inside the worktree")
        if Path(relpath).parts[0] == ".git":
            raise UsageError(f"{where}: the path must not be in .git")
    if verb == "ask" and words[0].startswith("@") and len(words) < 2:
        raise UsageError(f"{where}: missing the question")


def text_after_first_word(rest: str) -> str:
    """``rest`` without its first word (and the blanks after it)."""
    parts = rest.split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def dumps(data: dict[str, Any]) -> str:
    """A record as Claude Code prints it: compact JSON, UTF-8 as it is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --- the output --------------------------------------------------------------------------


@dataclass
class Session:
    session_id: str
    cwd: str
    trace: Path | None
    started: float = field(default_factory=time.monotonic)
    messages: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    done: list[str] = field(default_factory=list)

    # The lines themselves.

    def _write(self, stream: str, text: str, *, newline: bool = True) -> None:
        out = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
        out.write((text + ("\n" if newline else "")).encode())
        out.flush()
        self._traced(stream, text, newline=newline)

    def _traced(self, stream: str, text: str, *, newline: bool) -> None:
        if self.trace is not None:
            line = json.dumps({"stream": stream, "text": text, "newline": newline})
            with self.trace.open("a", encoding="utf-8") as trace:
                trace.write(line + "\n")

    def record(self, data: dict[str, Any], *, newline: bool = True) -> None:
        self._write("stdout", dumps(data), newline=newline)

    def stderr(self, text: str) -> None:
        self._write("stderr", text)

    # The records.

    def init(self) -> None:
        self.record(
            {
                "type": "system",
                "subtype": "init",
                "session_id": self.session_id,
                "cwd": self.cwd,
                "model": MODEL,
                "tools": TOOLS,
                "mcp_servers": [],
                "permissionMode": "bypassPermissions",
                "apiKeySource": "none",
            }
        )

    def assistant_message(self, content: list[dict[str, Any]], **usage: int) -> dict[str, Any]:
        self.messages += 1
        counts = {**dict.fromkeys(USAGE_KEYS, 0), **DEFAULT_USAGE, **usage}
        for key in USAGE_KEYS:
            self.totals[key] += counts[key]
        return {
            "type": "assistant",
            "message": {
                "id": f"msg_fake_{uuid.uuid4().hex}",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": content,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": counts,
            },
            "parent_tool_use_id": None,
            "session_id": self.session_id,
        }

    def say(self, text: str, **usage: int) -> None:
        self.record(self.assistant_message([{"type": "text", "text": text}], **usage))

    def tool_call(self, name: str, tool_input: dict[str, Any]) -> str:
        tool_id = f"toolu_fake_{uuid.uuid4().hex}"
        block = {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}
        self.record(self.assistant_message([block]))
        return tool_id

    def tool_result(self, tool_id: str, content: str, *, is_error: bool = False) -> None:
        block = {
            "type": "tool_result",
            "tool_use_id": tool_id,
            "content": content,
            "is_error": is_error,
        }
        self.record(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "session_id": self.session_id,
            }
        )

    def result_record(self) -> dict[str, Any]:
        cost = (
            self.totals["input_tokens"] * INPUT_PRICE + self.totals["output_tokens"] * OUTPUT_PRICE
        )
        duration_ms = int((time.monotonic() - self.started) * 1000)
        summary = "; ".join(self.done) if self.done else "nothing to do"
        return {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "duration_ms": duration_ms,
            "duration_api_ms": duration_ms,
            "num_turns": self.messages,
            "result": f"fake agent: {summary}",
            "session_id": self.session_id,
            "total_cost_usd": round(cost, 6),
            "usage": dict(self.totals),
        }


# --- what the directives do -----------------------------------------------------------------


def run(session: Session, directives: list[Directive], *, resumed: bool) -> None:
    for index, directive in enumerate(directives):
        last = index == len(directives) - 1
        verb, rest, words = directive.verb, directive.rest, directive.words()
        if verb == "write":
            write(session, words[0], text_after_first_word(rest))
        elif verb == "say":
            session.say(rest)
            session.done.append("said something")
        elif verb == "stderr":
            session.stderr(rest)
        elif verb == "lines":
            lines(session, int(words[0]))
        elif verb == "sleep":
            time.sleep(float(words[0]))
        elif verb == "tokens":
            count = int(words[0])
            session.say(f"tokens {count}", input_tokens=count, output_tokens=count // 2)
            session.done.append(f"used {count} tokens")
        elif verb == "ask":
            ask(session, rest)
        elif verb == "crash" or (verb == "crash-once" and not resumed):
            session.stderr(f"fake agent crashing with {words[0]}")
            raise Stop(int(words[0]))
        elif verb == "hang":
            while True:
                time.sleep(3600)
        elif verb == "partial":
            partial(session)
            if last:
                session.record(session.result_record(), newline=False)
                raise Stop(0)


def write(session: Session, relpath: str, text: str) -> None:
    path = Path(session.cwd) / relpath
    tool_id = session.tool_call("Write", {"file_path": str(path), "content": text + "\n"})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
        git("add", "--", relpath)
        staged = subprocess.run(  # noqa: S603  (git, with the directive's path)
            ["git", "diff", "--cached", "--quiet", "--", relpath],  # noqa: S607  (git on PATH)
            check=False,
        ).returncode
        if staged == 0:
            answer = f"File unchanged (nothing to commit): {path}"
        else:
            git(*GIT_CONFIG, "commit", "--no-verify", "-q", "-m", f"fake: {relpath}", "--", relpath)
            answer = f"File created successfully at: {path}"
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        session.tool_result(tool_id, f"write failed: {detail}".strip(), is_error=True)
        session.stderr(f"fake agent: write {relpath} failed: {detail}".strip())
        raise Stop(EXIT_GIT) from error
    session.tool_result(tool_id, answer)
    session.done.append(f"wrote {relpath}")


def git(*args: str) -> None:
    subprocess.run(  # noqa: S603  (git, with arguments the directives chose)
        ["git", *args],  # noqa: S607  (git on PATH, as for the runner)
        check=True,
        capture_output=True,
        text=True,
    )


def lines(session: Session, count: int) -> None:
    pending: list[int] = []
    for i in range(1, count + 1):
        session.say(f"line {i} of {count}")
        pending.append(i)
        if i % 10 == 0 or i == count:
            for j in pending:
                session.stderr(f"plain {j} of {count}")
            pending = []
    session.done.append(f"printed {count} lines")


def partial(session: Session) -> None:
    line = dumps(session.assistant_message([{"type": "text", "text": "partial line"}]))
    head = '{"type":"assistant",'
    assert line.startswith(head)
    out = sys.stdout.buffer
    out.write(head.encode())
    out.flush()
    time.sleep(0.2)
    out.write(line[len(head) :].encode() + b"\n")
    out.flush()
    session._traced("stdout", line, newline=True)
    session.done.append("printed a line in two pieces")


# --- asking through cw's API -----------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One call of cw's API as the run (its bearer token); ``ApiError`` when refused or
    unreachable."""
    server = os.environ.get("CW_SERVER", "").rstrip("/")
    token = os.environ.get("CW_RUN_TOKEN", "")
    if not server or not token:
        raise ApiError("CW_SERVER and CW_RUN_TOKEN must be set")
    base = server if server.endswith("/api") else f"{server}/api"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (the URL is the runner's server)
        base + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise ApiError(f"{method} {path}: HTTP {error.code} {detail}", error.code) from error
    except (urllib.error.URLError, OSError) as error:
        raise ApiError(f"{method} {path}: {error}") from error
    try:
        return json.loads(raw) if raw else None
    except ValueError as error:
        raise ApiError(f"{method} {path}: not JSON: {raw[:200]!r}") from error


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def addressee(name: str) -> str:
    """The id of the agent ``name`` says (an id, else a name)."""
    try:
        return str(api("GET", f"/agents/{quoted(name)}")["id"])
    except ApiError as error:
        if error.status not in (404, 422):  # no agent has this id, or it is no id
            raise
    return str(api("GET", f"/agents/by-name/{quoted(name)}")["id"])


def ask(session: Session, rest: str) -> None:
    try:
        timeout = float(os.environ.get("FAKE_AGENT_ASK_TIMEOUT", ASK_TIMEOUT_SECONDS))
    except ValueError:
        timeout = ASK_TIMEOUT_SECONDS
    deadline = time.monotonic() + timeout
    agent_id = os.environ.get("CW_AGENT_ID", "")
    task_id = os.environ.get("CW_TASK_ID", "")
    question = rest
    try:
        if not agent_id:
            raise ApiError("CW_AGENT_ID must be set")
        to_agent_id = agent_id
        if rest.startswith("@"):
            to_agent_id = addressee(rest.split()[0][1:])
            question = text_after_first_word(rest)
        body = {"from_agent_id": agent_id, "to_agent_id": to_agent_id, "question": question}
        if task_id:
            body["task_id"] = task_id
        asked = api("POST", "/conversations", body)
        conversation_id = str(asked["id"])
    except (ApiError, KeyError, TypeError) as error:
        session.stderr(f"fake agent: asking failed: {error}")
        raise Stop(EXIT_ASK) from error
    session.stderr(f"fake agent: asked conversation {conversation_id}")
    while True:
        try:
            conversation = api("GET", f"/conversations/{quoted(conversation_id)}")
        except ApiError as error:
            if error.status is not None and 400 <= error.status < 500:
                session.stderr(f"fake agent: reading the answer failed: {error}")
                raise Stop(EXIT_ASK) from error
            conversation = None  # the server is busy or away for a moment: try again
        if isinstance(conversation, dict) and conversation.get("status") == "answered":
            answer = conversation.get("answer")
            session.say(f"answer: {answer if isinstance(answer, str) else ''}")
            session.done.append(f"asked a question (conversation {conversation_id})")
            return
        if time.monotonic() >= deadline:
            session.stderr(f"fake agent: no answer to conversation {conversation_id}")
            raise Stop(EXIT_ASK)
        time.sleep(min(ASK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


# --- the command ---------------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"fake_agent: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Claude Code CLI for tests.")
    parser.add_argument("--prompt-file", required=True, help="the prompt, with FAKE: lines")
    parser.add_argument("--resume", metavar="SESSION_ID", help="resume this session")
    # Claude Code's own flags (-p, --output-format ...) are accepted and ignored.
    args, _ignored = parser.parse_known_args(argv)
    try:
        prompt = Path(args.prompt_file).read_text(encoding="utf-8")
        directives = parse_directives(prompt)
    except (OSError, UnicodeDecodeError, UsageError) as error:
        fail(str(error))
    resumed = args.resume is not None
    if resumed and not args.resume.strip():
        fail("--resume needs a session id")
    trace = os.environ.get("FAKE_AGENT_TRACE")
    session = Session(
        session_id=args.resume if resumed else str(uuid.uuid4()),
        cwd=os.getcwd(),
        trace=Path(trace) if trace else None,
    )
    session.init()
    if resumed:
        session.say(f"resumed session {session.session_id}")
    try:
        run(session, directives, resumed=resumed)
    except Stop as stop:
        return stop.code
    session.record(session.result_record())
    return 0


if __name__ == "__main__":
    sys.exit(main())
