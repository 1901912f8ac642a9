"""Runners racing take-next, heartbeats, finishes and sweeps against budgets and the
retry policy, on the real database: a budget is overspent by at most one heartbeat per
live run and closes its scope once spent; a task is retried as its initiative allows,
then blocked with its failures listed; and the ready queue, agents and runs never
disagree (``run_invariants``).

Each worker thread opens its own connection, so these tests see the locking production
does (take-next's advisory lock and row locks on PostgreSQL, immediate transactions on
SQLite).
"""

import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import Run, RunUsage
from agents.services import TakeNext, run_finish, run_heartbeat, run_sweep, run_take_next
from core.errors import Conflict
from core.models import Event, Task
from tests import factories as f
from tests.agents.run_invariants import assert_runs_agree
from tests.agents.test_account_rotation_concurrency import THREADS, run_at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

#: Seconds a race may take before a worker gives up (it then fails the test).
DEADLINE = 90


def plan(count: int, **initiative) -> list[str]:
    """``count`` ready tasks in one in-progress phase of a new initiative, in ready order."""
    created = f.InitiativeFactory(execution_mode="yolo", **initiative)
    phase = f.PhaseFactory(initiative=created, status="in_progress")
    return [f.TaskFactory(phase=phase).pk for _ in range(count)]


def take(runner: str) -> TakeNext | None:
    return run_take_next(runner_name=runner, runner_host="build-01", providers=["claude"])


def open_tasks(task_ids: list[str]) -> bool:
    """Whether any of ``task_ids`` may still be taken or is being worked on."""
    return Task.objects.filter(pk__in=task_ids, status__in=["pending", "in_progress"]).exists()


# --- budgets --------------------------------------------------------------------------

#: Tokens one heartbeat reports, and the initiative's budget: 20 heartbeats' worth.
HEARTBEAT_TOKENS = 1_000
BUDGET_TOKENS = 20_000
#: Heartbeats a run sends before it finishes (when no budget stops it first).
BEATS_PER_RUN = 3
BUDGETED_TASKS = 30
OTHER_TASKS = 16


def test_8_runners_heartbeating_against_a_budget_overspend_it_by_at_most_a_heartbeat_per_run():
    """8 threads take 30 tasks of an initiative with a 20,000-token budget (each run
    beats 3 times with 1,000 tokens, then finishes) and 16 of an initiative without one.
    The budget's spending ends at most one heartbeat per budget-stopped run over its
    limit, with at most 8 such runs (one per live run); no take-next called after a
    heartbeat answered ``stop`` starts a task of the budgeted initiative; the other
    initiative's tasks all complete."""
    f.AccountFactory()
    f.AccountFactory()
    budgeted = plan(BUDGETED_TASKS, retry_backoff_seconds=0)
    others = plan(OTHER_TASKS)
    initiative_id = Task.objects.get(pk=budgeted[0]).initiative_id
    f.BudgetFactory(scope_type="initiative", scope_id=initiative_id, limit=BUDGET_TOKENS)
    lock = threading.Lock()
    first_stop: list[float] = []  # when a heartbeat first answered stop (monotonic)
    takes: list[tuple[float, str | None]] = []  # (when called, the task taken)
    answers: Counter[str] = Counter()
    usage = [{"model": "opus", "input_tokens": HEARTBEAT_TOKENS}]

    def runner(index: int) -> None:
        name = f"runner-{index}"
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            called = time.monotonic()
            taken = take(name)
            with lock:
                takes.append((called, taken.task.pk if taken else None))
            if taken is None:
                if not Task.objects.filter(pk__in=others, status="pending").exists():
                    return
                time.sleep(0.01)
                continue
            for _ in range(BEATS_PER_RUN):
                answer = run_heartbeat(run_id=taken.run.pk, runner_name=name, usage=usage)
                with lock:
                    answers[answer.decision] += 1
                    if answer.decision == "stop" and not first_stop:
                        first_stop.append(time.monotonic())
                if answer.decision == "stop":
                    break
            else:
                run_finish(run_id=taken.run.pk, runner_name=name, outcome="succeeded")
        raise AssertionError(f"{name} still running after {DEADLINE} s")

    _results, errors = run_at_once(THREADS, runner)

    assert errors == [], errors
    runs = Run.objects.filter(task__initiative_id=initiative_id)
    spent = sum(
        RunUsage.objects.filter(run__in=runs).values_list("input_tokens", flat=True), start=0
    )
    stopped = runs.filter(outcome="budget_stopped").count()
    assert first_stop, "the budget was never reached"
    assert spent >= BUDGET_TOKENS
    assert 1 <= stopped <= THREADS
    assert spent - BUDGET_TOKENS < HEARTBEAT_TOKENS * stopped
    late = [task for called, task in takes if called > first_stop[0] and task in set(budgeted)]
    assert late == [], f"{len(late)} budgeted tasks started after the budget was spent"
    assert set(Task.objects.filter(pk__in=others).values_list("status", flat=True)) == {"completed"}
    assert not Run.objects.filter(outcome="running").exists()
    census = assert_runs_agree()
    print(  # the race's figures, for the record (pytest -s)
        f"\nbudget race: {THREADS} threads, {len(takes)} takes, {Run.objects.count()} runs "
        f"({runs.count()} budgeted, {stopped} budget-stopped), {answers['continue']} "
        f"continue / {answers['stop']} stop; spent {spent:,} of {BUDGET_TOKENS:,} "
        f"(over by {spent - BUDGET_TOKENS:,}, bound {HEARTBEAT_TOKENS * stopped:,}); "
        f"{census.live_runs} live at the end"
    )


