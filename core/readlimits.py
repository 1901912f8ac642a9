"""The API's per-caller cap on concurrent expensive reads, shared by every process of a host.

Each token (or staff user, for a session: ``core.ratelimits.caller_key``) may have
``CW_API_READ_CONCURRENCY`` expensive reads running at once; ``retrieve_*``, ``whoami``
and writes are never counted (writes have their own limit). A slot is a file under
``CW_LOCK_DIR`` (``read-<hash of the caller>-<n>.lock``) held with ``flock``: the
kernel gives it back when the holder releases it or its process dies, and every
worker process of the host sees the same files, so the cap holds across ``make
serve``'s workers without a database write.

- **A list** (an operation named ``list_*``) takes a slot before its handler runs and
  gives it back once its response is made, serialization included. When none is free
  it is refused at once, with 429 ``reads_throttled`` and ``Retry-After: 1``: it has
  read nothing, and the caller's own reads are what it waits for.
- **A wait** (a list called with ``wait`` > 0, a long poll) and **a stream** (server-sent
  events, an NDJSON log) hold no slot while they wait or send: each database read they
  make takes a slot, waiting for one (on the event loop, polling, never refusing), and
  gives it back at once. A caller's waiting reads thus queue behind its lists, and a
  hundred open waits cost no slot.

``CW_API_READ_CONCURRENCY=0`` turns the cap off.
"""

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest

from core.ratelimits import caller_key

#: What a refused list's ``Retry-After`` says, in seconds: a read takes milliseconds.
RETRY_AFTER_SECONDS = 1
#: Seconds between a waiting read's tries for a slot.
POLL_SECONDS = 0.02
#: The prefix of the operations (handler names) a slot is taken for before they run.
CAPPED_PREFIX = "list_"
#: The query parameter that makes a list a long poll when positive.
WAIT_PARAMETER = "wait"

#: The caller whose database reads take a slot each, waiting: set for a long poll's
#: handler (``core.live.read_when_found`` reads it), unset elsewhere.
_waiting_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cw_waiting_reader", default=None
)


class ReadsThrottled(Exception):
    """A list found every slot of its caller taken (answered 429 ``reads_throttled``)."""

    def __init__(self, concurrency: int) -> None:
        super().__init__(f"{concurrency} reads already running")
        self.concurrency = concurrency
        self.retry_after = RETRY_AFTER_SECONDS


def read_concurrency() -> int:
    """Expensive reads a caller may have running at once; 0 when the cap is off."""
    return int(getattr(settings, "CW_API_READ_CONCURRENCY", 0) or 0)


def lock_dir() -> Path:
    """Where the slots' files are (``CW_LOCK_DIR``), created on first use."""
    return _made_dir(str(getattr(settings, "CW_LOCK_DIR", "var/locks")))


@functools.cache
def _made_dir(path: str) -> Path:
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def is_capped(view_func: Callable[..., Any]) -> bool:
    """Whether the operation of handler ``view_func`` takes a slot before it runs."""
    return view_func.__name__.startswith(CAPPED_PREFIX)


#: Slot files a process keeps open between reads (closed, unheld ones first, beyond it).
MAX_OPEN_SLOT_FILES = 1024


