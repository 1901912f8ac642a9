"""``runner.logship.LogShipper``: every line of the spool reaches the run's log whole, in
order, once (but for a retried batch), with the acknowledged offset saved as it goes."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import logship
from runner.client import ApiError
from runner.logship import LogShipper

Failure = Callable[[list[dict[str, Any]], int], ApiError | None]


class FakeClient:
    """Records every call; ``fail(body, attempt number)`` may return an error to raise."""

    def __init__(self, fail: Failure | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.taken: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        with self._lock:
            self.calls.append((method, path, copy.deepcopy(body)))
            error = self.fail(body, len(self.calls)) if self.fail else None
            if error is not None:
                raise error
            self.taken.append(copy.deepcopy(body))
        return {"count": len(body)}

    def contents(self) -> list[str]:
        return [chunk["content"] for body in self.taken for chunk in body]


class Shipped:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.offsets: list[int] = []


def shipper(
    client: FakeClient, spool: Path, *, offset: int = 0, flush: float = 0.02
) -> tuple[LogShipper, Shipped]:
    seen = Shipped()
    made = LogShipper(
        client,  # type: ignore[arg-type]  # a fake with the one method used
        agent_id="agent-1",
        session_number=2,
        spool=spool,
        offset=offset,
        on_line=seen.lines.append,
        on_shipped=seen.offsets.append,
        flush_seconds=flush,
    )
    return made, seen


def append(spool: Path, data: bytes) -> None:
    with open(spool, "ab") as file:
        file.write(data)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "output.log"
    path.touch()
    return path


def test_lines_written_in_pieces_arrive_whole_and_in_order(spool: Path) -> None:
    client = FakeClient()
    running, seen = shipper(client, spool)
    running.start()
    append(spool, b"first line\nsecond ha")
    time.sleep(0.3)  # the shipper reads the cut line and must hold it
    append(spool, b"lf\nthird")
    time.sleep(0.3)
    append(spool, b" line\n")
    time.sleep(0.2)
    append(spool, b"no end")
    running.finish(timeout=10)
    assert client.contents() == ["first line", "second half", "third line", "no end"]
    assert seen.lines == client.contents()
    assert all(path == "/api/agents/agent-1/logs" for _, path, _ in client.calls)
    assert all(c["session_number"] == 2 for body in client.taken for c in body)
    assert len(client.taken) >= 2  # it shipped while the agent was still writing
    assert seen.offsets == sorted(seen.offsets)
    assert seen.offsets[-1] == running.offset == spool.stat().st_size
    assert list(running.tail)[-1] == "no end"
    assert running.lines_shipped == 4


def test_invalid_utf8_blank_lines_and_crlf(spool: Path) -> None:
    append(spool, b"ab\xffcd\n\n   \n\r\nend\r\n\xe2\x82\xac\n\n")
    client = FakeClient()
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert client.contents() == ["ab\\xffcd", "end", "\u20ac"]
    assert seen.offsets[-1] == spool.stat().st_size


def test_only_blank_lines_still_move_the_offset(spool: Path) -> None:
    append(spool, b"\n\n  \n")
    client = FakeClient()
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert client.calls == []
    assert seen.offsets[-1] == spool.stat().st_size


def test_a_long_line_goes_in_pieces(spool: Path) -> None:
    long = "x" * (2 * logship.MAX_LINE_CHARS) + "yz"
    append(spool, f"short\n{long}\nafter\n".encode())
    client = FakeClient()
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    contents = client.contents()
    assert contents[0] == "short" and contents[-1] == "after"
    assert [len(piece) for piece in contents[1:-1]] == [100_000, 100_000, 2]
    assert "".join(contents[1:-1]) == long
    assert seen.lines == ["short", long, "after"]  # the reader sees the whole line
    assert seen.offsets[-1] == spool.stat().st_size


def test_batches_hold_at_most_500_lines(spool: Path) -> None:
    lines = [f"line {n}" for n in range(1200)]
    append(spool, "".join(f"{line}\n" for line in lines).encode())
    client = FakeClient()
    running, seen = shipper(client, spool, flush=60)
    running.start().finish(timeout=10)
    assert [len(body) for body in client.taken] == [500, 500, 200]
    assert client.contents() == lines
    assert len(seen.offsets) == 3
    assert seen.offsets == sorted(set(seen.offsets))
    assert seen.offsets[0] == sum(len(f"{line}\n") for line in lines[:500])
    assert seen.offsets[-1] == spool.stat().st_size


def test_a_batch_cw_could_not_take_is_sent_again(spool: Path) -> None:
    append(spool, b"one\ntwo\nthree\n")
    client = FakeClient(
        lambda body, attempt: ApiError(503, "unavailable", "down") if attempt == 1 else None
    )
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert len(client.calls) == 2
    assert client.calls[0][2] == client.calls[1][2]
    assert client.contents() == ["one", "two", "three"]
    assert seen.offsets == [spool.stat().st_size]  # nothing acknowledged before it went


def test_a_refused_batch_goes_line_by_line_quoting_what_is_refused(spool: Path) -> None:
    append(spool, b"good 1\n\x1b[31mbad\n\ngood 2\n")

    def refuse(body: list[dict[str, Any]], attempt: int) -> ApiError | None:
        for chunk in body:
            if "bad" in chunk["content"] and not chunk["content"].startswith('{"type"'):
                return ApiError(400, "bad_request", "no control characters")
        return None

    client = FakeClient(refuse)
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert [len(body) for _, _, body in client.calls] == [3, 1, 1, 1, 1]
    raw = json.dumps({"type": "raw", "text": "\x1b[31mbad"})
    assert client.contents() == ["good 1", raw, "good 2"]
    assert json.loads(client.contents()[1])["text"] == "\x1b[31mbad"
    assert running.lines_refused == 0
    assert running.lines_shipped == 3
    # Line by line, the offset follows each line (the blank one too).
    assert seen.offsets == [7, 16, 17, 24] and spool.stat().st_size == 24


def test_a_line_refused_even_quoted_is_counted_and_skipped(spool: Path) -> None:
    append(spool, b"a\nb\n")
    client = FakeClient(
        lambda body, attempt: ApiError(422, "invalid", "no") if body[0]["content"] != "b" else None
    )
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert client.contents() == ["b"]
    assert running.lines_refused == 1
    assert seen.offsets[-1] == spool.stat().st_size


def test_a_gone_agent_ends_the_shipping(spool: Path) -> None:
    append(spool, b"a\nb\n")
    client = FakeClient(lambda body, attempt: ApiError(404, "not_found", "no agent"))
    running, seen = shipper(client, spool)
    started = time.monotonic()
    running.start().finish(timeout=10)
    assert time.monotonic() - started < 5
    assert running.gave_up
    assert seen.offsets == []


def test_a_restarted_shipper_sends_only_the_rest(spool: Path) -> None:
    append(spool, b"already sent\nalso sent\nnot yet\nnor this")
    saved = len(b"already sent\nalso sent\n")
    client = FakeClient()
    running, seen = shipper(client, spool, offset=saved)
    running.start().finish(timeout=10)
    assert client.contents() == ["not yet", "nor this"]
    assert seen.offsets[-1] == spool.stat().st_size


def test_no_spool_yet_ships_nothing(tmp_path: Path) -> None:
    client = FakeClient()
    running, seen = shipper(client, tmp_path / "absent.log")
    running.start().finish(timeout=10)
    assert client.calls == [] and seen.offsets == []


def test_the_offset_never_passes_a_line_not_all_sent(spool: Path) -> None:
    """A line longer than a batch goes in two batches: the offset after the first must
    not be its end, or a runner killed before the second loses the rest for good."""
    pieces = 15  # 10 pieces (about 1 MB) fill a batch
    long = "z" * (pieces * logship.MAX_LINE_CHARS)
    append(spool, f"before\n{long}\n".encode())
    batches_of_z: list[int] = []

    def second_fails(body: list[dict[str, Any]], attempt: int) -> ApiError | None:
        if body[-1]["content"].startswith("z"):
            batches_of_z.append(attempt)
            if len(batches_of_z) > 1:
                return ApiError(404, "not_found", "gone")
        return None

    client = FakeClient(second_fails)
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    assert 0 < client.contents().count("z" * logship.MAX_LINE_CHARS) < pieces
    assert spool.stat().st_size not in seen.offsets
    assert running.offset == len(b"before\n")


def test_a_failure_while_going_line_by_line_sends_no_line_twice(spool: Path) -> None:
    append(spool, b"one\nbad\n\nthree\nfour\n")
    failed_once: list[int] = []

    def flaky(body: list[dict[str, Any]], attempt: int) -> ApiError | None:
        if any(chunk["content"] == "bad" for chunk in body):
            return ApiError(400, "bad_request", "refused")
        if len(body) == 1 and body[0]["content"] == "four" and not failed_once:
            failed_once.append(attempt)
            return ApiError(503, "unavailable", "down")
        return None

    client = FakeClient(flaky)
    running, seen = shipper(client, spool)
    running.start().finish(timeout=10)
    raw = json.dumps({"type": "raw", "text": "bad"})
    assert client.contents() == ["one", raw, "three", "four"]
    assert failed_once
    assert running.lines_shipped == 4
    assert seen.offsets == sorted(set(seen.offsets))
    assert seen.offsets[-1] == spool.stat().st_size


def test_a_failure_to_save_the_offset_does_not_stop_the_log(spool: Path) -> None:
    append(spool, b"one\ntwo\n")
    client = FakeClient()
    running, _ = shipper(client, spool)

    def broken(offset: int) -> None:
        raise OSError("disk full")

    running.on_shipped = broken
    running.start()
    time.sleep(0.2)
    append(spool, b"three\n")
    running.finish(timeout=10)
    assert client.contents() == ["one", "two", "three"]
    assert running.offset == spool.stat().st_size


def test_a_cw_that_never_takes_the_log_is_given_up_on_after_the_timeout(spool: Path) -> None:
    """cw answers 503 for good: ``finish`` returns False after its timeout instead of
    hanging the run (or a restarted runner's recovery); the offset stays where cw left
    it, so the spool keeps what was not taken (and clean keeps the spool)."""
    append(spool, b"one\ntwo\n")
    client = FakeClient(lambda body, attempt: ApiError(503, "unavailable", "down"))
    running, seen = shipper(client, spool)
    started = time.monotonic()
    assert running.start().finish(timeout=0.5) is False
    assert time.monotonic() - started < 5
    assert client.taken == [] and seen.offsets == []
    assert running.offset == 0
