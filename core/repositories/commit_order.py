"""Ids in commit order, for the tables readers follow forward with an id cursor.

A reader that asks for "the rows after id N" skips a row for good when a transaction
that took a smaller id commits after the reader has already seen a larger one. On
PostgreSQL ids come from a sequence when the row is inserted, long before its commit, so
writers whose rows one reader follows take a transaction-scoped advisory lock before
they insert: the next writer waits for the lock, so it takes its ids only once the one
before has committed (or rolled back), and rows become visible in id order. SQLite's
writers already hold the database's write lock from ``BEGIN IMMEDIATE`` to ``COMMIT``
(a single statement outside a transaction holds it for its run): nothing to take there.

Locks are always taken in one order, take-next's (``TAKE_NEXT_LOCK``) first, then the
event feed's (``EVENT_ORDER_LOCK``), then any log's (``LOG_ORDER_LOCK``), never the other
way round, so two writers never wait for each other.
"""

import zlib

from django.db.backends.base.base import BaseDatabaseWrapper

from core.repositories import hot

#: The advisory lock that orders the event feed's ids (one lock for the whole feed).
EVENT_ORDER_LOCK = 0x63770001
#: The class of the advisory locks that order one agent's log chunks (one lock per agent,
#: keyed by ``lock_key`` of its id, so appends to different agents never wait).
LOG_ORDER_LOCK = 0x63770002
#: The advisory lock take-nexts take turns on (``agents.services.take_next``): counting
#: live runs against their limits and adding one is safe only one claimer at a time.
TAKE_NEXT_LOCK = 0x63770003


def lock_key(name: str) -> int:
    """A stable 32-bit signed key for ``name`` (two names may share one: they then wait
    for each other, which costs time, never correctness)."""
    key = zlib.crc32(name.encode())
    return key - 2**32 if key >= 2**31 else key


def hold_commit_order(db: BaseDatabaseWrapper, lock: int, name: str | None = None) -> None:
    """In the caller's transaction on ``db`` (which must be atomic), wait for every other
    transaction that took ``lock`` (for ``name``, when given) to end, and hold it until
    this one ends: on PostgreSQL an advisory transaction lock; nothing on SQLite."""
    if db.vendor != "postgresql":
        return
    if name is None:
        hot.execute(db, "SELECT pg_advisory_xact_lock(%s)", [lock])
    else:
        hot.execute(db, "SELECT pg_advisory_xact_lock(%s, %s)", [lock, lock_key(name)])
