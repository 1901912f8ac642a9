"""The event feed: every state change the services make, recorded in the same transaction.

Services call ``event_record`` inside their transaction, after their writes; a rolled
back change leaves no event. Readers call ``event_list`` with the id of the last event
they saw; ids follow commit order (``EventRepository.append``), so following the cursor
yields every committed event exactly once. ``event_prune`` deletes old events by age.
"""

import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.actors import current_actor
from core.errors import InvalidInput
from core.models import Event
from core.repositories.events import EventRepository
from core.repositories.pagination import DEFAULT_KEYSET_PAGE_SIZE

events = EventRepository()

#: Every kind of event, with what it says. ``subject_type`` names the record it is about.
EVENT_KINDS: dict[str, str] = {
    "initiative.created": "An initiative was created.",
    "initiative.status_changed": "An initiative's status changed (data: from, to).",
    "initiative.imported": (
        "An initiative was imported from an export file (data: source_id, as_new, counts)."
    ),
    "phase.created": "A phase was added to an initiative.",
    "phase.status_changed": "A phase's status changed (data: from, to).",
    "phase.deleted": "A phase was deleted.",
    "task.created": "A task was added.",
    "task.started": "A task was started.",
    "task.completed": "A task was completed (data: summary).",
    "task.blocked": "A task was blocked (data: from).",
    "task.unblocked": "A task was unblocked (data: to).",
    "task.deleted": "A task was deleted.",
    "dependency.added": "A phase or task now depends on another (data: depends_on_id).",
    "dependency.removed": "A dependency was removed (data: depends_on_id).",
    "agent.registered": "An agent was registered (data: name, task_id, account_id).",
    "agent.status_changed": "An agent's status changed (data: from, to).",
    "agent.dismissed": "An agent was dismissed.",
    "proposal.created": "An agent proposed a change (data: target_type, target_id).",
    "proposal.accepted": "A person accepted a proposal (data: change_set_id).",
    "proposal.dismissed": "A person dismissed a proposal.",
    "change_set.reverted": "A change set was reverted.",
    "question.asked": "An agent asked another agent a question (data: to_agent_id).",
    "question.answered": "A question was answered.",
    "message.sent": "A message was sent (data: recipient_type, recipient_id, parent_id).",
    "review_comment.created": "A review comment was added to a phase's diff.",
    "review_comment.resolved": "A review comment was resolved.",
    "account.claimed": "An account was claimed for an agent.",
    "account.exhausted": "An account was parked (data: until).",
    "account.released": "A parked account was released.",
    "chat.opened": "A chat session was opened on a phase or task (data: target_type, target_id).",
    "chat.message_posted": "A message was posted in a chat session.",
    "chat.closed": "A chat session was closed.",
}

#: The longest a reader may wait for new events in one call.
MAX_WAIT_SECONDS = 30
#: How often a waiting reader looks again.
POLL_INTERVAL_SECONDS = 0.2


def event_record(
    kind: str,
    *,
    subject_type: str,
    subject_id: str,
    initiative_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Record an event in the caller's transaction, made by the actor the door named
    (``core.actors.current_actor``). An unknown kind is a programming error
    (``LookupError``): every kind is listed in ``EVENT_KINDS``."""
    if kind not in EVENT_KINDS:
        raise LookupError(f"Unknown event kind {kind!r}; add it to core.events.EVENT_KINDS.")
    with transaction.atomic():
        return events.append(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            initiative_id=initiative_id,
            data=data,
            actor=current_actor().as_fields(),
        )


def event_list(
    *,
    after: int = 0,
    limit: int = DEFAULT_KEYSET_PAGE_SIZE,
    initiative_id: str | None = None,
    kinds: list[str] | None = None,
    wait: float = 0,
) -> list[Event]:
    """The next events after the cursor ``after``, oldest first; with ``wait`` (seconds,
    at most ``MAX_WAIT_SECONDS``) the call returns as soon as one arrives, or empty when
    none has by then. An unknown kind is ``invalid_kind``."""
    unknown = sorted(set(kinds or ()) - set(EVENT_KINDS))
    if unknown:
        raise InvalidInput(
            f"Unknown event kind(s): {', '.join(unknown)}.",
            code="invalid_kind",
            details={"kinds": unknown, "allowed": sorted(EVENT_KINDS)},
        )
    if (
        isinstance(wait, bool)
        or not isinstance(wait, int | float)
        or not 0 <= wait <= MAX_WAIT_SECONDS
    ):
        raise InvalidInput(
            f"wait must be from 0 to {MAX_WAIT_SECONDS} seconds.",
            code="invalid_wait",
            details={"wait": str(wait), "max": MAX_WAIT_SECONDS},
        )
    deadline = time.monotonic() + wait
    while True:
        found = events.find_after(after, limit=limit, initiative_id=initiative_id, kinds=kinds)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))


def event_prune(*, older_than: timedelta) -> int:
    """Delete the events older than ``older_than``; how many were deleted."""
    return events.delete_older_than(timezone.now() - older_than)
