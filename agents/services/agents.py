"""What may happen to an agent: it is registered, moves through its lifecycle, and is
dismissed by a person.

The lifecycle (``ALLOWED_FROM``): an agent is registered ``idle``; it runs, waits for
input while it has questions, and goes back to running once they are answered; it
becomes idle when it finished a turn, ``stopped`` when it was ended on purpose and
``crashed`` when its process died. A stopped or crashed agent may run again (a resumed
session). Moving to the status it already has is refused, so a transition always says
something happened. Every transition records ``agent.status_changed``.
"""

import json
from typing import Any

from django.db import transaction
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import Account, Agent, AgentStatus
from agents.repositories import AccountRepository, AgentChanges, AgentRepository, AgentRuntime
from agents.services.accounts import check_provider, claim_next_account, record_account_claimed
from core.errors import Conflict, InvalidInput, TransitionNotAllowed
from core.events import event_record
from core.repositories import TaskRepository
from core.services.feed import RecordFeed, apply_update, record_all, snapshot

agents = AgentRepository()
tasks = TaskRepository()

#: An agent's edits and deletion on the feed (its registration is ``agent.registered``).
AGENTS = RecordFeed("agent", deleted_data=lambda values: {"name": values["name"]})
#: What an edit may change: the agent's name, placement, account, mode and output file.
#: Its status and what its process reports move through the lifecycle, below.
EDITABLE = frozenset(
    {"name", "task_id", "initiative_id", "account_id", "worktree_id", "provider", "mode",
     "output_file_path"}
)  # fmt: skip

#: For each status, the statuses an agent may move to it from.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    AgentStatus.RUNNING: (
        AgentStatus.IDLE,
        AgentStatus.WAITING_FOR_INPUT,
        AgentStatus.STOPPED,
        AgentStatus.CRASHED,
    ),
    AgentStatus.WAITING_FOR_INPUT: (AgentStatus.RUNNING,),
    AgentStatus.IDLE: (AgentStatus.RUNNING, AgentStatus.WAITING_FOR_INPUT),
    AgentStatus.STOPPED: (AgentStatus.IDLE, AgentStatus.RUNNING, AgentStatus.WAITING_FOR_INPUT),
    AgentStatus.CRASHED: (AgentStatus.IDLE, AgentStatus.RUNNING, AgentStatus.WAITING_FOR_INPUT),
}
#: An agent still at work is not dismissed: stop it first.
DISMISSIBLE_FROM: tuple[str, ...] = (AgentStatus.IDLE, AgentStatus.STOPPED, AgentStatus.CRASHED)


@transaction.atomic
def agent_register(
    *,
    worktree_id: str,
    name: str | None = None,
    provider: str = "claude",
    mode: str | None = None,
    task_id: str | None = None,
    initiative_id: str | None = None,
    claim_account: bool = False,
    account_id: str | None = None,
    output_file_path: str | None = None,
) -> tuple[Agent, Account | None]:
    """Register an agent (``idle``; a name such as ``brave-otter`` is generated when none
    is given), optionally bound to a task (its initiative is the task's unless given)
    and to an account: one of ``provider`` claimed in the same transaction, or the one
    ``account_id`` names (a person's choice in the admin; not claimed). Asking for both
    is ``invalid_field``.

    Records ``agent.registered`` (and ``account.claimed``). Nothing is written when the
    task does not exist, the provider is unknown (``invalid_provider``) or no account is
    available (409 ``account_unavailable``).
    """
    if claim_account and account_id is not None:
        raise InvalidInput(
            "An agent either claims an account or is given one (account_id), not both.",
            code="invalid_field",
            details={"fields": ["account_id"]},
        )
    fields: dict[str, Any] = {"worktree_id": worktree_id, "provider": check_provider(provider)}
    if output_file_path is not None:
        fields["output_file_path"] = output_file_path
    if account_id is not None:
        AccountRepository().require(account_id)
        fields["account_id"] = account_id
    if name:
        fields["name"] = name
    if mode is not None:
        fields["mode"] = mode
    if task_id is not None:
        task = tasks.get(task_id)
        fields["task"] = task
        if initiative_id is None:
            initiative_id = task.initiative_id
    if initiative_id is not None:
        fields["initiative_id"] = initiative_id
    account = claim_next_account(provider=provider) if claim_account else None
    if account is not None:
        fields["account"] = account
    agent = agents.create(**fields)
    event_record(
        "agent.registered",
        subject_type="agent",
        subject_id=agent.pk,
        initiative_id=agent.initiative_id,
        data={
            "name": agent.name,
            "task_id": agent.task_id,
            "account_id": agent.account_id,
        },
    )
    if account is not None:
        record_account_claimed(account, agent_id=agent.pk)
    return agent, account


@transaction.atomic
def agent_update(*, agent_id: str, **changes: Unpack[AgentChanges]) -> Agent:
    """Change an agent's name, task, initiative, account, worktree, provider, mode or
    output file; records ``agent.updated`` with the fields that changed (nothing when
    none did). Its status and runtime move through the lifecycle: another field is
    ``invalid_field``."""
    refused = sorted(set(changes) - EDITABLE)
    if refused:
        raise InvalidInput(
            f"An agent's {', '.join(refused)} change only through its lifecycle.",
            code="invalid_field",
            details={"fields": refused},
        )
    if "provider" in changes:
        check_provider(changes["provider"])
    return apply_update(AGENTS, agents, agents.get_for_update(agent_id), changes)


