"""The run services after take-next: heartbeat, finish, the sweep of lost runs, a
person's cancel, and ``manage.py cw_reconcile``."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.models import Agent, Run, RunCommit, RunUsage
from agents.services import run_cancel, run_finish, run_heartbeat, run_sweep
from core.actors import Actor, acting_as
from core.errors import Conflict, InvalidInput, PermissionRequired
from core.models import Event, Task
from core.repositories import readiness
from tests import factories as f
from tests.agents.run_invariants import assert_runs_agree

pytestmark = pytest.mark.django_db

RUNNER = "runner-1"
SHA = "a" * 40


def assert_runs_and_tasks_agree() -> None:
    """Tasks, runs, agents, the ready queue and the limits agree (``run_invariants``)."""
    assert_runs_agree()


def live_run(*, max_attempts: int = 3, task=None, attempt: int = 1, **fields) -> Run:
    """A live run of an in-progress task (a new one unless given), its agent running."""
    if task is None:
        initiative = f.InitiativeFactory(max_attempts=max_attempts, execution_mode="yolo")
        phase = f.PhaseFactory(initiative=initiative, status="in_progress")
        task = f.TaskFactory(phase=phase)
    Task.objects.filter(pk=task.pk).update(status="in_progress")
    readiness.rebuild()  # the update went past the repositories that keep it current
    task.refresh_from_db()
    return f.RunFactory(task=task, attempt=attempt, agent__status="running", **fields)


def person() -> Actor:
    return Actor.person(get_user_model().objects.create_user(username="lead", is_staff=True))


def kinds() -> list[str]:
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


# --- heartbeat ---------------------------------------------------------------------------


def test_a_heartbeat_records_its_usage_and_moves_heartbeat_at():
    run = live_run(heartbeat_at=timezone.now() - timedelta(seconds=60))
    before = run.heartbeat_at

    answer = run_heartbeat(
        run_id=run.pk,
        runner_name=RUNNER,
        usage=[{"model": "opus", "input_tokens": 10, "output_tokens": 5}],
        pid=4242,
        session_id="s-1",
    )

    run.refresh_from_db()
    assert answer.decision == "continue"
    assert answer.reason is None
    assert (run.input_tokens, run.output_tokens, run.pid, run.session_id) == (10, 5, 4242, "s-1")
    assert run.heartbeat_at > before
    assert RunUsage.objects.filter(run=run).count() == 1
    assert kinds() == []  # heartbeats are not on the feed
    assert_runs_and_tasks_agree()


def test_a_heartbeat_without_usage_writes_no_usage():
    run = live_run()

    assert run_heartbeat(run_id=run.pk, runner_name=RUNNER).decision == "continue"

    assert not RunUsage.objects.exists()


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("succeeded", "finished"), ("lost", "taken_away"), ("cancelled", "cancelled")],
)
def test_a_heartbeat_of_a_run_that_is_over_is_refused_with_why(outcome, reason):
    run = f.RunFactory(outcome=outcome, ended_at=timezone.now())

    with pytest.raises(Conflict) as caught:
        run_heartbeat(run_id=run.pk, runner_name=RUNNER, usage=[{"input_tokens": 1}])

    assert caught.value.code == "run_not_live"
    assert caught.value.details == {"id": run.pk, "outcome": outcome, "reason": reason}
    assert not RunUsage.objects.exists()


def test_a_heartbeat_from_another_runner_is_refused_and_writes_nothing():
    run = live_run()
    before = run.heartbeat_at

    with pytest.raises(Conflict) as caught:
        run_heartbeat(run_id=run.pk, runner_name="runner-2", usage=[{"input_tokens": 1}])

    assert caught.value.code == "run_not_held"
    run.refresh_from_db()
    assert (run.heartbeat_at, run.input_tokens) == (before, 0)
    assert not RunUsage.objects.exists()


def test_bad_usage_is_refused_and_the_heartbeat_writes_nothing():
    run = live_run()
    before = run.heartbeat_at

    with pytest.raises(InvalidInput) as caught:
        run_heartbeat(run_id=run.pk, runner_name=RUNNER, usage=[{"input_tokens": -1}])

    assert caught.value.code == "invalid_usage"
    run.refresh_from_db()
    assert run.heartbeat_at == before


def test_a_budget_crossed_mid_run_stops_it_at_the_next_heartbeat():
    budget = f.BudgetFactory(limit=100, warn_percent=50)
    run = live_run()

    first = run_heartbeat(run_id=run.pk, runner_name=RUNNER, usage=[{"input_tokens": 60}])
    assert first.decision == "continue"
    assert [(s.budget_id, s.spent, s.warn_reached, s.spent_out) for s in first.budgets] == [
        (budget.pk, 60, True, False)
    ]
    second = run_heartbeat(run_id=run.pk, runner_name=RUNNER, usage=[{"output_tokens": 45}])

    assert (second.decision, second.reason) == ("stop", "budget_spent")
    assert second.budgets[0].as_dict()["spent"] == 105
    run.refresh_from_db()
    assert run.outcome == "budget_stopped"
    assert run.ended_at is not None
    assert Task.objects.get(pk=run.task_id).status == "pending"
    assert Agent.objects.get(pk=run.agent_id).status == "stopped"
    assert kinds() == [
        "budget.warned",
        "run.budget_stopped",
        "task.requeued",
        "agent.status_changed",
    ]
    warned = Event.objects.get(kind="budget.warned")
    assert warned.data == {"spent": 60, "limit": 100, "warn_percent": 50, "run_id": run.pk}
    assert_runs_and_tasks_agree()
    with pytest.raises(Conflict) as caught:
        run_heartbeat(run_id=run.pk, runner_name=RUNNER)
    assert caught.value.details["reason"] == "budget_spent"


def test_a_budget_of_another_initiative_does_not_stop_the_run():
    f.BudgetFactory(limit=1, scope_type="initiative", scope_id=f.InitiativeFactory().pk)
    run = live_run()

    answer = run_heartbeat(run_id=run.pk, runner_name=RUNNER, usage=[{"input_tokens": 5}])

    assert (answer.decision, answer.budgets) == ("continue", [])


# --- finish ------------------------------------------------------------------------------


def test_a_succeeded_finish_completes_the_task_with_its_summary():
    project = f.ProjectFactory()
    run = live_run()

    run_finish(
        run_id=run.pk,
        runner_name=RUNNER,
        outcome="succeeded",
        exit_code=0,
        summary="Added the login form.",
        end_commits={project.pk: SHA},
        usage=[{"cost_micros": 1_500}],
    )

    run.refresh_from_db()
    task = Task.objects.get(pk=run.task_id)
    assert (run.outcome, run.exit_code, run.cost_micros) == ("succeeded", 0, 1_500)
    assert (task.status, task.summary) == ("completed", "Added the login form.")
    assert Agent.objects.get(pk=run.agent_id).status == "idle"
    assert RunCommit.objects.get(run=run, project=project).end_commit == SHA
    assert kinds()[:2] == ["run.finished", "task.completed"]
    assert Event.objects.get(kind="run.finished").data == {
        "task_id": task.pk,
        "outcome": "succeeded",
        "exit_code": 0,
    }
    assert_runs_and_tasks_agree()


def test_a_failed_finish_returns_the_task_to_the_queue():
    run = live_run()

    run_finish(run_id=run.pk, runner_name=RUNNER, outcome="failed", exit_code=1, error="boom")

    assert Task.objects.get(pk=run.task_id).status == "pending"
    assert Agent.objects.get(pk=run.agent_id).status == "crashed"
    assert kinds() == ["run.finished", "task.requeued", "agent.status_changed"]
    assert_runs_and_tasks_agree()


def test_a_stopped_run_spends_no_attempt():
    run = live_run(max_attempts=1)

    run_finish(run_id=run.pk, runner_name=RUNNER, outcome="stopped")

    assert Task.objects.get(pk=run.task_id).status == "pending"
    assert Agent.objects.get(pk=run.agent_id).status == "stopped"


def test_after_max_attempts_failures_the_task_is_blocked_with_the_failures_listed():
    run = live_run(max_attempts=2)
    task = run.task
    run_finish(run_id=run.pk, runner_name=RUNNER, outcome="crashed", exit_code=137, error="OOM")
    assert Task.objects.get(pk=task.pk).status == "pending"

    second = live_run(task=task, attempt=2)
    run_finish(run_id=second.pk, runner_name=RUNNER, outcome="failed", exit_code=1, error="tests")

    task.refresh_from_db()
    assert (task.status, task.blocked_from_status) == ("blocked", "pending")
    blocked = Event.objects.get(kind="task.blocked")
    assert blocked.data == {
        "from": "in_progress",
        "reason": "attempts_spent",
        "failures": [
            {"run_id": run.pk, "attempt": 1, "outcome": "crashed", "exit_code": 137,
             "error": "OOM"},
            {"run_id": second.pk, "attempt": 2, "outcome": "failed", "exit_code": 1,
             "error": "tests"},
        ],
    }  # fmt: skip
    assert_runs_and_tasks_agree()


def test_a_second_finish_is_refused_and_writes_nothing():
    run = live_run()
    run_finish(run_id=run.pk, runner_name=RUNNER, outcome="succeeded")
    count = Event.objects.count()

    with pytest.raises(Conflict) as caught:
        run_finish(run_id=run.pk, runner_name=RUNNER, outcome="failed", usage=[{"input_tokens": 1}])

    assert caught.value.code == "run_not_live"
    assert Event.objects.count() == count
    assert not RunUsage.objects.exists()


@pytest.mark.parametrize("outcome", ["lost", "running", "cancelled", "nonsense"])
def test_a_finish_with_an_outcome_a_runner_does_not_report_is_refused(outcome):
    run = live_run()

    with pytest.raises(InvalidInput) as caught:
        run_finish(run_id=run.pk, runner_name=RUNNER, outcome=outcome)

    assert caught.value.code == "invalid_run_outcome"
    run.refresh_from_db()
    assert run.outcome == "running"


def test_a_finish_by_another_runner_is_refused():
    run = live_run()

    with pytest.raises(Conflict) as caught:
        run_finish(run_id=run.pk, runner_name="runner-2", outcome="succeeded")

    assert caught.value.code == "run_not_held"
    assert Task.objects.get(pk=run.task_id).status == "in_progress"


def test_a_bad_end_commit_is_refused_and_the_run_stays_live():
    run = live_run()

    with pytest.raises(InvalidInput):
        run_finish(
            run_id=run.pk,
            runner_name=RUNNER,
            outcome="succeeded",
            end_commits={f.ProjectFactory().pk: "abc"},
        )

    run.refresh_from_db()
    assert run.outcome == "running"
    assert not RunCommit.objects.exists()


# --- sweep -------------------------------------------------------------------------------


def test_the_sweep_marks_a_stale_run_lost_its_agent_crashed_and_its_task_pending():
    stale = live_run(heartbeat_at=timezone.now() - timedelta(minutes=10))
    fresh = live_run()

    swept = run_sweep()

    assert [(s.run_id, s.task_status) for s in swept] == [(stale.pk, "pending")]
    stale.refresh_from_db()
    assert stale.outcome == "lost"
    assert Agent.objects.get(pk=stale.agent_id).status == "crashed"
    assert Task.objects.get(pk=stale.task_id).status == "pending"
    fresh.refresh_from_db()
    assert fresh.outcome == "running"
    assert kinds() == ["run.lost", "task.requeued", "agent.status_changed"]
    assert run_sweep() == []
    assert_runs_and_tasks_agree()


def test_a_lost_run_on_its_last_attempt_blocks_its_task():
    run = live_run(max_attempts=1, heartbeat_at=timezone.now() - timedelta(hours=1))

    (swept,) = run_sweep()

    assert (swept.run_id, swept.task_status) == (run.pk, "blocked")
    failures = Event.objects.get(kind="task.blocked").data["failures"]
    assert [(x["attempt"], x["outcome"]) for x in failures] == [(1, "lost")]


# --- cancel ------------------------------------------------------------------------------


def test_a_person_cancels_a_run_and_its_runner_is_told_at_its_next_heartbeat():
    run = live_run(max_attempts=1)
    lead = person()

    with acting_as(lead):
        run_cancel(run_id=run.pk, actor=lead)

    run.refresh_from_db()
    assert run.outcome == "cancelled"
    assert Task.objects.get(pk=run.task_id).status == "pending"  # no attempt spent
    assert Agent.objects.get(pk=run.agent_id).status == "stopped"
    events = list(Event.objects.order_by("id"))
    assert [e.kind for e in events] == ["run.cancelled", "task.requeued", "agent.status_changed"]
    assert {(e.actor_type, e.actor_name) for e in events} == {("person", "lead")}
    with pytest.raises(Conflict) as caught:
        run_heartbeat(run_id=run.pk, runner_name=RUNNER)
    assert caught.value.details["reason"] == "cancelled"
    with pytest.raises(Conflict):
        run_cancel(run_id=run.pk, actor=lead)
    assert_runs_and_tasks_agree()


def test_a_tool_cannot_cancel_a_run():
    run = live_run()

    with pytest.raises(PermissionRequired) as caught:
        run_cancel(run_id=run.pk, actor=Actor.tool("orchestrator"))

    assert caught.value.code == "person_required"
    run.refresh_from_db()
    assert run.outcome == "running"


def test_the_runners_changes_carry_the_actor_in_force():
    run = live_run()

    with acting_as(Actor.tool("runner-1")):
        run_finish(run_id=run.pk, runner_name=RUNNER, outcome="failed")

    assert set(Event.objects.values_list("actor_type", "actor_name")) == {("tool", "runner-1")}


# --- cw_reconcile ------------------------------------------------------------------------


def test_cw_reconcile_prints_each_run_it_took_back_and_a_total():
    stale = live_run(heartbeat_at=timezone.now() - timedelta(minutes=10))
    out = StringIO()

    call_command("cw_reconcile", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"run {stale.pk}: lost")
    assert lines[0].endswith(f"task {stale.task_id} pending")
    assert lines[1] == "Took back 1 lost run(s)."
    assert set(Event.objects.values_list("actor_type", "actor_name")) == {
        ("system", "cw_reconcile")
    }


def test_cw_reconcile_with_nothing_to_do_says_so():
    out = StringIO()
    call_command("cw_reconcile", stdout=out)
    assert out.getvalue() == "Took back 0 lost run(s).\n"


@pytest.mark.parametrize("limit", ["0", "many", "10001"])
def test_cw_reconcile_refuses_a_bad_limit(limit):
    with pytest.raises(CommandError, match="--limit must be a whole number"):
        call_command("cw_reconcile", "--limit", limit)
