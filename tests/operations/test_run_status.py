"""Runs in ``cw_status`` (text and ``--json``): the runs in flight, the lost runs, spend
against each budget and the queue waiting for a free slot."""

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import BudgetMetric, LimitScope, RunOutcome, UsageScope
from agents.repositories import UsageRepository
from core.models import PhaseStatus, TaskStatus
from tests import factories as f

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("cw_status", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> dict[str, Any]:
    return json.loads(run("--json", *args))


def live_run(initiative=None, *, silent: timedelta = timedelta(seconds=5), **fields: Any):
    """A live run of an in-progress task of ``initiative`` (a new one unless given), on a
    new account, its last heartbeat ``silent`` ago (its timeout is 120 s)."""
    phase = f.PhaseFactory(
        status=PhaseStatus.IN_PROGRESS, **({"initiative": initiative} if initiative else {})
    )
    task = f.TaskFactory(phase=phase, status=TaskStatus.IN_PROGRESS)
    now = timezone.now()
    return f.RunFactory(
        task=task,
        account=f.AccountFactory(),
        started_at=now - silent - timedelta(minutes=30),
        heartbeat_at=now - silent,
        **fields,
    )


def ended_run(outcome: str, *, ago: timedelta, **fields: Any):
    task = f.TaskFactory(status=TaskStatus.PENDING)
    ended = timezone.now() - ago
    return f.RunFactory(
        task=task,
        outcome=outcome,
        started_at=ended - timedelta(minutes=5),
        heartbeat_at=ended,
        ended_at=ended,
        **fields,
    )


def ready_tasks(initiative, count: int) -> list:
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    return f.TaskFactory.create_batch(count, phase=phase)


def spend(run, tokens: int = 0, cost_micros: int = 0) -> None:
    UsageRepository().record(
        run, [{"model": "claude", "input_tokens": tokens, "cost_micros": cost_micros}]
    )


# --- runs ------------------------------------------------------------------------------


def test_an_empty_database_has_empty_run_sections():
    status = run_json()

    assert status["runs"]["in_flight"] == {"total": 0, "items": []}
    assert status["runs"]["lost"] == {"total": 0, "items": []}
    assert status["runs"]["died"]["total"] == 0
    assert status["budgets"] == {"total": 0, "spent": 0, "warning": 0, "items": []}
    assert status["queue"] == {
        "ready": 0,
        "held_back": 0,
        "overall": {"live": 0, "max_live": None, "full": False},
        "everything_spent": False,
        "other_budgets_spent": 0,
        "initiatives": {"total": 0, "items": []},
    }
    assert "Runs" not in run()


def test_a_run_in_flight_is_listed_with_its_task_agent_account_runner_and_usage():
    initiative = f.InitiativeFactory(name="Checkout")
    running = live_run(initiative, runner_name="ci-7", runner_host="box-2", attempt=2)
    spend(running, tokens=1_500, cost_micros=250_000)

    [item] = run_json()["runs"]["in_flight"]["items"]

    assert item["id"] == running.pk
    assert item["task_name"] == running.task.name
    assert item["initiative_name"] == "Checkout"
    assert item["agent_name"] == running.agent.name
    assert item["account_email"] == running.account.email
    assert item["runner"] == "ci-7@box-2"
    assert item["attempt"] == 2
    assert item["tokens"] == 1_500
    assert item["cost_micros"] == 250_000
    assert item["overdue"] is False
    text = run()
    assert "Runs in flight: 1" in text
    assert (
        f"  {running.task.name} in Checkout, attempt 2, {running.agent.name} on "
        f"{running.account.email}, ci-7@box-2" in text
    )
    assert "1,500 tokens, $0.25" in text
    assert "last heartbeat <1m ago" in text


def test_a_run_past_its_heartbeat_deadline_is_lost_until_swept():
    live_run(silent=timedelta(seconds=10))
    lost = live_run(silent=timedelta(minutes=5), runner_name="ci-3", runner_host="box-9")

    status = run_json()

    assert status["runs"]["in_flight"]["total"] == 2
    assert [item["id"] for item in status["runs"]["lost"]["items"]] == [lost.pk]
    assert status["runs"]["lost"]["total"] == 1
    assert status["needs_attention"] is True
    text = run()
    assert "Lost runs, not swept yet: 1" in text
    assert "ci-3@box-9: silent 5m (deadline passed 3m ago)" in text


def test_runs_that_ended_lost_or_crashed_lately_name_their_runner():
    lost = ended_run(RunOutcome.LOST, ago=timedelta(hours=2), runner_name="r1", runner_host="h1")
    crashed = ended_run(
        RunOutcome.CRASHED, ago=timedelta(minutes=3), exit_code=137, error="Killed\nby OOM"
    )
    ended_run(RunOutcome.FAILED, ago=timedelta(minutes=1))
    ended_run(RunOutcome.LOST, ago=timedelta(hours=30))

    died = run_json()["runs"]["died"]

    assert [item["id"] for item in died["items"]] == [crashed.pk, lost.pk]
    assert died["items"][0]["error"] == "Killed by OOM"
    text = run()
    assert "Runs that ended lost or crashed in the last 24 hours: 2" in text
    assert "crashed 3m ago, exit code 137: Killed by OOM" in text
    assert (
        f"  {lost.task.name} in {lost.task.initiative.name}, attempt 1, {lost.agent.name}, "
        "r1@h1: lost 2h 0m ago" in text
    )


def test_runs_follow_the_initiative_in_focus():
    mine = f.InitiativeFactory()
    live_run(mine)
    live_run()

    status = run_json("--initiative", mine.pk)

    assert status["runs"]["in_flight"]["total"] == 1
    assert status["runs"]["in_flight"]["items"][0]["initiative_id"] == mine.pk


# --- budgets ---------------------------------------------------------------------------


def test_every_active_budget_is_shown_against_what_its_scope_spent():
    initiative = f.InitiativeFactory(name="Search")
    running = live_run(initiative)
    spend(running, tokens=900, cost_micros=2_000_000)
    f.BudgetFactory(limit=10_000)  # everything, 9%
    f.BudgetFactory(
        scope_type=UsageScope.INITIATIVE, scope_id=initiative.pk, limit=1_000, window_seconds=18_000
    )  # 90%: warning
    f.BudgetFactory(
        scope_type=UsageScope.ACCOUNT,
        scope_id=running.account_id,
        metric=BudgetMetric.COST,
        limit=1_500_000,
    )  # spent
    f.BudgetFactory(limit=1, active=False)

    budgets = run_json()["budgets"]

    assert budgets["total"] == 3
    assert (budgets["spent"], budgets["warning"]) == (1, 1)
    assert [(b["scope_name"], b["state"], b["percent"]) for b in budgets["items"]] == [
        (running.account.email, "spent", 133),
        ("Search", "warning", 90),
        ("everything", "ok", 9),
    ]
    text = run()
    assert "Budgets: 3 active (1 spent, 1 past their warning threshold)" in text
    assert f"  [spent] account {running.account.email}: $2.00 of $1.50 (133%), all time" in text
    assert "  [warning] initiative Search: 900 of 1,000 tokens (90%), over 5 hours" in text
    assert "  [ok] everything: 900 of 10,000 tokens (9%), all time" in text


def test_a_budget_on_a_deleted_record_says_so():
    f.BudgetFactory(scope_type=UsageScope.TASK, scope_id="gone")

    [item] = run_json()["budgets"]["items"]

    assert item["scope_name"] == "gone (deleted)"


# --- the queue -------------------------------------------------------------------------


def test_the_queue_counts_ready_tasks_and_those_an_initiative_at_its_limit_holds_back():
    busy = f.InitiativeFactory(name="Busy")
    free = f.InitiativeFactory(name="Free")
    ready_tasks(busy, 3)
    ready_tasks(free, 2)
    live_run(busy)
    f.RunLimitFactory(scope_type=LimitScope.INITIATIVE, scope_id=busy.pk, max_live=1)
    f.RunLimitFactory(scope_type=LimitScope.INITIATIVE, scope_id=free.pk, max_live=5)
    f.RunLimitFactory(scope_type=LimitScope.ALL, scope_id="", max_live=10)

    queue = run_json()["queue"]

    assert queue["ready"] == 5
    assert queue["held_back"] == 3
    assert queue["overall"] == {"live": 1, "max_live": 10, "full": False}
    assert [
        (i["name"], i["ready"], i["live"], i["at_limit"]) for i in queue["initiatives"]["items"]
    ] == [
        ("Busy", 3, 1, True),
        ("Free", 2, 0, False),
    ]
    text = run()
    assert "Queue: 5 ready tasks, 3 held back by limits and budgets; 1 of 10 live runs" in text
    assert "  Busy: 3 ready, 1 of 1 live runs, at its limit" in text
    assert "  Free: 2 ready, 0 of 5 live runs" in text


def test_the_overall_limit_or_a_spent_budget_on_everything_holds_back_every_ready_task():
    initiative = f.InitiativeFactory()
    ready_tasks(initiative, 4)
    live_run(initiative)
    limit = f.RunLimitFactory(scope_type=LimitScope.ALL, scope_id="", max_live=1)

    queue = run_json()["queue"]
    assert (queue["ready"], queue["held_back"], queue["overall"]["full"]) == (4, 4, True)
    assert "the overall limit is reached" in run()

    limit.delete()
    spend(live_run(initiative), tokens=10)
    f.BudgetFactory(limit=10)

    queue = run_json()["queue"]
    assert (queue["held_back"], queue["everything_spent"]) == (4, True)
    assert "the budget on everything is spent" in run()


def test_an_initiative_whose_budget_is_spent_holds_its_ready_tasks_back():
    initiative = f.InitiativeFactory(name="Pricey")
    ready_tasks(initiative, 2)
    ready_tasks(f.InitiativeFactory(), 1)
    spend(live_run(initiative), cost_micros=5)
    f.BudgetFactory(
        scope_type=UsageScope.INITIATIVE,
        scope_id=initiative.pk,
        metric=BudgetMetric.COST,
        limit=5,
    )

    queue = run_json()["queue"]

    assert (queue["ready"], queue["held_back"]) == (3, 2)
    [row] = queue["initiatives"]["items"]
    assert (row["name"], row["budget_spent"], row["max_live"]) == ("Pricey", True, None)
    assert "  Pricey: 2 ready, 1 live run, its budget is spent" in run()


# --- cost ------------------------------------------------------------------------------


def populate(count: int) -> None:
    """``count`` of everything the run sections show: live, lost and crashed runs with
    usage, budgets on each kind of scope, initiatives with ready tasks and limits."""
    for _ in range(count):
        initiative = f.InitiativeFactory()
        ready_tasks(initiative, 2)
        running = live_run(initiative)
        spend(running, tokens=100, cost_micros=100)
        live_run(initiative, silent=timedelta(minutes=10))
        ended_run(RunOutcome.CRASHED, ago=timedelta(hours=1))
        f.RunLimitFactory(scope_type=LimitScope.INITIATIVE, scope_id=initiative.pk, max_live=1)
        for scope_type, scope_id in (
            (UsageScope.INITIATIVE, initiative.pk),
            (UsageScope.PHASE, running.task.phase_id),
            (UsageScope.TASK, running.task_id),
            (UsageScope.ACCOUNT, running.account_id),
        ):
            f.BudgetFactory(scope_type=scope_type, scope_id=scope_id, limit=50)


def queries_of(*args: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        run(*args)
    return len(captured)


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_the_run_sections_cost_the_same_queries_at_two_and_at_forty(args):
    f.BudgetFactory()
    f.RunLimitFactory(scope_type=LimitScope.ALL, scope_id="", max_live=1_000)
    populate(2)
    few = queries_of(*args, "--limit", "3")
    populate(38)

    assert queries_of(*args, "--limit", "3") == few
    status = run_json("--limit", "3")
    assert status["runs"]["in_flight"]["total"] == 80
    assert status["runs"]["lost"]["total"] == 40
    assert status["runs"]["died"]["total"] == 40
    assert status["budgets"]["total"] == 161
    assert status["queue"]["ready"] == 80
    assert status["queue"]["held_back"] == 80
    assert status["queue"]["initiatives"]["total"] == 40
