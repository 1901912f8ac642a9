"""The log's fast path: what makes appending to an agent's log and paging through it cheap.

A batch is checked in one pass of plain comparisons (``quick_row``: a chunk's content is
any text, its NUL and lone surrogates escaped by ``core.text.storable_text``), written
with multi-row ``INSERT`` statements (``insert_sql``, ``restore_sql``) on Django's
connection (``core.repositories.hot``), and a page is read with one prepared ``SELECT``
(``page_sql``) into ``LogChunkRow`` tuples (``log_rows``). The quick check is a cautious
subset of the model's rules: what it cannot vouch for (``Unsure``) goes through the
model's full validation in ``LogChunkRepository``.
"""

import functools
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from agents.models import AgentLogChunk
from core.errors import InvalidInput
from core.repositories import text_problem
from core.repositories.validation import unstorable_datetime
from core.text import storable_text
from core.validators import TEXT_MAX_LENGTH


class LogChunkRow(NamedTuple):
    """A log chunk as it is read: a plain row, not a model instance (a page of a log is
    only ever shown or sent on, so building models for it would be wasted work)."""

    id: int
    agent_id: str
    agent_name: str
    session_number: int
    content: str
    created_at: datetime

    @property
    def pk(self) -> int:
        return self.id


#: The columns a chunk is written with, in the order of the rows handed to the driver.
CHUNK_COLUMNS = ("agent_id", "agent_name", "session_number", "content", "created_at")
ROW_COLUMNS = ("id", *CHUNK_COLUMNS)
_INT32_MAX = 2**31 - 1
_AGENT_ID_MAX = AgentLogChunk._meta.get_field("agent_id").max_length or 0
_AGENT_NAME_MAX = AgentLogChunk._meta.get_field("agent_name").max_length or 0


class Unsure(Exception):
    """The quick check of a log batch cannot vouch for a chunk."""


def quick_row(
    agent_id: Any, agent_name: Any, session: Any, content: Any, stamp: Any, names_ok: bool = False
) -> tuple[Any, ...]:
    """The row of a chunk that plain comparisons show to be valid, its content made
    ``storable_text`` (any text is a chunk's content), else ``Unsure``: a cautious subset
    of the model's rules, which decide whatever this cannot vouch for."""
    if not names_ok and (agent_id, agent_name) not in _GOOD_NAMES:
        if not (_good_name(agent_id, _AGENT_ID_MAX) and _good_name(agent_name, _AGENT_NAME_MAX)):
            raise Unsure
        if len(_GOOD_NAMES) >= 4096:
            _GOOD_NAMES.clear()
        _GOOD_NAMES.add((agent_id, agent_name))
    if type(session) is not int or not 1 <= session <= _INT32_MAX:
        raise Unsure
    if type(content) is not str:
        raise Unsure
    if "\x00" in content or not content.isascii():
        content = storable_text(content)  # NUL, lone surrogates: escaped, never refused
    if not 0 < len(content) <= TEXT_MAX_LENGTH or (content[0].isspace() and not content.strip()):
        raise Unsure
    return (agent_id, agent_name, session, content, stamp)


#: (agent id, agent name) pairs ``_good_name`` accepted: an agent's name is checked once,
#: not with every chunk it writes (a pure check, so remembering it is safe; bounded).
_GOOD_NAMES: set[tuple[str, str]] = set()


def stamp_of(db: BaseDatabaseWrapper, created_at: datetime) -> Any:
    """``created_at`` as the driver takes it: Django's adaptation, short-cut for the
    common case of SQLite and a UTC time (``str`` of the naive UTC time, which is what
    ``adapt_datetimefield_value`` answers there, at a fraction of its cost)."""
    if created_at.tzinfo is UTC and db.vendor == "sqlite" and db.timezone is UTC:
        return str(created_at)[:-6]
    return db.ops.adapt_datetimefield_value(created_at)


def _good_name(value: Any, most: int) -> bool:
    """A short required text (an agent's id or name) every database stores alike."""
    return type(value) is str and 0 < len(value) <= most and text_problem(value) is None


