"""Agents' logs as Claude Code writes them: ``--output-format stream-json``, one JSON
record a line (the ``system`` init, ``assistant`` text and ``tool_use`` records, the
``user`` records carrying each ``tool_result``, and the closing ``result``)."""

import hashlib
import json
import uuid
from typing import Any, NamedTuple

from agents.services.logs import NewLogChunk

_MODEL = "claude-sonnet-4-5-20250929"
_TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "TodoWrite", "WebFetch"]
_NAMESPACE = uuid.UUID("6f1c0d1e-8a51-4c6e-9d0b-2f6a4e0c7d11")


class Say(NamedTuple):
    """The assistant writes text."""

    text: str


class Tool(NamedTuple):
    """The assistant calls a tool, and the tool answers."""

    name: str
    input: dict[str, Any]
    output: str
    is_error: bool = False


class Result(NamedTuple):
    """The session's closing ``result`` record."""

    text: str
    turns: int
    cost_usd: float
    duration_ms: int
    is_error: bool = False
    subtype: str = "success"


def session_id_of(agent_name: str, session_number: int = 1) -> str:
    """A stable CLI session id for a demo agent's session."""
    return str(uuid.uuid5(_NAMESPACE, f"{agent_name}/{session_number}"))


def transcript(
    agent_name: str,
    cwd: str,
    steps: list[Say | Tool],
    result: Result | None = None,
    *,
    session_number: int = 1,
) -> list[NewLogChunk]:
    """A session's output as Claude Code's ``--output-format stream-json`` writes it, one
    JSON record a line: the ``system`` init, then ``assistant`` text and ``tool_use``
    records with the ``user`` records carrying each ``tool_result``, then the ``result``
    (none while the session still runs). One log chunk per step, as an orchestrator
    flushing the process's output would write them."""
    session_id = session_id_of(agent_name, session_number)
    counter = 0

    def next_id(prefix: str) -> str:
        nonlocal counter
        counter += 1
        digest = hashlib.sha256(f"{session_id}/{counter}".encode()).hexdigest()
        return f"{prefix}_01{digest[:22]}"

    def assistant(content: dict[str, Any], size: int) -> dict[str, Any]:
        return {
            "type": "assistant",
            "message": {
                "id": next_id("msg"),
                "type": "message",
                "role": "assistant",
                "model": _MODEL,
                "content": [content],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 4,
                    "cache_creation_input_tokens": 180 + size % 900,
                    "cache_read_input_tokens": 14_000 + 37 * counter,
                    "output_tokens": 12 + size // 4,
                },
            },
            "parent_tool_use_id": None,
            "session_id": session_id,
        }

    chunks: list[list[dict[str, Any]]] = [
        [
            {
                "type": "system",
                "subtype": "init",
                "cwd": cwd,
                "session_id": session_id,
                "tools": _TOOLS,
                "mcp_servers": [],
                "model": _MODEL,
                "permissionMode": "bypassPermissions",
                "apiKeySource": "none",
            }
        ]
    ]
    for step in steps:
        if isinstance(step, Say):
            chunks.append([assistant({"type": "text", "text": step.text}, len(step.text))])
            continue
        tool_use_id = next_id("toolu")
        use = {"type": "tool_use", "id": tool_use_id, "name": step.name, "input": step.input}
        answer = {
            "type": "user",
            "message": {
                "role": "user",
                "content": [
                    {
                        "tool_use_id": tool_use_id,
                        "type": "tool_result",
                        "content": step.output,
                        "is_error": step.is_error,
                    }
                ],
            },
            "parent_tool_use_id": None,
            "session_id": session_id,
        }
        chunks.append([assistant(use, len(json.dumps(step.input))), answer])
    if result is not None:
        chunks.append(
            [
                {
                    "type": "result",
                    "subtype": result.subtype,
                    "is_error": result.is_error,
                    "duration_ms": result.duration_ms,
                    "duration_api_ms": result.duration_ms * 7 // 10,
                    "num_turns": result.turns,
                    "result": result.text,
                    "session_id": session_id,
                    "total_cost_usd": result.cost_usd,
                    "usage": {
                        "input_tokens": 9 * result.turns,
                        "cache_read_input_tokens": 160_000 + 1_000 * result.turns,
                        "output_tokens": 310 * result.turns,
                    },
                }
            ]
        )
    return [
        NewLogChunk(
            content="\n".join(json.dumps(record) for record in chunk) + "\n",
            session_number=session_number,
        )
        for chunk in chunks
    ]
