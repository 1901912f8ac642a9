"""Agents' log records made readable: the one reading of Claude Code's ``stream-json``
output (one JSON record a line) that the admin's log viewer and ``cw_logs tail`` share.

``parse_chunk`` turns a log chunk (any text the agent printed: JSON Lines, usually, and
plain lines) into typed records, one line at a time, each a dict with a ``kind``:

- ``system``: the session's start (``subtype`` ``init``, with its model and directory) or
  another system notice;
- ``assistant_text``: what the assistant (or, in a ``user`` record, the prompt) says;
- ``tool_call``: a tool the assistant calls, its name and its most telling input;
- ``tool_result``: what the tool answered (``lines``, a one-line ``summary``, the
  ``body`` cut at ``DETAIL_WIDTH`` characters with ``omitted`` saying how many more);
- ``error``: a tool's failed answer (as a tool result) or an ``error`` record;
- ``result``: the run's end, with its duration and cost (``is_error`` when it failed);
- ``text``: a line that is not JSON (``Error: rate limit reached``, a JSON line cut in
  two), the agent's plain output, kept as it is (label "Output");
- ``other``: any other record (``thinking``, a JSON value or record type this does not
  know), kept as it is.

Every record also has a ``label`` (what a person calls it) and a one-line ``summary``;
``describe`` says a record in one line of words. Nothing here is HTML: callers escape.
"""

import json
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from core.text import ELLIPSIS
from core.text import shorten as one_line

RecordKind = Literal[
    "assistant_text", "tool_call", "tool_result", "error", "system", "result", "text", "other"
]

#: The widest a one-line summary (a tool's input, a result's first line) is.
SHORT_WIDTH = 100
#: The most characters of a tool's output, input or an unknown record a page shows.
DETAIL_WIDTH = 4000
#: The input keys that say best what a tool call does, most telling first.
TOOL_INPUT_KEYS = (
    "command",
    "file_path",
    "notebook_path",
    "path",
    "pattern",
    "url",
    "query",
    "description",
    "prompt",
)


class LogRecord(TypedDict):
    kind: RecordKind
    label: str
    summary: str
    text: NotRequired[str]
    body: NotRequired[str]
    omitted: NotRequired[int]
    lines: NotRequired[int]
    tool: NotRequired[str]
    input: NotRequired[str]
    subtype: NotRequired[str]
    facts: NotRequired[list[str]]
    is_error: NotRequired[bool]
    turns: NotRequired[int]


def record_lines(content: str) -> list[str]:
    """The records of a chunk as they are stored: its lines, without blank ones."""
    return [line.rstrip("\r") for line in content.split("\n") if line.strip()]


def parse_chunk(content: str) -> list[LogRecord]:
    """A chunk's lines as typed records, in order (a JSON line may hold several: an
    assistant message with text and tool calls; a plain line is one ``text`` record)."""
    return [record for line in record_lines(content) for record in parse_line(line)]


