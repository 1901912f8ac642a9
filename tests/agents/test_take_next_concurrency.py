"""Runners racing take-next against the real database: never a task handed out twice,
never more live runs than a limit allows.

Each worker thread opens its own connection, so these tests see the locking production
does (take-next's advisory lock on PostgreSQL, immediate transactions on SQLite).
"""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from agents.models import Run
from agents.services import TakeNext, run_finish, run_take_next, run_take_next_waiting
from core.models import Task
from core.repositories import readiness
from tests import factories as f
from tests.agents.run_invariants import assert_runs_agree
from tests.agents.test_account_rotation_concurrency import THREADS, run_at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

ROUNDS = 3
LIMIT = 3


def ready_tasks(count: int) -> list[str]:
    initiative = f.InitiativeFactory(execution_mode="yolo")
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    return [f.TaskFactory(phase=phase).pk for _ in range(count)]


def take(index: int) -> TakeNext | None:
    return run_take_next(
        runner_name=f"runner-{index}", runner_host="build-01", providers=["claude"]
    )


def live() -> int:
    return Run.objects.filter(outcome="running").count()


def test_racing_takes_hand_out_distinct_tasks_up_to_the_overall_limit():
    f.AccountFactory()
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=LIMIT)
    for round_number in range(ROUNDS):
        Run.objects.filter(outcome="running").delete()
        Task.objects.update(status="completed")  # the last round's tasks are out of the way
        readiness.rebuild()  # the update went past the repositories that keep it current
        tasks = set(ready_tasks(10))

        results, errors = run_at_once(THREADS, take)

        assert errors == [], f"round {round_number}: {errors!r}"
        taken = [result.task.pk for result in results if result is not None]
        assert len(taken) == LIMIT, f"round {round_number}: {len(taken)} taken"
        assert len(set(taken)) == len(taken)
        assert set(taken) <= tasks
        assert results.count(None) == THREADS - LIMIT
        assert live() == LIMIT
        assert_runs_agree()


def test_runners_taking_and_finishing_at_once_never_exceed_the_limits():
    """Every runner takes, checks the live runs, finishes, and takes again until nothing
    is left: each task is handed out once, and the live runs never pass the limit."""
    tasks = set(ready_tasks(24))
    accounts = [f.AccountFactory().pk for _ in range(2)]
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=LIMIT)
    for account_id in accounts:
        f.RunLimitFactory(scope_type="account", scope_id=account_id, max_live=2)
    handed_out: list[str] = []
    observed: list[int] = []
    attempts: list[int] = []
    lock = threading.Lock()

    def runner(index: int) -> None:
        idle = 0
        while idle < 20:
            taken = take(index)
            count = live()
            with lock:
                attempts.append(1)
                observed.append(count)
                if taken is not None:
                    handed_out.append(taken.task.pk)
            if taken is None:
                if not Task.objects.filter(status__in=["pending", "in_progress"]).exists():
                    return
                idle += 1
                time.sleep(0.01)
                continue
            idle = 0
            time.sleep(0.02)  # the agent works a moment, so the others meet the limit
            run_finish(run_id=taken.run.pk, runner_name=f"runner-{index}", outcome="succeeded")

    _results, errors = run_at_once(THREADS, runner)

    assert errors == [], errors
    assert sorted(handed_out) == sorted(tasks)  # each once, none twice
    assert max(observed) <= LIMIT
    assert set(Task.objects.filter(pk__in=tasks).values_list("status", flat=True)) == {"completed"}
    assert_runs_agree()
    print(  # the race's figures, for the record (pytest -s)
        f"\ntake-next race: {len(attempts)} takes, {len(handed_out)} handed out, "
        f"{len(handed_out) - len(set(handed_out))} twice, max live {max(observed)} "
        f"(limit {LIMIT})"
    )


def test_a_waiting_take_is_woken_when_a_run_ends_and_takes_the_freed_slot():
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=1)
    ready_tasks(2)
    first = take(0)
    assert first is not None
    woken_after: list[float] = []

    def work(index: int) -> TakeNext | None:
        if index == 0:
            started = time.monotonic()
            taken = run_take_next(
                runner_name="runner-1", runner_host="build-01", providers=["claude"], wait=20
            )
            woken_after.append(time.monotonic() - started)
            return taken
        time.sleep(0.5)  # the other runner is waiting by now
        run_finish(run_id=first.run.pk, runner_name="runner-0", outcome="succeeded")
        return None

    results, errors = run_at_once(2, work)

    assert errors == [], errors
    assert results[0] is not None and results[0].task.pk != first.task.pk
    assert 0.4 < woken_after[0] < 5  # woken by the finish, not by the fallback
    assert_runs_agree()


def test_an_async_waiting_take_is_woken_when_a_run_ends_and_holds_no_thread_meanwhile():
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=1)
    ready_tasks(2)
    first = take(0)
    assert first is not None

    async def scenario() -> tuple[TakeNext | None, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.create_task(
            run_take_next_waiting(
                runner_name="runner-1", runner_host="build-01", providers=["claude"], wait=20
            )
        )
        await asyncio.sleep(0.5)  # the take is waiting by now
        # The finish runs on the one thread sync_to_async hands database work to: a wait
        # holding that thread would keep it out until the wait ended (20 s).
        await sync_to_async(run_finish)(
            run_id=first.run.pk, runner_name="runner-0", outcome="succeeded"
        )
        try:
            return await waiting, loop.time() - started
        finally:
            await sync_to_async(lambda: connection.close())()

    taken, waited = asyncio.run(scenario())

    assert taken is not None and taken.task.pk != first.task.pk
    assert 0.4 < waited < 5  # woken by the finish, not by the fallback
    assert_runs_agree()