def log_rows(rows: list[tuple[Any, ...]]) -> list[LogChunkRow]:
    """``LogChunkRow``s of fetched rows (``ROW_COLUMNS``), with aware ``created_at``.

    Built with ``tuple.__new__`` (the named tuple's own ``__new__`` is Python code) and,
    for SQLite's text timestamps, one ``fromisoformat`` each: a page is read at close
    to the driver's own speed.
    """
    new, row_type = tuple.__new__, LogChunkRow
    if rows and type(rows[0][-1]) is str:
        parse = datetime.fromisoformat
        try:
            return [
                new(row_type, (i, a, n, s, c, parse(t + "+00:00"))) for i, a, n, s, c, t in rows
            ]
        except ValueError:
            pass  # a stamp with its own offset: the general path below
    return [new(row_type, (i, a, n, s, c, _aware(t))) for i, a, n, s, c, t in rows]


def recorded_time(field_and_value: tuple[Any, Any]) -> datetime:
    """A recorded ``created_at`` (a datetime or ISO 8601 text with a zone), or the
    refusal ``invalid_value``."""
    field, value = field_and_value
    try:
        at = field.to_python(value)
    except ValidationError:
        at = None
    if not isinstance(at, datetime) or timezone.is_naive(at) or unstorable_datetime(at):
        raise InvalidInput(
            "A log chunk's created_at must be a date and time with a zone.",
            code="invalid_value",
            details={"fields": {"created_at": ["must be a date and time with a zone"]}},
        )
    return at


def _aware(value: Any) -> datetime:
    """A timestamp column as the driver returned it (an aware datetime from PostgreSQL;
    from SQLite the stored text, naive UTC), as an aware datetime."""
    if type(value) is str:
        try:
            # Several times cheaper than parsing and then replace(tzinfo=UTC).
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- the statements ---------------------------------------------------------------------


@functools.cache
def insert_sql(vendor: str, rows: int, returning: bool) -> str:
    quote = connection.ops.quote_name
    values = "(" + ", ".join(["%s"] * len(CHUNK_COLUMNS)) + ")"
    # Identifiers from the model, quoted; every value is a parameter.
    return (
        f"INSERT INTO {quote(AgentLogChunk._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in CHUNK_COLUMNS)}) "
        f"VALUES {', '.join([values] * rows)}" + (f" RETURNING {quote('id')}" if returning else "")
    )


@functools.cache
def restore_sql(vendor: str, rows: int) -> str:
    quote = connection.ops.quote_name
    values = "(" + ", ".join(["%s"] * len(ROW_COLUMNS)) + ")"
    return (
        f"INSERT INTO {quote(AgentLogChunk._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in ROW_COLUMNS)}) "
        f"VALUES {', '.join([values] * rows)}"
    )


@functools.cache
def page_sql(vendor: str, by_session: bool) -> str:
    quote = connection.ops.quote_name
    session = f" AND {quote('session_number')} = %s" if by_session else ""
    columns = [quote(c) for c in ROW_COLUMNS]
    return (
        f"SELECT {', '.join(columns)} "  # noqa: S608
        f"FROM {quote(AgentLogChunk._meta.db_table)} "
        f"WHERE {quote('agent_id')} = %s AND {quote('id')} > %s{session} "
        f"ORDER BY {quote('id')} LIMIT %s"
    )


@functools.cache
def capped_page_sql(vendor: str, by_session: bool) -> str:
    """``page_sql`` cut in bytes: the sizes of the ``limit`` candidates are summed by the
    database (``octet_length`` reads a long value's stored size on PostgreSQL), and only
    the chunks that fit, the first always, are read whole; each row ends with how many
    candidates there were. Parameters: agent id, after, (session,) limit, max bytes."""
    quote = connection.ops.quote_name
    table, id = quote(AgentLogChunk._meta.db_table), quote("id")
    content = quote("content")
    size = f"LENGTH(CAST({content} AS BLOB))" if vendor == "sqlite" else f"OCTET_LENGTH({content})"
    session = f" AND {quote('session_number')} = %s" if by_session else ""
    columns = ", ".join(f"c.{quote(c)}" for c in ROW_COLUMNS)
    return (
        f"WITH page AS (SELECT {id}, {size} AS size FROM {table} "  # noqa: S608
        f"WHERE {quote('agent_id')} = %s AND {id} > %s{session} ORDER BY {id} LIMIT %s), "
        f"sized AS (SELECT {id}, size, SUM(size) OVER (ORDER BY {id} ROWS UNBOUNDED PRECEDING) "
        f"AS running, COUNT(*) OVER () AS found FROM page) "
        f"SELECT {columns}, s.found FROM sized s JOIN {table} c ON c.{id} = s.{id} "
        f"WHERE s.running <= %s OR s.running = s.size ORDER BY s.{id}"
    )
