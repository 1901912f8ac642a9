"""A resume racing the other ends of a run, on the real database: of two resumes, a
sweep and a finish of one silent run, exactly one ends it, and the task, runs and agents
never disagree (``run_invariants``). Each worker thread opens its own connection."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Run, RunOutcome
from agents.services import run_finish, run_resume, run_sweep, run_take_next
from core.errors import Conflict
from tests import factories as f
from tests.agents.run_invariants import assert_runs_agree
from tests.agents.test_account_rotation_concurrency import run_at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

ROUNDS = 10


def test_two_resumes_a_sweep_and_a_finish_of_one_run_end_it_exactly_once():
    f.AccountFactory()
    initiative = f.InitiativeFactory(
        execution_mode="yolo", max_attempts=50, retry_backoff_seconds=0
    )
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    f.TaskFactory(phase=phase)
    run_id = _take()
    for _ in range(ROUNDS):
        silent = timezone.now() - timedelta(hours=1)
        Run.objects.filter(pk=run_id).update(heartbeat_at=silent)

        def work(index: int, run_id: str = run_id) -> str:
            try:
                if index < 2:
                    return "resumed:" + run_resume(run_id=run_id, runner_name="runner-1").run.pk
                if index == 2:
                    return "swept" if run_sweep() else "nothing"
                run_finish(run_id=run_id, runner_name="runner-1", outcome="crashed")
                return "finished"
            except Conflict as error:
                return error.code

        results, errors = run_at_once(4, work)

        assert not errors, errors
        ended = [r for r in results if r.startswith("resumed:") or r in ("swept", "finished")]
        assert len(ended) == 1, results
        assert Run.objects.get(pk=run_id).outcome != RunOutcome.RUNNING
        assert_runs_agree()
        if ended[0].startswith("resumed:"):
            run_id = ended[0].removeprefix("resumed:")
            assert Run.objects.get(pk=run_id).outcome == RunOutcome.RUNNING
        else:
            run_id = _take()  # the run ended for good: its task is back in the queue


def _take() -> str:
    taken = run_take_next(runner_name="runner-1", runner_host="build-01", providers=["claude"])
    assert taken is not None
    return taken.run.pk
