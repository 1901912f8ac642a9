"""What may happen to an agent's log: batches of JSONL chunks appended, the log deleted.

Logs are output, not state changes: appending records no event.
"""

from collections.abc import Iterator
from typing import TypedDict

from django.db import transaction

from agents.repositories import AgentRepository, LogChunkFields, LogChunkRepository, LogChunkRow
from core.errors import InvalidInput

agents = AgentRepository()
logs = LogChunkRepository()

#: The most chunks one append takes (the body is also capped at 2.5 MB).
MAX_LOG_BATCH = 1000
#: Chunks read per query while streaming a log.
STREAM_PAGE_SIZE = 1000


class NewLogChunk(TypedDict, total=False):
    content: str
    session_number: int


def check_log_batch_size(count: int) -> None:
    """Refuse a batch of no chunk (``log_batch_empty``) or of more than ``MAX_LOG_BATCH``
    (``log_batch_too_large``); every door checks this before validating each chunk."""
    if count == 0:
        raise InvalidInput("A log batch needs at least one chunk.", code="log_batch_empty")
    if count > MAX_LOG_BATCH:
        raise InvalidInput(
            f"A log batch has at most {MAX_LOG_BATCH} chunks; this one has {count}.",
            code="log_batch_too_large",
            details={"max_chunks": MAX_LOG_BATCH, "chunks": count},
        )


@transaction.atomic
def agent_log_append(*, agent_id: str, chunks: list[NewLogChunk]) -> list[int]:
    """Append a batch of chunks (``content`` JSON Lines, ``session_number`` from 1,
    default 1) to an agent's log, in order, all or nothing; returns their ids.

    Refused, writing nothing: an unknown agent (404), an empty batch
    (``log_batch_empty``), more than ``MAX_LOG_BATCH`` chunks (``log_batch_too_large``),
    or any bad chunk (its ``details["index"]`` names it).
    """
    name = agents.name_of(agent_id)
    check_log_batch_size(len(chunks))
    rows: list[LogChunkFields] = [
        {
            "agent_id": agent_id,
            "agent_name": name,
            "content": chunk.get("content", ""),
            "session_number": chunk.get("session_number", 1),
        }
        for chunk in chunks
    ]
    return logs.append_chunks(rows)


@transaction.atomic
def agent_log_delete(*, agent_id: str) -> int:
    """Delete an agent's whole log (the agent must exist); returns how many chunks."""
    agents.require(agent_id)
    return logs.delete_by_agent_id(agent_id)


def agent_log_iter(
    *, agent_id: str, session_number: int | None = None, page_size: int | None = None
) -> Iterator[LogChunkRow]:
    """Every chunk of an agent's log (of one session when given), oldest first, read one
    keyset page (``STREAM_PAGE_SIZE`` by default) at a time, so a long log is never held
    in memory whole."""
    page_size = page_size or STREAM_PAGE_SIZE
    after: int | None = None
    while True:
        page = logs.find_by_agent_id(
            agent_id, after=after, limit=page_size, session_number=session_number
        )
        yield from page
        if len(page) < page_size:
            return
        after = page[-1].id
