"""What needs a person's attention now: the data behind ``manage.py cw_status``.

``gather_status`` reads everything through the repositories and the ready-queue
services and returns plain, JSON-ready data (the command only renders it). Every section
costs a fixed number of queries whatever the number of rows: lists are cut to ``limit``
items and carry the ``total`` they were cut from, counts are grouped in the database.

What the sections hold, and the rules they follow:

- a person's decisions: pending proposals counted per agent; phases and initiatives in
  ``pending_review``; checkpoint tasks that are ready (``task_list_waiting_checkpoints``);
  unanswered messages to people (unread, or read but requiring a response), with how
  many of them are unread and how many require a response (a message may be both);
  agents waiting for input with their pending questions;
- agents at work and agents that crashed, leaving out those a person dismissed;
- accounts not available now: parked until a later time, or until a person releases
  them. An account whose ``exhausted_until`` has passed is available (the next claim
  clears it), so it is not listed;
- each *active* initiative (status ``active``: planned or being worked on, not waiting
  for its final approval, completed or archived) with its phases and its tasks counted
  by status and its ready ``auto`` tasks (``TaskRepository.ready_queryset``, the one
  ready rule).

With ``initiative_id`` every section but the accounts (which no initiative owns) is cut
to that initiative, and the initiatives section shows it whatever its status. Messages
belong to an initiative through the agent that sent them.

Then the runs (``operations.run_status``): the runs in flight, the lost ones not swept
yet and those that ended lost or crashed lately; every active budget, spent against its
limit; and the queue of ready tasks, with how many of them the limits and budgets hold
back. A lost run not swept yet needs a person too: its runner died and nothing swept
since (is ``cw_reconcile`` running?).

Times in a status (``since``) are the record's last change (``updated_at``), which for
these records is normally the move into that status.
"""

import json
from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Account, Agent, AgentStatus, Message, MessageStatus
from agents.repositories import AccountRepository, AgentRepository, MessageRepository
from core.models import Initiative, InitiativeStatus, Phase, PhaseStatus, Task
from core.repositories import (
    InitiativeRepository,
    OffsetPage,
    PhaseRepository,
    TaskRepository,
    check_offset_page,
)
from core.services import task_list_waiting_checkpoints
from operations.run_status import budgets_and_queue, runs_section
from reviews.models import ProposalStatus
from reviews.repositories import ProposalRepository

#: Items listed per section unless the caller asks for another number.
DEFAULT_LIMIT = 10

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()
agents = AgentRepository()
accounts = AccountRepository()
messages = MessageRepository()
proposals = ProposalRepository()


def gather_status(
    *, initiative_id: str | None = None, limit: int = DEFAULT_LIMIT, now: datetime | None = None
) -> dict[str, Any]:
    """One document of what needs attention now (see the module docstring).

    ``limit`` (1..200, else ``invalid_limit``) caps every list; an unknown
    ``initiative_id`` is ``initiative_not_found``.
    """
    check_offset_page(limit)
    now = now or timezone.now()
    focus = initiatives.get(initiative_id) if initiative_id is not None else None

    pending_review_phases = phases.find_page(
        initiative_id=initiative_id, status=PhaseStatus.PENDING_REVIEW, limit=limit
    )
    checkpoint_tasks = task_list_waiting_checkpoints(initiative_id=initiative_id, limit=limit)
    names = initiatives.names_of(
        sorted(
            {phase.initiative_id for phase in pending_review_phases.items}
            | {str(task.initiative_id) for task in checkpoint_tasks if task.initiative_id}
        )
    )

    crashed = _agents_section(AgentStatus.CRASHED, initiative_id, limit)
    budget_section, queue = budgets_and_queue(now, limit=limit)
    document: dict[str, Any] = {
        "generated_at": _iso(now),
        "initiative": _initiative_ref(focus) if focus is not None else None,
        "limit": limit,
        "needs_attention": False,
        "proposals": _proposals_section(initiative_id, limit),
        "phases_pending_review": _section(
            pending_review_phases, lambda phase: _phase_item(phase, names)
        ),
        "initiatives_pending_review": _initiatives_pending_review(focus, limit),
        "checkpoints": {
            "total": tasks.count_ready(initiative_id=initiative_id, checkpoints=True),
            "items": [_checkpoint_item(task, names) for task in checkpoint_tasks],
        },
        "messages": _messages_section(initiative_id, limit),
        "questions": _agents_section(AgentStatus.WAITING_FOR_INPUT, initiative_id, limit),
        "agents": {
            "running": _agents_section(AgentStatus.RUNNING, initiative_id, limit),
            "crashed": crashed,
        },
        "accounts": {
            "providers": accounts.availability_by_provider(now=now),
            "exhausted": _section(
                accounts.find_exhausted_page(now=now, limit=limit), _account_item
            ),
        },
        "initiatives": _initiatives_section(focus, limit),
        "runs": runs_section(now, limit=limit, initiative_id=initiative_id),
        "budgets": budget_section,
        "queue": queue,
    }
    document["needs_attention"] = any(
        document[key]["total"]
        for key in (
            "proposals",
            "phases_pending_review",
            "initiatives_pending_review",
            "checkpoints",
            "messages",
            "questions",
        )
    ) or bool(
        crashed["total"]
        or document["accounts"]["exhausted"]["total"]
        or document["runs"]["lost"]["total"]
    )
    return document


# --- sections --------------------------------------------------------------------------


def _section(page: OffsetPage[Any], item: Any) -> dict[str, Any]:
    """``{"total": …, "items": […]}``: one page of a list, each row shown by ``item``."""
    return {"total": page.total, "items": [item(row) for row in page.items]}


