"""A deadline on reading each request, for ``make serve``'s HTTP protocol (issue 20).

A client that sends its request slowly (its head or its body at a byte a second) would
otherwise keep its connection for as long as it likes: uvicorn times out only a
connection idle between requests (``--timeout-keep-alive``). Here a request's head and
body must have arrived whole within ``CW_REQUEST_READ_SECONDS`` (60) of the request's
first byte; otherwise the client gets 408 ``request_timeout`` (the API's error shape
under ``/api``, plain text elsewhere, as ``cw_project.server.refusal_response`` answers)
and the connection ends. A connection idle between requests stays uvicorn's business,
and the time the application takes to answer (a long poll, a stream) is not counted:
the clock stops when the request has been read.

When the head is complete but the body is late the application has started, waiting
for the body; it is told the client went away (``http.disconnect``), as if it had, and
whatever it answers is dropped. A response already begun is never interrupted by a
second one: the connection just closes.
"""

import asyncio
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cw_project.server import BoundedHeadProtocol

    _Base = BoundedHeadProtocol
else:
    _Base = object

#: The default of ``CW_REQUEST_READ_SECONDS``.
DEFAULT_REQUEST_READ_SECONDS = 60.0


def request_read_seconds() -> float:
    """Seconds a request's head and body may take to arrive (``CW_REQUEST_READ_SECONDS``;
    0 turns the deadline off)."""
    return float(os.environ.get("CW_REQUEST_READ_SECONDS", DEFAULT_REQUEST_READ_SECONDS))


class RequestDeadline(_Base):
    """A mixin for ``cw_project.server.BoundedHeadProtocol`` (uvicorn's httptools
    protocol): see the module docstring. It answers with the protocol's
    ``send_refusal``."""

    #: The pending deadline of the request being read, if any.
    read_deadline: asyncio.TimerHandle | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._cancel_read_deadline()
        seconds = request_read_seconds()
        if seconds > 0:
            self.read_deadline = self.loop.call_later(seconds, self.on_read_deadline)

    def on_message_complete(self) -> None:
        self._cancel_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def on_read_deadline(self) -> None:
        """The request has not arrived whole in time: answer 408 and end the connection."""
        self.read_deadline = None
        if self.transport.is_closing() or self.lingering:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The application (started once the head was read) waits for the body: it
            # will be told the client left, and nothing more it sends goes out.
            cycle.disconnected = True
            cycle.message_event.set()
        self.logger.warning("Request not received whole within %s s.", request_read_seconds())
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()
            return
        self.send_refusal("request_timeout")

    def _cancel_read_deadline(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None