class _ProcessSlots:
    """This process's side of the slots: which it holds (so two of its threads never
    take one file, which ``flock`` on one descriptor would let them), and the files it
    keeps open, so a read costs a ``flock`` and an unlock, not an open and a close."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: set[tuple[str, int]] = set()
        self.files: dict[tuple[str, int], int] = {}

    def take(self, directory: Path, stem: str, concurrency: int) -> "ReadSlot | None":
        with self.lock:
            for number in range(concurrency):
                name = (f"{directory}/read-{stem}-{number}.lock", number)
                if name in self.held:
                    continue
                fd = self.files.get(name)
                if fd is None:
                    self._make_room()
                    fd = os.open(name[0], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self.files[name] = fd
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process holds it
                self.held.add(name)
                return ReadSlot(self, name, fd)
        return None

    def give_back(self, name: tuple[str, int], fd: int) -> None:
        with self.lock:
            fcntl.flock(fd, fcntl.LOCK_UN)
            self.held.discard(name)

    def _make_room(self) -> None:
        if len(self.files) < MAX_OPEN_SLOT_FILES:
            return
        for name in [name for name in self.files if name not in self.held]:
            os.close(self.files.pop(name))


_slots = _ProcessSlots()


class ReadSlot:
    """One held slot: an exclusive ``flock`` on its file."""

    def __init__(self, owner: _ProcessSlots, name: tuple[str, int], fd: int) -> None:
        self._owner = owner
        self._name = name
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the slot back; twice is harmless."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._owner.give_back(self._name, fd)


@functools.lru_cache(maxsize=4096)
def _stem(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def try_take(key: str, concurrency: int) -> ReadSlot | None:
    """A free slot of caller ``key`` (``concurrency`` of them), or None when all are held.
    Never blocks: each file is tried with ``LOCK_NB``."""
    return _slots.take(lock_dir(), _stem(key), concurrency)


async def take_waiting(key: str, concurrency: int) -> ReadSlot:
    """A slot of caller ``key``, waiting on the event loop until one is free."""
    while (slot := try_take(key, concurrency)) is None:
        await asyncio.sleep(POLL_SECONDS)
    return slot


def take_waiting_sync(key: str, concurrency: int) -> ReadSlot:
    """``take_waiting`` for a thread (a WSGI server's), which it holds meanwhile."""
    while (slot := try_take(key, concurrency)) is None:
        time.sleep(POLL_SECONDS)
    return slot


@contextlib.asynccontextmanager
async def read_slot(caller: str | None = None) -> AsyncIterator[None]:
    """Hold a slot of ``caller`` (else of the long poll being served, if any) for one
    read, waiting for it; nothing when there is no such caller or the cap is off."""
    key = caller or _waiting_caller.get()
    concurrency = read_concurrency()
    if key is None or concurrency <= 0:
        yield
        return
    slot = await take_waiting(key, concurrency)
    try:
        yield
    finally:
        slot.release()


@contextlib.contextmanager
def read_slot_sync(caller: str | None = None) -> Iterator[None]:
    """``read_slot`` for a thread."""
    key = caller or _waiting_caller.get()
    concurrency = read_concurrency()
    if key is None or concurrency <= 0:
        yield
        return
    slot = take_waiting_sync(key, concurrency)
    try:
        yield
    finally:
        slot.release()


def request_caller(request: HttpRequest) -> str | None:
    """The caller whose slots a request's reads take (None: not authenticated)."""
    return caller_key(getattr(request, "auth", None))


# --- the two decorators the API applies to every operation (``cw_project.api``) ---------


def take_read_slot(view_func: Callable[..., Any]) -> Callable[..., Any]:
    """Ninja's ``operation`` decorator (run after authentication and validation): a
    capped list takes a slot, kept on the request for ``release_read_slot``, or is
    refused; a long poll's reads take theirs one by one instead."""
    if not is_capped(view_func):
        return view_func

    def enter(request: HttpRequest, values: dict[str, Any]) -> contextvars.Token | None:
        key = request_caller(request)
        concurrency = read_concurrency()
        if key is None or concurrency <= 0:
            return None
        if _waits(values):
            return _waiting_caller.set(key)
        slot = try_take(key, concurrency)
        if slot is None:
            raise ReadsThrottled(concurrency)
        request.cw_read_slot = slot  # type: ignore[attr-defined]
        return None

    if iscoroutinefunction(view_func):

        @functools.wraps(view_func)
        async def async_wrapper(request: HttpRequest, **values: Any) -> Any:
            waiting = enter(request, values)
            try:
                return await view_func(request, **values)
            finally:
                if waiting is not None:
                    _waiting_caller.reset(waiting)

        return async_wrapper

    @functools.wraps(view_func)
    def wrapper(request: HttpRequest, **values: Any) -> Any:
        waiting = enter(request, values)
        try:
            return view_func(request, **values)
        finally:
            if waiting is not None:
                _waiting_caller.reset(waiting)

    return wrapper


def release_read_slot(run: Callable[..., Any]) -> Callable[..., Any]:
    """Ninja's ``view`` decorator (around the whole operation): give back the slot
    ``take_read_slot`` took once the response is made, whatever happened."""
    if iscoroutinefunction(run):

        @functools.wraps(run)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                return await run(request, *args, **kwargs)
            finally:
                _release(request)

        return async_wrapper

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return run(request, *args, **kwargs)
        finally:
            _release(request)

    return wrapper


def _release(request: HttpRequest) -> None:
    slot = request.__dict__.pop("cw_read_slot", None)
    if slot is not None:
        slot.release()


def _waits(values: dict[str, Any]) -> bool:
    """Whether validated parameters ``values`` ask for a wait (a long poll): a ``wait``
    parameter, or one of a query schema, above 0."""
    for name, value in values.items():
        wait = value if name == WAIT_PARAMETER else getattr(value, WAIT_PARAMETER, None)
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
            return True
    return False
