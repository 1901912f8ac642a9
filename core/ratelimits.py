"""The API's per-caller limit on writes (OWASP API4), shared by every process serving it.

Each token (or staff user, for a session) may make ``CW_API_WRITE_RATE_LIMIT`` writes
(POST, PUT, PATCH, DELETE) per minute; reads are never limited. The counter of the
current minute lives in the database (``api_rate_windows``), counted up in one statement
by the request that writes, so the limit holds however many gunicorn workers or hosts
serve the API. A write beyond the limit is refused before its handler runs, with 429
``throttled`` and ``Retry-After`` (seconds until the minute ends); it writes nothing.

Windows are fixed minutes: a caller can burst up to twice the limit across a minute's
boundary, which is fine for what this guards against (a runaway loop, a leaked token in
a storm), and costs one indexed upsert instead of a log of timestamps.

A process counts a caller's writes in leases of a hundredth of the limit (``lease_size``;
one write under a limit below 200): it adds the lease to the window's count in one
upsert, then lets that many of the caller's writes through without touching the
database. The count so never passes the limit, and a caller busy on several processes may
be refused up to a lease per process early, while another process still holds part of
its lease; one upsert per thirty writes at the default limit instead of one per write,
which was a second write transaction (SQLite's one writer at a time) for every append of
a log line.

``CW_API_WRITE_RATE_LIMIT=0`` turns the limit off.
"""

import math
import threading
import time

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from ninja.errors import Throttled
from ninja.throttling import BaseThrottle

from core.models import ApiToken
from core.repositories.ratelimits import ApiRateWindowRepository

#: Length of a window of the limit, in seconds.
WINDOW_SECONDS = 60
#: Methods that never count against the limit.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Callers over the limit one process remembers (a bound on memory, never reached).
MAX_SPENT_REMEMBERED = 10_000
#: A lease is this share of the limit (at least one write).
LEASE_SHARE = 100

windows = ApiRateWindowRepository()


def write_rate_limit() -> int:
    """Writes a caller may make per window; 0 when the limit is off."""
    return int(getattr(settings, "CW_API_WRITE_RATE_LIMIT", 0) or 0)


def caller_key(auth: object) -> str | None:
    """``token:<id>`` or ``user:<id>`` for what authenticated the request."""
    if isinstance(auth, ApiToken):
        return f"token:{auth.pk}"
    if isinstance(auth, AbstractBaseUser):
        return f"user:{auth.pk}"
    return None


def lease_size(limit: int) -> int:
    """Writes a process counts in one upsert, under a limit of ``limit``."""
    return max(1, limit // LEASE_SHARE)


class WriteRateThrottle(BaseThrottle):
    """Ninja's throttle hook (run after authentication) over the database counter."""

    def __init__(self) -> None:
        # One instance serves every thread of a process: the wait of a refusal is per call.
        self._local = threading.local()
        # Callers this process has seen over the limit, with the window they used up and
        # the limit then in force: a count never goes down within a window, so their
        # further writes in it are refused without touching the database (a storm costs
        # a read per request, not a write).
        self._spent: dict[str, tuple[int, int]] = {}
        # The writes of a lease not yet used, per caller: (window, limit, writes left).
        self._leases: dict[str, tuple[int, int, int]] = {}
        self._leases_lock = threading.Lock()

    def forget(self) -> None:
        """Drop what this process remembers (for tests that roll the counts back)."""
        self._spent.clear()
        with self._leases_lock:
            self._leases.clear()

    def _take(self, key: str, start: int, limit: int) -> bool:
        """One write of ``key`` in the window ``start``: from its lease, or a new one."""
        with self._leases_lock:
            window, lease_limit, left = self._leases.get(key, (0, 0, 0))
            if window == start and lease_limit == limit and left > 0:
                self._leases[key] = (window, limit, left - 1)
                return True
        size = lease_size(limit)
        hits = windows.hit(key, start, size)
        granted = min(size, limit - (hits - size))
        if granted <= 0:
            return False
        if granted > 1:
            with self._leases_lock:
                if len(self._leases) > MAX_SPENT_REMEMBERED:
                    self._leases.clear()
                self._leases[key] = (start, limit, granted - 1)
        return True

    def allow_request(self, request: HttpRequest) -> bool:
        self._local.wait = None
        limit = write_rate_limit()
        if limit <= 0 or request.method in SAFE_METHODS:
            return True
        key = caller_key(getattr(request, "auth", None))
        if key is None:
            return True
        now = time.time()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        if self._spent.get(key) != (start, limit):
            if self._take(key, start, limit):
                return True
            if len(self._spent) > MAX_SPENT_REMEMBERED:
                self._spent.clear()
            self._spent[key] = (start, limit)
        self._local.wait = max(1, math.ceil(start + WINDOW_SECONDS - now))
        request.cw_rate_limit = limit  # type: ignore[attr-defined]  # for the 429's message
        return False

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)


#: The API's one throttle (``cw_project.api``): every process counts its leases in it,
#: and the operations that check the limit themselves use it too.
WRITE_THROTTLE = WriteRateThrottle()


def check_write_rate(request: HttpRequest) -> None:
    """Count one write of ``request``'s caller, or refuse it (``Throttled``: 429
    ``throttled`` with ``Retry-After``), for an operation that checks the limit itself.

    Ninja checks an async operation's throttles on the event loop, where the database
    may not be used, so an async write is declared without Ninja's throttle
    (``throttle=[]``) and calls this on a thread first (``sync_to_async``): the same
    count, the same refusal."""
    if not WRITE_THROTTLE.allow_request(request):
        raise Throttled(wait=WRITE_THROTTLE.wait())  # type: ignore[arg-type]
