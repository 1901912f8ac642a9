"""Agents' logs, the path agents hit all day: append and read, through the repository and
through the API, against the raw driver on the same table, with 1,000, 10,000 and
100,000 chunks already in the log; and the memory a streamed log costs.

Every row is a 450-byte line of JSON Lines, like the stream-json output of a coding CLI;
"log raw output" appends batches where one line in ten is not JSON (a plain stderr line,
a JSON line cut in two, a NUL, a lone surrogate, bytes that are not UTF-8), which are
stored escaped, against the raw driver inserting the same stored text. Appends are
measured in rounds whose rows are deleted afterwards (untimed), so the log has the stated
size while it is measured.
"""

import json
import tracemalloc
from typing import Any

from bench.harness import Result, paired_rates
from bench.raw import RawConnection

BATCH = 100
PAGE = 100
COLUMNS = ("id", "agent_id", "agent_name", "session_number", "content", "created_at")


def log_line(n: int, size: int = 450) -> str:
    """A JSON Lines line of ``size`` bytes (newline included)."""
    head = {
        "type": "assistant",
        "session_id": "5f0c6d2e-3b1a-4e8f-9c7d-2a1b0c9d8e7f",
        "message": {
            "id": f"msg_{n:012d}",
            "role": "assistant",
            "content": [{"type": "text", "text": ""}],
        },
    }
    text = json.dumps(head, separators=(",", ":"))
    pad = size - len(text) - 1
    head["message"]["content"][0]["text"] = ("Reading the repository layout. " * 20)[:pad]
    line = json.dumps(head, separators=(",", ":")) + "\n"
    assert len(line) == size, len(line)
    return line


#: Lines an agent prints besides JSON Lines: (as a str, as NDJSON bytes), one in ten.
RAW_OUTPUT = [
    ("Error: rate limit reached, retrying in 30s", b"Error: rate limit reached, retrying in 30s"),
    ('{"type":"assistant","message":{"id":"msg_0', b'{"type":"assistant","message":{"id":"msg_0'),
    ("npm WARN deprecated \x00 glob@7.2.3", b"npm WARN deprecated \x00 glob@7.2.3"),
    ("caf\u00e9 \ud800 half an emoji", b"caf\xe9 \xf0\x9f half an emoji"),
]