def _proposals_section(initiative_id: str | None, limit: int) -> dict[str, Any]:
    by_agent = proposals.pending_counts_by_agent(initiative_id=initiative_id, limit=limit)
    return {
        "total": by_agent.total,
        "proposals": proposals.count(initiative_id=initiative_id, status=ProposalStatus.PENDING),
        "items": [
            {
                "agent_id": row["agent_id"],
                "agent_name": row["agent_name"],
                "pending": row["pending"],
                "oldest_at": _iso(row["oldest_at"]),
            }
            for row in by_agent.items
        ],
    }


def _messages_section(initiative_id: str | None, limit: int) -> dict[str, Any]:
    """The messages waiting for a person (three queries): one page of them, and how
    many are ``unread`` and how many ``requires_response`` (a message may be both)."""
    waiting = messages.awaiting_person(initiative_id=initiative_id)
    return {
        **_section(messages.find_page(waiting, limit=limit), _message_item),
        **waiting.aggregate(
            unread=Count("pk", filter=Q(status=MessageStatus.PENDING)),
            requires_response=Count("pk", filter=Q(requires_response=True)),
        ),
    }


def _initiatives_pending_review(focus: Initiative | None, limit: int) -> dict[str, Any]:
    if focus is not None:
        waiting = [focus] if focus.status == InitiativeStatus.PENDING_REVIEW else []
        return {"total": len(waiting), "items": [_initiative_since(i) for i in waiting]}
    return _section(
        initiatives.find_page(status=InitiativeStatus.PENDING_REVIEW, limit=limit),
        _initiative_since,
    )


def _agents_section(status: str, initiative_id: str | None, limit: int) -> dict[str, Any]:
    page = agents.find_undismissed_page(status, initiative_id=initiative_id, limit=limit)
    return _section(page, _agent_item)


def _initiatives_section(focus: Initiative | None, limit: int) -> dict[str, Any]:
    """The focused initiative, or one page of the active ones, each with its phases and
    its tasks counted by status and its ready tasks (five queries in all)."""
    if focus is not None:
        page: OffsetPage[Initiative] = OffsetPage(items=[focus], total=1, limit=limit, offset=0)
    else:
        page = initiatives.find_page(status=InitiativeStatus.ACTIVE, limit=limit)
    ids = [initiative.pk for initiative in page.items]
    by_status = tasks.count_by_status_per_initiative(ids) if ids else {}
    phases_by_status = _phases_by_status_per_initiative(ids) if ids else {}
    ready_counts, ready = tasks.find_ready_per_initiative(ids, limit=limit) if ids else ({}, {})
    items = []
    for initiative in page.items:
        counts = by_status[initiative.pk]
        phase_counts = phases_by_status[initiative.pk]
        items.append(
            {
                **_initiative_ref(initiative),
                "phases": {**phase_counts, "total": sum(phase_counts.values())},
                "tasks": {**counts, "total": sum(counts.values())},
                "ready": {
                    "total": ready_counts.get(initiative.pk, 0),
                    "items": [_task_ref(task) for task in ready.get(initiative.pk, [])],
                },
            }
        )
    return {"total": page.total, "items": items}


def _phases_by_status_per_initiative(initiative_ids: list[str]) -> dict[str, dict[str, int]]:
    """For each of ``initiative_ids``, its phases counted by status (every status, zeros
    included), in one grouped query."""
    counts = {id: dict.fromkeys(PhaseStatus.values, 0) for id in initiative_ids}
    rows = (
        phases.queryset()
        .filter(initiative_id__in=initiative_ids)
        .order_by()
        .values("initiative_id", "status")
        .annotate(n=Count("pk"))
        .values_list("initiative_id", "status", "n")
    )
    for initiative_id, status, n in rows:
        counts[initiative_id][status] = n
    return counts


# --- items -----------------------------------------------------------------------------


def _initiative_ref(initiative: Initiative) -> dict[str, Any]:
    return {"id": initiative.pk, "name": initiative.name, "status": initiative.status}


def _initiative_since(initiative: Initiative) -> dict[str, Any]:
    return {"id": initiative.pk, "name": initiative.name, "since": _iso(initiative.updated_at)}


def _phase_item(phase: Phase, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": phase.pk,
        "name": phase.name,
        "initiative_id": phase.initiative_id,
        "initiative_name": names.get(phase.initiative_id),
        "since": _iso(phase.updated_at),
    }


def _task_ref(task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "name": task.name,
        "type": task.type,
        "priority": task.priority,
        "phase_id": task.phase_id,
    }


def _checkpoint_item(task: Task, names: dict[str, str]) -> dict[str, Any]:
    initiative_id = str(task.initiative_id) if task.initiative_id else None
    return {
        **_task_ref(task),
        "initiative_id": initiative_id,
        "initiative_name": names.get(initiative_id) if initiative_id else None,
        "created_at": _iso(task.created_at),
    }


def _message_item(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "type": message.type,
        "status": message.status,
        "requires_response": message.requires_response,
        "sender_type": message.sender_type,
        "sender_id": message.sender_id,
        "sender_name": getattr(message, "sender_name", None),
        "content": message.content,
        "created_at": _iso(message.created_at),
    }


def _agent_item(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.pk,
        "name": agent.name,
        "initiative_id": agent.initiative_id,
        "task_id": agent.task_id,
        "task_name": agent.task.name if agent.task is not None else None,
        "exit_code": agent.exit_code,
        "pending_questions": _json_value(agent.pending_questions),
        "since": _iso(agent.updated_at),
    }


def _account_item(account: Account) -> dict[str, Any]:
    return {
        "id": account.pk,
        "provider": account.provider,
        "email": account.email,
        "exhausted_until": _iso(account.exhausted_until),
    }


def _json_value(text: str | None) -> Any:
    """A JSON text column as its value (the text itself should it not parse)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
