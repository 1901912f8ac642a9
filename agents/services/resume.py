"""Resuming a run (issue 22): a runner restarted after a crash carries its agent's
conversation on in a new run.

``run_resume`` ends the live run ``crashed`` and starts the next one of the same task,
agent and account on the same runner, in one transaction: attempt + 1, session number
+ 1, the CLI's session id and the worktree carried over, and a new run token. The task
stays ``in_progress`` and the agent working the whole time (neither moves), so the task
never enters the ready queue and no limit on live runs changes (one run ends, one
starts, in the same scopes). The old run's end counts as a failed attempt, as the
crash it is: a resume is refused when that crash spends the task's last attempt.
"""

from dataclasses import replace

from django.db import transaction
from django.utils import timezone

from agents.models import RunOutcome
from agents.repositories import AccountRepository, AgentRepository, BudgetRepository
from agents.secrets import SecretKeyError
from agents.services.accounts import secret_unreadable
from agents.services.attempts import earlier_attempts
from agents.services.runs import (
    _failures,
    _lock_live,
    _max_attempts,
    _record_run,
    budget_states,
    runs,
)
from agents.services.take_next import TakeNext, _acting, open_run
from core.actors import Actor
from core.errors import Conflict
from core.models import generate_id
from core.services.lifecycle import lock_task_with_parents

accounts = AccountRepository()
agents = AgentRepository()
budgets = BudgetRepository()


def run_resume(*, run_id: str, runner_name: str, actor: Actor | None = None) -> TakeNext:
    """End the live run ``run_id``, held by ``runner_name``, ``crashed`` ("the runner
    restarted; resumed as run <id>", ``run.resumed``) and start its next run
    (``run.started`` with ``resumed_from``): the same task, agent, account, runner,
    host and heartbeat timeout, attempt + 1, session number + 1, the session id and
    worktree path carried over, a new run token. Every event names ``actor`` when given.
    The answer is a take-next's: the task, the agent, the new run and its token, the
    account with its secrets and what the task's earlier attempts ended with.

    Refused, writing nothing: a run that does not exist (404 ``run_not_found``) or is
    over (409 ``run_not_live``), one held by another runner (409 ``run_not_held``), one
    whose agent or account is gone (409 ``run_not_resumable``), one whose crash would
    spend the task's last attempt (409 ``run_attempts_spent``, ``details.failures`` and
    ``details.max_attempts``: finish it ``crashed`` instead), one on which an active
    budget is spent (409 ``budget_spent``, ``details.budget_ids``), an account whose
    secrets the configured keys cannot decrypt (409 ``account_secret_unreadable``).
    """
    with _acting(actor):
        resumed = _resume(run_id, runner_name)
    return replace(resumed, attempts=earlier_attempts(resumed.task.pk))


@transaction.atomic
def _resume(run_id: str, runner_name: str) -> TakeNext:
    old = _lock_live(run_id, runner_name)
    # The lifecycle's order (initiative, phase, task) before anything is recorded.
    task, _phase, _initiative = lock_task_with_parents(old.task_id)
    if old.agent_id is None or old.account_id is None:
        raise Conflict(
            f"Run {old.pk} has no agent or no account any more: finish it instead.",
            code="run_not_resumable",
            details={"id": old.pk, "agent_id": old.agent_id, "account_id": old.account_id},
        )
    failures = len(_failures(task.pk)) + 1  # the old run's crash counts
    max_attempts = _max_attempts(task.initiative_id)
    if failures >= max_attempts:
        raise Conflict(
            f"Resuming run {old.pk} would leave its crash as the task's attempt {failures} "
            f"of {max_attempts}: finish it crashed instead.",
            code="run_attempts_spent",
            details={"id": old.pk, "failures": failures, "max_attempts": max_attempts},
        )
    now = timezone.now()
    spent = [
        state.budget_id
        for state in budget_states(budgets.applicable_to_run(old.pk), now)
        if state.spent_out
    ]
    if spent:
        raise Conflict(
            f"Budget spent: {', '.join(spent)}; finish run {old.pk} instead.",
            code="budget_spent",
            details={"id": old.pk, "budget_ids": spent},
        )
    agent = agents.get(old.agent_id)
    try:
        account = accounts.get_with_secrets(old.account_id)
    except SecretKeyError as error:
        raise secret_unreadable(agent.provider) from error
    new_id = generate_id()
    runs.end(
        old,
        RunOutcome.CRASHED,
        at=now,
        error=f"The runner restarted; resumed as run {new_id}.",
    )
    _record_run(
        "run.resumed",
        old,
        task.initiative_id,
        resumed_as=new_id,
        attempt=old.attempt + 1,
        session_number=old.session_number + 1,
    )
    run, run_token = open_run(
        run_id=new_id,
        task=task,
        agent_id=agent.pk,
        account_id=account.pk,
        runner_name=old.runner_name,
        runner_host=old.runner_host,
        heartbeat_timeout_seconds=old.heartbeat_timeout_seconds,
        session_number=old.session_number + 1,
        session_id=old.session_id,
        worktree_path=old.worktree_path,
        resumed_from=old,
    )
    return TakeNext(task=task, agent=agent, run=run, account=account, run_token=run_token)
