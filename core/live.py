"""Waking the readers that wait for something to commit, without a query per reader.

A writer calls ``notify(channel)`` inside its transaction; a reader awaits
``wait_for(channel, timeout)`` and then reads again. Channels are plain names:
``events`` (the event feed), ``logs:<agent id>`` (one agent's log), ``questions:<agent
id>`` (the questions waiting for an agent).

- **PostgreSQL**: ``notify`` runs ``pg_notify``, which the database delivers when the
  transaction commits (never for a rollback), to every process. Each process keeps one
  listening connection, in one thread, that wakes that process's waiters.
- **SQLite** (one machine): the commit wakes this process's waiters at once
  (``on_commit``); other processes' commits are seen by one watcher thread per process
  that reads the feed's, the logs' and the questions' last marks every
  ``WATCH_INTERVAL`` seconds while anyone waits and, when they move, wakes the channels
  of what is new (the agents that logged, not every follower).

Either way a waiter also wakes after ``FALLBACK_SECONDS`` and reads again, so a lost
notification (a listener reconnecting) delays an answer, never loses it. A reader
subscribes before it reads (``hub.subscribed``), so a commit between its read and its
wait wakes it too. Waiting holds no database connection and no thread: it is an
``asyncio.Event`` on the waiter's loop.
"""

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection, transaction

from core import readlimits

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The one PostgreSQL channel cw notifies on; the payload names cw's channel.
PG_CHANNEL = "cw_live"
#: How often the SQLite watcher looks for other processes' commits while anyone waits.
WATCH_INTERVAL = 0.25
#: The longest a waiter sleeps before it reads again even without a notification.
FALLBACK_SECONDS = 5.0
#: How long the PostgreSQL listener keeps its connection once nobody waits.
IDLE_SECONDS = 10.0
#: How often the listener, between notifications, checks whether anyone still waits.
NOTIFY_POLL_SECONDS = 1.0


def events_channel() -> str:
    return "events"


def log_channel(agent_id: str) -> str:
    return f"logs:{agent_id}"


def questions_channel(agent_id: str) -> str:
    return f"questions:{agent_id}"


def notify(channel: str) -> None:
    """Wake ``channel``'s waiters once the caller's transaction commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [PG_CHANNEL, channel])
        # This process's waiters hear it from the listener like every other process's.
        return
    transaction.on_commit(lambda: hub.wake(channel))


class Subscription:
    """A reader's interest in one channel, taken before it reads: a commit that lands
    between the read and the wait still wakes the wait (it was never lost in a gap)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        # An asyncio.Event for a reader on an event loop, a threading.Event for a thread.
        self.event: asyncio.Event | threading.Event = (
            asyncio.Event() if loop is not None else threading.Event()
        )

    def set(self) -> None:
        """Wake the reader; safe from any thread."""
        if self.loop is None:
            self.event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the reader's loop has closed
                self.loop.call_soon_threadsafe(self.event.set)

    async def wait(self, timeout: float) -> bool:
        """Until notified since the last wait (True) or ``timeout`` seconds pass, at most
        ``FALLBACK_SECONDS`` (False)."""
        assert isinstance(self.event, asyncio.Event)
        try:
            await asyncio.wait_for(self.event.wait(), timeout=min(timeout, FALLBACK_SECONDS))
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()

    def wait_in_thread(self, timeout: float) -> bool:
        """``wait`` for a reader that is a thread (a WSGI request, a command)."""
        assert isinstance(self.event, threading.Event)
        woken = self.event.wait(min(timeout, FALLBACK_SECONDS))
        self.event.clear()
        return woken


