"""A small HTTP/1.1 client over asyncio streams, for the ``live`` bench's hundreds of
simulated clients in one event loop: keep-alive requests, a server-sent event stream
read as it comes, and the raw socket a slow client dribbles bytes into.

It speaks just what cw's server answers (``Content-Length`` or chunked bodies) and
costs a few tens of microseconds a request, so the clients leave the machine's cores to
the server they measure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


class ProtocolError(Exception):
    """The server sent something that is not the HTTP this client expects."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def request_bytes(
    method: str,
    target: str,
    *,
    token: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and (lower-cased) headers of the next response."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        raise ConnectionError(f"closed before a response ({len(error.partial)} bytes)") from None
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP status line: {status_line[:80]!r}")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked body, as they arrive (ends after the last chunk)."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from None
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from cw's server
            return
        data = await reader.readexactly(size + 2)
        if data[-2:] != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")
        yield data[:-2]


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return b"".join([chunk async for chunk in read_chunks(reader)])
    length = headers.get("content-length")
    if length is None:
        return await reader.read()  # until the server closes
    return await reader.readexactly(int(length))


class Connection:
    """One keep-alive connection; reopened when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.reader.at_eof():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self.reader, self.writer

    async def request(self, data: bytes) -> Response:
        """Send one request (``request_bytes``) and read its whole answer. A connection
        error closes this connection (the next request opens another) and is raised."""
        reader, writer = await self.open()
        try:
            writer.write(data)
            status, headers = await read_head(reader)
            body = await read_body(reader, headers)
        except BaseException:
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, body)

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()


@dataclass
class Event:
    id: str | None
    event: str | None
    data: str


class EventStream:
    """A ``text/event-stream`` response read event by event."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""

    @classmethod
    async def open(cls, port: int, data: bytes) -> tuple[Response, EventStream | None]:
        """Send ``data`` (a GET); the response's head, and the stream when it is 200
        (otherwise the whole error body is read and the connection closed)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            status, headers = await read_head(reader)
            if status != 200:
                body = await read_body(reader, headers)
                writer.close()
                return Response(status, headers, body), None
        except BaseException:
            writer.close()
            raise
        if headers.get("transfer-encoding", "").lower() != "chunked":
            writer.close()
            raise ProtocolError("an event stream that is not chunked")
        return Response(status, headers, b""), cls(reader, writer)

    async def events(self) -> AsyncIterator[Event]:
        """Each event (comments and ``retry`` lines skipped) until the stream ends."""
        async for chunk in read_chunks(self.reader):
            self.buffer += chunk
            while (end := self.buffer.find(b"\n\n")) >= 0:
                block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                event_id = name = None
                data = []
                for line in block.decode("utf-8").split("\n"):
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "id":
                        event_id = value
                    elif field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
                if data:
                    yield Event(event_id, name, "\n".join(data))
        if self.buffer.strip():
            raise ProtocolError("the stream ended inside an event")

    def close(self) -> None:
        self.writer.close()
