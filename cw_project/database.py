"""The ``default`` entry of ``DATABASES``: the embedded SQLite file, or ``DATABASE_URL``'s.

A SQLite database, the embedded default or a ``sqlite://`` URL's file alike, runs in WAL
mode with a busy timeout and IMMEDIATE transactions: WAL lets readers proceed while one
writer writes; the busy timeout makes a writer wait for the lock instead of failing at
once; IMMEDIATE transactions take the write lock when a transaction begins, so two
read-then-write transactions cannot deadlock on upgrade. Without them concurrent
writers fail with ``database is locked``.
"""

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}

# The cw_project.db backends are Django's, writing the seed's ON DELETE rules into the
# schema's foreign keys too (see cw_project/db/__init__.py).
CW_ENGINES = {
    "django.db.backends.sqlite3": "cw_project.db.sqlite3",
    "django.db.backends.postgresql": "cw_project.db.postgresql",
}


def sqlite_database(path: Path, *, test_suffix: str, conn_max_age: int = 60) -> dict[str, Any]:
    """The settings of the SQLite file at ``path``; tests use ``test_<test_suffix>_<name>``
    beside it.

    A connection is kept for its thread's next request (``conn_max_age`` seconds), as
    on PostgreSQL: opening one (the file, Django's SQL functions, the pragmas) cost more
    than a one-line log append's whole work.
    """
    return {
        "ENGINE": CW_ENGINES["django.db.backends.sqlite3"],
        "NAME": str(path),
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": dict(SQLITE_OPTIONS),
        # Tests use a file too, never :memory:, so that threads in concurrency tests each
        # get a real connection to the same database; the caller makes the suffix unique
        # per test run, so two runs on one checkout never share a database.
        "TEST": {"NAME": path.with_name(f"test_{test_suffix}_{path.name}")},
    }


def database_settings(
    url: str | None,
    *,
    sqlite_path: Path,
    test_suffix: str,
    prepare_threshold: str = "5",
    conn_max_age: int = 60,
) -> dict[str, Any]:
    """The ``default`` database: the SQLite file at ``sqlite_path`` when ``url`` is empty,
    else the one ``url`` names (``postgres://…``, ``sqlite:////abs/path.sqlite3``).

    A ``sqlite://`` URL gets the embedded default's engine and options, only its file
    differs. An in-memory SQLite URL is refused: every connection would get a database of
    its own. ``prepare_threshold`` is PostgreSQL's (``off`` turns preparing off).
    """
    if not url:
        return sqlite_database(sqlite_path, test_suffix=test_suffix, conn_max_age=conn_max_age)
    database: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    )
    engine = database["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        name = database.get("NAME") or ""
        if name in {"", ":memory:"}:
            raise ImproperlyConfigured(
                f"DATABASE_URL={url!r} names an in-memory SQLite database, which each "
                "connection would see empty; name a file (sqlite:////path/to/cw.sqlite3) "
                "or unset DATABASE_URL for the embedded default."
            )
        return sqlite_database(Path(name), test_suffix=test_suffix, conn_max_age=conn_max_age)
    database["ENGINE"] = CW_ENGINES.get(engine, engine)
    if database["ENGINE"] == CW_ENGINES["django.db.backends.postgresql"]:
        # The hot paths (core.repositories.hot) run server-side-bound statements, which
        # psycopg prepares after this many runs on a connection: planning a query again
        # on every call tripled the time of a page of a log. (The ORM binds on the
        # client and is never prepared.) CW_PG_PREPARE_THRESHOLD=off turns preparing off,
        # for a connection pooler that cannot keep prepared statements.
        database.setdefault("OPTIONS", {})["prepare_threshold"] = (
            None if prepare_threshold.lower() in {"off", "none", ""} else int(prepare_threshold)
        )
    return database
