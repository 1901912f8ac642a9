"""What a task's earlier attempts ended with, for the next attempt: outcome, exit code,
error, summary and the last lines of each run's log, bounded, in a fixed number of
queries; take-next hands them out with the task."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.services import run_finish, run_list_attempts, run_take_next
from agents.services.attempts import (
    ATTEMPT_TEXT_CHARS,
    LOG_LINE_CHARS,
    LOG_TAIL_CHARS,
    LOG_TAIL_LINES,
    MAX_ATTEMPTS_LISTED,
    tail_lines,
)
from core.errors import NotFound
from tests import factories as f

pytestmark = pytest.mark.django_db


def ended_run(task, attempt: int, *, outcome: str = "failed", **fields):
    """A run of ``task`` that is over, held by an agent of its own."""
    return f.RunFactory(
        task=task,
        attempt=attempt,
        outcome=outcome,
        ended_at=timezone.now() - timedelta(minutes=10 - attempt),
        **fields,
    )


def log(run, *contents: str, session_number: int = 1) -> None:
    for content in contents:
        f.AgentLogChunkFactory(
            agent_id=run.agent_id,
            agent_name=run.agent.name,
            session_number=session_number,
            content=content,
        )


def test_attempts_list_each_ended_run_with_its_last_log_lines():
    task = f.TaskFactory()
    first = ended_run(task, 1, exit_code=2, error="Tests failed: test_login")
    second = ended_run(task, 2, outcome="lost", error="No heartbeat since 10:00.")
    f.RunFactory(task=task, attempt=3)  # live: not an earlier attempt
    log(first, '{"type":"system"}\n', "Error: rate limit reached, retrying in 30s\n")
    log(first, "FAILED tests/test_login.py::test_form", session_number=1)
    f.AgentLogChunkFactory(agent_id=first.agent_id, session_number=2, content="other session")

    attempts = run_list_attempts(task_id=task.pk)

    assert [(a.run_id, a.attempt, a.outcome) for a in attempts] == [
        (first.pk, 1, "failed"),
        (second.pk, 2, "lost"),
    ]
    assert (attempts[0].exit_code, attempts[0].error) == (2, "Tests failed: test_login")
    assert attempts[0].log_tail == [
        '{"type":"system"}',
        "Error: rate limit reached, retrying in 30s",
        "FAILED tests/test_login.py::test_form",
    ]
    assert attempts[1].log_tail == []
    assert attempts[1].ended_at is not None


def test_a_tail_is_the_last_lines_each_cut_to_its_end():
    text = "\n".join(f"line {n}" for n in range(50)) + "\n\n" + "x" * 2_000 + "END\n"

    lines = tail_lines(text)

    assert len(lines) == LOG_TAIL_LINES
    assert lines[0] == "line 31"
    assert len(lines[-1]) == LOG_LINE_CHARS
    assert lines[-1].startswith("…") and lines[-1].endswith("xEND")


def test_a_long_log_is_read_only_from_its_end_and_its_first_line_marked_cut():
    task = f.TaskFactory()
    run = ended_run(task, 1)
    log(run, *[f"chunk {n}\n" for n in range(100)])
    log(run, "a" * (LOG_TAIL_CHARS * 3) + "\n")

    (attempt,) = run_list_attempts(task_id=task.pk)

    assert attempt.log_tail == ["…" + "a" * (LOG_LINE_CHARS - 1)]


def test_error_and_summary_are_cut_to_their_bound():
    task = f.TaskFactory()
    ended_run(task, 1, error="e" * (ATTEMPT_TEXT_CHARS + 10), summary="s" * 50)

    (attempt,) = run_list_attempts(task_id=task.pk)

    assert len(attempt.error) == ATTEMPT_TEXT_CHARS and attempt.error.endswith("e…")
    assert attempt.summary == "s" * 50


def test_only_the_last_attempts_are_listed():
    task = f.TaskFactory()
    for attempt in range(1, MAX_ATTEMPTS_LISTED + 3):
        ended_run(task, attempt, outcome="stopped")

    attempts = run_list_attempts(task_id=task.pk)

    assert [a.attempt for a in attempts] == list(range(3, MAX_ATTEMPTS_LISTED + 3))


def test_attempts_cost_the_same_queries_for_one_and_for_ten():
    def attempts_of(count: int) -> tuple[str, int]:
        task = f.TaskFactory()
        for attempt in range(1, count + 1):
            log(ended_run(task, attempt), "boom\n", "still boom\n")
        with CaptureQueriesContext(connection) as queries:
            found = run_list_attempts(task_id=task.pk)
        assert len(found) == count and all(a.log_tail for a in found)
        return task.pk, len(queries)

    assert attempts_of(1)[1] == attempts_of(MAX_ATTEMPTS_LISTED)[1] == 3


def test_attempts_of_an_unknown_task_are_not_found():
    with pytest.raises(NotFound) as error:
        run_list_attempts(task_id="nope")
    assert error.value.code == "task_not_found"


def test_take_next_hands_out_the_earlier_attempts_with_the_task():
    f.AccountFactory()
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=0)
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    task = f.TaskFactory(phase=phase)
    first = run_take_next(runner_name="runner-1", runner_host="build-01", providers=["claude"])
    assert first is not None and first.attempts == []
    log(first.run, "Traceback (most recent call last):\n", "KeyError: 'user'\n")
    run_finish(
        run_id=first.run.pk, runner_name="runner-1", outcome="failed", exit_code=1, error="boom"
    )

    second = run_take_next(runner_name="runner-1", runner_host="build-01", providers=["claude"])

    assert second is not None and second.task.pk == task.pk and second.run.attempt == 2
    (earlier,) = second.attempts
    assert (earlier.run_id, earlier.outcome, earlier.exit_code, earlier.error) == (
        first.run.pk,
        "failed",
        1,
        "boom",
    )
    assert earlier.log_tail == ["Traceback (most recent call last):", "KeyError: 'user'"]