def mixed_lines(count: int) -> tuple[list[str], bytes]:
    """``count`` lines, one in ten not JSON (``RAW_OUTPUT``): as strs, and as an NDJSON
    body."""
    lines: list[str] = []
    body: list[bytes] = []
    for n in range(count):
        if n % 10 == 9:
            text, raw = RAW_OUTPUT[n // 10 % len(RAW_OUTPUT)]
            lines.append(text + "\n")
            body.append(raw + b"\n")
        else:
            lines.append(log_line(n))
            body.append(lines[-1].encode())
    return lines, b"".join(body)


class Log:
    """The tables, rows and connections the log scenarios share."""

    def __init__(self) -> None:
        from django.db import connection
        from django.test import Client

        from agents.repositories import AgentRepository, LogChunkRepository
        from core.tokens import api_token_create

        self.vendor = connection.vendor
        self.raw = RawConnection()
        self.logs = LogChunkRepository()
        agents = AgentRepository()
        self.reader = agents.create(name="bench-reader", worktree_id="/srv/bench/reader")
        self.writer = agents.create(name="bench-writer", worktree_id="/srv/bench/writer")
        _token, clear = api_token_create(name="bench logs")
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
        self.lines = [log_line(n) for n in range(BATCH)]
        self.size = 0
        now = datetime_value()
        self.raw_rows = [("bench-raw", "bench-raw", 1, line, now) for line in self.lines]
        self.cw_rows: list[Any] = [
            {"agent_id": self.writer.id, "agent_name": self.writer.name, "content": line}
            for line in self.lines
        ]
        self.insert_sql = self.raw.sql(
            "INSERT INTO agent_log_chunks (agent_id, agent_name, session_number, content, "
            "created_at) VALUES (%s, %s, %s, %s, %s)"
        )
        self.page_sql = self.raw.sql(
            f"SELECT {', '.join(COLUMNS)} FROM agent_log_chunks "  # noqa: S608
            "WHERE agent_id = %s AND id > %s ORDER BY id LIMIT %s"
        )

    def grow_reader_log(self, size: int) -> None:
        """Append to the reader's log (through the repository) until it has ``size``."""
        rows = [
            {"agent_id": self.reader.id, "agent_name": self.reader.name, "content": line}
            for line in self.lines
        ]
        while self.size < size:
            count = min(1000, size - self.size)
            self.logs.append_chunks((rows * 10)[:count])
            self.size += count

    def high_water(self) -> int:
        return self.raw.fetchall("SELECT COALESCE(MAX(id), 0) FROM agent_log_chunks")[0][0]

    def drop_after(self, mark: int) -> None:
        """Delete what a round appended, and (SQLite) checkpoint the write-ahead log, so
        every round starts from the same state and no round pays for another's
        checkpoint."""
        self.raw.execute(self.raw.sql("DELETE FROM agent_log_chunks WHERE id > %s"), (mark,))
        self.raw.settle()

    def reader_ids(self) -> tuple[int, int]:
        """(the id before the log's first chunk, the id before its last page)."""
        ids = self.raw.fetchall(
            self.raw.sql(
                "SELECT id FROM agent_log_chunks WHERE agent_id = %s ORDER BY id DESC LIMIT %s"
            ),
            (self.reader.id, PAGE + 1),
        )
        return 0, ids[-1][0]


def datetime_value() -> Any:
    """A created_at value as the raw driver would send it."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    if connection.vendor == "sqlite":
        return now.replace(tzinfo=None).isoformat(" ")
    return now


def measure_size(log: Log, result: Result, size: int, *, rounds: int, api: bool) -> dict:
    """The append and read rows with the reader's log at ``size`` chunks."""
    log.grow_reader_log(size)
    label = f"{size:,} in the log"
    mark = log.high_water()

    def drop() -> None:
        log.drop_after(mark)

    figures: dict[str, float] = {}

    # --- append: 100-row batches, one transaction each ------------------------------
    def cw_batch() -> None:
        log.logs.append_chunks(log.cw_rows)

    def raw_batch() -> None:
        log.raw.executemany(log.insert_sql, log.raw_rows)

    cw, raw = paired_rates(
        cw_batch, raw_batch, calls=20, rounds=rounds, units_per_call=BATCH, after_round=drop
    )
    result.ratio(
        f"append_chunks, 100-row batches ({label})",
        cw,
        raw,
        unit="rows/s",
        minimum=0.45,
        baseline_label="raw executemany",
    )
    figures["append_chunks"] = cw

    # --- append: one row, autocommit --------------------------------------------------
    line, writer = log.lines[0], log.writer
    raw_row = log.raw_rows[0]

    def cw_one() -> None:
        log.logs.insert_chunk(
            agent_id=writer.id, agent_name=writer.name, session_number=1, content=line
        )

    def raw_one() -> None:
        log.raw.execute(log.insert_sql, raw_row)

    cw, raw = paired_rates(cw_one, raw_one, calls=200, rounds=rounds, after_round=drop)
    result.ratio(
        f"insert_chunk, one row ({label})",
        cw,
        raw,
        unit="rows/s",
        minimum=0.35,
        baseline_label="raw single insert",
    )
    figures["insert_chunk"] = cw

    # --- read: a 100-row page at the start and at the end of the log -----------------
    start_after, end_after = log.reader_ids()
    reader = log.reader.id
    page_rates = {}
    for where, after in (("start", start_after), ("end", end_after)):

        def cw_page(after: int = after) -> None:
            assert len(log.logs.find_by_agent_id(reader, after=after, limit=PAGE)) == PAGE

        def raw_page(after: int = after) -> None:
            assert len(log.raw.fetchall(log.page_sql, (reader, after, PAGE))) == PAGE

        cw, raw = paired_rates(cw_page, raw_page, calls=200, rounds=rounds)
        result.ratio(
            f"find_by_agent_id, 100-row page at the {where} ({label})",
            cw,
            raw,
            unit="pages/s",
            minimum=0.5,
            baseline_label="raw keyset SELECT",
        )
        page_rates[where] = cw
    slowdown = page_rates["start"] / page_rates["end"]
    result.check(
        f"find_by_agent_id, time at the end / at the start ({label})",
        slowdown,
        unit="x",
        target="<= 1.5x",
        held=slowdown <= 1.5,
    )
    figures["read"] = page_rates["end"]

    if api:
        measure_api(log, result, label, rounds=rounds, drop=drop)
    return figures


def measure_api(log: Log, result: Result, label: str, *, rounds: int, drop) -> None:
    """The API's append (JSON and NDJSON bodies) and page read, in-process."""
    from django.urls import reverse

    url = reverse("api-1:append_agent_log", kwargs={"agent_id": log.writer.id})
    json_body = json.dumps([{"content": line} for line in log.lines])
    ndjson_body = "".join(log.lines)

    def raw_batch() -> None:
        log.raw.executemany(log.insert_sql, log.raw_rows)

    for name, body, content_type in (
        ("JSON", json_body, "application/json"),
        ("NDJSON", ndjson_body, "application/x-ndjson"),
    ):

        def cw_append(body: str = body, content_type: str = content_type) -> None:
            response = log.client.post(url, body, content_type=content_type)
            assert response.status_code == 201, response.content

        cw, raw = paired_rates(
            cw_append, raw_batch, calls=10, rounds=rounds, units_per_call=BATCH, after_round=drop
        )
        result.ratio(
            f"POST /api/agents/{{id}}/logs, 100 chunks as {name} ({label})",
            cw,
            raw,
            unit="rows/s",
            minimum=0.20,
            baseline_label="raw executemany",
        )

    _start, end_after = log.reader_ids()
    page_url = reverse("api-1:list_agent_log", kwargs={"agent_id": log.reader.id})
    query = {"after": end_after, "limit": PAGE}

    def cw_page() -> None:
        response = log.client.get(page_url, query)
        assert response.status_code == 200 and len(response.json()["items"]) == PAGE

    def raw_page() -> None:
        rows = log.raw.fetchall(log.page_sql, (log.reader.id, end_after, PAGE))
        body = json.dumps(
            {
                "items": [dict(zip(COLUMNS, row, strict=True)) for row in rows],
                "next_after": rows[-1][0],
            },
            default=str,
        )
        assert len(body) > PAGE

    cw, raw = paired_rates(cw_page, raw_page, calls=50, rounds=rounds)
    result.ratio(
        f"GET /api/agents/{{id}}/logs?limit=100, JSON ({label})",
        cw,
        raw,
        unit="pages/s",
        minimum=0.25,
        baseline_label="raw SELECT + json.dumps",
    )


def measure_raw_output(log: Log, result: Result, label: str, *, rounds: int, drop) -> None:
    """Appends whose lines are not all JSON: through the repository and as an NDJSON body
    (bytes that are not UTF-8 among them), against the raw driver inserting the same
    text as stored (escaped)."""
    from django.urls import reverse

    from core.text import decoded_text, storable_text

    lines, body = mixed_lines(BATCH)
    writer = log.writer
    rows: list[Any] = [
        {"agent_id": writer.id, "agent_name": writer.name, "content": line} for line in lines
    ]
    now = datetime_value()
    stored = [("bench-raw", "bench-raw", 1, storable_text(line), now) for line in lines]
    sent = [("bench-raw", "bench-raw", 1, decoded_text(line), now) for line in body.splitlines()]
    url = reverse("api-1:append_agent_log", kwargs={"agent_id": writer.id})

    def cw_batch() -> None:
        log.logs.append_chunks(rows)

    def raw_batch() -> None:
        log.raw.executemany(log.insert_sql, stored)

    cw, raw = paired_rates(
        cw_batch, raw_batch, calls=20, rounds=rounds, units_per_call=BATCH, after_round=drop
    )
    result.ratio(
        f"append_chunks, 100-row batches, 1 line in 10 not JSON ({label})",
        cw,
        raw,
        unit="rows/s",
        minimum=0.45,
        baseline_label="raw executemany",
    )

    def cw_append() -> None:
        response = log.client.post(url, body, content_type="application/x-ndjson")
        assert response.status_code == 201, response.content

    def raw_sent() -> None:
        log.raw.executemany(log.insert_sql, sent)

    cw, raw = paired_rates(
        cw_append, raw_sent, calls=10, rounds=rounds, units_per_call=BATCH, after_round=drop
    )
    result.ratio(
        f"POST /api/agents/{{id}}/logs, 100 chunks as NDJSON, 1 line in 10 not JSON ({label})",
        cw,
        raw,
        unit="rows/s",
        minimum=0.20,
        baseline_label="raw executemany",
    )


def measure_stream(log: Log, result: Result, size: int) -> None:
    """Peak Python memory while a whole log streams as NDJSON through the API: the
    reader's log of ``size`` chunks, and one a tenth as long, to show it does not grow
    with the log."""
    from django.urls import reverse

    from agents.repositories import AgentRepository

    short = AgentRepository().create(name="bench-short", worktree_id="/srv/bench/short")
    rows = [{"agent_id": short.id, "agent_name": short.name, "content": line} for line in log.lines]
    for _ in range(size // 10 // BATCH):
        log.logs.append_chunks(rows)
    for agent, chunks in ((short, size // 10 // BATCH * BATCH), (log.reader, log.size)):
        url = reverse("api-1:stream_agent_log", kwargs={"agent_id": agent.id})
        received = 0
        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            response = log.client.get(url)
            assert response.status_code == 200
            for part in response.streaming_content:
                received += len(part)
            response.close()
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        growth = (peak - baseline) / 1e6
        result.check(
            f"GET /api/agents/{{id}}/logs/stream, {chunks:,} chunks ({received / 1e6:,.0f} MB)",
            growth,
            unit="MB",
            target="peak growth < 20 MB",
            held=growth < 20 and received == chunks * len(log.lines[0]),
        )


def run(quick: bool) -> list[Result]:
    log = Log()
    sizes = (500, 2_000, 5_000) if quick else (1_000, 10_000, 100_000)
    rounds = 3 if quick else 7
    append, read = Result("log append and read"), Result("log API")
    figures = {}
    for size in sizes:
        figures[size] = measure_size(log, append, size, rounds=rounds, api=False)
    mark = log.high_water()
    measure_api(
        log, read, f"{sizes[-1]:,} in the log", rounds=rounds, drop=lambda: log.drop_after(mark)
    )
    raw_output = Result("log raw output")
    measure_raw_output(
        log,
        raw_output,
        f"{sizes[-1]:,} in the log",
        rounds=rounds,
        drop=lambda: log.drop_after(mark),
    )
    small, large = figures[sizes[0]], figures[sizes[-1]]
    flat = Result("log scaling")
    for key, name in (
        ("append_chunks", "append_chunks"),
        ("insert_chunk", "insert_chunk"),
        ("read", "find_by_agent_id"),
    ):
        cost_ratio = small[key] / large[key]
        flat.check(
            f"{name}: cost per operation at {sizes[-1]:,} / at {sizes[0]:,}",
            cost_ratio,
            unit="x",
            target="<= 1.5x (flat)",
            held=cost_ratio <= 1.5,
        )
    stream = Result("log streaming")
    measure_stream(log, stream, sizes[-1])
    log.raw.close()
    return [append, read, raw_output, flat, stream]
