"""Server-sent events: a feed followed from a cursor, pushed as it commits.

``follow`` turns a keyset reader (``read(cursor)`` → the next items after ``cursor``)
and a ``core.live`` channel into a ``text/event-stream`` response: every item once, in
order, as ``id: <cursor>``, ``event: <name>`` and ``data: <JSON>``; woken by the
channel instead of polling; a comment line every ``KEEPALIVE_SECONDS`` so proxies keep
the connection; ended after ``stream_seconds()`` with a ``retry`` hint, and the client
(an ``EventSource`` does it by itself) reconnects with ``Last-Event-ID`` and goes on
where it stopped. Waiting holds no thread and no database connection; a client that
goes away ends its stream (the ASGI server cancels it).
"""

import asyncio
import functools
import itertools
import os
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
    (a JSON Schema, e.g. a ``$ref`` to a component)."""
    return {
        "description": (
            "A `text/event-stream`: each item as `id: <cursor>`, `event: <kind>` and "
            "`data: <the item as JSON>` (the schema below), comments (`: keep-alive`) while "
            "nothing happens. The stream ends after a few minutes with `retry:`; reconnect "
            "with `Last-Event-ID` (an `EventSource` does) to go on after the last item."
        ),
        "content": {"text/event-stream": {"schema": item}},
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
    *,
    read: Callable[[int], list[Any]],
    cursor: int,
    channel: str,
    render: Callable[[Any], tuple[int, str, str]],
) -> StreamingHttpResponse:
    """The stream of ``read``'s items after ``cursor``; ``render(item)`` gives its
    cursor, its event name and its JSON."""
    response = StreamingHttpResponse(
        _events(read, cursor, channel, render), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def _events(
    read: Callable[[int], list[Any]],
    cursor: int,
    channel: str,
    render: Callable[[Any], tuple[int, str, str]],
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    end = loop.time() + stream_seconds()
    yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
    sent = loop.time()
    while loop.time() < end:
        items = await sync_to_async(read_released)(functools.partial(read, cursor))
        if items:
            lines = []
            for item in items:
                cursor, name, data = render(item)
                lines.append(f"id: {cursor}\nevent: {name}\ndata: {data}\n\n")
            yield "".join(lines).encode()
            sent = loop.time()
            continue
        await hub.wait_for(channel, max(end - loop.time(), 0.0))
        if loop.time() - sent >= KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            sent = loop.time()


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
