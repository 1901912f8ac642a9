"""Handing work out: take-next (issue 21).

``run_take_next`` is what a runner calls for its next piece of work. One transaction
chooses the first ready ``auto`` task (dependency-aware, priority order) that fits every
limit on live runs (overall, its initiative, the runner, the account) and every budget
(everything, its initiative, phase and task, the account), claims an account of one of
the runner's providers in rotation, starts the task (``task.started``), registers its
agent bound to task and account and marks it running (``agent.registered``,
``account.claimed``, ``agent.status_changed``) and creates its run with the next attempt
number (``run.started``). When nothing fits, nothing is written and the answer is None:
work that does not fit waits in the queue, it is never refused for good.

Before the claim it sweeps lost runs (``run_sweep``, a bounded batch), so a crashed
runner's slot is free again for the next caller.

Concurrency: limits are counts of live runs, and two claimers counting at once would
both see a free slot. So take-nexts take turns: on PostgreSQL each holds a transaction
advisory lock (``TAKE_NEXT_LOCK``) from its first statement to its commit; on SQLite the
immediate write transaction already holds the database's write lock from ``BEGIN``.
The next claimer therefore counts only once the previous one's run is committed.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from agents.models import HEARTBEAT_TIMEOUT_SECONDS, Account, Agent, Budget, LimitScope, Run
from agents.repositories import (
    AccountRepository,
    BudgetRepository,
    RunLimitRepository,
    RunRepository,
)
from agents.repositories.runs import RunFields
from agents.secrets import SecretKeyError
from agents.services.accounts import record_account_claimed, secret_unreadable
from agents.services.agents import agent_mark_running, agent_register
from agents.services.attempts import Attempt, earlier_attempts
from agents.services.runs import budget_states, run_sweep
from core import live
from core.actors import Actor, acting_as
from core.errors import InvalidInput, TransitionNotAllowed
from core.events import event_record
from core.live import check_wait
from core.models import Initiative, Task
from core.repositories import TaskRepository
from core.repositories.commit_order import TAKE_NEXT_LOCK, hold_commit_order
from core.repositories.validation import text_problem
from core.services.lifecycle import task_start
from core.tokens import run_token_create

runs = RunRepository()
limits = RunLimitRepository()
budgets = BudgetRepository()
accounts = AccountRepository()
tasks = TaskRepository()

#: How many ready tasks one read considers (the next batch is read only when every task
#: of this one is held back by a back-off, an initiative's limit or a budget).
TAKE_BATCH = 50
#: The most ready tasks one take-next looks at before answering None: the ones further
#: down the queue wait for a take after the ones before them moved.
MAX_SCANNED = 1_000
#: The most lost runs one take-next sweeps before claiming (cw_reconcile sweeps the rest).
SWEEP_LIMIT = 20
#: A run's heartbeat timeout when the runner gives none.
DEFAULT_HEARTBEAT_TIMEOUT = 120
#: The most providers one runner names.
MAX_PROVIDERS = 20
_ALL = ("all", "")


@dataclass(frozen=True)
class TakeNext:
    """What a take-next (or a resume) hands out: the started task, its running agent,
    its live run and the run's token, the account claimed for it and what the task's
    earlier attempts ended with."""

    task: Task
    agent: Agent
    run: Run
    account: Account
    #: The run's token in clear (``CW_RUN_TOKEN``): handed out once, only its hash kept.
    run_token: str = ""
    attempts: list[Attempt] = field(default_factory=list)


class _NothingFits(Exception):
    """Raised inside the claim's transaction to roll back what it wrote and answer None."""


# --- input ----------------------------------------------------------------------------


def _is_name(value: Any) -> bool:
    """Whether ``value`` names a runner or its host: text of 1 to 255 characters."""
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= 255
        and text_problem(value) is None
    )


def _check_providers(providers: Any) -> list[str]:
    if (
        not isinstance(providers, list | tuple)
        or not providers
        or len(providers) > MAX_PROVIDERS
        or any(
            not isinstance(p, str) or not p.strip() or len(p) > 64 or text_problem(p) is not None
            for p in providers
        )
    ):
        raise InvalidInput(
            f"A runner names 1 to {MAX_PROVIDERS} providers it can run, each a name of at "
            "most 64 characters.",
            code="invalid_providers",
        )
    return list(dict.fromkeys(providers))