class Hub:
    """The readers of one process, by channel, and the one thread that wakes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Subscription]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        #: Set when a waiter arrives, so an idle listener connects again.
        self._someone_waits = threading.Event()
        self._stop = threading.Event()

    # --- readers ---------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribed(self, channel: str, *, in_thread: bool = False) -> Iterator[Subscription]:
        """Follow ``channel`` while the block runs: read, then ``wait`` and read again.
        On an event loop unless ``in_thread``."""
        subscription = Subscription(None if in_thread else asyncio.get_running_loop())
        with self._lock:
            self._waiters[channel].add(subscription)
        self._someone_waits.set()
        self._ensure_started()
        try:
            yield subscription
        finally:
            with self._lock:
                self._waiters[channel].discard(subscription)
                if not self._waiters[channel]:
                    del self._waiters[channel]

    async def wait_for(self, channel: str, timeout: float) -> bool:
        """Wait until ``channel`` is notified (True) or ``timeout`` seconds pass, at most
        ``FALLBACK_SECONDS`` (False). A reader that reads, then waits, should hold a
        ``subscribed`` across both instead, or a commit between them wakes nobody."""
        with self.subscribed(channel) as subscription:
            return await subscription.wait(timeout)

    def waiting(self) -> int:
        """How many readers wait now (all channels)."""
        with self._lock:
            return sum(len(waiters) for waiters in self._waiters.values())

    def channels(self) -> list[str]:
        """The channels someone follows now."""
        with self._lock:
            return list(self._waiters)

    # --- writers' side ---------------------------------------------------------------

    def wake(self, channel: str | None = None) -> None:
        """Wake ``channel``'s waiters (every waiter when ``channel`` is None); safe from
        any thread."""
        with self._lock:
            if channel is None:
                waiters = [w for group in self._waiters.values() for w in group]
            else:
                waiters = list(self._waiters.get(channel, ()))
        for subscription in waiters:
            subscription.set()

    # --- the thread that wakes them ----------------------------------------------------

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            target = _listen_postgresql if connection.vendor == "postgresql" else _watch_sqlite
            self._thread = threading.Thread(
                target=target, args=(self,), name="cw-live", daemon=True
            )
            self._thread.start()

    def idle(self) -> bool:
        """Wait (in the thread) until someone waits or the hub stops; True to go on."""
        while not self.waiting():
            self._someone_waits.clear()
            if self.waiting():
                break
            self._someone_waits.wait(1.0)
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def stop(self) -> None:
        """End the thread (and close its connection); the next waiter starts it again."""
        self._stop.set()
        self._someone_waits.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


hub = Hub()


def _listen_postgresql(hub: Hub) -> None:
    """While anyone waits, hold one LISTEN connection and wake the channels its
    notifications name; close it when nobody has waited for a while, and reconnect
    after a failure (waiters read again meanwhile, on their fallback)."""
    import psycopg
    from django.db import connections

    while hub.idle():
        try:
            params = connections["default"].get_connection_params()
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {PG_CHANNEL}")
                hub.wake()  # anything committed before the listener listened
                quiet = 0.0
                while not hub._stop.is_set() and quiet < IDLE_SECONDS:
                    for notification in conn.notifies(timeout=NOTIFY_POLL_SECONDS):
                        hub.wake(notification.payload)
                    quiet = 0.0 if hub.waiting() else quiet + NOTIFY_POLL_SECONDS
        except Exception:
            logger.warning("cw live: the PostgreSQL listener lost its connection", exc_info=True)
            hub._stop.wait(1.0)


def _watch_sqlite(hub: Hub) -> None:
    """While anyone waits, read the feed's, the logs' and the questions' last marks and,
    when they move (another process committed), wake the channels of what is new: the
    feed, the logs of the agents that logged, the questions of the agents asked."""
    from django.db import connections

    marks: tuple[Any, ...] | None = None
    while hub.idle():
        if hub._stop.wait(WATCH_INTERVAL):
            break
        db = connections["default"]
        try:
            with db.cursor() as cursor:
                now = _sqlite_marks(cursor)
                channels = _sqlite_news(cursor, marks, now) if marks is not None else []
        except Exception:
            logger.debug("cw live: the SQLite watcher could not read", exc_info=True)
            db.close()
            continue
        for channel in channels:
            hub.wake(channel)
        if hub.waiting():
            marks = now
        else:
            marks = None
            db.close()  # nobody waits: the watcher holds no connection while idle
    connections["default"].close()


def _sqlite_marks(cursor: Any) -> tuple[Any, ...]:
    cursor.execute(
        "SELECT (SELECT MAX(id) FROM events), (SELECT MAX(id) FROM agent_log_chunks),"
        " (SELECT MAX(updated_at) FROM conversations)"
    )
    return tuple(cursor.fetchone() or (None, None, None))


def _sqlite_news(cursor: Any, before: tuple[Any, ...], now: tuple[Any, ...]) -> list[Any]:
    """The channels to wake for what committed between two marks."""
    channels: list[str] = []
    events, chunks, conversations = before
    if now[0] != events:
        channels.append(events_channel())
    if now[1] != chunks:
        if chunks is not None and now[1] is not None and now[1] < chunks:
            # A log was deleted or pruned past the mark: wake every follower of a log.
            channels.extend(c for c in hub.channels() if c.startswith("logs:"))
        else:
            cursor.execute(
                "SELECT DISTINCT agent_id FROM agent_log_chunks WHERE id > %s", [chunks or 0]
            )
            channels.extend(log_channel(agent_id) for (agent_id,) in cursor.fetchall())
    if now[2] != conversations:
        if conversations is None:
            cursor.execute("SELECT DISTINCT to_agent_id FROM conversations")
        else:
            cursor.execute(
                "SELECT DISTINCT to_agent_id FROM conversations WHERE updated_at > %s",
                [conversations],
            )
        channels.extend(questions_channel(agent_id) for (agent_id,) in cursor.fetchall())
    return channels


# --- reading until something is there ------------------------------------------------------

#: The longest a reader may wait in one call (long polls: the event feed, questions).
MAX_WAIT_SECONDS = 30


def check_wait(wait: Any) -> float:
    """``wait`` as seconds from 0 to ``MAX_WAIT_SECONDS``; ``invalid_wait`` otherwise."""
    from core.errors import InvalidInput

    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not 0 <= wait <= MAX_WAIT_SECONDS
    ):
        raise InvalidInput(
            f"wait must be from 0 to {MAX_WAIT_SECONDS} seconds.",
            code="invalid_wait",
            details={"wait": str(wait), "max": MAX_WAIT_SECONDS},
        )
    return float(wait)


def read_released(read: Callable[[], T]) -> T:
    """``read()`` on the calling thread's connection, then let the thread keep it only as
    a request would (``CONN_MAX_AGE``; none held by a failed connection): under
    ``make serve`` the thread is the pool's and serves other requests while this reader
    waits on the event loop, so the wait holds no connection either way."""
    try:
        return read()
    finally:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


async def read_when_found(read: Callable[[], list[T]], *, channel: str, wait: float) -> list[T]:
    """``read()`` now; when it finds nothing, again each time ``channel`` is notified (or
    the fallback passes) until it does or ``wait`` seconds are over. Each read runs in
    the request's database thread and gives its connection back before the wait; for a
    long poll of the API each takes one of its caller's read slots, waiting for it, and
    gives it back before the wait too (``core.readlimits``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with hub.subscribed(channel) as subscription:
        while True:
            async with readlimits.read_slot():
                found = await sync_to_async(read_released)(read)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            await subscription.wait(remaining)


def read_when_found_sync(read: Callable[[], list[T]], *, channel: str, wait: float) -> list[T]:
    """``read_when_found`` for synchronous callers (a sync view, a command, a test),
    waiting in the calling thread."""
    if wait <= 0:
        return read()
    deadline = time.monotonic() + wait
    with hub.subscribed(channel, in_thread=True) as subscription:
        while True:
            with readlimits.read_slot_sync():
                found = read_released(read)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            subscription.wait_in_thread(remaining)
