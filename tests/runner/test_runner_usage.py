"""``runner.usage.StreamReader``: session id, usage per model counted once, cost once."""

from __future__ import annotations

import json
from typing import Any

from runner.usage import StreamReader


def line(record: Any) -> str:
    return json.dumps(record)


def assistant(message_id: str, model: str, **usage: int) -> str:
    return line(
        {
            "type": "assistant",
            "session_id": "s-1",
            "message": {"id": message_id, "model": model, "usage": usage},
        }
    )


def by_model(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {report["model"]: report for report in reports}
    assert len(found) == len(reports)
    return found


def test_the_session_id_comes_from_the_init_record() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(line({"type": "system", "subtype": "init", "session_id": "abc", "model": "m"}))
    assert reader.session_id == "abc"
    reader.feed(line({"type": "system", "session_id": ""}))
    assert reader.session_id == "abc"
    assert reader.take_usage() == []


def test_a_repeated_message_counts_only_its_growth() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(assistant("msg-1", "opus", input_tokens=10, output_tokens=1))
    reader.feed(assistant("msg-1", "opus", input_tokens=10, output_tokens=5))
    reader.feed(
        assistant(
            "msg-1",
            "opus",
            input_tokens=10,
            output_tokens=7,
            cache_read_input_tokens=100,
            cache_creation_input_tokens=3,
        )
    )
    assert reader.take_usage() == [
        {
            "model": "opus",
            "input_tokens": 10,
            "output_tokens": 7,
            "cache_read_tokens": 100,
            "cache_write_tokens": 3,
        }
    ]
    # Taken: nothing more until it grows again.
    reader.feed(assistant("msg-1", "opus", input_tokens=10, output_tokens=7))
    assert reader.take_usage() == []
    reader.feed(assistant("msg-1", "opus", input_tokens=10, output_tokens=9))
    assert reader.take_usage() == [{"model": "opus", "output_tokens": 2}]
    # A smaller count (out of order) takes nothing back.
    reader.feed(assistant("msg-1", "opus", input_tokens=4, output_tokens=1))
    assert reader.take_usage() == []


def test_two_messages_add_up_and_two_models_are_apart() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(assistant("a", "opus", input_tokens=10, output_tokens=2))
    reader.feed(assistant("b", "opus", input_tokens=5, output_tokens=1))
    reader.feed(assistant("c", "haiku", input_tokens=7, output_tokens=3))
    found = by_model(reader.take_usage())
    assert found == {
        "opus": {"model": "opus", "input_tokens": 15, "output_tokens": 3},
        "haiku": {"model": "haiku", "input_tokens": 7, "output_tokens": 3},
    }


def test_absurd_counts_are_ignored() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(assistant("a", "m", input_tokens=-5, output_tokens=2**60))
    for value in ("9", True, 1.5, None):
        message = {"id": f"m-{value}", "usage": {"input_tokens": value}}
        reader.feed(line({"type": "assistant", "message": message}))
    assert reader.take_usage() == []  # True is an int in Python, but no count


def test_the_cost_is_reported_once() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(
        line(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": "Done.",
                "session_id": "s-9",
                "total_cost_usd": 0.1234567,
            }
        )
    )
    assert reader.saw_result and not reader.is_error
    assert reader.result == "Done."
    assert reader.session_id == "s-9"
    assert reader.take_usage() == [{"model": "", "cost_micros": 123457}]
    # The same total again (a second result record) adds nothing; a larger total adds the
    # difference.
    reader.feed(line({"type": "result", "total_cost_usd": 0.1234567}))
    assert reader.take_usage() == []
    reader.feed(line({"type": "result", "total_cost_usd": 0.2, "is_error": True}))
    assert reader.take_usage() == [{"model": "", "cost_micros": 76543}]
    assert reader.is_error


def test_a_bad_cost_is_ignored() -> None:
    reader = StreamReader("claude-stream-json")
    for cost in ("1.0", -1, 1e12, None, True):
        reader.feed(line({"type": "result", "total_cost_usd": cost}))
    assert reader.take_usage() == []


def test_give_back_adds_to_what_comes_next() -> None:
    reader = StreamReader("claude-stream-json")
    reader.feed(assistant("a", "opus", input_tokens=10))
    taken = reader.take_usage()
    assert taken == [{"model": "opus", "input_tokens": 10}]
    reader.feed(assistant("a", "opus", input_tokens=12))
    reader.feed(line({"type": "result", "total_cost_usd": 0.5}))
    reader.give_back(taken)
    assert by_model(reader.take_usage()) == {
        "opus": {"model": "opus", "input_tokens": 12},
        "": {"model": "", "cost_micros": 500_000},
    }
    assert reader.take_usage() == []


def test_plain_output_says_nothing() -> None:
    reader = StreamReader("plain")
    reader.feed(line({"type": "system", "session_id": "abc"}))
    reader.feed(assistant("a", "opus", input_tokens=10))
    reader.feed(line({"type": "result", "result": "x", "total_cost_usd": 1.0}))
    assert reader.session_id is None
    assert reader.result is None and not reader.saw_result
    assert reader.take_usage() == []


def test_what_is_not_a_record_is_ignored() -> None:
    reader = StreamReader("claude-stream-json")
    for text in (
        "Hello",
        "{not json",
        "",
        "[1, 2]",
        line([{"type": "result", "total_cost_usd": 1.0}]),
        ' {"type": "result", "total_cost_usd": 1.0}',  # a record starts the line
        "42",
        line({"type": "assistant", "message": "text"}),
        line({"type": "assistant", "message": {"id": "a", "usage": None}}),
    ):
        reader.feed(text)
    assert reader.take_usage() == []
    assert reader.session_id is None
    assert not reader.saw_result
