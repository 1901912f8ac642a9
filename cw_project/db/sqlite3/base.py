"""Django's SQLite backend, writing foreign keys with their ON DELETE rule and reading
timestamps in one step, and queueing its writers instead of letting them poll.

Django's own backend has the ``sqlite3`` driver parse every column declared
``datetime`` (``detect_types``) into a naive datetime, then makes it aware with
``datetime.replace`` (slow in CPython 3.11), costing several microseconds a timestamp:
most of the time of a page of a hundred records. Here the driver hands the stored text
over as it is, and the ORM's converters (which take text for every type: datetimes,
dates, times, booleans, decimals) read it once, straight into an aware datetime.

SQLite has one writer at a time, and a connection that finds the write lock taken
sleeps and tries again (its busy handler: 1, 2, 5, 10 … up to 100 ms between tries), so
under many short write transactions from several processes (``make serve``'s workers,
fifty agents appending) most of a write's time was sleep, and a request waited up to
seconds while the machine idled. Here a write transaction first takes its place in a
queue on the host, a lock file beside the database (``<name>-writers``) held with
``flock`` plus a lock per process for its threads, and only then ``BEGIN IMMEDIATE``:
writers pass the lock on the moment one commits. The queue waits at most the
connection's ``timeout``, then fails as SQLite would ("database is locked"). Writers
that do not queue (another program, the ``sqlite3`` shell) are still served by SQLite's
own lock, which the queue only ever precedes.
"""

import datetime
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.db.backends.sqlite3 import base, creation, operations, schema

from cw_project.db import OnDeleteSchemaEditorMixin

_UTC = datetime.UTC
_fromisoformat = datetime.datetime.fromisoformat


class DatabaseSchemaEditor(OnDeleteSchemaEditorMixin, schema.DatabaseSchemaEditor):
    pass


class DatabaseOperations(operations.DatabaseOperations):
    def convert_datetimefield_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # Stored by Django as naive UTC text ("2026-11-29 06:49:58.123456"); with the
        # connection in UTC, parsing it with the offset appended is the aware datetime,
        # several times cheaper than parsing and then replace(tzinfo=...).
        if type(value) is str and settings.USE_TZ and self.connection.timezone is _UTC:
            try:
                return _fromisoformat(value + "+00:00")
            except ValueError:
                pass  # text with an offset of its own, or another format: Django's way
        return super().convert_datetimefield_value(value, expression, connection)


#: The longest a queued writer sleeps between looks at the host's lock, in seconds.
QUEUE_POLL_SECONDS = 0.002


class WriterQueue:
    """The writers of one database file on this host, one at a time: a lock for the
    threads of this process, then ``flock`` on the queue file for the processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.threads = threading.Lock()
        self.fd: int | None = None

    def enter(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise OperationalError("database is locked") from None
                    time.sleep(pause)
                    pause = min(pause * 2, QUEUE_POLL_SECONDS)
        except BaseException:
            self.threads.release()
            raise

    def leave(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.threads.release()


_queues: dict[str, WriterQueue] = {}
#: The queue of each database name seen (resolving a path is a system call per part).
_queues_by_name: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def writer_queue(name: str) -> WriterQueue | None:
    """The queue of the database file ``name`` (None for an in-memory database)."""
    if (known := _queues_by_name.get(name)) is not None:
        return known
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = f"{Path(name).resolve()}-writers"
    with _queues_lock:
        if path not in _queues:
            _queues[path] = WriterQueue(path)
        _queues_by_name[name] = _queues[path]
        return _queues[path]


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)  # type: ignore[misc]
        queue = writer_queue(str(test_database_name))
        if queue is not None:
            Path(queue.path).unlink(missing_ok=True)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
    creation_class = DatabaseCreation
    ops_class = DatabaseOperations
    #: The queue this connection's open write transaction holds its place in.
    _queued: WriterQueue | None = None

    def _start_transaction_under_autocommit(self) -> None:
        queue = writer_queue(str(self.settings_dict["NAME"]))
        if queue is None or getattr(self, "transaction_mode", None) != "IMMEDIATE":
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        queue.enter(float(self.settings_dict["OPTIONS"].get("timeout", 5)))
        self._queued = queue
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._leave_queue()
            raise

    def _leave_queue(self) -> None:
        queue, self._queued = self._queued, None
        if queue is not None:
            queue.leave()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._leave_queue()

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        # No parsing by declared type in the driver: the ORM's converters do it (once).
        params["detect_types"] = 0
        return params

    def get_new_connection(self, conn_params):
        # The embedded database lives under var/ (git ignores it): make the folder on
        # first use rather than when settings are imported.
        name = str(conn_params.get("database", ""))
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)
