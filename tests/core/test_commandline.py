"""What the operator commands share: refusals, durations, JSON and progress bars."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management.base import CommandError, OutputWrapper

from core.errors import NotFound
from core.management import commandline
from core.management.commandline import (
    is_terminal,
    parse_duration,
    progress,
    refusal,
    write_json,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_refusal_is_one_line_with_its_code():
    error = refusal(NotFound("Task 'x' does not exist.", code="task_not_found"))
    assert isinstance(error, CommandError)
    assert str(error) == "Task 'x' does not exist. (task_not_found)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("2h", timedelta(hours=2)), (" 30d ", timedelta(days=30))],
)
def test_durations(text, expected):
    assert parse_duration("--older-than", text) == expected


@pytest.mark.parametrize("text", ["0d", "30", "1w", "-2h", "1.5h", "", "1234567d"])
def test_bad_durations_are_refused_naming_the_option(text):
    with pytest.raises(CommandError, match=r"--older-than must be a positive duration"):
        parse_duration("--older-than", text)


def test_write_json_writes_one_document():
    out = io.StringIO()
    write_json(OutputWrapper(out), {"b": 1, "a": ["é"]})
    assert json.loads(out.getvalue()) == {"b": 1, "a": ["é"]}
    assert "é" in out.getvalue()


def test_progress_is_silent_when_not_on_a_terminal(monkeypatch):
    monkeypatch.setattr(commandline, "PROGRESS_DELAY", 0)
    stream = io.StringIO()
    assert not is_terminal(OutputWrapper(stream))
    assert sum(progress(range(1000), total=1000, desc="Export", stream=OutputWrapper(stream))) == (
        499500
    )
    assert stream.getvalue() == ""


def test_progress_draws_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(commandline, "PROGRESS_DELAY", 0)
    stream = Terminal()
    assert is_terminal(OutputWrapper(stream))
    with progress(total=10, desc="Import", unit="row", stream=OutputWrapper(stream)) as bar:
        bar.update(10)
    assert "Import" in stream.getvalue() and "/10" in stream.getvalue()


def test_progress_waits_a_second_before_showing(monkeypatch):
    stream = Terminal()
    with progress(total=10, desc="Quick", stream=stream) as bar:
        bar.update(10)
    assert "Quick" not in stream.getvalue()
