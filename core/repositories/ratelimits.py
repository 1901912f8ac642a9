"""The API's write counters: one row per caller and window, counted up in one statement."""

import functools

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from core.models import ApiRateWindow
from core.repositories.base import Repository


@functools.cache
def _hit_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(ApiRateWindow._meta.db_table)
    caller, start, hits = quote("caller"), quote("window_start"), quote("hits")
    # One statement on both databases (SQLite 3.35+, PostgreSQL 9.5+): the unique
    # constraint serialises concurrent first hits, so no count is ever lost.
    return (
        f"INSERT INTO {table} ({caller}, {start}, {hits}) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({caller}, {start}) DO UPDATE SET {hits} = {table}.{hits} + %s "
        f"RETURNING {hits}"
    )


class ApiRateWindowRepository(Repository[ApiRateWindow]):
    """Write counters of the API's rate limit. Rows are only ever counted up or pruned."""

    model = ApiRateWindow
    slug = "rate_window"
    label = "API rate window"

    def hit(self, caller: str, window_start: int, count: int = 1) -> int:
        """Count ``count`` writes of ``caller`` in the window starting at ``window_start``;
        the window's count with them. The first hit of a window deletes the caller's older
        ones."""
        db = connections[DEFAULT_DB_ALIAS]
        # Its own transaction (not one a caller opened): a count lost to a crash of the
        # database server is a write not counted, harmless, so its commit does not wait
        # for the disk (on PostgreSQL, half the time of a one-line log append); the
        # request's own writes still do.
        lazy_commit = db.vendor == "postgresql" and not db.in_atomic_block
        with transaction.atomic(), db.cursor() as cursor:
            if lazy_commit:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(_hit_sql(db.vendor), [caller, window_start, count, count])
            (hits,) = cursor.fetchone()
            if hits == count:
                ApiRateWindow.objects.filter(caller=caller, window_start__lt=window_start).delete()
        return int(hits)

    def prune(self, *, before: int) -> int:
        """Delete every window that started before ``before``; how many went."""
        deleted, _ = ApiRateWindow.objects.filter(window_start__lt=before).delete()
        return deleted
