"""The API router of runs (tag ``runs``, issue 21): runners take the next task, beat
and finish their runs; anyone reads them; people cancel them and requeue a task with
fresh attempts. Budgets and limits on live runs (tag ``budgets``): anyone reads them;
only people set, change or lift them.
Handlers are thin: reads go to the repositories, every change to ``agents.services``.

Take-next hands out the claimed account's secrets, so it takes a tool's bearer token
only (``TOOL_AUTH``), exactly like ``POST /accounts/claim``: a staff session or a
personal token is refused with 403 ``tool_token_required`` before anything is written.
"""

from http import HTTPStatus
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Query, Router, Status

from agents import services
from agents.models import LimitScope, UsageScope
from agents.repositories import BudgetRepository, RunLimitRepository, RunRepository
from agents.schemas import (
    BudgetIn,
    BudgetOut,
    BudgetPatch,
    RunAttempts,
    RunDetailOut,
    RunFilters,
    RunFinishIn,
    RunHeartbeatIn,
    RunHeartbeatOut,
    RunLimitIn,
    RunLimitOut,
    RunLimitPatch,
    RunOut,
    RunReportIn,
    RunResumeIn,
    TakeNextIn,
    TakeNextOut,
)
from core.actors import Actor, actor_from_auth
from core.auth import TOOL_AUTH
from core.errors import PermissionRequired
from core.ratelimits import check_write_rate
from core.repositories import page_max_bytes
from core.schemas import ERRORS, Id, Page, PageParams, TaskOut, page_of

router = Router(tags=["runs"])

runs = RunRepository()
budgets = BudgetRepository()
limits = RunLimitRepository()


def _actor(request: HttpRequest) -> Actor:
    """Who calls: the token's person or tool, or the staff session's user."""
    return actor_from_auth(request.auth)  # type: ignore[attr-defined]


@router.post(
    "/runs/take-next",
    response={200: TakeNextOut, 204: None, **ERRORS},
    auth=TOOL_AUTH,
    # Ninja would check the write limit on the event loop (no database there): the
    # handler counts the write itself, on a thread.
    throttle=[],
)
async def take_next_run(request: HttpRequest, payload: TakeNextIn) -> Any:
    """Hand the runner the first ready task that fits every limit and budget, started,
    with its running agent, its live run and the run's own token (``run_token``, given
    once: the agent's ``CW_RUN_TOKEN``, limited to what its agent may do and dead once
    the run ends), an account of its providers with the account's secrets and what the
    task's earlier attempts ended with; 204 when nothing fits (after ``wait`` seconds,
    at most 30).

    Tools only: a person (staff session or personal token) gets 403
    ``tool_token_required``. 400 ``unknown_provider`` for a provider cw has no account
    of; 409 ``account_secret_unreadable`` when the account's secrets cannot be decrypted
    with the configured keys (nothing is claimed nor started). A waiting call holds no
    server thread and no database connection while it waits.
    """
    actor = _tool(request, "Taking a run")
    await sync_to_async(check_write_rate)(request)
    taken = await services.run_take_next_waiting(**payload.dict(), actor=actor)
    if taken is None:
        return Status(HTTPStatus.NO_CONTENT, None)
    return _handed_out(taken)


def _tool(request: HttpRequest, doing: str) -> Actor:
    """The calling tool; a person is refused with 403 ``tool_token_required``."""
    actor = _actor(request)
    if actor.kind != "tool":
        raise PermissionRequired(
            f"{doing} hands out an account's secrets, so it needs a tool's API token, "
            "not a person's session or personal token.",
            code="tool_token_required",
        )
    return actor


def _handed_out(taken: services.TakeNext) -> dict[str, Any]:
    """A take-next's or a resume's answer (``TakeNextOut``)."""
    return {
        "task": taken.task,
        "agent": taken.agent,
        "run": taken.run,
        "run_token": taken.run_token,
        "account": taken.account,
        "attempts": taken.attempts,
    }


