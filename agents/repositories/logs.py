"""Agents' log chunks: appended in batches, read forward (and backwards) by id, pruned.

The checks, statements and row decoding that make appending and paging cheap are the
log's fast path (``agents.repositories.log_fast_path``)."""

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, NotRequired, TypedDict

from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, DataError, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Max
from django.utils import timezone

from agents.models import AgentLogChunk
from agents.repositories.log_fast_path import (
    CHUNK_COLUMNS,
    ROW_COLUMNS,
    LogChunkRow,
    Unsure,
    capped_page_sql,
    insert_sql,
    log_rows,
    page_sql,
    quick_row,
    recorded_time,
    restore_sql,
    stamp_of,
)
from core.errors import DomainError, InvalidInput
from core.repositories import (
    DEFAULT_KEYSET_PAGE_SIZE,
    MAX_KEYSET_PAGE_SIZE,
    KeysetPage,
    Repository,
    check_keyset_page,
    hot,
    require_int,
    require_text,
)
from core.repositories.base import seed_only
from core.repositories.commit_order import LOG_ORDER_LOCK, hold_commit_order
from core.text import storable_text


class LogChunkFields(TypedDict):
    agent_id: str
    agent_name: str
    content: str
    session_number: NotRequired[int]


class LogTail(NamedTuple):
    """The end of one session of an agent's log: its last chunks joined (each ends a
    line), at most a given number of characters, and whether older text was left out."""

    text: str
    cut: bool


class AgentLogCount(NamedTuple):
    """How many chunks of one agent's log a question found (``agent_name`` as the chunks
    recorded it, so it is known after the agent is deleted)."""

    agent_id: str
    agent_name: str
    chunks: int


