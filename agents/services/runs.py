"""What may happen to a run once it started: heartbeats, its end, the sweep of lost runs,
a person's cancel, and a person's requeue of a task with fresh attempts (issue 21;
handing runs out, take-next, is built on the same rules).

The rule they keep: a task is ``in_progress`` exactly while it has a live run (outcome
``running``), and an agent holds at most one. So a run never ends alone: in the same
transaction its task completes (``succeeded``), goes back to the ready queue
(``pending``) or, once its failed attempts reach its initiative's ``max_attempts``, is
blocked with the failures listed on its ``task.blocked`` event; and its agent becomes
idle, stopped or crashed (``AGENT_AFTER``). The task and agent move through their own
services (``core.services.lifecycle``, ``agents.services.agents``), which record their
events; the run's own event (``run.finished``, ``run.lost``, ``run.cancelled``,
``run.budget_stopped``) comes first. A heartbeat is not on the feed: it is too frequent.

Concurrency: each function locks the run first, then the task's initiative, phase and
task (the lifecycle's order), then the agent, and re-reads the run under its lock, so
of two callers ending one run (a finish and a sweep, two sweeps, a cancel) exactly one
does and the other is refused (``run_not_live``) or, in a sweep, skips it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from django.db import transaction
from django.utils import timezone

from agents.models import AgentStatus, Budget, BudgetMetric, Run, RunOutcome
from agents.repositories import (
    AgentRepository,
    BudgetRepository,
    RunCommitRepository,
    RunRepository,
    UsageRepository,
)
from agents.repositories.runs import FAILED_RUN_OUTCOMES, UsageReport
from agents.services.agents import (
    ALLOWED_FROM,
    agent_mark_crashed,
    agent_mark_idle,
    agent_mark_stopped,
    agent_report_process,
)
from core.actors import Actor, require_person
from core.errors import Conflict, InvalidInput
from core.events import event_record
from core.models import Initiative, Task, TaskStatus
from core.repositories import InitiativeRepository, ProjectRepository, TaskRepository
from core.services.lifecycle import (
    REQUEUE_FROM,
    lock_task_with_parents,
    task_complete,
    task_return,
    task_return_to_queue,
)

runs = RunRepository()
usages = UsageRepository()
budgets = BudgetRepository()
run_commits = RunCommitRepository()
agents = AgentRepository()
tasks = TaskRepository()
initiatives = InitiativeRepository()
projects = ProjectRepository()

#: The outcomes a runner reports when its process ends (the others are cw's decisions).
FINISH_OUTCOMES = (
    RunOutcome.SUCCEEDED,
    RunOutcome.FAILED,
    RunOutcome.CRASHED,
    RunOutcome.STOPPED,
)
#: The outcomes that spend one of a task's attempts. A run stopped (a runner shutting
#: down) or cancelled (by a person) did not fail its task: it is not counted.
FAILED_OUTCOMES = FAILED_RUN_OUTCOMES
#: What the agent of a run becomes when the run ends with each outcome.
AGENT_AFTER: dict[str, str] = {
    RunOutcome.SUCCEEDED: AgentStatus.IDLE,
    RunOutcome.FAILED: AgentStatus.CRASHED,
    RunOutcome.CRASHED: AgentStatus.CRASHED,
    RunOutcome.LOST: AgentStatus.CRASHED,
    RunOutcome.STOPPED: AgentStatus.STOPPED,
    RunOutcome.BUDGET_STOPPED: AgentStatus.STOPPED,
    RunOutcome.CANCELLED: AgentStatus.STOPPED,
}
#: Why a run that is over is over, as its runner's next call is told (``run_not_live``).
ENDED_BECAUSE: dict[str, str] = {
    RunOutcome.SUCCEEDED: "finished",
    RunOutcome.FAILED: "finished",
    RunOutcome.CRASHED: "finished",
    RunOutcome.STOPPED: "finished",
    RunOutcome.LOST: "taken_away",
    RunOutcome.BUDGET_STOPPED: "budget_spent",
    RunOutcome.CANCELLED: "cancelled",
}
#: The longest error kept per failed attempt in a blocked task's list of failures.
FAILURE_ERROR_CHARS = 500

_MARK_AGENT: dict[str, Callable[..., Any]] = {
    AgentStatus.IDLE: agent_mark_idle,
    AgentStatus.STOPPED: agent_mark_stopped,
    AgentStatus.CRASHED: agent_mark_crashed,
}


@dataclass(frozen=True)
class BudgetState:
    """One budget a run counts against, as its heartbeat left it."""

    budget_id: str
    scope_type: str
    scope_id: str
    metric: str
    window_seconds: int | None
    limit: int
    warn_percent: int
    spent: int

    @property
    def warn_reached(self) -> bool:
        return self.spent * 100 >= self.limit * self.warn_percent

    @property
    def spent_out(self) -> bool:
        return self.spent >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget_id": self.budget_id,
            "scope_type": self.scope_type,
            "scope_id": self.scope_id,
            "metric": self.metric,
            "window_seconds": self.window_seconds,
            "limit": self.limit,
            "spent": self.spent,
            "warn_percent": self.warn_percent,
            "warn_reached": self.warn_reached,
            "spent_out": self.spent_out,
        }


@dataclass(frozen=True)
class HeartbeatAnswer:
    """What a heartbeat tells the runner: ``continue``, or ``stop`` with why (only
    ``budget_spent``: a run cancelled or taken away is refused, 409 ``run_not_live``)."""

    decision: Literal["continue", "stop"]
    run: Run
    reason: str | None = None
    budgets: list[BudgetState] = field(default_factory=list)


@dataclass(frozen=True)
class SweptRun:
    """One run the sweep found lost, and where its task and agent went."""

    run_id: str
    task_id: str
    agent_id: str | None
    heartbeat_at: datetime
    task_status: str


# --- shared steps ---------------------------------------------------------------------


def _not_live(run: Run) -> Conflict:
    return Conflict(
        f"Run {run.pk} is over ({run.outcome}); stop its process.",
        code="run_not_live",
        details={"id": run.pk, "outcome": run.outcome, "reason": ENDED_BECAUSE[run.outcome]},
    )


def _lock_live(run_id: str, runner_name: str | None) -> Run:
    """Lock a run that is live and, when ``runner_name`` is given, held by that runner."""
    run = runs.get_for_update(run_id)
    if run.outcome != RunOutcome.RUNNING:
        raise _not_live(run)
    if runner_name is not None and run.runner_name != runner_name:
        raise Conflict(
            f"Run {run.pk} is held by runner '{run.runner_name}', not '{runner_name}'.",
            code="run_not_held",
            details={"id": run.pk, "runner_name": run.runner_name},
        )
    return run


def _record_run(kind: str, run: Run, initiative_id: str | None, **data: Any) -> None:
    event_record(
        kind,
        subject_type="run",
        subject_id=run.pk,
        initiative_id=initiative_id,
        data={"task_id": run.task_id, **data},
    )


def _failures(task_id: str) -> list[dict[str, Any]]:
    """The task's failed attempts that count (since a person last requeued it), oldest
    first: what a person reads on a blocked task."""
    return [
        {
            "run_id": run.pk,
            "attempt": run.attempt,
            "outcome": run.outcome,
            "exit_code": run.exit_code,
            "error": (run.error or "")[:FAILURE_ERROR_CHARS] or None,
        }
        for run in runs.counted_failures(task_id)
    ]


def _max_attempts(initiative_id: str | None) -> int:
    if initiative_id is None:
        return int(Initiative._meta.get_field("max_attempts").default)
    return initiatives.get(initiative_id).max_attempts


def _settle_task(run: Run, *, summary: str | None) -> str:
    """Move the task of a run that just ended: completed on success, else pending, or
    blocked once its failed attempts reach ``max_attempts``. A task no longer in
    progress (a person blocked it meanwhile) stays where it is. Its status after."""
    task = tasks.get(run.task_id)
    if task.status != TaskStatus.IN_PROGRESS:
        return task.status
    if run.outcome == RunOutcome.SUCCEEDED:
        return task_complete(task_id=task.pk, summary=summary).status
    failures = _failures(task.pk) if run.outcome in FAILED_OUTCOMES else []
    spent = len(failures) >= _max_attempts(task.initiative_id)
    return task_return(
        task_id=task.pk, outcome=run.outcome, failures=failures if spent else None
    ).status


def _settle_agent(run: Run, exit_code: int | None) -> None:
    """Move the run's agent to what the outcome makes it (``AGENT_AFTER``); an agent
    already there, or in a status that cannot move there, or gone, is left alone."""
    if run.agent_id is None:
        return
    target = AGENT_AFTER[run.outcome]
    agent = agents.get_for_update(run.agent_id)
    if agent.status == target or agent.status not in ALLOWED_FROM[target]:
        return
    _MARK_AGENT[target](agent_id=agent.pk, exit_code=exit_code)


def _end(
    run: Run,
    outcome: str,
    *,
    now: datetime,
    event: str,
    event_data: dict[str, Any],
    exit_code: int | None = None,
    error: str | None = None,
    summary: str | None = None,
) -> str:
    """End a locked live run, record its event, then move its task and agent; the
    task's status after.

    The task's initiative, phase and task are locked before the run's event is recorded:
    recording takes the event feed's lock (on PostgreSQL), and every lifecycle
    transition (a take-next's ``task_start``) takes the initiative's lock before it, so
    taking them the other way round here would deadlock with one."""
    lock_task_with_parents(run.task_id)
    runs.end(run, outcome, at=now, exit_code=exit_code, error=error, summary=summary)
    initiative_id = tasks.get(run.task_id).initiative_id
    _record_run(event, run, initiative_id, **event_data)
    status = _settle_task(run, summary=summary)
    _settle_agent(run, exit_code)
    return status


# --- heartbeat ------------------------------------------------------------------------


def _amount(metric: str, reports: Sequence[UsageReport]) -> int:
    if metric == BudgetMetric.COST:
        return sum(report.get("cost_micros", 0) for report in reports)
    return sum(
        report.get(name, 0)  # type: ignore[misc]
        for report in reports
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    )


def budget_states(found: Sequence[Budget], now: datetime) -> list[BudgetState]:
    """Each budget of ``found`` with what its scope spent over its window (one query)."""
    spent = usages.spent_many(
        [(b.scope_type, b.scope_id, b.metric, b.window_seconds) for b in found], now
    )
    return [
        BudgetState(
            budget_id=budget.pk,
            scope_type=budget.scope_type,
            scope_id=budget.scope_id,
            metric=budget.metric,
            window_seconds=budget.window_seconds,
            limit=budget.limit,
            warn_percent=budget.warn_percent,
            spent=amount,
        )
        for budget, amount in zip(found, spent, strict=True)
    ]


@transaction.atomic
def run_heartbeat(
    *,
    run_id: str,
    runner_name: str,
    usage: Sequence[dict[str, Any]] = (),
    pid: int | None = None,
    session_id: str | None = None,
) -> HeartbeatAnswer:
    """The runner says its run is alive, with the usage reported since its last
    heartbeat (none: nothing is recorded), and learns whether to go on.

    Refused, writing nothing: a run that is over (409 ``run_not_live``, ``details.reason``
    ``finished``, ``cancelled``, ``taken_away`` or ``budget_spent``: stop the process) or
    held by another runner (409 ``run_not_held``), bad usage (``invalid_usage``).
    Otherwise the usage is rolled up, ``heartbeat_at`` moves to now, and every active
    budget the run counts against is read: one whose spending reached its limit ends
    the run ``budget_stopped`` here (its task back to the queue, or blocked once its
    attempts are spent; its agent stopped) and the answer is ``stop`` /
    ``budget_spent``. A budget whose warning threshold this usage crossed records
    ``budget.warned`` (two runs crossing it at the same moment may both, or neither,
    announce it: a warning, not a limit). The budgets' state is in the answer.
    """
    reports = cast(list[UsageReport], list(usage))
    run = _lock_live(run_id, runner_name)
    now = timezone.now()
    if reports:
        usages.record(run, reports, now=now, heartbeat=True)
        run.heartbeat_at = now
    if not reports or pid is not None or session_id is not None:
        runs.beat(run, at=now, pid=pid, session_id=session_id)
    states = budget_states(budgets.applicable_to_run(run.pk), now)
    for state in states:
        before = state.spent - _amount(state.metric, reports)
        if reports and state.warn_reached and before * 100 < state.limit * state.warn_percent:
            event_record(
                "budget.warned",
                subject_type="budget",
                subject_id=state.budget_id,
                initiative_id=tasks.initiative_id_of(run.task_id),
                data={
                    "spent": state.spent,
                    "limit": state.limit,
                    "warn_percent": state.warn_percent,
                    "run_id": run.pk,
                },
            )
    spent_out = [state.budget_id for state in states if state.spent_out]
    if not spent_out:
        return HeartbeatAnswer("continue", run, budgets=states)
    _end(
        run,
        RunOutcome.BUDGET_STOPPED,
        now=now,
        event="run.budget_stopped",
        event_data={"budget_ids": spent_out},
        error=f"Budget spent: {', '.join(spent_out)}.",
    )
    return HeartbeatAnswer("stop", run, reason="budget_spent", budgets=states)


# --- the runner's report ----------------------------------------------------------------


@transaction.atomic
def run_report(
    *,
    run_id: str,
    runner_name: str,
    pid: int | None = None,
    worktree_path: str | None = None,
    session_id: str | None = None,
    start_commits: dict[str, str] | None = None,
) -> Run:
    """The runner reports what it made of its live run: the agent process's ``pid``, the
    run's ``worktree_path``, the agent CLI's ``session_id`` (for resume) and the commit
    each project started from (project id → full commit name); what is not given is
    kept. The run's agent gets the same worktree, pid and session (``agent.updated``).
    Records ``run.reported`` with what changed (nothing when nothing did).

    Refused, writing nothing: a run that is over (409 ``run_not_live``) or held by
    another runner (409 ``run_not_held``), as a heartbeat is; a commit of a project not
    linked to the run's initiative (400 ``run_commit_other_initiative``), a malformed
    commit (400 ``invalid_git_commit``).
    """
    run = _lock_live(run_id, runner_name)
    task = tasks.get(run.task_id)
    commits = dict(start_commits or {})
    if commits:
        linked = (
            {p.pk for p in projects.find_projects_by_initiative_id(task.initiative_id)}
            if task.initiative_id
            else set()
        )
        foreign = sorted(set(commits) - linked)
        if foreign:
            raise InvalidInput(
                f"Project(s) {', '.join(foreign)} are not linked to the run's initiative: "
                "a run reports commits of its initiative's projects.",
                code="run_commit_other_initiative",
                details={"project_ids": foreign, "initiative_id": task.initiative_id},
            )
        run_commits.record_start(run, commits)
    changed = runs.report(run, pid=pid, worktree_path=worktree_path, session_id=session_id)
    if run.agent_id is not None:
        agent_report_process(
            agent_id=run.agent_id, worktree_id=worktree_path, pid=pid, session_id=session_id
        )
    if changed or commits:
        _record_run("run.reported", run, task.initiative_id, fields=changed, start_commits=commits)
    return run


# --- finish ---------------------------------------------------------------------------


@transaction.atomic
def run_finish(
    *,
    run_id: str,
    runner_name: str,
    outcome: str,
    exit_code: int | None = None,
    error: str | None = None,
    summary: str | None = None,
    end_commits: dict[str, str] | None = None,
    usage: Sequence[dict[str, Any]] = (),
) -> Run:
    """The runner's process ended: ``outcome`` is ``succeeded``, ``failed``, ``crashed``
    or ``stopped`` (else ``invalid_run_outcome``), with its last usage and the commit
    each project ended at (project id → full commit name).

    Success completes the task (its ``summary`` goes to the dependents' context) and
    makes the agent idle; any other outcome returns the task to the queue, or blocks it
    once its failed attempts (failed, crashed, lost, budget_stopped) reach its
    initiative's ``max_attempts``; a stopped run is not a failed attempt. Records
    ``run.finished``. A run that is over (a second finish) is 409 ``run_not_live``, one
    held by another runner 409 ``run_not_held``; a refusal writes nothing.
    """
    if outcome not in FINISH_OUTCOMES:
        raise InvalidInput(
            f"A runner finishes a run as {', '.join(FINISH_OUTCOMES)}; not '{outcome}'.",
            code="invalid_run_outcome",
            details={"outcome": str(outcome), "allowed": list(FINISH_OUTCOMES)},
        )
    run = _lock_live(run_id, runner_name)
    reports = cast(list[UsageReport], list(usage))
    if reports:
        # The roll-up adds in the database; the run answered carries the totals it left.
        for name, total in usages.record(run, reports).items():
            setattr(run, name, total)
    if end_commits:
        run_commits.record_end(run, end_commits)
    _end(
        run,
        outcome,
        now=timezone.now(),
        event="run.finished",
        event_data={"outcome": outcome, "exit_code": exit_code},
        exit_code=exit_code,
        error=error,
        summary=summary,
    )
    return run


# --- sweep ----------------------------------------------------------------------------


def run_sweep(*, now: datetime | None = None, limit: int | None = None) -> list[SweptRun]:
    """Take back the live runs whose heartbeat is older than their timeout (at most
    ``limit``, the longest silent first): each is marked ``lost`` (``run.lost``), its
    agent crashed, its task back to the queue or blocked once its attempts are spent.

    Each run is one transaction that re-reads it under its lock, so two sweeps at once
    (cron and a take-next) never both take one back: the later sees it over and skips
    it, as it skips a run whose heartbeat arrived in between. What was taken back.
    """
    now = now or timezone.now()
    swept = []
    for stale in runs.find_stale(now, limit=limit):
        with transaction.atomic():
            run = runs.get_for_update(stale.pk)
            deadline = run.heartbeat_at + timedelta(seconds=run.heartbeat_timeout_seconds)
            if run.outcome != RunOutcome.RUNNING or deadline >= now:
                continue
            status = _end(
                run,
                RunOutcome.LOST,
                now=now,
                event="run.lost",
                event_data={"heartbeat_at": run.heartbeat_at.isoformat()},
                error=f"No heartbeat since {run.heartbeat_at.isoformat()}.",
            )
            swept.append(SweptRun(run.pk, run.task_id, run.agent_id, run.heartbeat_at, status))
    return swept


# --- people ---------------------------------------------------------------------------


@transaction.atomic
def run_cancel(*, run_id: str, actor: Actor | None = None) -> Run:
    """A person ends a live run: ``cancelled`` (``run.cancelled``), its task back to the
    queue (a cancel spends no attempt), its agent stopped. The runner's next heartbeat
    or finish gets 409 ``run_not_live`` with ``details.reason`` ``cancelled`` and stops
    its process. Refused for anyone but a person (403 ``person_required``) and for a
    run that is over (409 ``run_not_live``)."""
    require_person(actor, "cancel a run")
    run = _lock_live(run_id, None)
    _end(
        run,
        RunOutcome.CANCELLED,
        now=timezone.now(),
        event="run.cancelled",
        event_data={},
        error="Cancelled by a person.",
    )
    return run


def can_requeue(task: Task) -> bool:
    """Whether ``task_requeue`` would take ``task`` now (for a page's button): it is
    blocked or in progress, and no run of it is live."""
    return task.status in REQUEUE_FROM and runs.find_live_by_task(task.pk) is None


@transaction.atomic
def task_requeue(*, task_id: str, actor: Actor | None = None) -> Task:
    """A person sends a task back to the ready queue (``pending``) with fresh attempts:
    a task blocked (its attempts spent, or by a person), or in progress with no live
    run (an agent that never reported back). Its failed runs so far are set aside
    (``attempts_reset_at``): they no longer count against its initiative's
    ``max_attempts`` nor put it in back-off, so it gets ``max_attempts`` more; its runs
    stay its history, and the next one is numbered after them. Records
    ``task.requeued`` (``from``, ``attempts_reset``) with the actor.

    Refused, writing nothing: anyone but a person (403 ``person_required``), a task that
    does not exist (404 ``task_not_found``), one with a live run (409
    ``task_has_live_run``, ``details.run_id``: cancel the run first), one in any other
    status (409 ``transition_not_allowed``, ``details.allowed_from``). Locks the
    task's initiative, phase and task, then reads its runs.
    """
    require_person(actor, "requeue a task")
    task, _phase, _initiative = lock_task_with_parents(task_id)
    live = runs.find_live_by_task(task.pk)
    if live is not None:
        raise Conflict(
            f"Task '{task}' has a live run (attempt {live.attempt}, on runner "
            f"'{live.runner_name}'): cancel the run first.",
            code="task_has_live_run",
            details={"id": task.pk, "run_id": live.pk},
        )
    reset = runs.reset_attempts(task.pk, at=timezone.now())
    return task_return_to_queue(task=task, attempts_reset=reset)
