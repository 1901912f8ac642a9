"""A disconnected client's wait ends when it goes: Django's ASGI handler, told by the
server that the client left (``http.disconnect``), cancels the long poll or the stream,
and the hub forgets its waiter at once instead of at the end of the wait."""

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application

from core.live import hub
from cw_project.asgi import CwASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)

#: Far longer than the test waits for the request to end.
LONG = 30


def scope(path: str, query: str, token: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def receive_then_leave(gone: asyncio.Event):
    """An ASGI ``receive``: the (empty) request, then a disconnect once ``gone`` is set."""
    requested = False

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


async def wait_and_leave(path: str, query: str, token: str) -> list[dict]:
    """Send the request, wait until it waits in the hub, then disconnect; the messages
    the application sent, once it has ended (or a timeout if it does not)."""
    gone = asyncio.Event()
    receive = receive_then_leave(gone)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    request = asyncio.ensure_future(
        get_asgi_application()(scope(path, query, token), receive, send)
    )
    for _ in range(200):
        if hub.waiting():
            break
        await asyncio.sleep(0.05)
    assert hub.waiting() == 1, "the request never waited"
    gone.set()
    await asyncio.wait_for(request, timeout=LONG / 3)
    return sent


@pytest.fixture(autouse=True)
def long_streams(monkeypatch):
    monkeypatch.setenv("CW_SSE_MAX_SECONDS", str(LONG))


def test_a_long_poll_ends_when_its_client_goes(api_token):
    _, clear = api_token

    async_to_sync(wait_and_leave)("/api/events", f"wait={LONG}", clear)

    assert hub.waiting() == 0


def test_a_stream_ends_when_its_client_goes(api_token):
    _, clear = api_token

    sent = async_to_sync(wait_and_leave)("/api/events/stream", "", clear)

    assert hub.waiting() == 0
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200


#: Waiting requests at once in the thread count test, and the pool they share.
WAITERS = 40
THREADS = 4


def test_waiting_requests_hold_no_thread(api_token, monkeypatch):
    """Under ``make serve``'s handler (``cw_project.asgi``) a request's synchronous work
    runs on the process's pool of threads, and every middleware is async-capable, so a
    long poll waits on the event loop alone: forty waiting polls hold no thread of their
    own (Django's handler keeps a thread per request while it lasts; a sync-only
    middleware would hold a pool thread through the wait, and four would fill it)."""
    _, clear = api_token
    monkeypatch.setenv("CW_ASGI_THREADS", str(THREADS))
    app = CwASGIHandler()

    async def poll_all() -> int:
        gone = asyncio.Event()

        async def send(message: dict) -> None:
            pass

        before = threading.active_count()
        polls = [
            asyncio.ensure_future(
                app(scope("/api/events", f"wait={LONG}", clear), receive_then_leave(gone), send)
            )
            for _ in range(WAITERS)
        ]
        for _ in range(300):
            if hub.waiting() == WAITERS:
                break
            await asyncio.sleep(0.05)
        waiting = hub.waiting()
        added = threading.active_count() - before
        gone.set()
        await asyncio.wait_for(asyncio.gather(*polls), timeout=LONG / 3)
        assert waiting == WAITERS
        return added

    try:
        added = asyncio.run(poll_all())
    finally:
        app.pool.shutdown()
    # The pool's threads, and the hub's one listener or watcher: none per request.
    assert added <= THREADS + 1


def test_a_synchronous_view_runs_with_its_middlewares_in_one_call_on_the_pool(api_token):
    """A synchronous operation (whoami) runs in one call on the pool, as under WSGI: the
    request's start, its middlewares and view and its end, where Django's handler made
    one hand-over per middleware hook and signal (18 for a log append), each a thread
    switch that cost more than the request's own work."""
    _, clear = api_token
    app = CwASGIHandler()
    submitted = 0
    submit = app.read_pool.submit

    def counting_submit(*args, **kwargs):
        nonlocal submitted
        submitted += 1
        return submit(*args, **kwargs)

    app.read_pool.submit = counting_submit  # type: ignore[method-assign]
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def ask() -> None:
        await app(scope("/api/whoami", "", clear), receive_then_leave(asyncio.Event()), send)

    try:
        asyncio.run(ask())
    finally:
        app.pool.shutdown()
        app.read_pool.shutdown()
    assert sent[0]["status"] == 200
    assert b'"name"' in b"".join(m.get("body", b"") for m in sent)
    assert submitted == 1


def test_a_read_is_served_while_every_writing_thread_is_taken(api_token, monkeypatch):
    """Reads (GET, HEAD, OPTIONS) run on a pool of their own: with every thread of the
    writes' pool held (writes waiting for the database's write lock, say), a read is
    still answered at once."""
    _, clear = api_token
    monkeypatch.setenv("CW_ASGI_THREADS", "2")
    app = CwASGIHandler()
    release = threading.Event()
    held = [app.pool.submit(release.wait, 30) for _ in range(2)]
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def ask() -> None:
        request = app(scope("/api/whoami", "", clear), receive_then_leave(asyncio.Event()), send)
        await asyncio.wait_for(request, timeout=10)

    try:
        asyncio.run(ask())
        assert not any(future.done() for future in held)
    finally:
        release.set()
        app.pool.shutdown()
        app.read_pool.shutdown()
    assert sent[0]["status"] == 200