@router.post(
    "/runs/{run_id}/resume",
    response={200: TakeNextOut, **ERRORS},
    auth=TOOL_AUTH,
)
def resume_run(request: HttpRequest, run_id: Id, payload: RunResumeIn) -> Any:
    """A restarted runner resumes its live run's agent conversation: in one transaction
    the run ends ``crashed`` (its error "The runner restarted; resumed as run <id>",
    event ``run.resumed``) and its next run starts (``run.started``) for the same task,
    agent and account on the same runner: attempt + 1, ``session_number`` + 1, the
    ``session_id`` and ``worktree_path`` carried over (resume the CLI's conversation
    with that session id). The task stays in progress throughout and the agent working;
    the old run's token stops working, the answer carries the new run's
    (``run_token``). The answer has take-next's shape: task, agent, the new run, the
    account with its secrets and the task's earlier attempts.

    Tools only: a person gets 403 ``tool_token_required``. Refused, writing nothing: a
    run that does not exist (404 ``run_not_found``) or is over (409 ``run_not_live``),
    held by another runner (409 ``run_not_held``), whose agent or account is gone (409
    ``run_not_resumable``), whose crash would spend the task's last attempt under its
    initiative's ``max_attempts`` (409 ``run_attempts_spent``: finish it ``crashed``
    instead), on which an active budget is spent (409 ``budget_spent``,
    ``details.budget_ids``: finish it instead), or whose account's secrets cannot be
    decrypted with the configured keys (409 ``account_secret_unreadable``).
    """
    actor = _tool(request, "Resuming a run")
    return _handed_out(
        services.run_resume(run_id=run_id, runner_name=payload.runner_name, actor=actor)
    )


@router.post("/runs/{run_id}/heartbeat", response={200: RunHeartbeatOut, **ERRORS})
def beat_run(request: HttpRequest, run_id: Id, payload: RunHeartbeatIn) -> dict[str, Any]:
    """The runner's run is alive, with the usage since its last heartbeat; the answer is
    ``continue``, or ``stop`` with ``budget_spent`` (the run has then ended
    ``budget_stopped``: kill the process, do not finish). A run that is over is 409
    ``run_not_live`` (``details.reason``: ``finished``, ``cancelled``, ``taken_away``,
    ``budget_spent``), one held by another runner 409 ``run_not_held``; bad usage 400
    ``invalid_usage``. A refusal writes nothing."""
    answer = services.run_heartbeat(run_id=run_id, **payload.dict())
    return {
        "decision": answer.decision,
        "reason": answer.reason,
        "budgets": [state.as_dict() for state in answer.budgets],
    }


@router.patch("/runs/{run_id}", response={200: RunOut, **ERRORS})
def report_run(request: HttpRequest, run_id: Id, payload: RunReportIn) -> Any:
    """The runner reports what it made of its run: the agent process's pid, the
    worktree's path, the agent CLI's session id and the commit each project started from;
    only the fields sent change, and the run's agent gets the same worktree, pid and
    session. Refused as a heartbeat is (409 ``run_not_live``, ``run_not_held``); a
    commit of a project not linked to the run's initiative is 400
    ``run_commit_other_initiative``. A refusal writes nothing."""
    return services.run_report(run_id=run_id, **payload.dict())


@router.post("/runs/{run_id}/finish", response={200: RunOut, **ERRORS})
def finish_run(request: HttpRequest, run_id: Id, payload: RunFinishIn) -> Any:
    """The runner's process ended. ``succeeded`` completes the task; any other outcome
    returns it to the queue, or blocks it once its failed attempts are spent. A second
    finish, or one of a run that is over, is 409 ``run_not_live``; one held by another
    runner 409 ``run_not_held``; an end commit of an unknown project 404. A refusal
    writes nothing. The answer is the run as it ended, its usage totals included."""
    return services.run_finish(run_id=run_id, **payload.dict())


