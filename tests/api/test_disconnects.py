"""A disconnected client's wait ends when it goes: Django's ASGI handler, told by the
server that the client left (``http.disconnect``), cancels the long poll or the stream,
and the hub forgets its waiter at once instead of at the end of the wait."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application

from core.live import hub

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


async def wait_and_leave(path: str, query: str, token: str) -> list[dict]:
    """Send the request, wait until it waits in the hub, then disconnect; the messages
    the application sent, once it has ended (or a timeout if it does not)."""
    gone = asyncio.Event()
    requested = False

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

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
