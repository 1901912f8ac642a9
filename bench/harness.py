"""Set-up shared by the benchmark's scenarios: Django, a throwaway database, timing, and
the table of targets.

Every target is a ratio measured in one run (cw against the raw driver on the same
database, the end of a log against its start, eight threads against one), never an
absolute time, which depends on the machine. cw's and the baseline's timings are taken
in alternating rounds and compared by their medians, so a slow moment of a shared
machine falls on both.
"""

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cw_project.settings")
    # The write rate limit stays on, so its cost is in every API figure, but so high that
    # the bench's thousands of writes a minute are never refused.
    os.environ.setdefault("CW_API_WRITE_RATE_LIMIT", str(10**9))
    # Likewise the read cap (core/readlimits.py): its slots are taken, never all at once.
    os.environ.setdefault("CW_API_READ_CONCURRENCY", "1000")
    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    """A fresh, migrated database (``bench_`` + the configured name), dropped afterwards.

    Uses the same engine as the application: SQLite by default, PostgreSQL when
    ``DATABASE_URL`` is set.
    """
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        name = settings_dict["NAME"]
        settings_dict["TEST"]["NAME"] = str(name).replace(".sqlite3", "") + "_bench.sqlite3"
    else:
        settings_dict["TEST"]["NAME"] = f"bench_{settings_dict['NAME']}"
    setup_test_environment(debug=False)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def median_time(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs, in seconds."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def paired_rates(
    cw: Callable[[], object],
    raw: Callable[[], object],
    *,
    calls: int,
    rounds: int,
    units_per_call: int = 1,
    after_round: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """(cw's rate, the baseline's rate) in units per second: ``rounds`` alternating rounds
    of ``calls`` calls each, compared by their medians. ``after_round`` runs untimed after
    every round of either (to delete the rows a round appended, say)."""
    cw(), raw()  # warm up: statement caches, first connection
    if after_round:
        after_round()
    timings: dict[str, list[float]] = {"cw": [], "raw": []}
    for round_number in range(rounds):
        # Alternate which goes first, so neither always runs on a warmer cache.
        order = (("cw", cw), ("raw", raw)) if round_number % 2 == 0 else (("raw", raw), ("cw", cw))
        for name, fn in order:
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            timings[name].append(time.perf_counter() - start)
            if after_round:
                after_round()
    per_round = calls * units_per_call
    return (
        per_round / statistics.median(timings["cw"]),
        per_round / statistics.median(timings["raw"]),
    )


def count_queries(fn: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


@dataclass
class Row:
    """One line of the table: cw's figure, the baseline's, their ratio, the target."""

    scenario: str
    path: str
    cw: float
    baseline: float | None
    unit: str
    baseline_label: str
    target: str
    held: bool
    #: ``speed`` targets are timings; ``rule`` targets (no double hand-out, the same
    #: query count, a bad chunk refused) are correctness and hold at any size.
    kind: str = "speed"
    ratio: float | None = None


@dataclass
class Result:
    """One scenario's rows."""

    name: str
    rows: list[Row] = field(default_factory=list)

    def ratio(
        self,
        path: str,
        cw: float,
        baseline: float,
        *,
        unit: str,
        minimum: float,
        baseline_label: str = "raw",
    ) -> Row:
        """A row whose target is ``cw / baseline >= minimum`` (rates: higher is better)."""
        ratio = cw / baseline if baseline else 0.0
        row = Row(
            self.name,
            path,
            cw,
            baseline,
            unit,
            baseline_label,
            f">= {minimum:g}x {baseline_label}",
            ratio >= minimum,
            ratio=ratio,
        )
        self.rows.append(row)
        return row

    def check(
        self,
        path: str,
        value: float,
        *,
        unit: str,
        target: str,
        held: bool,
        baseline: float | None = None,
        baseline_label: str = "",
        kind: str = "speed",
        ratio: float | None = None,
    ) -> Row:
        """A row with any other target (stated in words, decided by the caller)."""
        row = Row(self.name, path, value, baseline, unit, baseline_label, target, held, kind, ratio)
        self.rows.append(row)
        return row

    def info(self, path: str, value: float, *, unit: str) -> Row:
        """A figure shown for context, with no target."""
        row = Row(self.name, path, value, None, unit, "", "", True, kind="info")
        self.rows.append(row)
        return row


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit.endswith("/s") or value >= 100 or float(value).is_integer():
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}"


def print_table(results: list[Result], *, enforce_speed: bool) -> None:
    header = ("path", "cw", "baseline", "ratio", "target", "")
    lines = []
    for result in results:
        lines.append((f"[{result.name}]", "", "", "", "", ""))
        for row in result.rows:
            baseline = _figure(row.baseline, row.unit)
            if row.baseline_label and baseline:
                baseline = f"{baseline} ({row.baseline_label})"
            status = "" if row.kind == "info" else ("held" if row.held else "MISSED")
            if not row.held and row.kind == "speed" and not enforce_speed:
                status = "missed (timing, not enforced in --quick)"
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            lines.append(
                ("  " + row.path, _figure(row.cw, row.unit), baseline, ratio, row.target, status)
            )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def write_json(results: list[Result], path: Path, *, vendor: str, quick: bool) -> None:
    from django.db import connection

    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "engine": vendor,
        "database_version": ".".join(map(str, connection.Database.sqlite_version_info))
        if vendor == "sqlite"
        else str(connection.pg_version),  # type: ignore[attr-defined]
        "quick": quick,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": [asdict(row) for result in results for row in result.rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