def _check_timeout(value: Any) -> int:
    if value is None:
        return DEFAULT_HEARTBEAT_TIMEOUT
    low, high = HEARTBEAT_TIMEOUT_SECONDS
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"A run's heartbeat timeout is a whole number of seconds from {low} to {high:,}.",
            code="invalid_heartbeat_timeout",
            details={"heartbeat_timeout_seconds": str(value)},
        )
    return value


# --- take-next ------------------------------------------------------------------------


def run_take_next(
    *,
    runner_name: str,
    runner_host: str,
    providers: Sequence[str],
    heartbeat_timeout_seconds: int | None = None,
    actor: Actor | None = None,
    wait: float = 0,
) -> TakeNext | None:
    """Hand the runner its next task, or None when nothing fits now (or, with ``wait``,
    seconds from 0 to ``MAX_WAIT_SECONDS``, once nothing fitted for that long).

    Sweeps lost runs first, then, in one transaction taken in turns with every other
    take-next: the first ready ``auto`` task in ready order that is not in back-off (its
    last failed run ended less than its initiative's ``retry_backoff_seconds`` ago),
    whose initiative is under its live-run limit and on which no active budget
    (everything, its initiative, phase or task) is spent, while the overall and the
    runner's limits allow one more run; and an account of the first of ``providers``
    (the runner's order of preference) that has one available, in rotation, under its
    live-run limit and its budgets. Starts the task, registers its agent (running, bound
    to task and account) and its run (the next attempt; ``heartbeat_timeout_seconds``,
    120 by default), and records ``run.started``; every event names ``actor`` when given.
    The answer carries what the task's earlier attempts ended with (``earlier_attempts``:
    outcome, error, the last lines of their logs), so a retry starts from what failed.

    Refused, writing nothing (400): a blank runner name or host
    (``invalid_runner_name``, ``invalid_runner_host``), no providers or a malformed one
    (``invalid_providers``), a provider without any account (``unknown_provider``), a
    timeout outside 10 s to a day (``invalid_heartbeat_timeout``), a wait out of range
    (``invalid_wait``); and (409) an account whose secrets the configured keys cannot
    decrypt (``account_secret_unreadable``): nothing of the claim is written, since its
    secrets could not be handed out.

    A waiting call tries again each time the event feed moves (a run ended, a task
    completed: ``core.live``) or the fallback interval passes, holding no transaction
    between tries; it waits in the calling thread (``run_take_next_waiting`` waits on
    the event loop instead).
    """
    attempt = _prepared(runner_name, runner_host, providers, heartbeat_timeout_seconds, actor)
    wait = check_wait(wait)
    found = live.read_when_found_sync(attempt, channel=live.events_channel(), wait=wait)
    return found[0] if found else None


async def run_take_next_waiting(
    *,
    runner_name: str,
    runner_host: str,
    providers: Sequence[str],
    heartbeat_timeout_seconds: int | None = None,
    actor: Actor | None = None,
    wait: float = 0,
) -> TakeNext | None:
    """``run_take_next`` for an async caller (the API's long poll): each try runs on a
    thread and gives it back, so the wait between tries holds no thread, no connection
    and no transaction; it is woken as ``run_take_next`` is, by the event feed's commits
    (a run ended, a task completed or requeued) or the fallback interval."""
    attempt = await sync_to_async(live.read_released)(
        lambda: _prepared(runner_name, runner_host, providers, heartbeat_timeout_seconds, actor)
    )
    wait = check_wait(wait)
    found = await live.read_when_found(attempt, channel=live.events_channel(), wait=wait)
    return found[0] if found else None


