"""Concurrent sweeps and runners against the real database: a lost run is taken back
exactly once, and a finish racing a sweep ends the run once.

Each worker thread opens its own connection, so these tests see the locking production
does (row locks on PostgreSQL, immediate transactions on SQLite).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Run
from agents.services import run_finish, run_sweep
from core.errors import Conflict
from core.models import Event, Task
from tests.agents.run_invariants import assert_runs_agree
from tests.agents.test_account_rotation_concurrency import run_at_once
from tests.agents.test_run_services import live_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

ROUNDS = 5
STALE_RUNS = 3


def test_two_concurrent_sweeps_take_back_each_lost_run_exactly_once():
    for round_number in range(ROUNDS):
        lost = {
            live_run(heartbeat_at=timezone.now() - timedelta(minutes=10)).pk
            for _ in range(STALE_RUNS)
        }

        results, errors = run_at_once(2, lambda _i: run_sweep())

        assert errors == [], f"round {round_number}: {errors!r}"
        taken = [swept.run_id for result in results for swept in result]
        assert sorted(taken) == sorted(lost), f"round {round_number}"
        assert set(Run.objects.filter(pk__in=lost).values_list("outcome", flat=True)) == {"lost"}
        assert Event.objects.filter(kind="run.lost", subject_id__in=lost).count() == STALE_RUNS
        assert_runs_agree()


def test_a_finish_racing_a_sweep_ends_the_run_once():
    for round_number in range(ROUNDS):
        run = live_run(heartbeat_at=timezone.now() - timedelta(minutes=10))

        def work(index: int, run_id: str = run.pk) -> str:
            if index == 0:
                return "swept" if run_sweep() else "skipped"
            try:
                run_finish(run_id=run_id, runner_name="runner-1", outcome="succeeded")
            except Conflict as refused:
                assert refused.code == "run_not_live"
                return "refused"
            return "finished"

        results, errors = run_at_once(2, work)

        assert errors == [], f"round {round_number}: {errors!r}"
        assert sorted(results) in (["finished", "skipped"], ["refused", "swept"]), results
        outcome = Run.objects.get(pk=run.pk).outcome
        status = Task.objects.get(pk=run.task_id).status
        assert (outcome, status) in (("succeeded", "completed"), ("lost", "pending"))
        assert Event.objects.filter(subject_id=run.pk).count() == 1
        assert_runs_agree()