class LogChunkRepository(Repository[AgentLogChunk]):
    """Agents' raw output (any text, usually JSON Lines), appended and read forward with an
    id cursor, never edited.

    Chunk ids increase in write order, so "the chunks after id N" is a keyset page that
    costs the same at the end of a long log as at its start (index ``(agent_id, id)``).
    One agent's chunks also become visible in id order: every write takes the agent's
    commit-order lock before it inserts (``core.repositories.commit_order``; PostgreSQL
    only, SQLite's writers are serialized already), so a reader following one agent's log
    with ``after`` sees each committed chunk exactly once, in order, however many writers
    append to it at once. Chunks of different agents interleave freely.

    This is the path agents hit all day, so it pays per batch, not per row: a batch is
    checked in one pass of plain comparisons (no line is parsed: a chunk is any text), then
    written with one multi-row ``INSERT`` per ``rows_per_insert`` rows on Django's
    connection (``core.repositories.hot``); pages are read with one prepared ``SELECT`` into
    ``LogChunkRow`` tuples. The rules are the model's, unchanged: a batch the quick
    pass cannot vouch for goes through the model's full validation, which refuses it
    with the same coded error as any other write (or lets it through when the quick
    pass was merely cautious).
    """

    model = AgentLogChunk
    slug = "agent_log_chunk"
    label = "Agent log chunk"
    default_page_size = DEFAULT_KEYSET_PAGE_SIZE
    max_page_size = MAX_KEYSET_PAGE_SIZE
    #: The most rows one INSERT statement carries (fewer when the database allows fewer
    #: parameters in a statement).
    rows_per_statement = 500
    chunk_fields = frozenset({"agent_id", "agent_name", "session_number", "content"})
    required_chunk_fields = frozenset({"agent_id", "agent_name", "content"})

    @seed_only
    def insert_chunk(
        self, *, agent_id: str, agent_name: str, session_number: int, content: str
    ) -> LogChunkRow:
        """Append one chunk to an agent's log (``session_number`` from 1; ``content`` any
        text, made ``storable_text``) and return it as stored."""
        db, created_at = connections[DEFAULT_DB_ALIAS], timezone.now()
        stamp = stamp_of(db, created_at)
        try:
            row = quick_row(agent_id, agent_name, session_number, content, stamp)
        except (Unsure, ValueError):
            # The model decides, refusing as any single write (no batch index).
            obj = self._build(
                {
                    "agent_id": agent_id,
                    "agent_name": agent_name,
                    "session_number": session_number,
                    "content": content,
                }
            )
            self._validate(obj)
            row = (*(getattr(obj, name) for name in CHUNK_COLUMNS[:-1]), stamp)
        with self._in_commit_order(db, [agent_id]):
            (id,) = self._insert_rows(db, [row])
        return tuple.__new__(
            LogChunkRow, (id, agent_id, agent_name, session_number, row[3], created_at)
        )

    def append_chunks(self, chunks: Iterable[LogChunkFields]) -> list[int]:
        """Append many chunks in order, all or none, and return their ids (ascending):
        exactly the rows written, whatever other writers do meanwhile.

        A chunk's content is any text the agent printed, stored with its NUL and lone
        surrogates escaped (``core.text.storable_text``), never refused for them. Every
        chunk is checked before anything is written; a refusal (blank content, a bad
        session number, a malformed chunk) carries the chunk's position in
        ``details["index"]`` (from 0). One batch shares one ``created_at``.
        """
        db = connections[DEFAULT_DB_ALIAS]
        rows = self._checked_rows(list(chunks), stamp_of(db, timezone.now()))
        if not rows:
            return []
        with self._in_commit_order(db, {row[0] for row in rows}):
            return self._write_rows(db, rows)

    def restore_chunks(self, chunks: Sequence[Mapping[str, Any]], *, keep_ids: bool) -> list[int]:
        """Insert log chunks as an export recorded them (see ``Repository.restore``): each
        with its own ``created_at`` and, when ``keep_ids``, its ``id`` (on PostgreSQL the
        id sequence then moves past them). All or none; returns the ids.

        Each chunk has ``agent_id``, ``agent_name``, ``session_number``, ``content`` and
        ``created_at`` (and ``id``), and is checked as an appended one is: the quick pass,
        or the model's own validation, refusing with the chunk's ``details["index"]``.
        """
        db = connections[DEFAULT_DB_ALIAS]
        created = AgentLogChunk._meta.get_field("created_at")
        appended: list[LogChunkFields] = []
        stamps: list[Any] = []
        ids: list[Any] = []
        for index, chunk in enumerate(chunks):
            values = dict(chunk)
            ids.append(values.pop("id", None))
            at = self._at_index(index, recorded_time, (created, values.pop("created_at", None)))
            stamps.append(stamp_of(db, at))
            appended.append(values)  # type: ignore[arg-type]
            if keep_ids and type(ids[-1]) is not int:
                raise InvalidInput(
                    f"Chunk {index}: a restored log chunk keeps a whole-number id.",
                    code="invalid_log_chunk",
                    details={"index": index, "unknown": [], "missing": ["id"]},
                )
        rows = [
            (*row[:-1], stamp)
            for row, stamp in zip(self._checked_rows(appended, None), stamps, strict=True)
        ]
        if not rows:
            return []
        if not keep_ids:
            with self._in_commit_order(db, {row[0] for row in rows}):
                return self._write_rows(db, rows)
        size = self.rows_per_insert(db)
        with transaction.atomic(using=db.alias):
            self._hold_commit_order(db, {row[0] for row in rows})
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                params = [
                    v
                    for id, row in zip(ids[start : start + size], batch, strict=True)
                    for v in (id, *row)
                ]
                try:
                    hot.execute(db, restore_sql(db.vendor, len(batch)), params)
                except IntegrityError as error:
                    raise self._integrity_refusal(self.model(), error) from error
            for sql in db.ops.sequence_reset_sql(no_style(), [AgentLogChunk]):
                hot.execute(db, sql, [])
        return ids

    def find_by_agent_id(
        self,
        agent_id: str,
        *,
        after: int | None = None,
        limit: int = default_page_size,
        session_number: int | None = None,
    ) -> list[LogChunkRow]:
        """Up to ``limit`` chunks of an agent's log (of one session when
        ``session_number`` is given) with an id above ``after``, oldest first.

        Pass the id of the last chunk seen as ``after`` to read the next page; an empty
        page means the end. ``limit`` is 1..``max_page_size`` (the keyset cap of the
        pagination contract): beyond it is ``invalid_limit``, never clamped.
        """
        check_keyset_page(limit, after, integer_cursor=True)
        params: list[Any] = [agent_id, after or 0]
        if session_number is not None:
            params.append(session_number)
        params.append(limit)
        db = connections[DEFAULT_DB_ALIAS]
        return log_rows(hot.fetch_all(db, page_sql(db.vendor, session_number is not None), params))

    def find_page_by_agent_id(
        self,
        agent_id: str,
        *,
        after: int | None = None,
        limit: int = default_page_size,
        session_number: int | None = None,
        max_bytes: int,
    ) -> KeysetPage[LogChunkRow]:
        """``find_by_agent_id`` capped in bytes as well as rows: the page stops before the
        chunk that would take its content past ``max_bytes`` (it always holds one chunk
        when there is any), and ``more`` says whether there may be chunks after its last
        (it holds ``limit`` chunks, or stopped at the cap).

        On PostgreSQL one statement: the database sums the candidates' sizes (the stored
        size of a long value, not the value) and sends only the chunks that fit. On
        SQLite, whose cursor reads a row only when it is stepped to, the page is read
        row by row and left at the first chunk that would pass the cap. Either way a
        page of huge chunks never reads the ones it leaves out.
        """
        check_keyset_page(limit, after, integer_cursor=True)
        params: list[Any] = [agent_id, after or 0]
        if session_number is not None:
            params.append(session_number)
        params.append(limit)
        db = connections[DEFAULT_DB_ALIAS]
        by_session = session_number is not None
        if db.vendor == "sqlite":
            total = 0

            def enough(row: tuple[Any, ...]) -> bool:
                nonlocal total
                content = row[4]
                first, total = (
                    total == 0,
                    total + (len(content) if content.isascii() else len(content.encode())),
                )
                return total > max_bytes and not first

            rows, cut = hot.fetch_until(db, page_sql(db.vendor, by_session), params, enough)
            items = log_rows(rows)
            return KeysetPage(items, cut or len(items) == limit)
        params.append(max_bytes)
        rows = hot.fetch_all(db, capped_page_sql(db.vendor, by_session), params)
        if not rows:
            return KeysetPage([], False)
        found = rows[0][-1]
        items = log_rows([row[:-1] for row in rows])
        return KeysetPage(items, len(items) < found or found == limit)

    def delete_by_agent_id(self, agent_id: str) -> int:
        """Delete an agent's whole log; returns how many chunks were deleted."""
        deleted, _ = self.model._default_manager.filter(agent_id=agent_id).delete()
        return deleted

    def get_session_count(self, agent_id: str) -> int:
        """The highest session number in an agent's log (0 when it has none)."""
        result = self.model._default_manager.filter(agent_id=agent_id).aggregate(
            n=Max("session_number")
        )
        return result["n"] or 0

    def find_last_by_agent_id(
        self, agent_id: str, *, before: int | None = None, limit: int = default_page_size
    ) -> list[LogChunkRow]:
        """The last ``limit`` chunks of an agent's log (with an id below ``before`` when
        given), oldest first: a tail, read backwards a page at a time with ``before`` set
        to the first id of the page before."""
        check_keyset_page(limit, before, integer_cursor=True)
        qs = self.model._default_manager.filter(agent_id=agent_id)
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs.order_by("-id").values_list(*ROW_COLUMNS)[:limit])
        rows.reverse()
        return log_rows(rows)

    def find_tails(
        self, sessions: Sequence[tuple[str, int]], *, chunks: int, chars: int
    ) -> dict[tuple[str, int], LogTail]:
        """The tail of each (agent id, session number) of ``sessions``: the last
        ``chars`` characters of its last ``chunks`` chunks, each chunk ending a line.
        A session without chunks is absent.

        One statement whatever the number of sessions (a ``UNION ALL`` of one
        ``ORDER BY id DESC LIMIT`` per session, each served by the index ``(agent_id,
        id)``), and each chunk is cut to its last ``chars`` characters by the database:
        a tail reads at most ``chunks`` chunks, never the whole log."""
        wanted = sorted(set(sessions))
        if not wanted:
            return {}
        db = connections[DEFAULT_DB_ALIAS]
        params: list[Any] = []
        for agent_id, session_number in wanted:
            params += [chars, agent_id, session_number, chunks]
        rows = hot.fetch_all(db, _tails_sql(db.vendor, len(wanted)), params)
        by_session: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for agent_id, session_number, id, text in rows:
            by_session.setdefault((agent_id, session_number), []).append((id, text))
        tails = {}
        for key, found in by_session.items():
            found.sort()
            text = "".join(part if part.endswith("\n") else part + "\n" for _, part in found)
            cut = len(text) > chars or any(len(part) >= chars for _, part in found)
            tails[key] = LogTail(text[-chars:], cut)
        return tails

    def count_created_before(
        self, before: datetime, *, agent_id: str | None = None
    ) -> list[AgentLogCount]:
        """How many chunks of each agent's log (of ``agent_id`` only when given) were
        written before ``before``: one row per agent that has any, by agent name."""
        qs = self.model._default_manager.filter(created_at__lt=before)
        if agent_id is not None:
            qs = qs.filter(agent_id=agent_id)
        counted = (
            qs.order_by()
            .values("agent_id")
            .annotate(name=Max("agent_name"), chunks=Count("id"))
            .order_by("name", "agent_id")
        )
        return [AgentLogCount(row["agent_id"], row["name"], row["chunks"]) for row in counted]

    def delete_created_before(self, before: datetime, *, agent_id: str, limit: int) -> int:
        """Delete the oldest ``limit`` chunks (at most) of an agent's log that were
        written before ``before``; returns how many (0 once none is left).

        One short ``DELETE`` of an id range: a caller that loops over it never holds one
        huge transaction, nor the writers' lock for long.
        """
        old = self.model._default_manager.filter(agent_id=agent_id, created_at__lt=before)
        bound = list(old.order_by("id").values_list("id", flat=True)[limit - 1 : limit])
        if bound:
            old = old.filter(id__lte=bound[0])
        deleted, _ = old.delete()
        return deleted

    # --- the batch check -----------------------------------------------------------

    def _checked_rows(
        self, chunks: list[LogChunkFields], stamp: Any, *, quick: bool = True
    ) -> list[tuple[Any, ...]]:
        """The chunks as rows in ``CHUNK_COLUMNS`` order, or the refusal of the first bad
        one; nothing is written either way. ``stamp`` is ``created_at`` as the driver
        takes it."""
        if quick:
            rows: list[tuple[Any, ...]] = []
            known: set[tuple[Any, Any]] = set()
            try:
                for chunk in chunks:
                    if type(chunk) is not dict or not (
                        len(chunk) == 3 or (len(chunk) == 4 and "session_number" in chunk)
                    ):
                        raise Unsure
                    names = (chunk["agent_id"], chunk["agent_name"])
                    rows.append(
                        quick_row(
                            *names,
                            chunk.get("session_number", 1),
                            chunk["content"],
                            stamp,
                            names in known,
                        )
                    )
                    known.add(names)
                return rows
            except (Unsure, KeyError, ValueError):
                pass
        # The quick pass cannot vouch for this batch: the model's own rules decide,
        # refusing with the error any write of such a chunk gets.
        return [
            (*(getattr(obj, name) for name in CHUNK_COLUMNS[:-1]), stamp)
            for obj in self._validated_models(chunks)
        ]

    def _validate(self, obj: AgentLogChunk, only=None, *, references: bool = True) -> None:
        """The model's rules, with a chunk whose content they refuse (too long) refused as
        ``invalid_log_chunk`` (the API's code for a bad chunk, which its document states)
        rather than the generic ``validation_failed``."""
        try:
            super()._validate(obj, only, references=references)
        except InvalidInput as error:
            fields = error.details.get("fields", {}) if isinstance(error.details, dict) else {}
            if error.code == "validation_failed" and "content" in fields:
                raise InvalidInput(
                    error.message, code="invalid_log_chunk", details=error.details
                ) from error
            raise

    def _validated_models(self, chunks: list[LogChunkFields]) -> list[AgentLogChunk]:
        """Every chunk built and validated as a model (the slow, authoritative path)."""
        objs = [self._at_index(index, self._build, chunk) for index, chunk in enumerate(chunks)]
        for index, obj in enumerate(objs):
            self._at_index(index, self._validate, obj)
        return objs

    @staticmethod
    def _at_index(index: int, check: Callable[[Any], Any], value: Any) -> Any:
        """``check(value)``, with a refusal naming the chunk's position in the batch."""
        try:
            return check(value)
        except DomainError as error:
            error.details = {**error.details, "index": index}
            error.message = f"Chunk {index}: {error.message}"
            raise

    def _build(self, chunk: Mapping[str, Any]) -> AgentLogChunk:
        if not isinstance(chunk, Mapping):
            raise InvalidInput(
                "A log chunk is an object with agent_id, agent_name and content.",
                code="invalid_log_chunk",
                details={"unknown": [], "missing": sorted(self.required_chunk_fields)},
            )
        unknown = sorted(set(chunk) - self.chunk_fields)
        missing = sorted(self.required_chunk_fields - set(chunk))
        if unknown or missing:
            raise InvalidInput(
                "A log chunk needs agent_id, agent_name and content (and may have session_number).",
                code="invalid_log_chunk",
                details={"unknown": unknown, "missing": missing},
            )
        values: dict[str, Any] = dict(chunk)
        values["content"] = storable_text(require_text(values["content"], "content"))
        values["session_number"] = require_int(
            values.get("session_number", 1),
            "session_number",
            minimum=1,
            code="invalid_session_number",
        )
        return AgentLogChunk(**values)

    # --- the statements ------------------------------------------------------------

    @contextmanager
    def _in_commit_order(self, db: BaseDatabaseWrapper, agent_ids: Iterable[str]) -> Iterator[None]:
        """Run the writes of the block in a transaction that holds the commit-order lock of
        each agent in ``agent_ids`` (the caller's transaction when there is one; nothing
        added on SQLite, whose single statements and transactions hold its write lock)."""
        if db.vendor != "postgresql":
            yield
            return
        with transaction.atomic(using=db.alias, savepoint=False):
            self._hold_commit_order(db, agent_ids)
            yield

    @staticmethod
    def _hold_commit_order(db: BaseDatabaseWrapper, agent_ids: Iterable[str]) -> None:
        # One order for every writer (sorted ids), so two batches never wait for each other.
        for agent_id in sorted(set(agent_ids)):
            hold_commit_order(db, LOG_ORDER_LOCK, agent_id)

    def rows_per_insert(self, db: BaseDatabaseWrapper) -> int:
        """How many chunks one INSERT statement carries on ``db``: ``rows_per_statement``,
        fewer where the database takes fewer parameters a statement."""
        most = db.features.max_query_params
        if most is None:
            return self.rows_per_statement
        return max(1, min(self.rows_per_statement, most // len(CHUNK_COLUMNS)))

    def _write_rows(self, db: BaseDatabaseWrapper, rows: list[tuple[Any, ...]]) -> list[int]:
        """INSERT the rows, all or none (one statement is atomic by itself; more run in
        one transaction); their ids in order."""
        size = self.rows_per_insert(db)
        if len(rows) <= size:
            return self._insert_rows(db, rows)
        with transaction.atomic(using=db.alias):
            return [
                id
                for start in range(0, len(rows), size)
                for id in self._insert_rows(db, rows[start : start + size])
            ]

    def _insert_rows(self, db: BaseDatabaseWrapper, rows: list[tuple[Any, ...]]) -> list[int]:
        params = [value for row in rows for value in row]
        try:
            if db.vendor == "sqlite":
                # The statement holds SQLite's write lock (no other connection writes
                # until it ends, nor until the transaction it is part of commits), so its
                # rows take consecutive ids ending at lastrowid, whoever else is waiting
                # to write: exactly this batch's ids. RETURNING would cost a third more a
                # row.
                last = hot.execute(db, insert_sql(db.vendor, len(rows), False), params)
                assert last is not None
                return list(range(last - len(rows) + 1, last + 1))
            sql = insert_sql(db.vendor, len(rows), True)
            return [id for (id,) in hot.fetch_all(db, sql, params)]
        except IntegrityError as error:
            raise self._integrity_refusal(self.model(), error) from error
        except DataError as error:
            raise InvalidInput(
                "A value of this log chunk cannot be stored (too long or out of range).",
                code="invalid_value",
            ) from error


@functools.cache
def _tails_sql(vendor: str, sessions: int) -> str:
    """``find_tails``' statement for ``sessions`` sessions: each branch a session's last
    chunks, newest first, cut to their last characters (``right`` on PostgreSQL,
    ``substr`` from the end on SQLite)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    content = quote("content")
    ending = f"right({content}, %s)" if vendor == "postgresql" else f"substr({content}, -%s)"
    branch = (
        f"SELECT * FROM (SELECT {quote('agent_id')}, {quote('session_number')}, "  # noqa: S608
        f"{quote('id')}, {ending} FROM {quote(AgentLogChunk._meta.db_table)} "
        f"WHERE {quote('agent_id')} = %s AND {quote('session_number')} = %s "
        f"ORDER BY {quote('id')} DESC LIMIT %s) AS tail_{{n}}"
    )
    return " UNION ALL ".join(branch.format(n=n) for n in range(sessions))
