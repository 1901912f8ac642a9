"""A record's history in words: each event of the feed said as a sentence a person reads.

``event_sentence(event)`` says who did what ("alice approved the plan", "tool ci-runner
started the task", "cw_accounts (bob) parked the account until 18:00"); the admin's
History pages list a record's events this way. Every kind of ``core.events.EVENT_KINDS``
has its phrase in ``PHRASES`` (a test keeps it so): a phrase is the verb and its object
as the actor's sentence goes on, built from the event's ``data``.
"""

import re
from collections.abc import Callable
from typing import Any

from django.db import models

from core.models import Event
from core.repositories.events import EventRepository

#: The most events a record's History page lists (the newest).
HISTORY_LIMIT = 500

Phrase = Callable[[dict[str, Any], str], str]


def actor_words(event: Event) -> str:
    """Who acted, as a sentence starts: a person by name, a tool or a command named as
    such, cw itself as "cw"."""
    if event.actor_type == "person":
        return event.actor_name
    if event.actor_type == "tool":
        return f"tool {event.actor_name}"
    if event.actor_via == "command":
        return f"command {event.actor_name}"
    return event.actor_name or "cw"


def _label(value: Any) -> str:
    return str(value or "").replace("_", " ")


#: What reaching a status means, by the record's kind and the status reached (and left).
_PHASE_STATUS: dict[tuple[Any, Any], str] = {
    ("pending", "approved"): "approved the plan",
    ("approved", "in_progress"): "started the phase",
    ("in_progress", "pending_review"): "sent the phase for review",
    ("pending_review", "completed"): "approved the phase's review",
    ("pending_review", "in_progress"): "requested changes on the phase",
    ("in_progress", "completed"): "completed the phase",
}
_INITIATIVE_STATUS: dict[tuple[Any, Any], str] = {
    ("active", "pending_review"): "sent the initiative for its final review",
    ("pending_review", "completed"): "approved the initiative",
    ("active", "completed"): "completed the initiative",
}


def _status_change(kind: str, table: dict[tuple[Any, Any], str]) -> Phrase:
    def phrase(data: dict[str, Any], subject: str) -> str:
        before, after = data.get("from"), data.get("to")
        known = table.get((before, after))
        if known:
            return known
        if after == "blocked":
            return f"blocked the {kind}"
        if before == "blocked":
            return f"unblocked the {kind}"
        if after == "archived":
            return f"archived the {kind}"
        return f"moved the {kind} from {_label(before)} to {_label(after)}"

    return phrase


def _fixed(text: str) -> Phrase:
    return lambda data, subject: text


def _with(text: str, key: str, template: str) -> Phrase:
    """``text``, then ``template`` filled with ``data[key]`` when the event carries it."""

    def phrase(data: dict[str, Any], subject: str) -> str:
        value = data.get(key)
        if value in (None, "", [], {}):
            return text
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return text + template.format(value=_label(value) if key in _LABELLED else value)

    return phrase


#: Data keys whose values are codes said in words (``in_progress`` → "in progress").
_LABELLED = frozenset({"to", "from", "execution_mode", "target_type", "role"})


def _changed_fields(thing: str) -> Phrase:
    def phrase(data: dict[str, Any], subject: str) -> str:
        fields = data.get("fields") or data.get("changed") or []
        if not fields:
            return f"changed the {thing}"
        return f"changed the {thing}'s " + ", ".join(_label(f) for f in fields)

    return phrase


def _agent_status(data: dict[str, Any], subject: str) -> str:
    after = data.get("to")
    words = {
        "running": "marked the agent running",
        "waiting_for_input": "marked the agent waiting for input",
        "idle": "marked the agent idle",
        "stopped": "stopped the agent",
        "crashed": "marked the agent crashed",
    }
    return words.get(
        str(after), f"moved the agent from {_label(data.get('from'))} to {_label(after)}"
    )


def _via_change_set(text: str) -> Phrase:
    """A record's change made by accepting a proposal or applying a chat change set says so."""

    def phrase(data: dict[str, Any], subject: str) -> str:
        if data.get("reverted"):
            return f"{text} (reverting a change set)"
        if data.get("change_set_id"):
            return f"{text} (through a change set)"
        return text

    return phrase


def _requeued(data: dict[str, Any], subject: str) -> str:
    """A task back in the queue: after its run (with the run's outcome), or by a person
    with fresh attempts."""
    if "attempts_reset" in data:
        return "requeued the task with fresh attempts"
    return _with("returned the task to the queue", "outcome", " (its run {value})")(data, subject)