@transaction.atomic
def agent_report_process(
    *,
    agent_id: str,
    worktree_id: str | None = None,
    pid: int | None = None,
    session_id: str | None = None,
) -> Agent:
    """Record where and as what the agent's process runs, as its runner reports it: its
    worktree's path, pid and CLI session id (what is not given is kept); records
    ``agent.updated`` with the fields that changed (nothing when none did). Its status
    is left to the lifecycle."""
    changes: AgentChanges = {}
    if worktree_id is not None:
        changes["worktree_id"] = worktree_id
    if pid is not None:
        changes["pid"] = pid
    if session_id is not None:
        changes["session_id"] = session_id
    return apply_update(AGENTS, agents, agents.get_for_update(agent_id), changes)


@transaction.atomic
def agent_delete(*, agent_id: str) -> None:
    """Delete an agent (``agent_not_found`` when there is none) with its proposals and
    conversations; its log stays (it names the agent, not a foreign key). Records
    ``agent.deleted``."""
    agent = agents.get_for_update(agent_id)
    events = AGENTS.deleted(snapshot(agent))
    agents.delete(agent.pk)
    record_all(events)


def _move(agent_id: str, target: str, runtime: AgentRuntime) -> Agent:
    """Move an agent to ``target`` if its status allows it, with what its process
    reported; refused with 409 ``transition_not_allowed`` and the allowed states."""
    agent = agents.get_for_update(agent_id)
    allowed = ALLOWED_FROM[target]
    if agent.status not in allowed:
        raise TransitionNotAllowed(
            f"Agent '{agent.name}' is {agent.status}; it can become {target} only from "
            f"{' or '.join(allowed)}.",
            details={
                "id": agent.pk,
                "status": agent.status,
                "to": target,
                "allowed_from": list(allowed),
            },
        )
    previous = agent.status
    agents.set_status(agent, target, **runtime)
    event_record(
        "agent.status_changed",
        subject_type="agent",
        subject_id=agent.pk,
        initiative_id=agent.initiative_id,
        data={"from": previous, "to": target},
    )
    return agent


@transaction.atomic
def agent_mark_running(
    *, agent_id: str, pid: int | None = None, session_id: str | None = None
) -> Agent:
    """The agent's process runs (started, resumed, or its questions were answered); its
    pending questions are cleared, and ``pid`` / ``session_id`` recorded when given."""
    runtime: AgentRuntime = {"pending_questions": None}
    if pid is not None:
        runtime["pid"] = pid
    if session_id is not None:
        runtime["session_id"] = session_id
    return _move(agent_id, AgentStatus.RUNNING, runtime)


@transaction.atomic
def agent_mark_waiting(*, agent_id: str, pending_questions: Any) -> Agent:
    """A running agent waits for answers to ``pending_questions`` (any JSON value,
    stored as JSON text)."""
    return _move(
        agent_id,
        AgentStatus.WAITING_FOR_INPUT,
        {"pending_questions": json.dumps(pending_questions)},
    )


def _finish(agent_id: str, target: str, exit_code: int | None, result: Any) -> Agent:
    runtime: AgentRuntime = {"pending_questions": None}
    if exit_code is not None:
        runtime["exit_code"] = exit_code
    if result is not None:
        runtime["result"] = json.dumps(result)
    return _move(agent_id, target, runtime)


@transaction.atomic
def agent_mark_idle(*, agent_id: str, exit_code: int | None = None, result: Any = None) -> Agent:
    """The agent finished a turn; ``result`` (any JSON value) is what it produced."""
    return _finish(agent_id, AgentStatus.IDLE, exit_code, result)


@transaction.atomic
def agent_mark_stopped(*, agent_id: str, exit_code: int | None = None, result: Any = None) -> Agent:
    """The agent was ended on purpose."""
    return _finish(agent_id, AgentStatus.STOPPED, exit_code, result)


@transaction.atomic
def agent_mark_crashed(*, agent_id: str, exit_code: int | None = None, result: Any = None) -> Agent:
    """The agent's process died unexpectedly."""
    return _finish(agent_id, AgentStatus.CRASHED, exit_code, result)


@transaction.atomic
def agent_dismiss(*, agent_id: str) -> Agent:
    """A person hides a finished agent from the working views (``user_dismissed_at``);
    records ``agent.dismissed``. An agent at work is refused (409
    ``transition_not_allowed``, stop it first), one already dismissed is 409
    ``agent_already_dismissed``."""
    agent = agents.get_for_update(agent_id)
    if agent.user_dismissed_at is not None:
        raise Conflict(
            f"Agent '{agent.name}' is already dismissed.",
            code="agent_already_dismissed",
            details={"id": agent.pk, "dismissed_at": agent.user_dismissed_at.isoformat()},
        )
    if agent.status not in DISMISSIBLE_FROM:
        raise TransitionNotAllowed(
            f"Agent '{agent.name}' is {agent.status}; only an agent that is "
            f"{' or '.join(DISMISSIBLE_FROM)} can be dismissed.",
            details={
                "id": agent.pk,
                "status": agent.status,
                "allowed_from": list(DISMISSIBLE_FROM),
            },
        )
    agents.update(agent, user_dismissed_at=timezone.now())
    event_record(
        "agent.dismissed",
        subject_type="agent",
        subject_id=agent.pk,
        initiative_id=agent.initiative_id,
    )
    return agent
