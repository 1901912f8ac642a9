"""Take-next: the first ready task that fits every limit and budget, started with its
agent, run and a claimed account in one transaction; None when nothing fits."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ALL_TIME, Account, Agent, Run
from agents.services import TakeNext, run_finish, run_take_next
from core.actors import Actor
from core.errors import InvalidInput
from core.models import Event, Task
from tests import factories as f
from tests.agents.test_run_services import assert_runs_and_tasks_agree, kinds

pytestmark = pytest.mark.django_db

RUNNER = "runner-1"
HOST = "build-01"


def take(*, runner: str = RUNNER, providers: list[str] | None = None, **kwargs) -> TakeNext | None:
    return run_take_next(
        runner_name=runner, runner_host=HOST, providers=providers or ["claude"], **kwargs
    )


def ready_task(*, initiative=None, phase=None, **fields) -> Task:
    """A pending auto task whose phase is in progress (so it is ready)."""
    if phase is None:
        initiative = initiative or f.InitiativeFactory(execution_mode="yolo")
        phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    return f.TaskFactory(phase=phase, **fields)


def spend(scope_type: str, scope_id: str, tokens: int) -> None:
    f.UsageBucketFactory(
        scope_type=scope_type, scope_id=scope_id, bucket_start=ALL_TIME, input_tokens=tokens
    )


# --- what is taken -------------------------------------------------------------------------


def test_take_next_starts_the_highest_priority_ready_task_with_agent_run_and_account():
    account = f.AccountFactory()
    phase = f.PhaseFactory(
        initiative=f.InitiativeFactory(execution_mode="yolo"), status="in_progress"
    )
    ready_task(phase=phase, priority="low")
    high = ready_task(phase=phase, priority="high")
    ready_task(phase=phase, priority="medium")

    taken = take()

    assert taken is not None
    assert taken.task.pk == high.pk
    high.refresh_from_db()
    assert high.status == "in_progress"
    agent = Agent.objects.get(pk=taken.agent.pk)
    assert (agent.status, agent.task_id, agent.account_id) == ("running", high.pk, account.pk)
    run = Run.objects.get(pk=taken.run.pk)
    assert (run.outcome, run.attempt, run.task_id, run.agent_id, run.account_id) == (
        "running",
        1,
        high.pk,
        agent.pk,
        account.pk,
    )
    assert (run.runner_name, run.runner_host, run.heartbeat_timeout_seconds) == (
        RUNNER,
        HOST,
        120,
    )
    assert taken.account.pk == account.pk
    assert_runs_and_tasks_agree()


def test_take_next_records_its_events_with_the_actor():
    f.AccountFactory()
    task = ready_task()
    actor = Actor.system("runner-api", via="api")

    taken = take(actor=actor, heartbeat_timeout_seconds=30)

    assert taken is not None
    assert taken.run.heartbeat_timeout_seconds == 30
    assert kinds() == [
        "task.started",
        "agent.registered",
        "account.claimed",
        "agent.status_changed",
        "run.started",
    ]
    started = Event.objects.get(kind="run.started")
    assert started.subject_id == taken.run.pk
    assert started.data == {
        "task_id": task.pk,
        "agent_id": taken.agent.pk,
        "account_id": taken.account.pk,
        "attempt": 1,
        "runner_name": RUNNER,
    }
    assert set(Event.objects.values_list("actor_name", flat=True)) == {"runner-api"}


def test_a_task_whose_dependency_is_not_completed_is_not_taken():
    f.AccountFactory()
    first = ready_task(priority="low")
    blocked = ready_task(phase=first.phase, priority="high")
    f.TaskDependencyFactory(task=blocked, depends_on_task=first)

    taken = take()

    assert taken is not None
    assert taken.task.pk == first.pk
    assert take() is None  # the dependent waits for its dependency to complete


def test_two_takes_claim_two_accounts_in_rotation():
    accounts = {f.AccountFactory().pk, f.AccountFactory().pk}
    ready_task()
    ready_task()

    first, second = take(), take()

    assert first is not None and second is not None
    assert {first.account.pk, second.account.pk} == accounts


def test_nothing_ready_answers_none_and_writes_nothing():
    f.AccountFactory()

    assert take() is None

    assert not Run.objects.exists()
    assert not Agent.objects.exists()
    assert kinds() == []


def test_a_checkpoint_is_never_taken():
    f.AccountFactory()
    ready_task(type="checkpoint:human-verify")

    assert take() is None


# --- retries --------------------------------------------------------------------------------


def test_a_retry_after_a_failed_finish_is_attempt_2_once_its_back_off_passed():
    f.AccountFactory()
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=600)
    task = ready_task(initiative=initiative)
    first = take()
    assert first is not None
    run_finish(run_id=first.run.pk, runner_name=RUNNER, outcome="failed", exit_code=1)

    assert take() is None  # in back-off

    Run.objects.filter(pk=first.run.pk).update(ended_at=timezone.now() - timedelta(seconds=601))
    second = take()
    assert second is not None
    assert (second.task.pk, second.run.attempt) == (task.pk, 2)
    assert_runs_and_tasks_agree()


def test_a_task_in_back_off_lets_the_next_ready_task_go_first():
    f.AccountFactory()
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=600)
    failing = ready_task(initiative=initiative, priority="high")
    other = ready_task(phase=failing.phase, priority="low")
    first = take()
    assert first is not None and first.task.pk == failing.pk
    run_finish(run_id=first.run.pk, runner_name=RUNNER, outcome="crashed")

    second = take()

    assert second is not None
    assert second.task.pk == other.pk


def test_a_stopped_run_puts_no_back_off_on_its_task():
    f.AccountFactory()
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=600)
    task = ready_task(initiative=initiative)
    first = take()
    assert first is not None
    run_finish(run_id=first.run.pk, runner_name=RUNNER, outcome="stopped")

    second = take()

    assert second is not None
    assert (second.task.pk, second.run.attempt) == (task.pk, 2)


# --- limits ---------------------------------------------------------------------------------


def finish(taken: TakeNext | None) -> None:
    assert taken is not None
    run_finish(run_id=taken.run.pk, runner_name=taken.run.runner_name, outcome="succeeded")


def test_the_overall_limit_stops_the_next_take_until_a_run_ends():
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=1)
    phase = ready_task().phase
    ready_task(phase=phase)

    first = take()
    assert take() is None
    finish(first)
    assert take() is not None


def test_an_initiatives_limit_holds_its_tasks_back_but_not_another_initiatives():
    f.AccountFactory()
    full = ready_task()
    ready_task(phase=full.phase)
    f.RunLimitFactory(scope_type="initiative", scope_id=full.initiative_id, max_live=1)
    first = take()
    assert first is not None and first.task.initiative_id == full.initiative_id

    assert take() is None
    other = ready_task()
    second = take()
    assert second is not None and second.task.pk == other.pk
    finish(first)
    third = take()
    assert third is not None and third.task.initiative_id == full.initiative_id


def test_a_runners_limit_stops_that_runner_only():
    f.AccountFactory()
    for _ in range(3):
        ready_task()
    f.RunLimitFactory(scope_type="runner", scope_id=RUNNER, max_live=1)

    first = take()
    assert take() is None
    assert take(runner="runner-2") is not None
    finish(first)
    assert take() is not None


def test_an_accounts_limit_passes_it_over_and_with_none_left_nothing_fits():
    busy = f.AccountFactory()
    free = f.AccountFactory()
    for _ in range(3):
        ready_task()
    f.RunLimitFactory(scope_type="account", scope_id=busy.pk, max_live=1)
    f.RunLimitFactory(scope_type="account", scope_id=free.pk, max_live=1)

    first, second = take(), take()

    assert first is not None and second is not None
    assert {first.account.pk, second.account.pk} == {busy.pk, free.pk}
    assert take() is None
    finish(first)
    third = take()
    assert third is not None and third.account.pk == first.account.pk


# --- budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["initiative", "phase", "task"])
def test_a_spent_budget_on_a_tasks_scope_skips_the_task(scope):
    f.AccountFactory()
    spent_task = ready_task(priority="high")
    other = ready_task(priority="low")
    scope_id = {
        "initiative": spent_task.initiative_id,
        "phase": spent_task.phase_id,
        "task": spent_task.pk,
    }[scope]
    f.BudgetFactory(scope_type=scope, scope_id=scope_id, limit=100)
    spend(scope, scope_id, 100)

    taken = take()

    assert taken is not None
    assert taken.task.pk == other.pk


def test_a_budget_not_yet_spent_or_switched_off_holds_nothing_back():
    f.AccountFactory()
    task = ready_task()
    f.BudgetFactory(scope_type="task", scope_id=task.pk, limit=100)
    spend("task", task.pk, 99)
    f.BudgetFactory(scope_type="all", scope_id="", limit=10, active=False)
    spend("all", "", 50)

    taken = take()

    assert taken is not None and taken.task.pk == task.pk


def test_a_spent_budget_over_everything_answers_none():
    f.AccountFactory()
    ready_task()
    f.BudgetFactory(scope_type="all", scope_id="", limit=100)
    spend("all", "", 150)

    assert take() is None
    assert not Run.objects.exists()


def test_an_account_with_a_spent_budget_is_passed_over():
    spent = f.AccountFactory(sort_order=0)
    fresh = f.AccountFactory(sort_order=1)
    ready_task()
    ready_task()
    f.BudgetFactory(scope_type="account", scope_id=spent.pk, limit=100)
    spend("account", spent.pk, 100)

    first = take()
    assert first is not None and first.account.pk == fresh.pk
    Account.objects.filter(pk=fresh.pk).delete()  # only the spent one is left

    assert take() is None


# --- providers ------------------------------------------------------------------------------


def test_a_runner_gets_only_accounts_of_the_providers_it_can_run():
    f.AccountFactory(provider="claude")
    codex = f.AccountFactory(provider="codex")
    for _ in range(3):
        ready_task()

    first, second = take(providers=["codex"]), take(providers=["codex"])

    assert first is not None and second is not None
    assert {first.account.pk, second.account.pk} == {codex.pk}
    assert first.agent.provider == "codex"


def test_a_runner_that_can_run_several_providers_prefers_the_first_it_names():
    f.AccountFactory(provider="claude")
    codex = f.AccountFactory(provider="codex")
    f.RunLimitFactory(scope_type="account", scope_id=codex.pk, max_live=1)
    ready_task()
    ready_task()

    first = take(providers=["codex", "claude"])
    second = take(providers=["codex", "claude"])

    assert first is not None and second is not None
    assert (first.account.provider, second.account.provider) == ("codex", "claude")


def test_with_every_account_parked_nothing_fits():
    f.AccountFactory(is_exhausted=True, exhausted_until=timezone.now() + timedelta(hours=1))
    ready_task()

    assert take() is None
    assert Task.objects.get().status == "pending"
    assert kinds() == []


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"runner_name": "  "}, "invalid_runner_name"),
        ({"runner_name": "x" * 256}, "invalid_runner_name"),
        ({"runner_host": ""}, "invalid_runner_host"),
        ({"providers": []}, "invalid_providers"),
        ({"providers": "claude"}, "invalid_providers"),
        ({"providers": [""]}, "invalid_providers"),
        ({"providers": ["gemini"]}, "unknown_provider"),
        ({"providers": ["claude", "gemini"]}, "unknown_provider"),
        ({"heartbeat_timeout_seconds": 9}, "invalid_heartbeat_timeout"),
        ({"heartbeat_timeout_seconds": 86_401}, "invalid_heartbeat_timeout"),
        ({"heartbeat_timeout_seconds": True}, "invalid_heartbeat_timeout"),
        ({"wait": 31}, "invalid_wait"),
        ({"wait": -1}, "invalid_wait"),
    ],
)
def test_bad_input_is_refused_with_its_code_and_writes_nothing(arguments, code):
    f.AccountFactory()
    task = ready_task()
    lost = f.RunFactory(heartbeat_at=timezone.now() - timedelta(hours=1))
    call = {"runner_name": RUNNER, "runner_host": HOST, "providers": ["claude"], **arguments}

    with pytest.raises(InvalidInput) as caught:
        run_take_next(**call)

    assert caught.value.code == code
    task.refresh_from_db()
    assert task.status == "pending"
    assert Run.objects.get(pk=lost.pk).outcome == "running"  # not even the sweep ran
    assert kinds() == []


def test_a_waiting_take_with_nothing_to_take_answers_none_once_the_wait_is_over():
    f.AccountFactory()
    started = time.monotonic()

    assert take(wait=0.3) is None

    assert time.monotonic() - started >= 0.3
    assert kinds() == []


def test_a_waiting_take_with_work_ready_answers_at_once():
    f.AccountFactory()
    task = ready_task()
    started = time.monotonic()

    taken = take(wait=10)

    assert taken is not None and taken.task.pk == task.pk
    assert time.monotonic() - started < 5


def test_take_next_sweeps_lost_runs_first_and_frees_their_slot():
    f.AccountFactory()
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=1)
    first = take() if ready_task() else None
    assert first is not None
    Run.objects.filter(pk=first.run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    Task.objects.filter(pk=first.task.pk).update(priority="low")
    other = ready_task(priority="high")

    second = take()

    assert Run.objects.get(pk=first.run.pk).outcome == "lost"
    assert second is not None and second.task.pk == other.pk
    assert_runs_and_tasks_agree()