def _prepared(
    runner_name: str,
    runner_host: str,
    providers: Sequence[str],
    heartbeat_timeout_seconds: int | None,
    actor: Actor | None,
) -> Callable[[], list[TakeNext]]:
    """One try of a take-next (a list: empty when nothing fits), its input checked
    first; the refusals ``run_take_next`` lists, but ``invalid_wait``."""
    if not _is_name(runner_name):
        raise InvalidInput(
            "A runner's name is text of 1 to 255 characters.", code="invalid_runner_name"
        )
    if not _is_name(runner_host):
        raise InvalidInput(
            "A runner's host is text of 1 to 255 characters.", code="invalid_runner_host"
        )
    wanted = _check_providers(providers)
    timeout = _check_timeout(heartbeat_timeout_seconds)
    account_ids = accounts.ids_by_provider(wanted)
    unknown = [provider for provider in wanted if provider not in account_ids]
    if unknown:
        raise InvalidInput(
            f"No account of {', '.join(unknown)} exists: a runner names providers cw has "
            "accounts of.",
            code="unknown_provider",
            details={"unknown": unknown},
        )

    def attempt() -> list[TakeNext]:
        run_sweep(limit=SWEEP_LIMIT)
        with _acting(actor):
            try:
                taken = _take(runner_name, runner_host, wanted, account_ids, timeout, actor)
            except _NothingFits:
                return []
        # Read once the claim committed, outside take-next's turn: the earlier attempts
        # are over, so nothing the claim wrote changes them.
        return [replace(taken, attempts=earlier_attempts(taken.task.pk))]

    return attempt


@contextlib.contextmanager
def _acting(actor: Actor | None) -> Iterator[None]:
    if actor is None:
        yield
    else:
        with acting_as(actor):
            yield


@transaction.atomic
def _take(
    runner_name: str,
    runner_host: str,
    providers: list[str],
    account_ids: dict[str, list[str]],
    timeout: int,
    actor: Actor | None,
) -> TakeNext:
    hold_commit_order(connection, TAKE_NEXT_LOCK)
    now = timezone.now()
    excluded = _accounts_held_back(runner_name, account_ids, now)
    offset = 0
    while offset < MAX_SCANNED:
        batch = tasks.find_ready_to_take(offset=offset, limit=TAKE_BATCH)
        for task in _fitting(batch, now):
            taken = _start(task, runner_name, runner_host, providers, excluded, timeout, actor)
            if taken is not None:
                return taken
        if len(batch) < TAKE_BATCH:
            break
        offset += TAKE_BATCH
    raise _NothingFits


def _accounts_held_back(
    runner_name: str, account_ids: dict[str, list[str]], now: datetime
) -> set[str]:
    """The runner's providers' accounts at their live-run limit or with a spent budget;
    ``_NothingFits`` when the overall or the runner's limit is reached, or when every
    account is held back."""
    candidates = [pk for ids in account_ids.values() for pk in ids]
    max_live = limits.max_live_by_scope(account_ids=candidates, runner_name=runner_name)
    limited = [pk for pk in candidates if (LimitScope.ACCOUNT, pk) in max_live]
    runner_key = (LimitScope.RUNNER.value, runner_name)
    counts = runs.live_counts(
        account_ids=limited, runner_names=[runner_name] if runner_key in max_live else []
    )
    if _ALL in max_live and counts.overall >= max_live[_ALL]:
        raise _NothingFits
    if runner_key in max_live and counts.by_runner[runner_name] >= max_live[runner_key]:
        raise _NothingFits
    held = {pk for pk in limited if counts.by_account[pk] >= max_live[(LimitScope.ACCOUNT, pk)]}
    spent = _spent_budgets(budgets.active_on(("account", pk) for pk in candidates), now)
    held |= {budget.scope_id for budget in spent}
    if held >= set(candidates):
        raise _NothingFits
    return held


def _spent_budgets(found: list[Budget], now: datetime) -> list[Budget]:
    """The budgets of ``found`` whose scope spent their limit (one query for all)."""
    spent_out = {state.budget_id for state in budget_states(found, now) if state.spent_out}
    return [budget for budget in found if budget.pk in spent_out]


