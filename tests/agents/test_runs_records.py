"""Runs as records (issue 21): the rules the database holds (one live run per task and per
agent, an end time exactly when a run is over, attempts numbered per task, bounds in
words with codes), the run repository's reads (live runs, stale runs, a task's history,
live-run counts per scope), budgets and limits kept within their bounds, and the
initiative's retry policy."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import (
    Budget,
    BudgetMetric,
    LimitScope,
    Run,
    RunCommit,
    RunLimit,
    RunOutcome,
    UsageScope,
)
from agents.repositories import (
    BudgetRepository,
    RunLimitRepository,
    RunRepository,
)
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Initiative
from core.repositories import InitiativeRepository
from tests import factories as f

pytestmark = pytest.mark.django_db

runs = RunRepository()
budgets = BudgetRepository()
limits = RunLimitRepository()


def start(task, **fields) -> Run:
    """A live run of ``task`` by a new agent, through the repository."""
    agent = fields.pop("agent", None) or f.AgentFactory(task=task)
    return runs.create(
        task_id=task.pk,
        agent_id=agent.pk,
        runner_name=fields.pop("runner_name", "runner-1"),
        runner_host="build-01",
        **fields,
    )


def finish(run: Run, outcome: str = RunOutcome.FAILED) -> Run:
    Run.objects.filter(pk=run.pk).update(outcome=outcome, ended_at=timezone.now())
    run.refresh_from_db()
    return run


# --- the rules the database holds ---------------------------------------------------------


def test_a_task_has_at_most_one_live_run():
    run = start(f.TaskFactory())
    with pytest.raises(Conflict) as error:
        start(run.task)
    assert (error.value.code, error.value.message) == (
        "task_has_live_run",
        "This task already has a live run.",
    )
    assert Run.objects.filter(task=run.task).count() == 1


def test_the_database_itself_refuses_a_second_live_run_of_a_task():
    run = f.RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.create(task=run.task, attempt=2, runner_name="r", runner_host="h")


def test_an_agent_holds_at_most_one_live_run():
    run = start(f.TaskFactory())
    with pytest.raises(Conflict) as error:
        start(f.TaskFactory(), agent=run.agent)
    assert error.value.code == "agent_has_live_run"
    with pytest.raises(IntegrityError), transaction.atomic():
        f.RunFactory(agent=run.agent)


def test_a_finished_run_coexists_with_a_live_one_of_the_same_task_and_agent():
    first = finish(start(f.TaskFactory()))
    second = start(first.task, agent=first.agent)
    assert (second.attempt, second.outcome) == (2, RunOutcome.RUNNING)
    assert runs.find_live_by_task(first.task_id) == second
    assert runs.find_live_by_agent(first.agent_id) == second


def test_runs_without_an_agent_do_not_clash():
    f.RunFactory(agent=None)
    f.RunFactory(agent=None)
    assert Run.objects.filter(agent=None).count() == 2


@pytest.mark.parametrize(
    ("outcome", "ended"),
    [(RunOutcome.RUNNING, True), (RunOutcome.SUCCEEDED, False), (RunOutcome.LOST, False)],
)
def test_a_run_has_an_end_time_exactly_when_it_is_over(outcome, ended):
    run = f.RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(
            outcome=outcome, ended_at=timezone.now() if ended else None
        )
    bad = Run(
        task=run.task, attempt=2, runner_name="r", runner_host="h", outcome=outcome,
        ended_at=timezone.now() if ended else None,
    )  # fmt: skip
    with pytest.raises(ValidationError) as error:
        bad.validate_constraints()
    codes = {e.code for e in error.value.error_dict["__all__"]}
    assert "invalid_ended_at" in codes


def test_every_outcome_that_is_over_takes_an_end_time():
    run = f.RunFactory()
    for outcome in RunOutcome.values:
        if outcome != RunOutcome.RUNNING:
            Run.objects.filter(pk=run.pk).update(outcome=outcome, ended_at=timezone.now())
    assert Run.objects.get(pk=run.pk).outcome == RunOutcome.CANCELLED


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("attempt", 0, "invalid_attempt"),
        ("session_number", 0, "invalid_session_number"),
        ("heartbeat_timeout_seconds", 9, "invalid_heartbeat_timeout_seconds"),
        ("heartbeat_timeout_seconds", 86_401, "invalid_heartbeat_timeout_seconds"),
        ("input_tokens", -1, "invalid_usage"),
        ("cost_micros", -1, "invalid_usage"),
    ],
)
def test_a_run_out_of_bounds_is_refused_with_its_code(field, value, code):
    run = f.RunFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.filter(pk=run.pk).update(**{field: value})
    setattr(run, field, value)
    with pytest.raises(ValidationError) as error:
        run.validate_constraints()
    assert code in {e.code for e in error.value.error_dict["__all__"]}


def test_the_repository_refuses_a_bad_timeout_in_words():
    with pytest.raises(InvalidInput) as error:
        start(f.TaskFactory(), heartbeat_timeout_seconds=5)
    assert error.value.code == "validation_failed"
    assert "heartbeat_timeout_seconds" in error.value.details["fields"]
    assert not Run.objects.exists()


def test_a_run_reads_in_words():
    task = f.TaskFactory(name="Add the login form")
    assert str(start(task)) == "attempt 1 of Add the login form (running)"
    assert str(finish(runs.find_live_by_task(task.pk), RunOutcome.BUDGET_STOPPED)) == (
        "attempt 1 of Add the login form (stopped by a budget)"
    )


def test_the_runs_indexes_exist():
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "runs")
    assert found["runs_sweep_idx"]["columns"] == ["outcome", "heartbeat_at"]
    assert found["runs_account_live_idx"]["columns"] == ["account_id", "outcome"]
    assert found["runs_runner_live_idx"]["columns"] == ["runner_name", "outcome"]
    assert found["runs_task_attempt_unique"]["columns"] == ["task_id", "attempt"]


def test_deleting_a_task_deletes_its_runs_and_their_records():
    commit = f.RunCommitFactory()
    f.RunUsageFactory(run=commit.run)
    commit.run.task.delete()
    assert not Run.objects.exists()
    assert not RunCommit.objects.exists()


def test_a_run_outlives_its_agent_and_account():
    account = f.AccountFactory()
    run = f.RunFactory(account=account)
    run.agent.delete()
    account.delete()
    run.refresh_from_db()
    assert (run.agent_id, run.account_id) == (None, None)


# --- commits --------------------------------------------------------------------------------


@pytest.mark.parametrize("commit", ["a" * 40, "0123456789abcdef" * 4])
def test_a_commit_is_forty_or_sixty_four_hex_digits(commit):
    f.RunCommitFactory(start_commit=commit, end_commit=commit).full_clean()


@pytest.mark.parametrize("commit", ["abc123", "A" * 40, "g" * 40, "a" * 41, "a" * 63])
def test_anything_else_is_not_a_commit(commit):
    record = f.RunCommitFactory.build(run=f.RunFactory(), project=f.ProjectFactory())
    record.end_commit = commit
    with pytest.raises(ValidationError) as error:
        record.full_clean()
    assert error.value.error_dict["end_commit"][0].code == "invalid_git_commit"


def test_a_run_has_one_commit_row_per_project():
    commit = f.RunCommitFactory()
    twin = RunCommit(run=commit.run, project=commit.project)
    with pytest.raises(ValidationError) as error:
        twin.validate_constraints()
    assert error.value.error_dict["__all__"][0].code == "run_commit_taken"


# --- attempts, live runs, stale runs, history -----------------------------------------------


def test_attempts_are_numbered_per_task_from_one():
    task, other = f.TaskFactory(), f.TaskFactory()
    first = finish(start(task))
    second = finish(start(task))
    elsewhere = start(other)
    third = start(task)
    assert [first.attempt, second.attempt, third.attempt, elsewhere.attempt] == [1, 2, 3, 1]
    assert [run.attempt for run in runs.history(task.pk)] == [1, 2, 3]


def test_live_runs_are_found_by_task_and_agent():
    account = f.AccountFactory()
    live = start(f.TaskFactory(), account_id=account.pk, runner_name="alpha")
    finish(start(f.TaskFactory(), account_id=account.pk, runner_name="alpha"))
    start(f.TaskFactory(), runner_name="beta")
    assert runs.find_live_by_task(live.task_id) == live
    assert runs.find_live_by_agent(live.agent_id) == live
    assert runs.find_live_by_task(f.TaskFactory().pk) is None


def _silent(run: Run, *, seconds: int) -> None:
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_stale_runs_are_those_silent_past_their_own_timeout_oldest_first():
    now = timezone.now()
    lost_long_ago = start(f.TaskFactory(), heartbeat_timeout_seconds=60)
    lost_recently = start(f.TaskFactory(), heartbeat_timeout_seconds=60)
    patient = start(f.TaskFactory(), heartbeat_timeout_seconds=3_600)
    fresh = start(f.TaskFactory(), heartbeat_timeout_seconds=60)
    over = start(f.TaskFactory(), heartbeat_timeout_seconds=60)
    _silent(lost_long_ago, seconds=600)
    _silent(lost_recently, seconds=90)
    _silent(patient, seconds=600)
    _silent(fresh, seconds=30)
    _silent(over, seconds=900)
    finish(over)

    assert runs.find_stale(now) == [lost_long_ago, lost_recently]
    assert runs.find_stale(now, limit=1) == [lost_long_ago]
    assert runs.find_stale(now + timedelta(hours=1)) == [
        lost_long_ago,
        patient,
        lost_recently,
        fresh,
    ]


def test_a_run_is_stale_only_once_its_deadline_has_passed():
    run = start(f.TaskFactory(), heartbeat_timeout_seconds=120)
    deadline = run.heartbeat_at + timedelta(seconds=120)
    assert runs.find_stale(deadline - timedelta(milliseconds=5)) == []
    assert runs.find_stale(deadline + timedelta(milliseconds=5)) == [run]


def test_live_run_counts_of_every_scope_in_one_query():
    one, two = f.InitiativeFactory(), f.InitiativeFactory()
    account = f.AccountFactory()
    start(f.TaskFactory(phase=f.PhaseFactory(initiative=one)), account_id=account.pk)
    start(f.TaskFactory(phase=f.PhaseFactory(initiative=one)), runner_name="beta")
    start(f.TaskFactory(phase=f.PhaseFactory(initiative=two)), account_id=account.pk)
    finish(start(f.TaskFactory(phase=f.PhaseFactory(initiative=two)), runner_name="beta"))

    with CaptureQueriesContext(connection) as captured:
        counts = runs.live_counts(
            initiative_ids=[one.pk, two.pk, "nothing"],
            account_ids=[account.pk],
            runner_names=["runner-1", "beta", "gamma"],
        )
    assert len(captured.captured_queries) == 1
    assert counts.overall == 3
    assert counts.by_initiative == {one.pk: 2, two.pk: 1, "nothing": 0}
    assert counts.by_account == {account.pk: 2}
    assert counts.by_runner == {"runner-1": 2, "beta": 1, "gamma": 0}
    assert runs.live_counts().overall == 3


# --- budgets --------------------------------------------------------------------------------


def test_a_budget_on_each_scope_round_trips():
    task = f.TaskFactory()
    account = f.AccountFactory()
    for scope_type, scope_id in [
        (UsageScope.ALL, ""),
        (UsageScope.INITIATIVE, task.initiative_id),
        (UsageScope.PHASE, task.phase_id),
        (UsageScope.TASK, task.pk),
        (UsageScope.ACCOUNT, account.pk),
    ]:
        budget = budgets.create(
            scope_type=scope_type,
            scope_id=scope_id,
            metric=BudgetMetric.TOKENS,
            limit=5_000_000,
            window_seconds=5 * 3600,
        )
        assert budgets.get(budget.pk).scope_id == scope_id
    assert Budget.objects.count() == 5


@pytest.mark.parametrize("scope_type", ["initiative", "phase", "task", "account"])
def test_a_budget_on_a_record_that_does_not_exist_is_refused(scope_type):
    with pytest.raises(NotFound) as error:
        budgets.create(scope_type=scope_type, scope_id="missing", metric="cost", limit=1)
    assert error.value.code == "budget_scope_not_found"
    assert error.value.details == {"scope_type": scope_type, "scope_id": "missing"}
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"scope_type": "everything"}, "invalid_scope_type"),
        ({"scope_type": "runner", "scope_id": "alpha"}, "invalid_scope_type"),
        ({"metric": "dollars"}, "invalid_metric"),
        ({"limit": 0}, "invalid_budget_limit"),
        ({"limit": -5}, "invalid_budget_limit"),
        ({"limit": 2**63}, "invalid_budget_limit"),
        ({"limit": True}, "invalid_budget_limit"),
        ({"window_seconds": 0}, "invalid_window_seconds"),
        ({"window_seconds": 599}, "invalid_window_seconds"),
        ({"window_seconds": 601}, "invalid_window_seconds"),
        ({"window_seconds": 31_536_600}, "invalid_window_seconds"),
        ({"window_seconds": "3600"}, "invalid_window_seconds"),
        ({"warn_percent": 0}, "invalid_warn_percent"),
        ({"warn_percent": 101}, "invalid_warn_percent"),
        ({"scope_id": "something"}, "invalid_scope_id"),
    ],
)
def test_a_budget_out_of_bounds_is_refused_with_its_code(fields, code):
    values = {"scope_type": "all", "metric": "tokens", "limit": 1000, **fields}
    with pytest.raises(InvalidInput) as error:
        budgets.create(**values)
    assert error.value.code == code
    assert not Budget.objects.exists()


def test_a_scope_other_than_everything_must_name_its_record():
    with pytest.raises(InvalidInput) as error:
        budgets.create(scope_type="initiative", metric="tokens", limit=1000)
    assert error.value.code == "invalid_scope_id"


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("limit", 0, "invalid_budget_limit"),
        ("window_seconds", 900, "invalid_window_seconds"),
        ("window_seconds", 300, "invalid_window_seconds"),
        ("warn_percent", 0, "invalid_warn_percent"),
        ("scope_id", "x", "invalid_scope_id"),
        ("metric", "euros", "invalid_metric"),
    ],
)
def test_the_database_itself_holds_a_budgets_bounds(column, value, code):
    budget = f.BudgetFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Budget.objects.filter(pk=budget.pk).update(**{column: value})
    setattr(budget, column, value)
    with pytest.raises(ValidationError) as error:
        budget.validate_constraints()
    assert code in {e.code for e in error.value.error_dict["__all__"]}


def test_a_budget_is_raised_lifted_and_switched_off_but_keeps_its_scope():
    budget = budgets.create(scope_type="all", metric="cost", limit=5_000_000)
    budgets.update(budget.pk, limit=9_000_000, window_seconds=7 * 86_400, warn_percent=90)
    budgets.update(budget.pk, active=False)
    budget.refresh_from_db()
    assert (budget.limit, budget.window_seconds, budget.warn_percent, budget.active) == (
        9_000_000,
        604_800,
        90,
        False,
    )
    with pytest.raises(InvalidInput) as error:
        budgets.update(budget.pk, scope_type="task")  # type: ignore[call-arg]
    assert error.value.code == "invalid_field"
    with pytest.raises(InvalidInput) as error:
        budgets.update(budget.pk, limit=0)
    assert error.value.code == "invalid_budget_limit"


def test_a_budget_reads_in_words():
    assert str(f.BudgetFactory(limit=2_000_000, window_seconds=18_000)) == (
        "2,000,000 tokens over 5 hours on everything"
    )
    task = f.TaskFactory()
    assert str(
        f.BudgetFactory(scope_type="task", scope_id=task.pk, metric="cost", limit=2_500_000)
    ) == (f"$2.50 over all time on task {task.pk}")


def test_the_budgets_that_apply_to_a_run_in_one_query():
    task = f.TaskFactory()
    sibling = f.TaskFactory(phase=task.phase)
    account, other_account = f.AccountFactory(), f.AccountFactory()
    everything = f.BudgetFactory()
    initiative = f.BudgetFactory(scope_type="initiative", scope_id=task.initiative_id)
    phase = f.BudgetFactory(scope_type="phase", scope_id=task.phase_id, window_seconds=600)
    own = f.BudgetFactory(scope_type="task", scope_id=task.pk, metric="cost")
    on_account = f.BudgetFactory(scope_type="account", scope_id=account.pk)
    f.BudgetFactory(scope_type="task", scope_id=sibling.pk)
    f.BudgetFactory(scope_type="account", scope_id=other_account.pk)
    f.BudgetFactory(scope_type="task", scope_id=task.pk, active=False)
    f.BudgetFactory(scope_type="initiative", scope_id=f.InitiativeFactory().pk)

    run = f.RunFactory(task=task, account=account)
    with CaptureQueriesContext(connection) as captured:
        found = budgets.applicable_to_run(run.pk)
    assert len(captured.captured_queries) == 1
    assert {b.pk for b in found} == {everything.pk, initiative.pk, phase.pk, own.pk, on_account.pk}
    run.outcome, run.ended_at = "succeeded", timezone.now()
    run.save()
    without_account = f.RunFactory(task=task, attempt=2)
    assert {b.pk for b in budgets.applicable_to_run(without_account.pk)} == {
        everything.pk,
        initiative.pk,
        phase.pk,
        own.pk,
    }


# --- limits -------------------------------------------------------------------------------


def test_a_limit_on_each_scope_and_one_per_scope():
    initiative, account = f.InitiativeFactory(), f.AccountFactory()
    made = [
        limits.create(scope_type="all", max_live=8),
        limits.create(scope_type="initiative", scope_id=initiative.pk, max_live=3),
        limits.create(scope_type="account", scope_id=account.pk, max_live=1),
        limits.create(scope_type="runner", scope_id="build-01", max_live=0),
    ]
    assert RunLimit.objects.count() == 4
    with pytest.raises(Conflict) as error:
        limits.create(scope_type="runner", scope_id="build-01", max_live=2)
    assert error.value.code == "run_limit_taken"
    assert limits.update(made[0].pk, max_live=16).max_live == 16
    assert limits.max_live_by_scope(runner_name="build-01") == {
        ("all", ""): 16,
        ("runner", "build-01"): 0,
    }
    assert limits.max_live_by_scope(
        initiative_ids=[initiative.pk], account_ids=[account.pk], runner_name="build-01"
    ) == {
        ("all", ""): 16,
        ("initiative", initiative.pk): 3,
        ("account", account.pk): 1,
        ("runner", "build-01"): 0,
    }


@pytest.mark.parametrize(
    ("fields", "error_class", "code"),
    [
        ({"max_live": -1}, InvalidInput, "invalid_max_live"),
        ({"max_live": 2**31}, InvalidInput, "invalid_max_live"),
        ({"max_live": "3"}, InvalidInput, "invalid_max_live"),
        ({"scope_type": "phase", "scope_id": "x"}, InvalidInput, "invalid_scope_type"),
        (
            {"scope_type": "initiative", "scope_id": "missing"},
            NotFound,
            "run_limit_scope_not_found",
        ),
        ({"scope_type": "account", "scope_id": "missing"}, NotFound, "run_limit_scope_not_found"),
        ({"scope_type": "runner"}, InvalidInput, "invalid_scope_id"),
        ({"scope_id": "x"}, InvalidInput, "invalid_scope_id"),
    ],
)
def test_a_limit_out_of_bounds_is_refused_with_its_code(fields, error_class, code):
    with pytest.raises(error_class) as error:
        limits.create(**{"scope_type": "all", "max_live": 2, **fields})
    assert error.value.code == code
    assert not RunLimit.objects.exists()


def test_the_database_itself_refuses_a_negative_limit():
    limit = f.RunLimitFactory(scope_type=LimitScope.RUNNER, scope_id="alpha")
    with pytest.raises(IntegrityError), transaction.atomic():
        RunLimit.objects.filter(pk=limit.pk).update(max_live=-1)
    with pytest.raises(InvalidInput) as error:
        limits.update(limit.pk, max_live=-1)
    assert error.value.code == "invalid_max_live"
    assert str(limit) == "at most 4 live runs on runner alpha"


# --- the retry policy ---------------------------------------------------------------------


def test_an_initiative_retries_three_times_a_minute_apart_by_default():
    initiative = InitiativeRepository().create(name="Login")
    initiative.refresh_from_db()
    assert (initiative.max_attempts, initiative.retry_backoff_seconds) == (3, 60)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("max_attempts", 0, "invalid_max_attempts"),
        ("max_attempts", 101, "invalid_max_attempts"),
        ("retry_backoff_seconds", -1, "invalid_retry_backoff_seconds"),
        ("retry_backoff_seconds", 86_401, "invalid_retry_backoff_seconds"),
    ],
)
def test_the_retry_policy_stays_within_its_bounds(field, value, code):
    initiative = f.InitiativeFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Initiative.objects.filter(pk=initiative.pk).update(**{field: value})
    setattr(initiative, field, value)
    with pytest.raises(ValidationError) as error:
        initiative.validate_constraints()
    assert code in {e.code for e in error.value.error_dict["__all__"]}
    with pytest.raises(ValidationError) as error:
        initiative.full_clean()
    assert field in error.value.error_dict
