"""The fast paths keep the rules: a batch with one bad chunk writes nothing and names the
chunk, and a batch with any text in it (not JSON, NUL, a lone surrogate) is written
whole, escaped, through the repository and through the API, on the database of this
run. These are ``rule`` targets: they fail the run even with ``--quick``."""

import json

from bench.harness import Result
from bench.logs import log_line

#: (what is wrong, the chunk's content) — each refused by the repository's rules.
BAD_CONTENT = [
    ("a blank chunk", "  \n"),
    ("a NUL, escaped past the length", "\x00" * 300_000),
]

#: (what it is, the chunk's content, as stored) — any text is a chunk ("Logs: raw text").
ANY_TEXT = [
    ("a line that is not JSON", "Error: rate limit reached\n", "Error: rate limit reached\n"),
    ("half a JSON line", '{"type":"assist', '{"type":"assist'),
    ("a NUL character", '{"text": "a\x00b"}\n', '{"text": "a\\x00b"}\n'),
    ("a lone surrogate", '{"text": "\ud800"}\n', '{"text": "\\ud800"}\n'),
    ("NaN, which is not JSON", '{"n": NaN}\n', '{"n": NaN}\n'),
]


def run(quick: bool) -> Result:
    from django.test import Client
    from django.urls import reverse

    from agents.models import AgentLogChunk
    from agents.repositories import AgentRepository, LogChunkRepository
    from core.errors import InvalidInput
    from core.tokens import api_token_create

    result = Result("fast paths keep the rules")
    logs = LogChunkRepository()
    agent = AgentRepository().create(name="bench-rules", worktree_id="/srv/bench/rules")
    good = [
        {"agent_id": agent.id, "agent_name": agent.name, "content": log_line(n)} for n in range(100)
    ]
    _token, clear = api_token_create(name="bench rules")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    url = reverse("api-1:append_agent_log", kwargs={"agent_id": agent.id})
    before = AgentLogChunk.objects.count()

    for what, content in BAD_CONTENT:
        batch = [dict(chunk) for chunk in good]
        batch[57]["content"] = content
        try:
            logs.append_chunks(batch)  # type: ignore[arg-type]
            refused, index = False, None
        except InvalidInput as error:
            refused, index = True, error.details.get("index")
        written = AgentLogChunk.objects.count() - before
        result.check(
            f"append_chunks, 100 chunks, chunk 57 has {what}",
            written,
            unit="rows written",
            target="refused, names chunk 57, writes 0",
            held=refused and index == 57 and written == 0,
            kind="rule",
        )

        body = json.dumps([{"content": chunk["content"]} for chunk in batch])
        response = client.post(url, body, content_type="application/json")
        answer = response.json()
        written = AgentLogChunk.objects.count() - before
        result.check(
            f"POST …/logs (JSON), chunk 57 has {what}",
            written,
            unit="rows written",
            target="400, names chunk 57, writes 0",
            held=response.status_code == 400
            and answer.get("details", {}).get("index") == 57
            and written == 0,
            kind="rule",
        )

    for what, content, kept in ANY_TEXT:
        batch = [dict(chunk) for chunk in good]
        batch[57]["content"] = content
        expected = [chunk["content"] for chunk in good]
        expected[57] = kept
        ids = logs.append_chunks(batch)  # type: ignore[arg-type]
        result.check(
            f"append_chunks, 100 chunks, chunk 57 has {what}",
            len(ids),
            unit="rows written",
            target="100, in order, escaped",
            held=_stored(ids) == expected,
            kind="rule",
        )

        body = json.dumps([{"content": chunk["content"]} for chunk in batch])
        response = client.post(url, body, content_type="application/json")
        ids = response.json().get("ids", []) if response.status_code == 201 else []
        result.check(
            f"POST …/logs (JSON), chunk 57 has {what}",
            len(ids),
            unit="rows written",
            target="201, 100 in order, escaped",
            held=response.status_code == 201 and _stored(ids) == expected,
            kind="rule",
        )

    # And a good batch still goes in whole, in order.
    ids = logs.append_chunks(good)  # type: ignore[arg-type]
    stored = _stored(ids)
    result.check(
        "append_chunks, 100 good chunks",
        len(stored),
        unit="rows written",
        target="100, in order, ids ascending",
        held=stored == [chunk["content"] for chunk in good] and ids == sorted(ids),
        kind="rule",
    )
    return result


def _stored(ids: list[int]) -> list[str]:
    """The contents of the chunks ``ids``, in id order."""
    from agents.models import AgentLogChunk

    found = AgentLogChunk.objects.filter(pk__in=ids).order_by("id")
    return list(found.values_list("content", flat=True))
