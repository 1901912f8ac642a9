"""What may happen to an agent's log: batches of chunks (any text the agent printed)
appended, the log deleted, old chunks pruned.

Logs are output, not state changes: appending chunks and pruning old ones record no
event (the one exception to "every change is on the feed", ``docs/decisions.md``: an
agent's ``agent.status_changed`` says it runs, and its log is read forward by its own
cursor). Deleting an agent's whole log is a person's decision: ``agent.log_deleted``.
"""

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypedDict

from django.db import transaction

from agents.repositories import (
    AgentLogCount,
    AgentRepository,
    LogChunkFields,
    LogChunkRepository,
    LogChunkRow,
)
from core import live
from core.errors import InvalidInput
from core.events import event_record
from core.repositories import page_max_bytes

agents = AgentRepository()
logs = LogChunkRepository()

#: The most chunks one append takes (the body is also capped at 2.5 MB).
MAX_LOG_BATCH = 1000
#: Chunks read per query while streaming a log.
STREAM_PAGE_SIZE = 1000
#: The most chunks one statement of a prune deletes.
PRUNE_BATCH_SIZE = 5000


class NewLogChunk(TypedDict, total=False):
    content: str
    session_number: int


def check_log_batch_size(count: int) -> None:
    """Refuse a batch of no chunk (``empty_log_batch``) or of more than ``MAX_LOG_BATCH``
    (``log_batch_too_large``); every door checks this before validating each chunk."""
    if count == 0:
        raise InvalidInput("A log batch needs at least one chunk.", code="empty_log_batch")
    if count > MAX_LOG_BATCH:
        raise InvalidInput(
            f"A log batch has at most {MAX_LOG_BATCH} chunks; this one has {count}.",
            code="log_batch_too_large",
            details={"max_chunks": MAX_LOG_BATCH, "chunks": count},
        )


@transaction.atomic
def agent_log_append(*, agent_id: str, chunks: list[NewLogChunk]) -> list[int]:
    """Append a batch of chunks (``content`` any text the agent printed, usually JSON
    Lines; ``session_number`` from 1, default 1) to an agent's log, in order, all or
    nothing; returns exactly their ids. A line that is not JSON is kept as it is; NUL
    and lone surrogates are stored escaped (``core.text.storable_text``), never refused.

    Appends to one agent commit in id order (the log's commit-order lock, taken by the
    repository in this transaction), so a reader following the log with ``after`` sees
    every committed chunk exactly once, in order.

    Refused, writing nothing: an unknown agent (404), an empty batch
    (``empty_log_batch``), more than ``MAX_LOG_BATCH`` chunks (``log_batch_too_large``),
    or any bad chunk: blank content, a bad session number, a malformed chunk (its
    ``details["index"]`` names it).
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
    ids = logs.append_chunks(rows)
    live.notify(live.log_channel(agent_id))
    return ids


@transaction.atomic
def agent_log_delete(*, agent_id: str) -> int:
    """Delete an agent's whole log (the agent must exist); returns how many chunks.
    Records ``agent.log_deleted`` (nothing when the log was empty)."""
    agent = agents.get(agent_id)
    deleted = logs.delete_by_agent_id(agent_id)
    if deleted:
        event_record(
            "agent.log_deleted",
            subject_type="agent",
            subject_id=agent.pk,
            initiative_id=agent.initiative_id,
            data={"chunks": deleted},
        )
    return deleted


def agent_log_iter(
    *,
    agent_id: str,
    session_number: int | None = None,
    page_size: int | None = None,
    after: int | None = None,
) -> Iterator[LogChunkRow]:
    """Every chunk of an agent's log (of one session when given; with an id above
    ``after`` when given), oldest first, read one keyset page (``STREAM_PAGE_SIZE``
    chunks by default, and at most ``CW_API_PAGE_MAX_BYTES`` of content) at a time, so a
    long log is never held in memory whole."""
    page_size = page_size or STREAM_PAGE_SIZE
    max_bytes = page_max_bytes()
    while True:
        page = logs.find_page_by_agent_id(
            agent_id,
            after=after,
            limit=page_size,
            session_number=session_number,
            max_bytes=max_bytes,
        )
        yield from page.items
        if not page.more or not page.items:
            return
        after = page.items[-1].id


def agent_log_prune(
    *,
    older_than: datetime,
    agent_id: str | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[AgentLogCount]:
    """Delete the chunks written before ``older_than`` (an aware time) from every
    agent's log, or from ``agent_id``'s only; returns, per agent that had any, how many
    were deleted (with ``dry_run``, how many would be, deleting nothing).

    Logs outlive their agents, so ``agent_id`` need not name an existing agent. Not one
    transaction: each agent's old chunks go in short ``DELETE`` statements of at most
    ``batch_size`` (``PRUNE_BATCH_SIZE``) chunks, oldest first, each committed on its
    own, so a prune of millions of rows never holds the writers off for long and an
    interrupted one has removed a prefix of what it set out to. ``on_batch`` is told
    each batch's count (for a progress bar).
    """
    if older_than.tzinfo is None:
        raise ValueError("agent_log_prune needs an aware older_than.")
    batch_size = batch_size or PRUNE_BATCH_SIZE
    found = logs.count_created_before(older_than, agent_id=agent_id)
    if dry_run:
        return found
    pruned: list[AgentLogCount] = []
    for count in found:
        deleted = 0
        while batch := logs.delete_created_before(
            older_than, agent_id=count.agent_id, limit=batch_size
        ):
            deleted += batch
            if on_batch is not None:
                on_batch(batch)
        if deleted:
            pruned.append(count._replace(chunks=deleted))
    return pruned