@router.get("/runs", response={200: Page[RunDetailOut], **ERRORS})
def list_runs(request: HttpRequest, filters: Query[RunFilters]) -> dict[str, Any]:
    """Runs, oldest first, optionally of one task, agent, outcome or runner."""
    page = runs.find_page(
        task_id=filters.task_id,
        agent_id=filters.agent_id,
        outcome=filters.outcome,
        runner_name=filters.runner_name,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.get("/runs/{run_id}", response={200: RunDetailOut, **ERRORS})
def retrieve_run(request: HttpRequest, run_id: Id) -> Any:
    """One run."""
    return runs.get(run_id)


@router.get("/tasks/{task_id}/attempts", response={200: RunAttempts, **ERRORS})
def retrieve_task_attempts(request: HttpRequest, task_id: Id) -> Any:
    """What the task's earlier attempts ended with: its last 10 runs that are over,
    oldest first, each with its outcome, exit code, error, summary and the last lines its
    agent printed (what take-next hands the runner with the task)."""
    return services.run_list_attempts(task_id=task_id)


@router.post("/runs/{run_id}/cancel", response={200: RunOut, **ERRORS})
def cancel_run(request: HttpRequest, run_id: Id) -> Any:
    """A person ends a live run (``cancelled``): its task goes back to the queue (a
    cancel spends no attempt), its agent stops, and the runner's next call gets 409
    ``run_not_live``. A person's gate: a tool's token gets 403 ``person_required``. A
    run that is over is 409 ``run_not_live``."""
    return services.run_cancel(run_id=run_id, actor=_actor(request))


@router.post("/tasks/{task_id}/requeue", response={200: TaskOut, **ERRORS})
def requeue_task(request: HttpRequest, task_id: Id) -> Any:
    """A person sends a task back to the ready queue with fresh attempts: a blocked task
    (its attempts spent, or blocked by a person), or one in progress that no run holds.
    Its failed runs stay its history but no longer count against its initiative's
    ``max_attempts`` nor hold it back; records ``task.requeued``. A person's gate: a
    tool's token gets 403 ``person_required``. A task with a live run is 409
    ``task_has_live_run`` (``details.run_id``: cancel it first); one pending or
    completed 409 ``transition_not_allowed`` (``details.allowed_from``). A refusal
    writes nothing."""
    return services.task_requeue(task_id=task_id, actor=_actor(request))


# --- budgets and limits (people's gates for writes) ---------------------------------------


class BudgetFilters(PageParams):
    scope_type: UsageScope | None = None
    scope_id: Id | None = None


class RunLimitFilters(PageParams):
    scope_type: LimitScope | None = None


@router.get("/budgets", response={200: Page[BudgetOut], **ERRORS}, tags=["budgets"])
def list_budgets(request: HttpRequest, filters: Query[BudgetFilters]) -> dict[str, Any]:
    """Budgets, oldest first, optionally of one scope type or scope."""
    page = budgets.find_page(
        scope_type=filters.scope_type,
        scope_id=filters.scope_id,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post("/budgets", response={201: BudgetOut, **ERRORS}, tags=["budgets"])
def create_budget(request: HttpRequest, payload: BudgetIn) -> Status:
    """A person caps a scope's spending (a person's gate: a tool's token gets 403
    ``person_required``). A scope naming no record is 404 ``budget_scope_not_found``;
    an id with the scope of everything, or none with another, 400 ``invalid_scope_id``."""
    budget = services.budget_create(actor=_actor(request), **payload.dict())
    return Status(HTTPStatus.CREATED, budget)


@router.patch("/budgets/{budget_id}", response={200: BudgetOut, **ERRORS}, tags=["budgets"])
def update_budget(request: HttpRequest, budget_id: Id, payload: BudgetPatch) -> Any:
    """A person raises, lowers or switches off a budget, or changes its window, threshold
    or note: only the fields sent change (a person's gate)."""
    changes = payload.dict(exclude_unset=True)
    return services.budget_update(budget_id=budget_id, actor=_actor(request), **changes)


@router.delete("/budgets/{budget_id}", response={204: None, **ERRORS}, tags=["budgets"])
def delete_budget(request: HttpRequest, budget_id: Id) -> Status:
    """A person lifts a budget (a person's gate)."""
    services.budget_delete(budget_id=budget_id, actor=_actor(request))
    return Status(HTTPStatus.NO_CONTENT, None)


@router.get("/run-limits", response={200: Page[RunLimitOut], **ERRORS}, tags=["budgets"])
def list_run_limits(request: HttpRequest, filters: Query[RunLimitFilters]) -> dict[str, Any]:
    """Limits on live runs, by scope, optionally of one scope type."""
    page = limits.find_page(
        scope_type=filters.scope_type,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post("/run-limits", response={201: RunLimitOut, **ERRORS}, tags=["budgets"])
def create_run_limit(request: HttpRequest, payload: RunLimitIn) -> Status:
    """A person caps the live runs of a scope (a person's gate). One limit per scope: a
    second is 409 ``run_limit_taken``; an initiative or account that does not exist 404
    ``run_limit_scope_not_found``."""
    limit = services.run_limit_create(actor=_actor(request), **payload.dict())
    return Status(HTTPStatus.CREATED, limit)


@router.patch("/run-limits/{run_limit_id}", response={200: RunLimitOut, **ERRORS}, tags=["budgets"])
def update_run_limit(request: HttpRequest, run_limit_id: Id, payload: RunLimitPatch) -> Any:
    """A person changes the most live runs of a limit's scope (a person's gate); runs
    already live go on, no new one starts over it."""
    return services.run_limit_update(
        run_limit_id=run_limit_id, actor=_actor(request), max_live=payload.max_live
    )


@router.delete("/run-limits/{run_limit_id}", response={204: None, **ERRORS}, tags=["budgets"])
def delete_run_limit(request: HttpRequest, run_limit_id: Id) -> Status:
    """A person lifts a limit on live runs (a person's gate)."""
    services.run_limit_delete(run_limit_id=run_limit_id, actor=_actor(request))
    return Status(HTTPStatus.NO_CONTENT, None)
