"""Statements for hot paths: prepared SQL run on Django's connection with as little in
between as the driver allows.

A repository method that runs thousands of times a minute (appending an agent's log,
reading a page of it) cannot afford the ORM's per-call compiling and per-row model
building, nor Django's cursor wrapper (a placeholder rewrite by regular expression and
several layers of calls per statement). ``fetch_all`` and ``execute`` run SQL written
once, in Django's ``%s`` style, on the driver's own cursor of Django's connection (bound
on the server on PostgreSQL, so it can be prepared), so it shares the
connection's transaction (``transaction.atomic`` applies as to any query) and raises
Django's database errors (``IntegrityError``, ``DataError``).

Whenever something watches the connection's statements (query logging under DEBUG or
a test's ``CaptureQueriesContext``; an ``execute_wrapper`` for instrumentation or
query blocking), the statement goes through Django's cursor instead, so it is logged,
counted and wrapped like every other.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import JSONField, Model

from core.repositories.pagination import fitting_count, text_columns


def fetch_all(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Execute ``sql`` (``%s`` placeholders) with ``params`` on ``db``; its rows."""
    return _run(db, sql, params, fetch=True)


def execute(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> int | None:
    """Execute ``sql`` (``%s`` placeholders) with ``params`` on ``db``; the cursor's
    ``lastrowid`` (the id of the row an INSERT of one or more rows wrote last on SQLite;
    None where the driver has no such thing)."""
    return _run(db, sql, params, fetch=False)


def fetch_until(
    db: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any],
    enough: Callable[[tuple[Any, ...]], bool],
) -> tuple[list[tuple[Any, ...]], bool]:
    """The rows of ``sql`` up to the first for which ``enough(row)`` is true (that one
    left out), and whether one was: the rest are never read. On SQLite, whose cursor
    steps through the result as it is read, this saves reading them; other drivers
    have fetched them all already, so it saves only building the page."""
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = []
        for row in cursor:
            if enough(row):
                return rows, True
            rows.append(row)
        return rows, False


def _run(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any], *, fetch: bool) -> Any:
    conn = db.connection
    if conn is None or db.queries_logged or db.execute_wrappers or db.needs_rollback:
        # Connecting, logging, wrapped or refusing (a broken transaction): Django's way.
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else getattr(cursor, "lastrowid", None)
    db.validate_thread_sharing()
    try:
        if db.vendor == "postgresql":
            # Bound on the server (Django's cursors bind on the client), so that psycopg
            # prepares the statement after its prepare_threshold runs (see settings).
            cursor = _server_bound_cursor(conn)
            cursor.execute(sql, params)
        else:
            paramstyle = db.Database.paramstyle  # type: ignore[attr-defined]
            cursor = conn.execute(driver_sql(paramstyle, sql), params)
        try:
            return cursor.fetchall() if fetch else getattr(cursor, "lastrowid", None)
        finally:
            cursor.close()
    except Exception:
        with db.wrap_database_errors:  # the driver's error as Django's (IntegrityError…)
            raise


def _server_bound_cursor(conn: Any) -> Any:
    import psycopg

    return psycopg.Cursor(conn)


@functools.cache
def driver_sql(paramstyle: str, sql: str) -> str:
    """``sql`` written with Django's ``%s`` placeholders, in the driver's own style."""
    if paramstyle == "qmark":
        return sql.replace("%%", "\0").replace("%s", "?").replace("\0", "%")
    return sql


class Columns:
    """A model's concrete columns, selected by hand-written SQL and turned back into
    instances exactly as the ORM would (each column through the converters Django itself
    applies: text to datetimes and booleans on SQLite, JSON, encrypted fields…).

    ``select(db, alias)`` is the column list for a ``SELECT``; ``build(db, row, start)``
    makes the instance from ``row[start:start + len(columns)]`` (None when a LEFT JOIN
    found nothing, i.e. its primary key is NULL).
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.pk_index = self.fields.index(model._meta.pk)

    def __len__(self) -> int:
        return len(self.fields)

    def select(self, db: BaseDatabaseWrapper, alias: str) -> str:
        quote = db.ops.quote_name
        return ", ".join(f"{quote(alias)}.{quote(field.column)}" for field in self.fields)

    def build(self, db: BaseDatabaseWrapper, row: Sequence[Any], start: int = 0) -> Model | None:
        values = self.convert(db, row[start : start + len(self.fields)])
        if values[self.pk_index] is None:
            return None
        return self.model.from_db(db.alias, self.attnames, values)

    def convert(self, db: BaseDatabaseWrapper, row: Sequence[Any]) -> list[Any]:
        """The row's values through the converters the ORM applies to these columns."""
        values = list(row)
        for index, column, converters in self._converters(db.vendor, db.alias):
            value = values[index]
            for convert in converters:
                value = convert(value, column, db)
            values[index] = value
        return values

    @functools.cache  # noqa: B019 - one per model and database, for the process's life
    def _converters(self, vendor: str, alias: str) -> list[tuple[int, Any, list[Any]]]:
        # Converters are the backend's and the fields' functions; the backend's are bound
        # to the operations of the connection that first asked, and use it only for
        # settings every connection of the alias shares (its time zone).
        from django.db import connections

        db = connections[alias]
        table = self.model._meta.db_table
        found = []
        for index, field in enumerate(self.fields):
            column = field.get_col(table)
            # The backend's converters, then the field's: as the ORM's compiler does.
            converters = db.ops.get_db_converters(column) + column.get_db_converters(db)
            if converters:
                found.append((index, column, converters))
        return found


