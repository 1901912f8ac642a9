"""Server-sent events: a feed followed from a cursor, pushed as it commits.

``follow`` turns a keyset reader (``read(cursor)`` → the next items after ``cursor``)
and a ``core.live`` channel into a ``text/event-stream`` response: every item once, in
order, as ``id: <cursor>``, ``event: <name>`` and ``data: <JSON>``; woken by the
channel instead of polling; a comment line every ``KEEPALIVE_SECONDS`` so proxies keep
the connection; ended after ``stream_seconds()`` with a ``retry`` hint, and the client
(an ``EventSource`` does it by itself) reconnects with ``Last-Event-ID`` and goes on
where it stopped. Under ASGI (``make serve``) waiting holds no thread and no database
connection, and a client that goes away ends its stream (the ASGI server cancels it).
Under WSGI (``make run``'s development server) the same stream is sent as it comes,
each step run in the request's thread, which it holds while the stream is open.
"""

import functools
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

from core.live import hub, read_released

#: Seconds between keep-alive comments while nothing happens.
KEEPALIVE_SECONDS = 15.0
#: What the stream asks a client to wait before it reconnects (milliseconds).
RETRY_MILLISECONDS = 1000
#: Items read per look.
PAGE_SIZE = 200


def sse_response(item: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI ``responses`` entry of a stream whose events' ``data`` is ``item``
    (a JSON Schema, e.g. a ``$ref`` to a component). Before OpenAPI 3.2's ``itemSchema``
    the media type's ``schema`` describes one event, its fields as strings; ``data`` holds
    JSON (``contentMediaType``) of schema ``item`` (``contentSchema``)."""
    event = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": item,
            },
            "retry": {"type": "integer"},
        },
    }
    return {
        "description": (
            "A `text/event-stream`: each item as `id: <cursor>`, `event: <kind>` and "
            "`data: <the item as JSON>` (the schema below), comments (`: keep-alive`) while "
            "nothing happens. The stream ends after a few minutes with `retry:`; reconnect "
            "with `Last-Event-ID` (an `EventSource` does) to go on after the last item."
        ),
        "content": {"text/event-stream": {"schema": event}},
    }


def component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def stream_seconds() -> float:
    """How long one stream stays open (``CW_SSE_MAX_SECONDS``, default 300)."""
    return float(os.environ.get("CW_SSE_MAX_SECONDS", "300"))


def last_event_id(request: HttpRequest, after: int | None) -> int:
    """Where a stream starts: the ``Last-Event-ID`` a reconnecting client sends, else
    ``after``, else 0."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header.isdigit() and len(header) <= 19:
        return int(header)
    return after or 0


def follow(
    request: HttpRequest,
    *,
    read: Callable[[int], list[Any]],
    cursor: int,
    channel: str,
    render: Callable[[Any], tuple[int, str, str]],
) -> StreamingHttpResponse:
    """The stream of ``read``'s items after ``cursor``; ``render(item)`` gives its
    cursor, its event name and its JSON."""
    stream = _Stream(read, cursor, channel, render)
    response = StreamingHttpResponse(
        stream.parts() if isinstance(request, ASGIRequest) else stream.parts_in_thread(),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class _Stream:
    """One client's stream: the items after its cursor, then each as it commits, until
    ``stream_seconds()`` pass."""

    def __init__(
        self,
        read: Callable[[int], list[Any]],
        cursor: int,
        channel: str,
        render: Callable[[Any], tuple[int, str, str]],
    ) -> None:
        self.read, self.cursor, self.channel, self.render = read, cursor, channel, render
        self.end = time.monotonic() + stream_seconds()
        self.sent = time.monotonic()

    def next_items(self) -> bytes:
        """The messages of the items after the cursor (b"" when there are none)."""
        items = read_released(functools.partial(self.read, self.cursor))
        lines = []
        for item in items:
            self.cursor, name, data = self.render(item)
            lines.append(f"id: {self.cursor}\nevent: {name}\ndata: {data}\n\n")
        return "".join(lines).encode()

    def after_wait(self) -> bytes:
        """A keep-alive comment when nothing was sent for a while (else b"")."""
        if time.monotonic() - self.sent < KEEPALIVE_SECONDS:
            return b""
        self.sent = time.monotonic()
        return b": keep-alive\n\n"

    def remaining(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    async def parts(self) -> AsyncIterator[bytes]:
        """For an ASGI server: waiting holds no thread and no database connection."""
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        with hub.subscribed(self.channel) as subscription:
            while self.remaining():
                if messages := await sync_to_async(self.next_items)():
                    self.sent = time.monotonic()
                    yield messages
                    continue
                await subscription.wait(self.remaining())
                if keep_alive := self.after_wait():
                    yield keep_alive

    def parts_in_thread(self) -> Iterator[bytes]:
        """For a WSGI server, which would read an asynchronous iterator whole before
        sending a byte: each part as it is made, in the request's thread."""
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        with hub.subscribed(self.channel, in_thread=True) as subscription:
            while self.remaining():
                if messages := self.next_items():
                    self.sent = time.monotonic()
                    yield messages
                    continue
                subscription.wait_in_thread(self.remaining())
                if keep_alive := self.after_wait():
                    yield keep_alive


def served_as_it_comes(request: HttpRequest, parts: Iterator[bytes]) -> Any:
    """``parts`` for a ``StreamingHttpResponse`` that sends them as they are read on
    either server: as they are under WSGI, and under ASGI a few hundred at a time, each
    batch read in the request's database thread (an ASGI server would otherwise read a
    synchronous iterator whole before sending a byte)."""
    if not isinstance(request, ASGIRequest):
        return parts

    async def batches() -> AsyncIterator[bytes]:
        while batch := await sync_to_async(_take)(parts, STREAM_BATCH):
            yield b"".join(batch)

    return batches()


#: Parts read per hop to the database thread when streaming under ASGI.
STREAM_BATCH = 256


def _take(parts: Iterator[bytes], count: int) -> list[bytes]:
    return list(itertools.islice(parts, count))