def _fitting(batch: list[Task], now: datetime) -> Iterator[Task]:
    """The tasks of ``batch``, in order, that no back-off, initiative limit or budget
    holds back: a fixed number of queries per batch (limits, counts, last failures,
    budgets) plus one per active budget that applies to the batch."""
    if not batch:
        return
    initiative_ids = {task.initiative_id for task in batch if task.initiative_id}
    max_live = limits.max_live_by_scope(initiative_ids=initiative_ids)
    limited = [pk for pk in initiative_ids if (LimitScope.INITIATIVE, pk) in max_live]
    full: set[str] = set()
    if limited:
        counts = runs.live_counts(initiative_ids=limited).by_initiative
        full = {pk for pk in limited if counts[pk] >= max_live[(LimitScope.INITIATIVE, pk)]}
    failed_at = runs.last_failure_ends(task.pk for task in batch)
    scopes = {_ALL}
    for task in batch:
        scopes.add(("task", task.pk))
        if task.initiative_id:
            scopes.add(("initiative", task.initiative_id))
        if task.phase_id:
            scopes.add(("phase", task.phase_id))
    spent = {(b.scope_type, b.scope_id) for b in _spent_budgets(budgets.active_on(scopes), now)}
    default_backoff = Initiative._meta.get_field("retry_backoff_seconds").default
    for task in batch:
        if task.initiative_id in full:
            continue
        if task.pk in failed_at:
            backoff = task.initiative.retry_backoff_seconds if task.initiative else default_backoff
            if now < failed_at[task.pk] + timedelta(seconds=backoff):
                continue
        if spent & {
            _ALL,
            ("task", task.pk),
            ("initiative", task.initiative_id or ""),
            ("phase", task.phase_id or ""),
        }:
            continue
        yield task


def _claim(providers: list[str], excluded: set[str]) -> Account:
    """An account of the first of ``providers`` that has one available, in rotation;
    ``_NothingFits`` when none has. An account whose secrets the configured keys cannot
    decrypt is 409 ``account_secret_unreadable``, as an account claim is: the claim's
    transaction, the task's start included, then rolls back whole."""
    for provider in providers:
        try:
            account = accounts.find_next_available(provider, exclude_ids=excluded)
        except SecretKeyError as error:
            raise secret_unreadable(provider) from error
        if account is not None:
            return account
    raise _NothingFits


def _start(
    task: Task,
    runner_name: str,
    runner_host: str,
    providers: list[str],
    excluded: set[str],
    timeout: int,
    actor: Actor | None,
) -> TakeNext | None:
    """Start ``task`` with an account, its agent and its run; None when the task can no
    longer start (a person moved it since the ready read), nothing of it written."""
    try:
        with transaction.atomic():
            started = task_start(task_id=task.pk, actor=actor)
    except TransitionNotAllowed:
        return None
    account = _claim(providers, excluded)
    agent, _ = agent_register(
        # The runner makes the worktree once it has the run; until it reports the path
        # (agent_update), the agent names where it will be made.
        worktree_id=f"{runner_host}:{runner_name}",
        provider=account.provider,
        task_id=started.pk,
        account_id=account.pk,
    )
    record_account_claimed(account, agent_id=agent.pk)
    agent = agent_mark_running(agent_id=agent.pk)
    run, run_token = open_run(
        task=started,
        agent_id=agent.pk,
        account_id=account.pk,
        runner_name=runner_name,
        runner_host=runner_host,
        heartbeat_timeout_seconds=timeout,
    )
    return TakeNext(task=started, agent=agent, run=run, account=account, run_token=run_token)


def open_run(
    *,
    task: Task,
    agent_id: str,
    account_id: str,
    runner_name: str,
    runner_host: str,
    heartbeat_timeout_seconds: int,
    session_number: int = 1,
    session_id: str | None = None,
    worktree_path: str | None = None,
    resumed_from: Run | None = None,
    run_id: str | None = None,
) -> tuple[Run, str]:
    """Create the live run of a started task and its agent (the task's next attempt),
    its token (``core.tokens.run_token_create``) and record ``run.started``; the run
    and the token's clear value. A take-next and a resume both start runs with it, inside
    their transaction (a resume gives the new run's ``run_id``, named by the old run's
    end)."""
    fields = RunFields(
        task_id=task.pk,
        agent_id=agent_id,
        account_id=account_id,
        runner_name=runner_name,
        runner_host=runner_host,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
        session_number=session_number,
        session_id=session_id,
        worktree_path=worktree_path,
    )
    if run_id is not None:
        fields["id"] = run_id
    run = runs.create(**fields)
    _token, run_token = run_token_create(run_id=run.pk)
    resumed = (
        {"resumed_from": resumed_from.pk, "session_number": run.session_number}
        if resumed_from is not None
        else {}
    )
    event_record(
        "run.started",
        subject_type="run",
        subject_id=run.pk,
        initiative_id=task.initiative_id,
        data={
            "task_id": task.pk,
            "agent_id": agent_id,
            "account_id": account_id,
            "attempt": run.attempt,
            "runner_name": runner_name,
            **resumed,
        },
    )
    return run, run_token