class Listing:
    """One offset page of a model's rows, filtered by equality on columns, in the
    model's ``Meta.ordering``, with the total: a ``SELECT`` and a ``COUNT`` prepared once
    per combination of filters, the rows dicts of every column (foreign keys by their
    ``_id`` names) converted as the ORM converts them.

    For the lists tools read all day, where compiling two querysets per request cost
    more than running them. Anything richer than equality filters stays with the ORM.
    """

    def __init__(self, model: type[Model]) -> None:
        self.columns = Columns(model)
        self.model = model

    def page(
        self,
        db: BaseDatabaseWrapper,
        filters: dict[str, Any],
        *,
        limit: int,
        offset: int,
        max_bytes: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """(the rows of the page, the total), filtered by ``filters`` (column attname ->
        value; None leaves that column unfiltered); with ``max_bytes``, cut before the row
        whose long texts would take the page's past it (``pagination.offset_page``'s
        rule): the texts' sizes first (numbers, computed by the database), then only the
        rows that fit, then the total unless the page is the last."""
        used = tuple(sorted(name for name, value in filters.items() if value is not None))
        params = [filters[name] for name in used]
        select, count, sizes_sql = self._sql(db.vendor, used)
        if sizes_sql is None or max_bytes is None:
            rows = fetch_all(db, select, [*params, limit, offset])
            found = len(rows)
        else:
            sizes = [size for (size,) in fetch_all(db, sizes_sql, [*params, limit, offset])]
            found, fitting = len(sizes), fitting_count(sizes, max_bytes)
            rows = fetch_all(db, select, [*params, fitting, offset]) if fitting else []
        # A short page is the list's last: its total needs no count.
        total = offset + found if 0 < found < limit else fetch_all(db, count, params)[0][0]
        return [self._row(db, row) for row in rows], total

    def _row(self, db: BaseDatabaseWrapper, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.columns.attnames, self.columns.convert(db, row), strict=True))

    def _column(self, name: str) -> str:
        field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
        column = getattr(field, "column", None)
        assert isinstance(column, str), f"{name} is not a column"
        return column

    @functools.cache  # noqa: B019 - one per model, vendor and filter set
    def _sql(self, vendor: str, used: tuple[str, ...]) -> tuple[str, str, str | None]:
        from django.db import connections

        db = connections[DEFAULT_DB_ALIAS]
        quote = db.ops.quote_name
        meta = self.model._meta
        table = quote(meta.db_table)
        where = " AND ".join(f"{quote(self._column(name))} = %s" for name in used)
        where = f" WHERE {where}" if where else ""
        order = []
        for name in meta.ordering or ["pk"]:
            assert isinstance(name, str), "only field names in Meta.ordering"
            column = self._column(name.removeprefix("-"))
            order.append(f"{quote(column)}{' DESC' if name.startswith('-') else ''}")
        page = f"FROM {table}{where} ORDER BY {', '.join(order)} LIMIT %s OFFSET %s"
        select = f"SELECT {self.columns.select(db, meta.db_table)} {page}"
        count = f"SELECT COUNT(*) FROM {table}{where}"  # noqa: S608
        texts = text_columns(self.model)
        if not texts:
            return select, count, None
        sizes = " + ".join(
            _text_bytes_sql(vendor, quote(self._column(name)), self.model._meta.get_field(name))
            for name in texts
        )
        return select, count, f"SELECT {sizes} {page}"


def _text_bytes_sql(vendor: str, column: str, field: Any) -> str:
    """SQL for the bytes (UTF-8) of a text or JSON ``column`` (0 for a null), as
    ``pagination.bytes_of`` computes them."""
    if vendor == "postgresql":
        text = f"{column}::text" if isinstance(field, JSONField) else column
        return f"COALESCE(OCTET_LENGTH({text}), 0)"
    return f"COALESCE(LENGTH(CAST({column} AS BLOB)), 0)"