#: Every event kind's phrase; the sentence is "<actor> <phrase>".
PHRASES: dict[str, Phrase] = {
    "initiative.created": _fixed("created the initiative"),
    "initiative.updated": _changed_fields("initiative"),
    "initiative.status_changed": _status_change("initiative", _INITIATIVE_STATUS),
    "initiative.execution_mode_changed": _with("changed the execution mode", "to", " to {value}"),
    "initiative.projects_changed": _fixed("changed the initiative's projects"),
    "initiative.deleted": _fixed("deleted the initiative"),
    "initiative.imported": _fixed("imported the initiative from an export file"),
    "phase.created": _via_change_set("added the phase"),
    "phase.updated": _via_change_set("changed the phase"),
    "phase.status_changed": _status_change("phase", _PHASE_STATUS),
    "phase.deleted": _via_change_set("deleted the phase"),
    "task.created": _via_change_set("added the task"),
    "task.updated": _via_change_set("changed the task"),
    "task.started": _fixed("started the task"),
    "task.completed": _with("completed the task", "summary", ": {value}"),
    "task.blocked": _fixed("blocked the task"),
    "task.unblocked": _fixed("unblocked the task"),
    "task.requeued": _requeued,
    "task.deleted": _via_change_set("deleted the task"),
    "dependency.added": _via_change_set("added a dependency"),
    "dependency.removed": _via_change_set("removed a dependency"),
    "page.created": _via_change_set("added the page"),
    "page.updated": _via_change_set("changed the page"),
    "page.moved": _fixed("moved the page"),
    "page.deleted": _via_change_set("deleted the page"),
    "project.created": _fixed("registered the project"),
    "project.updated": _changed_fields("project"),
    "project.fetched": _fixed("fetched the project"),
    "project.deleted": _fixed("deleted the project"),
    "agent.registered": _with("registered the agent", "name", " {value}"),
    "agent.status_changed": _agent_status,
    "agent.dismissed": _fixed("dismissed the agent"),
    "agent.log_deleted": _with("deleted the agent's log", "chunks", " ({value} chunks)"),
    "agent.updated": _changed_fields("agent"),
    "agent.deleted": _fixed("deleted the agent"),
    "proposal.created": _with("proposed a change", "target_type", " to a {value}"),
    "proposal.updated": _changed_fields("proposal"),
    "proposal.accepted": _fixed("accepted the proposal"),
    "proposal.reopened": _fixed("reopened the proposal (its change set was reverted)"),
    "proposal.dismissed": _fixed("dismissed the proposal"),
    "proposal.deleted": _fixed("deleted the proposal"),
    "change_set.reverted": _fixed("reverted the change set"),
    "question.asked": _fixed("asked a question"),
    "question.answered": _fixed("answered the question"),
    "question.updated": _changed_fields("question"),
    "question.deleted": _fixed("deleted the question"),
    "message.sent": _with("sent a message", "recipient_type", " to a {value}"),
    "message.read": _fixed("read the message"),
    "message.updated": _changed_fields("message"),
    "message.deleted": _fixed("deleted the message"),
    "review_comment.created": _fixed("commented on the phase's diff"),
    "review_comment.updated": _fixed("edited the review comment"),
    "review_comment.resolved": _fixed("resolved the review comment"),
    "review_comment.handed_over": _fixed("handed the review comment to the rework task"),
    "review_comment.unresolved": _fixed("reopened the review comment"),
    "review_comment.deleted": _fixed("deleted the review comment"),
    "api_token.created": _with("made the token", "kind", " (a {value}'s)"),
    "api_token.revoked": _fixed("revoked the token"),
    "account.created": _fixed("added the account"),
    "account.updated": _changed_fields("account"),
    "account.deleted": _fixed("deleted the account"),
    "account.claimed": _fixed("claimed the account for an agent"),
    "account.exhausted": _with("parked the account", "until", " until {value}"),
    "account.released": _fixed("put the account back in the rotation"),
    "run.started": _with("started the run", "attempt", " (attempt {value})"),
    "run.finished": _with("finished the run", "outcome", " ({value})"),
    "run.lost": _fixed("took back the run (no heartbeat: lost)"),
    "run.resumed": _with("resumed the run after a runner restart", "resumed_as", " as run {value}"),
    "run.reported": _fixed("reported the run's process, worktree or start commits"),
    "run.cancelled": _fixed("cancelled the run"),
    "run.budget_stopped": _fixed("stopped the run (a budget was spent)"),
    "budget.warned": _with("warned that the budget is nearly spent", "spent", " ({value} spent)"),
    "budget.created": _with("set the budget", "limit", " ({value})"),
    "budget.updated": _changed_fields("budget"),
    "budget.deleted": _fixed("lifted the budget"),
    "run_limit.created": _with("set the limit", "max_live", " ({value} live runs)"),
    "run_limit.updated": _with("changed the limit", "to", " to {value} live runs"),
    "run_limit.deleted": _fixed("lifted the limit"),
    "chat.opened": _with("opened a chat", "target_type", " on a {value}"),
    "chat.updated": _fixed("changed the chat's agent"),
    "chat.message_posted": _with("posted in the chat", "role", " as {value}"),
    "chat.closed": _fixed("closed the chat"),
    "chat.deleted": _fixed("deleted the chat"),
    "chat.message_deleted": _fixed("deleted a message of the chat"),
}


def event_sentence(event: Event) -> str:
    """The event as a sentence: "<who> <did what>"."""
    phrase = PHRASES.get(event.kind)
    data = event.data if isinstance(event.data, dict) else {}
    said = phrase(data, event.subject_id) if phrase else f"recorded {event.kind}"
    return f"{actor_words(event)} {said}"


def subject_type_of(model: type[models.Model]) -> str:
    """The ``subject_type`` events give a record of ``model`` (``ReviewComment`` →
    ``review_comment``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


def record_history(record: models.Model, *, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The newest events about ``record``, newest first, each with its sentence."""
    found = EventRepository().find_by_subject(
        subject_type_of(type(record)), str(record.pk), limit=limit
    )
    return [{"event": event, "sentence": event_sentence(event)} for event in found]
