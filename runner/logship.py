"""Every line an agent prints, to its run's log, in order, nothing lost.

The agent writes stdout and stderr to one spool file (``output.log`` in the run's
folder: one open file, so the lines keep the order they were written in, and the
output survives the runner). A ``LogShipper`` reads the spool from the last byte cw
acknowledged, cuts it into lines, and sends them in batches (every
``flush_seconds``, at once past ``MAX_BATCH_LINES`` lines or ``MAX_BATCH_BYTES``) to
``POST /api/agents/{id}/logs``; only an acknowledged batch moves the saved offset, so
a batch cw did not take is sent again, and a restarted runner ships what its
predecessor had not. A line cut by a read is held until its end arrives; the last
line without an end goes when the agent has exited. Bytes that are not UTF-8 are sent
as ``\\xNN`` escapes; a line longer than ``MAX_LINE_CHARS`` goes in pieces; blank lines
are skipped (cw keeps no empty chunk).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from runner.client import ApiError, Client

MAX_BATCH_LINES = 500
MAX_BATCH_BYTES = 1_000_000
MAX_LINE_CHARS = 100_000
#: A line without its end yet is sent as it is once it grows past this.
MAX_PENDING_BYTES = 4_000_000
READ_BYTES = 1 << 20
#: How long an exited agent's last lines may wait for cw before the runner goes on.
FINISH_SECONDS = 300.0
#: How many of the last lines are kept for a failed run's error.
TAIL_LINES = 20

#: Statuses of a batch cw will never take as it is (no retry cures them).
REFUSED = frozenset({400, 413, 422})

log = logging.getLogger("cw-runner")


def sent_size(line: str) -> int:
    """What a line weighs in a batch's body: its JSON string (non-ASCII escaped, as the
    client sends it) and the chunk around it."""
    return len(json.dumps(line)) + 40


def split_line(text: str) -> list[str]:
    return [text[i : i + MAX_LINE_CHARS] for i in range(0, len(text), MAX_LINE_CHARS)] or [text]


class LogShipper:
    def __init__(
        self,
        client: Client,
        *,
        agent_id: str,
        session_number: int,
        spool: Path,
        offset: int,
        on_line: Callable[[str], None],
        on_shipped: Callable[[int], None],
        flush_seconds: float = 0.5,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.session_number = session_number
        self.spool = spool
        self.offset = offset  # acknowledged by cw
        self.on_line = on_line
        self.on_shipped = on_shipped
        self.flush_seconds = flush_seconds
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines_shipped = 0
        self.lines_refused = 0
        self.gave_up = False
        self._read_at = offset
        self._partial = b""
        self._lines: list[tuple[str, int]] = []  # (line, offset just after it)
        self._bytes = 0
        self._first_at: float | None = None
        self._done = threading.Event()
        self._abandon = threading.Event()
        self._taken_at: float | None = None  # when cw last took a batch
        self._thread = threading.Thread(target=self._loop, name=f"log-{agent_id}", daemon=True)

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def finish(self, timeout: float = FINISH_SECONDS) -> bool:
        """Ship everything the spool holds (the agent has exited) and stop; whether all
        went. After ``timeout`` seconds in which cw took nothing, give up: what is left
        stays in the spool (the saved offset says where; a restarted runner ships it)."""
        self._done.set()
        since = time.monotonic()
        while True:
            self._thread.join(min(timeout, 1.0))
            if not self._thread.is_alive():
                return not self.gave_up
            if time.monotonic() - max(self._taken_at or since, since) >= timeout:
                break
        log.error(
            "log of agent %s: cw took nothing for %.0f s; the rest stays in %s",
            self.agent_id,
            timeout,
            self.spool,
        )
        self._abandon.set()
        self._thread.join()
        return False

    def _loop(self) -> None:
        while True:
            final = self._done.is_set()
            read = self._read(final)
            due = self._first_at is not None and (
                final
                or time.monotonic() - self._first_at >= self.flush_seconds
                or len(self._lines) >= MAX_BATCH_LINES
                or self._bytes >= MAX_BATCH_BYTES
            )
            if due and not self._ship():
                if (final and self.gave_up) or self._abandon.is_set():
                    return
                self._abandon.wait(1.0)
                continue
            if final and not read and not self._lines:
                return
            if not read:
                self._done.wait(0.05)

    def _read(self, final: bool) -> bool:
        try:
            with open(self.spool, "rb") as file:
                file.seek(self._read_at)
                data = file.read(READ_BYTES)
        except FileNotFoundError:
            return False
        if not data and not (final and self._partial):
            return False
        self._read_at += len(data)
        buffer = self._partial + data
        start = 0
        while (end := buffer.find(b"\n", start)) != -1:
            self._add(buffer[start:end], self._read_at - len(buffer) + end + 1)
            start = end + 1
        self._partial = buffer[start:]
        at_end = len(data) < READ_BYTES
        if self._partial and ((final and at_end) or len(self._partial) > MAX_PENDING_BYTES):
            self._add(self._partial, self._read_at)
            self._partial = b""
        return bool(data)

    def _add(self, raw: bytes, end_offset: int) -> None:
        text = raw.removesuffix(b"\r").decode("utf-8", errors="backslashreplace")
        if not text.strip():
            # Nothing to show; the offset still moves with the next line (or alone).
            self._lines.append(("", end_offset))
            if self._first_at is None:
                self._first_at = time.monotonic()
            return
        try:
            self.on_line(text)
        except Exception:  # a reader's bug must not stop the log
            log.exception("reading a line of agent %s", self.agent_id)
        self.tail.append(text)
        for piece in split_line(text):
            self._lines.append((piece, end_offset))
            self._bytes += sent_size(piece)
        if self._first_at is None:
            self._first_at = time.monotonic()

    def _one_by_one(self, count: int) -> bool:
        """A batch cw refused (a server older than raw logs): send its ``count`` lines one
        at a time, each refused one as a JSON record that quotes it, each dropped from the
        held lines once sent (so a later retry sends none twice); whether all went."""
        for _ in range(count):
            line, end = self._lines[0]
            if line:
                for content in (line, json.dumps({"type": "raw", "text": line})):
                    sent = self._post([content])
                    if sent == "failed":
                        return False
                    if sent == "sent":
                        self.lines_shipped += 1
                        break
                else:
                    self.lines_refused += 1
            del self._lines[0]
            self._acknowledge([(line, end)])
        return True

    def _post(self, contents: list[str]) -> str:
        """Append ``contents`` to the log: ``"sent"``, ``"refused"`` (cw will never take
        them as they are) or ``"failed"`` (not now: cw is away, or the agent is gone)."""
        chunks = [{"content": text, "session_number": self.session_number} for text in contents]
        try:
            self.client.call("POST", f"/api/agents/{self.agent_id}/logs", chunks)
        except ApiError as error:
            if error.status in REFUSED:
                return "refused"
            if error.status == 404:
                self.gave_up = True
            log.warning("log of agent %s not taken (%s)", self.agent_id, error)
            return "failed"
        return "sent"

    def _acknowledge(self, sent: list[tuple[str, int]]) -> None:
        """Move the saved offset past the lines ``sent`` (the oldest held ones, now gone
        from ``_lines``) — but never past a long line whose other pieces are still held:
        a restart sends the whole line again rather than lose its rest."""
        end = sent[-1][1]
        if self._lines and self._lines[0][1] == end:
            end = max((e for _, e in sent if e != end), default=self.offset)
        self._taken_at = time.monotonic()
        if end > self.offset:
            self.offset = end
            try:
                self.on_shipped(self.offset)
            except Exception:  # saving the offset failed: the log goes on regardless
                log.exception("saving the log offset of agent %s", self.agent_id)

    def _ship(self) -> bool:
        """Send the lines held, in batches; whether all went."""
        while self._lines:
            batch: list[tuple[str, int]] = []
            size = 0
            for line, end in self._lines:
                if batch and (len(batch) >= MAX_BATCH_LINES or size >= MAX_BATCH_BYTES):
                    break
                batch.append((line, end))
                size += sent_size(line)
            contents = [line for line, _ in batch if line]
            if contents:
                sent = self._post(contents)
                if sent == "failed":
                    return False
                if sent == "refused":
                    if not self._one_by_one(len(batch)):
                        return False
                    continue
            del self._lines[: len(batch)]
            self.lines_shipped += len(contents)
            self._acknowledge(batch)
        self._bytes = 0
        self._first_at = None
        return True