def parse_line(line: str) -> list[LogRecord]:
    """One line made readable: one typed record or more; ``text`` with the line as it is
    when it is not JSON, ``other`` when it is JSON but not a record this knows."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [_plain(line)]
    parsed = _parse(data) if isinstance(data, dict) else None
    return parsed or [_other(line)]


def shorten(text: str, width: int = SHORT_WIDTH) -> str:
    """``text`` on one line (its first), cut to ``width`` characters with ``…`` (always
    when more lines follow)."""
    lines = text.strip().splitlines() or [""]
    if len(lines) == 1:
        return one_line(lines[0], width)
    return one_line(lines[0], width + 1).removesuffix(ELLIPSIS)[: width - 1].rstrip() + ELLIPSIS


def describe(record: LogRecord) -> str:
    """A record in words, as a terminal prints it (the text itself for ``text``,
    ``other`` and ``assistant_text``, which may span lines)."""
    kind = record["kind"]
    if kind == "system":
        facts = record.get("facts") or []
        return record["summary"] + (f" ({', '.join(facts)})" if facts else "")
    if kind == "tool_call":
        summary = f": {record['summary']}" if record["summary"] else ""
        return f"→ {record['tool']}{summary}"
    if "lines" in record:  # a tool's answer, failed or not
        lines = record["lines"]
        head = "← error" if kind == "error" else "← result"
        noun = "line" if lines == 1 else "lines"
        summary = f": {record['summary']}" if record["summary"] else ""
        return f"{head} ({lines} {noun}){summary}"
    if kind == "result":
        facts = record.get("facts") or []
        shown = f" {', '.join(facts)}" if facts else ""
        if record.get("is_error"):
            reason = f": {record['summary']}" if record["summary"] else ""
            return f"failed ({record.get('subtype', 'error')}){shown}{reason}"
        return f"done{shown}"
    if kind == "error":
        return f"error: {record['summary']}"
    if record.get("subtype") == "thinking":
        return f"(thinking) {record['summary']}"
    return record.get("text", record["summary"])


# --- the records ---------------------------------------------------------------------------


def _parse(data: dict[str, Any]) -> list[LogRecord] | None:
    kind = data.get("type")
    if kind == "system":
        return [_system(data)]
    if kind in ("assistant", "user"):
        message = data.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return [_text(content, role=kind)] if content.strip() else None
        if isinstance(content, list):
            return [r for block in content for r in _block(block, role=kind)] or None
        return None
    if kind == "result":
        return [_result(data)]
    if kind == "error":
        return [_error(data)]
    return None


def _system(data: dict[str, Any]) -> LogRecord:
    subtype = str(data.get("subtype") or "")
    if subtype == "init":
        facts = [f"{name} {data[name]}" for name in ("model", "cwd") if data.get(name)]
        return {
            "kind": "system",
            "label": "Session",
            "summary": "session started",
            "facts": facts,
            "subtype": subtype,
        }
    words = subtype.replace("_", " ") or "notice"
    return {
        "kind": "system",
        "label": "System",
        "summary": f"system: {words}",
        "facts": [],
        "subtype": subtype,
    }


def _text(text: str, *, role: str) -> LogRecord:
    return {
        "kind": "assistant_text",
        "label": "Assistant" if role == "assistant" else "Prompt",
        "summary": shorten(text),
        "text": text,
    }


def _block(block: Any, *, role: str) -> list[LogRecord]:
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return [_text(text, role=role)] if isinstance(text, str) and text.strip() else []
    if kind == "thinking":
        text = block.get("thinking")
        if not isinstance(text, str) or not text:
            return []
        body, omitted = _cut(text)
        return [
            {
                "kind": "other",
                "label": "Thinking",
                "subtype": "thinking",
                "summary": shorten(text),
                "text": text,
                "body": body,
                "omitted": omitted,
            }
        ]
    if kind == "tool_use":
        return [_tool_call(block)]
    if kind == "tool_result":
        return [_tool_result(block)]
    raw = json.dumps(block, ensure_ascii=False)
    return [{"kind": "other", "label": "Other", "summary": shorten(raw), "text": shorten(raw)}]


def _tool_call(block: dict[str, Any]) -> LogRecord:
    value = block.get("input")
    record: LogRecord = {
        "kind": "tool_call",
        "label": "Tool call",
        "tool": str(block.get("name") or "tool"),
        "summary": _tool_input(value),
    }
    # The whole input too, when the summary does not already say all of it.
    if isinstance(value, dict) and (len(value) > 1 or record["summary"].endswith("…")):
        record["input"], record["omitted"] = _cut(json.dumps(value, ensure_ascii=False, indent=2))
    return record


def _tool_input(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return ""
    for key in TOOL_INPUT_KEYS:
        if isinstance(value.get(key), str) and value[key].strip():
            return shorten(value[key])
    return shorten(json.dumps(value, ensure_ascii=False))


def _tool_result(block: dict[str, Any]) -> LogRecord:
    text = _result_text(block.get("content"))
    failed = bool(block.get("is_error"))
    body, omitted = _cut(text)
    return {
        "kind": "error" if failed else "tool_result",
        "label": "Tool error" if failed else "Tool result",
        "summary": shorten(text) if text.strip() else "",
        "lines": len(text.splitlines()),
        "body": body,
        "omitted": omitted,
        "is_error": failed,
    }


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block["text"]
            for block in content
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        )
    return ""


def _result(data: dict[str, Any]) -> LogRecord:
    facts = []
    duration = data.get("duration_ms")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        facts.append(f"in {duration / 1000:.1f}s")
    cost = data.get("total_cost_usd", data.get("cost_usd"))
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        facts.append(f"cost ${cost:.2f}")
    subtype = str(data.get("subtype") or "error")
    failed = bool(data.get("is_error")) or subtype.startswith("error")
    text = data.get("result")
    text = text if isinstance(text, str) else ""
    body, omitted = _cut(text)
    turns = data.get("num_turns")
    record: LogRecord = {
        "kind": "result",
        "label": "Failed" if failed else "Result",
        "summary": shorten(text) if text.strip() else "",
        "subtype": subtype,
        "facts": facts,
        "is_error": failed,
        "body": body,
        "omitted": omitted,
    }
    if isinstance(turns, int) and not isinstance(turns, bool):
        record["turns"] = turns
    return record


def _error(data: dict[str, Any]) -> LogRecord:
    error = data.get("error")
    message = data.get("message")
    if isinstance(error, dict):
        message = error.get("message", message)
    elif isinstance(error, str):
        message = error
    text = message if isinstance(message, str) else json.dumps(data, ensure_ascii=False)
    body, omitted = _cut(text)
    return {
        "kind": "error",
        "label": "Error",
        "summary": shorten(text),
        "body": body,
        "omitted": omitted,
        "is_error": True,
    }


def _plain(line: str) -> LogRecord:
    """A line that is not JSON: the agent's plain output (stderr, a cut line)."""
    return _as_is(line, kind="text", label="Output")


def _other(line: str) -> LogRecord:
    """JSON this reading does not know, kept as it is."""
    return _as_is(line, kind="other", label="Other")


def _as_is(line: str, *, kind: RecordKind, label: str) -> LogRecord:
    body, omitted = _cut(line)
    return {
        "kind": kind,
        "label": label,
        "summary": shorten(line),
        "text": line,
        "body": body,
        "omitted": omitted,
    }


def _cut(text: str) -> tuple[str, int]:
    """``text`` cut to ``DETAIL_WIDTH`` characters, and how many were left out."""
    if len(text) <= DETAIL_WIDTH:
        return text, 0
    return text[:DETAIL_WIDTH], len(text) - DETAIL_WIDTH
