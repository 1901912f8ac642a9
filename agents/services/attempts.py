"""What a task's earlier attempts ended with (issue 21), for the next attempt's context.

A retry should start from what failed: ``run_list_attempts`` gives each run of a task
that is over (the last ``MAX_ATTEMPTS_LISTED``) with its attempt, outcome, exit code,
error and summary (each cut to ``ATTEMPT_TEXT_CHARS``), when it ended, and the last
lines its agent printed in that run's session (``LOG_TAIL_LINES`` lines of at most
``LOG_LINE_CHARS`` characters, from the log's last ``LOG_TAIL_CHARS`` characters).
Take-next hands these to the runner with the task; ``GET /tasks/{id}/attempts`` reads
them. Core's task context cannot name runs (core does not import agents), so they are
read here, at the agents layer.

Two queries whatever the number of attempts: the runs, then every tail in one
statement (``LogChunkRepository.find_tails``).
"""

from dataclasses import dataclass
from datetime import datetime

from agents.models import Run
from agents.repositories import LogChunkRepository, RunRepository
from core.repositories import TaskRepository

runs = RunRepository()
logs = LogChunkRepository()
tasks = TaskRepository()

#: The most earlier attempts listed (the latest; a task is blocked after a few anyway).
MAX_ATTEMPTS_LISTED = 10
#: The most log lines kept per attempt.
LOG_TAIL_LINES = 20
#: The longest log line kept, in characters (a longer one keeps its end, after "…").
LOG_LINE_CHARS = 500
#: How much of the end of an attempt's log is read, in characters (at most its last
#: ``LOG_TAIL_LINES`` chunks): the lines are taken from these.
LOG_TAIL_CHARS = 8_000
#: The longest error or summary kept per attempt, in characters (a longer one keeps its
#: start, then "…").
ATTEMPT_TEXT_CHARS = 2_000
#: What marks text left out.
ELLIPSIS = "…"


@dataclass(frozen=True)
class Attempt:
    """An earlier attempt at a task, as the next one is told about it."""

    run_id: str
    attempt: int
    outcome: str
    exit_code: int | None
    error: str | None
    summary: str | None
    started_at: datetime
    ended_at: datetime | None
    log_tail: list[str]


def run_list_attempts(*, task_id: str) -> list[Attempt]:
    """The task's last ``MAX_ATTEMPTS_LISTED`` runs that are over, by attempt, with the
    last lines of their logs; ``task_not_found`` when there is no such task. Two
    queries (three with the task's check), whatever the number of attempts."""
    tasks.require(task_id)
    return earlier_attempts(task_id)


def earlier_attempts(task_id: str) -> list[Attempt]:
    """``run_list_attempts`` of a task known to exist (take-next's answer): two queries."""
    return _attempts_of(runs.find_ended_by_task(task_id, limit=MAX_ATTEMPTS_LISTED))


def _attempts_of(ended: list[Run]) -> list[Attempt]:
    """``ended`` (runs that are over) as attempts, their log tails read in one query."""
    sessions = [(run.agent_id, run.session_number) for run in ended if run.agent_id]
    tails = logs.find_tails(sessions, chunks=LOG_TAIL_LINES, chars=LOG_TAIL_CHARS)
    listed = []
    for run in ended:
        tail = tails.get((run.agent_id or "", run.session_number))
        listed.append(
            Attempt(
                run_id=run.pk,
                attempt=run.attempt,
                outcome=run.outcome,
                exit_code=run.exit_code,
                error=_cut(run.error),
                summary=_cut(run.summary),
                started_at=run.started_at,
                ended_at=run.ended_at,
                log_tail=tail_lines(tail.text, cut=tail.cut) if tail else [],
            )
        )
    return listed


def tail_lines(text: str, *, cut: bool = False) -> list[str]:
    """The last ``LOG_TAIL_LINES`` non-blank lines of ``text``, each at most
    ``LOG_LINE_CHARS`` characters (a longer one keeps its end, after "…"); ``cut`` says
    the first line lost its start (it is marked "…" too)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if cut and lines:
        lines[0] = ELLIPSIS + lines[0]
    kept = [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
    return [
        line if len(line) <= LOG_LINE_CHARS else ELLIPSIS + line[-(LOG_LINE_CHARS - 1) :]
        for line in kept
    ]


def _cut(text: str | None) -> str | None:
    """``text`` cut to ``ATTEMPT_TEXT_CHARS`` characters, keeping its start."""
    if not text or len(text) <= ATTEMPT_TEXT_CHARS:
        return text
    return text[: ATTEMPT_TEXT_CHARS - 1] + ELLIPSIS
