"""The HTTP protocol ``make serve`` runs under uvicorn (``--http
cw_project.server:HttpProtocol``): uvicorn's own (httptools), with the request head
bounded, a deadline on reading each request (``cw_project.request_deadline``), and every
refusal made before Django sees the request in the API's error shape.

uvicorn answers a request it cannot parse with a plain-text 400 ("Invalid HTTP request
received."), and httptools reads a request head of any size (a 100 MB header is held in
memory until its line ends). Here:

- a request target (path and query) over ``MAX_TARGET_BYTES`` is 414 ``uri_too_long``;
- a request head (request target and header fields) over ``MAX_HEAD_BYTES`` is 431
  ``headers_too_large``: counted as it arrives, so a head that never ends is refused
  after at most one read past the bound, and counted again once complete;
- any other request the parser refuses is 400 ``bad_request``;
- a request not read whole within ``CW_REQUEST_READ_SECONDS`` of its first byte is 408
  ``request_timeout`` (``RequestDeadline``).

Each answer is ``{"code", "message", "details"}`` (``cw_project.errors``), or plain text
for a target outside the API (the admin's pages, where Django's own 400 page is text
too). The connection then ends with a lingering close, as nginx and Apache do: the
answer and a FIN are sent, and whatever the client is still sending (the rest of a
huge head) is read and dropped for up to ``LINGER_SECONDS`` before the socket closes.
Closing at once, with that data unread, would send a reset that can make the client's
system drop the answer before the client reads it.
"""

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from cw_project.request_deadline import RequestDeadline, request_read_seconds

#: The longest request target (path and query string) read, in bytes: 8 KiB, as
#: Apache's request line and nginx's buffers allow.
MAX_TARGET_BYTES = 8 * 1024
#: The largest request head (request line and header fields) read, in bytes.
MAX_HEAD_BYTES = 64 * 1024

#: The longest a refused connection is kept to read and drop what the client still sends.
LINGER_SECONDS = 2.0

_API_PREFIX = b"/api"


class _Refused(Exception):
    """Raised from a parser's callback to stop reading a request it refuses."""


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounding the request head and refusing in the API's
    error shape (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Bytes received since the current request's head began (while it is read).
        self.head_bytes = 0
        self.reading_head = True
        #: The refusal the parser's error stands for (a callback raised it), if known.
        self.refusal: str | None = None
        #: Refused and answered: what still arrives is dropped until the socket closes.
        self.lingering = False

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.reading_head:
            self.head_bytes += len(data)
        super().data_received(data)
        refused = self.lingering or self.transport.is_closing()
        if self.reading_head and self.head_bytes > MAX_HEAD_BYTES and not refused:
            self.logger.warning("Request header fields too large.")
            self.send_refusal("headers_too_large")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self.refuse("uri_too_long")

    def on_headers_complete(self) -> None:
        self.reading_head = False
        # The whole head may have come in one read: count it exactly too.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self.refuse("headers_too_large")
        super().on_headers_complete()

    def refuse(self, code: str) -> None:
        """Stop the parser (httptools raises ``HttpParserError`` from ``feed_data``, which
        uvicorn answers with ``send_400_response``) and answer ``code``."""
        self.refusal = code
        raise _Refused(code)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head, self.head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to any request the parser refused.
        self.send_refusal(self.refusal or "bad_request")

    def send_refusal(self, code: str) -> None:
        """Answer ``code`` (a status of its own) and end the connection (lingering)."""
        status, content_type, body = refusal_response(code, getattr(self, "url", b""))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: " + content_type + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.lingering = True
        self.transport.write_eof()
        # Closed by then, or when the client closes its side (eof_received).
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class HttpProtocol(RequestDeadline, BoundedHeadProtocol):
    """``make serve``'s protocol: the bounded head, and the deadline on each request."""


def refusal_response(code: str, target: bytes) -> tuple[int, bytes, bytes]:
    """The status, content type and body of refusal ``code`` for a request to ``target``
    (all or part of it): the API's error shape, or plain text outside the API."""
    # Imported here: uvicorn imports this module before it loads Django.
    from core.errors import ErrorCode
    from cw_project.errors import (
        BAD_REQUEST,
        HEADERS_TOO_LARGE,
        REQUEST_TIMEOUT,
        URI_TOO_LONG,
        error_body,
    )

    seconds = request_read_seconds()
    seconds_shown = int(seconds) if seconds == int(seconds) else seconds
    refusals: dict[str, tuple[ErrorCode, str, dict[str, Any]]] = {
        BAD_REQUEST.code: (BAD_REQUEST, "The request is not HTTP this server can read.", {}),
        URI_TOO_LONG.code: (
            URI_TOO_LONG,
            f"The request target is longer than the {MAX_TARGET_BYTES} bytes the server reads.",
            {"max_bytes": MAX_TARGET_BYTES},
        ),
        HEADERS_TOO_LARGE.code: (
            HEADERS_TOO_LARGE,
            f"The request's header fields are larger than the {MAX_HEAD_BYTES} bytes the "
            "server reads.",
            {"max_bytes": MAX_HEAD_BYTES},
        ),
        REQUEST_TIMEOUT.code: (
            REQUEST_TIMEOUT,
            f"The request did not arrive whole within the {seconds_shown} seconds the server "
            "waits for it from its first byte.",
            {"max_seconds": seconds_shown},
        ),
    }
    entry, message, details = refusals[code]
    if target and not _under_api(target):
        return entry.status, b"text/plain; charset=utf-8", f"{message}\n".encode()
    body = json.dumps(error_body(entry.code, message, details)).encode()
    return entry.status, b"application/json", body


def _under_api(target: bytes) -> bool:
    path = target.split(b"?", 1)[0]
    return path == _API_PREFIX or path.startswith(_API_PREFIX + b"/")
