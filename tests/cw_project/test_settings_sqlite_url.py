"""A ``sqlite://`` DATABASE_URL runs its file like the embedded default: WAL, a busy
timeout and IMMEDIATE transactions, so concurrent writers wait instead of failing."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler

from cw_project.database import SQLITE_OPTIONS, database_settings

DEFAULT_PATH = Path("/srv/cw/cw.sqlite3")


def build(url: str | None) -> dict:
    """``DATABASES["default"]`` as settings.py builds it for ``url``."""
    return database_settings(url, sqlite_path=DEFAULT_PATH, test_suffix="1234")


def test_a_sqlite_url_gets_the_engine_and_options_of_the_embedded_default():
    default = build(None)
    from_url = build("sqlite:////tmp/x.sqlite3")

    assert from_url["ENGINE"] == default["ENGINE"] == "cw_project.db.sqlite3"
    assert from_url["OPTIONS"] == default["OPTIONS"] == SQLITE_OPTIONS
    # Paths only compared, never opened.
    assert from_url["NAME"] == "/tmp/x.sqlite3"  # noqa: S108
    assert from_url["TEST"] == {"NAME": Path("/tmp/test_1234_x.sqlite3")}  # noqa: S108


@pytest.mark.parametrize("url", ["sqlite://", "sqlite://:memory:"])
def test_an_in_memory_sqlite_url_is_refused_with_a_clear_message(url):
    with pytest.raises(ImproperlyConfigured, match="in-memory SQLite"):
        build(url)


def test_a_postgres_url_keeps_its_engine_and_prepare_threshold():
    database = database_settings(
        "postgres://u@db:5432/cw",
        sqlite_path=DEFAULT_PATH,
        test_suffix="1",
        prepare_threshold="off",
    )
    assert database["ENGINE"] == "cw_project.db.postgresql"
    assert database["NAME"] == "cw"
    assert database["OPTIONS"] == {"prepare_threshold": None}


def test_a_connection_to_a_sqlite_url_runs_in_wal_with_a_busy_timeout(tmp_path, django_db_blocker):
    path = tmp_path / "x.sqlite3"
    connections = ConnectionHandler({"default": build(f"sqlite:///{path}")})
    connection = connections["default"]
    with django_db_blocker.unblock():
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode")
                journal_mode = cursor.fetchone()[0]
                cursor.execute("PRAGMA busy_timeout")
                busy_timeout = cursor.fetchone()[0]
        finally:
            connection.close()
    assert journal_mode == "wal"
    assert busy_timeout == 30_000
    assert connection.transaction_mode == "IMMEDIATE"
    assert path.exists()
