"""The raw baseline: the same database file or server, reached without Django.

On SQLite it is the standard library's ``sqlite3`` with the pragmas cw sets (WAL,
``synchronous=NORMAL``, foreign keys, a busy timeout) and ``BEGIN IMMEDIATE`` write
transactions; on PostgreSQL it is plain ``psycopg`` with the connection settings cw
uses. Every benchmark figure of cw is divided by the figure of this connection doing
the same work on the same rows, measured in the same run.
"""

import sqlite3
from collections.abc import Sequence
from typing import Any


class RawConnection:
    """A DB-API connection to the database Django is using, with the same settings."""

    def __init__(self) -> None:
        from django.db import connection

        self.vendor = connection.vendor
        settings = connection.settings_dict
        if self.vendor == "sqlite":
            self.conn: Any = sqlite3.connect(
                settings["NAME"], isolation_level=None, timeout=30, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.mark = "?"
            self.begin = "BEGIN IMMEDIATE"
        elif self.vendor == "postgresql":
            import psycopg

            self.conn = psycopg.connect(
                dbname=settings["NAME"],
                user=settings.get("USER") or None,
                password=settings.get("PASSWORD") or None,
                host=settings.get("HOST") or None,
                port=settings.get("PORT") or None,
                autocommit=True,
            )
            self.conn.execute("SET TIME ZONE 'UTC'")
            self.mark = "%s"
            self.begin = "BEGIN"
        else:  # pragma: no cover - cw runs on these two
            raise RuntimeError(f"no raw baseline for {self.vendor}")

    def sql(self, text: str) -> str:
        """``text`` with ``%s`` placeholders in this driver's style."""
        return text.replace("%s", self.mark)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` for every row in one write transaction."""
        cursor = self.conn.cursor()
        cursor.execute(self.begin)
        try:
            cursor.executemany(sql, rows)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement in autocommit (its own transaction)."""
        self.conn.execute(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql, params)
        return cursor.fetchall()

    def settle(self) -> None:
        """Between timed rounds: on SQLite, checkpoint the write-ahead log into the
        database (what SQLite does by itself every 1,000 pages, at a moment that would
        fall on one round or the other at random)."""
        if self.vendor == "sqlite":
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()
