"""SQLite's writers queue on the host before ``BEGIN IMMEDIATE`` (cw_project.db.sqlite3):
every write lands, a failed transaction gives its place up, and a queue held elsewhere
fails a writer after the connection's timeout as SQLite's own lock would.

Each test opens its own database file with cw's SQLite backend, so it runs whichever
database the suite itself uses."""

import fcntl
import os
import threading
import time

import pytest
from django.db import OperationalError

from cw_project.database import SQLITE_OPTIONS
from cw_project.db.sqlite3.base import DatabaseWrapper, writer_queue


def wrapper(path, timeout: float = 30) -> DatabaseWrapper:
    return DatabaseWrapper(
        {
            "ENGINE": "cw_project.db.sqlite3",
            "NAME": str(path),
            "OPTIONS": {**SQLITE_OPTIONS, "timeout": timeout},
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
        }
    )


def write_in_transaction(db: DatabaseWrapper, value: int, *, fail: bool = False) -> None:
    """What ``transaction.atomic`` does on SQLite: BEGIN (IMMEDIATE), write, COMMIT."""
    db.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        with db.cursor() as cursor:
            cursor.execute("INSERT INTO t (v) VALUES (%s)", [value])
        if fail:
            raise RuntimeError("the caller gave up")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.set_autocommit(True)


@pytest.fixture(autouse=True)
def own_files_allowed(django_db_blocker):
    """These tests open files of their own, never the suite's database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "queue.sqlite3"
    db = wrapper(path)
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v INTEGER)")
    db.close()
    return path


def count(path) -> int:
    db = wrapper(path)
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM t")
            return cursor.fetchone()[0]
    finally:
        db.close()


def test_writers_of_many_threads_all_land_and_leave_the_queue_free(database):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        db = wrapper(database)
        try:
            for i in range(25):
                write_in_transaction(db, n * 100 + i)
        except BaseException as error:
            errors.append(error)
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert count(database) == 200
    queue = writer_queue(str(database))
    assert queue is not None and queue.threads.acquire(blocking=False)
    queue.threads.release()


def test_a_transaction_rolled_back_gives_its_place_up(database):
    db = wrapper(database, timeout=2)
    with pytest.raises(RuntimeError):
        write_in_transaction(db, 1, fail=True)
    write_in_transaction(db, 2)  # would wait the timeout out if the place were kept
    db.close()
    assert count(database) == 1


def test_a_queue_held_by_another_process_fails_a_writer_after_its_timeout(database):
    queue = writer_queue(str(database))
    assert queue is not None
    # Another open file description stands for another process: flock is per description.
    other = os.open(queue.path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)
    db = wrapper(database, timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            write_in_transaction(db, 1)
        assert 0.5 <= time.monotonic() - started < 5
        fcntl.flock(other, fcntl.LOCK_UN)
        write_in_transaction(db, 2)
    finally:
        os.close(other)
        db.close()
    assert count(database) == 1