# --- retries --------------------------------------------------------------------------

MAX_ATTEMPTS = 2
#: Each kind of task, by its place in the plan: what its runs do.
SUCCEEDS, FAILS_ONCE, ALWAYS_FAILS, ABANDONED_ONCE = range(4)
KINDS = 4
RETRY_TASKS = 24


def test_8_runners_failing_and_a_sweeper_retry_then_block_as_the_policy_says():
    """8 threads take 24 tasks of an initiative allowing 2 attempts with no back-off
    (a quarter succeed, a quarter fail once, a quarter always fail, a quarter are
    abandoned once: their runner goes silent and the sweep takes the run back) while a
    9th thread sweeps all along. Every task ends completed or blocked; the blocked ones
    are those that always failed, each with its 2 failures listed on its
    ``task.blocked`` event; no task has more than 2 attempts; each abandoned run is
    lost exactly once."""
    f.AccountFactory()
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=6)
    tasks = plan(RETRY_TASKS, max_attempts=MAX_ATTEMPTS, retry_backoff_seconds=0)
    kind = {pk: index % KINDS for index, pk in enumerate(tasks)}
    done = threading.Event()
    swept: list[str] = []
    refused: Counter[str] = Counter()
    lock = threading.Lock()

    def runner(index: int) -> None:
        name = f"runner-{index}"
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            taken = take(name)
            if taken is None:
                if not open_tasks(tasks):
                    return
                time.sleep(0.01)
                continue
            task_kind, attempt = kind[taken.task.pk], taken.run.attempt
            if task_kind == ABANDONED_ONCE and attempt == 1:
                # The runner goes silent: its heartbeat is a minute older than its timeout.
                stale = timezone.now() - timedelta(seconds=taken.run.heartbeat_timeout_seconds + 60)
                Run.objects.filter(pk=taken.run.pk).update(heartbeat_at=stale)
                continue
            fails = task_kind == ALWAYS_FAILS or (task_kind == FAILS_ONCE and attempt == 1)
            try:
                run_finish(
                    run_id=taken.run.pk,
                    runner_name=name,
                    outcome="failed" if fails else "succeeded",
                    exit_code=1 if fails else 0,
                    error=f"attempt {attempt} failed" if fails else None,
                )
            except Conflict as refusal:  # only a sweep could have ended it first
                with lock:
                    refused[refusal.code] += 1
        raise AssertionError(f"{name} still running after {DEADLINE} s")

    def sweeper() -> None:
        try:
            while not done.is_set():
                found = run_sweep()
                with lock:
                    swept.extend(lost.run_id for lost in found)
                time.sleep(0.005)
        finally:
            connection.close()

    sweeping = threading.Thread(target=sweeper)
    sweeping.start()
    try:
        _results, errors = run_at_once(THREADS, runner)
    finally:
        done.set()
        sweeping.join(timeout=30)

    assert errors == [], errors
    assert refused == Counter(), "a finish met a run already ended"
    statuses = dict(Task.objects.filter(pk__in=tasks).values_list("pk", "status"))
    expected = {pk: "blocked" if kind[pk] == ALWAYS_FAILS else "completed" for pk in tasks}
    assert statuses == expected
    history: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for task_id, attempt, outcome in (
        Run.objects.filter(task_id__in=tasks)
        .order_by("task_id", "attempt")
        .values_list("task_id", "attempt", "outcome")
    ):
        history[task_id].append((attempt, outcome))
    outcomes = {
        SUCCEEDS: [(1, "succeeded")],
        FAILS_ONCE: [(1, "failed"), (2, "succeeded")],
        ALWAYS_FAILS: [(1, "failed"), (2, "failed")],
        ABANDONED_ONCE: [(1, "lost"), (2, "succeeded")],
    }
    assert {pk: history[pk] for pk in tasks} == {pk: outcomes[kind[pk]] for pk in tasks}
    # Taken back by the sweeper or by a take-next's own sweep, each exactly once.
    lost = sorted(
        Run.objects.filter(task_id__in=tasks, outcome="lost").values_list("pk", flat=True)
    )
    assert len(lost) == RETRY_TASKS // KINDS
    assert (
        sorted(Event.objects.filter(kind="run.lost").values_list("subject_id", flat=True)) == lost
    )
    assert set(swept) <= set(lost)
    blocked_events = Event.objects.filter(kind="task.blocked", subject_id__in=tasks)
    assert blocked_events.count() == RETRY_TASKS // KINDS
    for event in blocked_events:
        assert event.data["reason"] == "attempts_spent"
        failures = event.data["failures"]
        assert [(f["attempt"], f["outcome"], f["exit_code"]) for f in failures] == [
            (1, "failed", 1),
            (2, "failed", 1),
        ]
        assert [f["error"] for f in failures] == ["attempt 1 failed", "attempt 2 failed"]
    census = assert_runs_agree()
    runs = sum(len(found) for found in history.values())
    print(  # the race's figures, for the record (pytest -s)
        f"\nretry race: {THREADS} runner threads + 1 sweeper, {RETRY_TASKS} tasks, {runs} "
        f"runs ({len(lost)} lost, each swept once, {len(swept)} by the sweeper thread), "
        f"{Counter(statuses.values())['blocked']} blocked with 2 failures listed, "
        f"{census.live_runs} live at the end"
    )
