"""What an agent's output says about its run: its session id, its token usage per
model, its cost and its final result — read from Claude Code's ``stream-json`` records
(``format = "claude-stream-json"``); a ``plain`` agent's output says nothing of these.

Claude Code repeats an assistant message once per content block, each copy with the
message's usage so far, so usage is counted per message id as the growth since the
copy before; the cost comes from the ``result`` record (the session's total).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import Any

FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
}
#: The most a usage count may be (cw refuses absurd usage).
_MAX_COUNT = 2**53


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 <= value < _MAX_COUNT else 0


class StreamReader:
    """Reads one run's output line by line; thread-safe ``take_usage``."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.session_id: str | None = None
        self.result: str | None = None
        self.is_error = False
        self.saw_result = False
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, int]] = {}
        self._pending: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._cost_reported = 0

    def feed(self, line: str) -> None:
        if self.fmt != "claude-stream-json" or not line.startswith("{"):
            return
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        kind = record.get("type")
        if isinstance(record.get("session_id"), str) and record["session_id"]:
            self.session_id = record["session_id"]
        if kind == "assistant" and isinstance(record.get("message"), dict):
            self._assistant(record["message"])
        elif kind == "result":
            self._result(record)

    def _assistant(self, message: dict[str, Any]) -> None:
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return
        model = str(message.get("model") or "")[:255]
        key = str(message.get("id") or id(message))
        with self._lock:
            before = self._seen.setdefault(key, {})
            for source, target in FIELDS.items():
                now = _count(usage.get(source))
                grown = now - before.get(source, 0)
                if grown > 0:
                    self._pending[model][target] += grown
                    before[source] = now

    def _result(self, record: dict[str, Any]) -> None:
        self.saw_result = True
        self.is_error = bool(record.get("is_error"))
        if isinstance(record.get("result"), str):
            self.result = record["result"]
        cost = record.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e9:
            micros = round(cost * 1_000_000)
            with self._lock:
                grown = micros - self._cost_reported
                if grown > 0:
                    self._pending[str(record.get("model") or "")]["cost_micros"] += grown
                    self._cost_reported = micros

    def take_usage(self) -> list[dict[str, Any]]:
        """The usage not yet reported, as cw's usage reports (and forget it)."""
        with self._lock:
            reports = [
                {"model": model, **counts}
                for model, counts in self._pending.items()
                if any(counts.values())
            ]
            self._pending.clear()
        return reports

    def give_back(self, reports: list[dict[str, Any]]) -> None:
        """Usage a heartbeat could not deliver, to go with the next one."""
        with self._lock:
            for report in reports:
                model = report["model"]
                for name, value in report.items():
                    if name != "model":
                        self._pending[model][name] += value
