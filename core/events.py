"""The event feed: every state change the services make, recorded in the same transaction.

Services call ``event_record`` inside their transaction, after their writes; a rolled
back change leaves no event. Readers call ``event_list`` with the id of the last event
they saw; ids follow commit order (``EventRepository.append``), so following the cursor
yields every committed event exactly once. ``event_prune`` deletes old events by age.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import live
from core.actors import current_actor
from core.errors import InvalidInput
from core.live import check_wait
from core.models import Event
from core.repositories.events import EventRepository
from core.repositories.pagination import DEFAULT_KEYSET_PAGE_SIZE

events = EventRepository()


@dataclass(frozen=True)
class EventKind:
    """What one kind of event says: the record it is about (``subject``: the
    ``subject_type`` it is recorded with), in words (``summary``), and the keys of its
    ``data``: ``data`` always there, ``optional`` only sometimes (each with its meaning).
    ``event_record`` refuses an event that does not fit its kind, so this catalogue is
    what the feed holds (``docs/api.md``, "The event feed", is rendered from it)."""

    subject: tuple[str, ...]
    summary: str
    data: Mapping[str, str] = field(default_factory=dict)
    optional: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The kind in one line: its summary, then its data keys (optional ones with ?)."""
        keys = [*self.data, *(f"{key}?" for key in self.optional)]
        return f"{self.summary} (data: {', '.join(keys)})" if keys else self.summary


#: The keys of an event derived from a change set (``change_set_events``): the change
#: set's id (an accepted proposal, a chat edit), and ``reverted`` when the change undid
#: it (a revert).
CHANGE_SET_ID = "change_set_id"
REVERTED = "reverted"
_FROM_CHANGE_SET = {
    CHANGE_SET_ID: "the change set that made the change (an accept, or its revert)",
    REVERTED: "true when the change undid the change set (a revert)",
}
_FIELDS = {"fields": "the names of the fields whose values changed"}
_FROM_TO = {"from": "the status before", "to": "the status after"}
_DEPENDENCY = {"depends_on_id": "the phase or task it depends on"}
_COMMENT = {"phase_id": "the phase whose diff the comment is on"}


def _kind(
    subject: str,
    summary: str,
    data: Mapping[str, str] | None = None,
    optional: Mapping[str, str] | None = None,
) -> EventKind:
    return EventKind(tuple(subject.split("|")), summary, dict(data or {}), dict(optional or {}))


#: Every kind of event, by name: the record it is about, what it says and its data.
EVENT_KINDS: dict[str, EventKind] = {
    # --- initiatives ---
    "initiative.created": _kind(
        "initiative",
        "An initiative was created.",
        {"name": "its name", "execution_mode": "yolo or review_per_phase"},
    ),
    "initiative.updated": _kind("initiative", "An initiative's name or branch changed.", _FIELDS),
    "initiative.execution_mode_changed": _kind(
        "initiative",
        "An initiative's execution mode changed.",
        {"from": "the mode before", "to": "the mode after"},
    ),
    "initiative.status_changed": _kind("initiative", "An initiative's status changed.", _FROM_TO),
    "initiative.projects_changed": _kind(
        "initiative",
        "The projects an initiative uses changed.",
        {"added": "the ids of the projects linked", "removed": "the ids of the projects unlinked"},
    ),
    "initiative.deleted": _kind(
        "initiative",
        "An initiative was deleted, with everything it owned (phases, tasks, pages, "
        "proposals, change sets, chat sessions, links to projects).",
        {"name": "its name"},
    ),
    "initiative.imported": _kind(
        "initiative",
        "An initiative was imported from an export file.",
        {
            "source_id": "the initiative's id in the file",
            "as_new": "whether it was imported under new ids",
            "counts": "the records written, by table",
        },
    ),
    # --- phases ---
    "phase.created": _kind(
        "phase", "A phase was added to an initiative.", {"name": "its name"}, _FROM_CHANGE_SET
    ),
    "phase.updated": _kind(
        "phase", "A phase's name or content changed.", _FIELDS, _FROM_CHANGE_SET
    ),
    "phase.status_changed": _kind("phase", "A phase's status changed.", _FROM_TO),
    "phase.deleted": _kind(
        "phase",
        "A phase was deleted, with its tasks.",
        {"name": "its name", "task_ids": "the tasks deleted with it"},
        _FROM_CHANGE_SET,
    ),
    # --- tasks ---
    "task.created": _kind(
        "task",
        "A task was added.",
        {
            "name": "its name",
            "phase_id": "its phase (null: none)",
            "parent_task_id": "the task it is a subtask of (null: none)",
            "category": "its category (execute, review, …)",
        },
        _FROM_CHANGE_SET,
    ),
    "task.updated": _kind(
        "task", "A task's fields changed (not its status).", _FIELDS, _FROM_CHANGE_SET
    ),
    "task.started": _kind("task", "A task was started."),
    "task.completed": _kind("task", "A task was completed.", {"summary": "what it did (or null)"}),
    "task.blocked": _kind(
        "task",
        "A task was blocked.",
        {"from": "the status it was blocked from"},
        {
            "reason": "why, when cw blocked it: attempts_spent (its runs failed "
            "max_attempts times)",
            "failures": "its failed runs: attempt, outcome, exit_code, error",
        },
    ),
    "task.requeued": _kind(
        "task",
        "A task went back to the ready queue (pending): after its run ended without "
        "success, or requeued by a person with fresh attempts.",
        {"from": "the status before"},
        {
            "outcome": "how its run ended (when its run's end returned it)",
            "attempts_reset": "when a person requeued it: how many failed runs no longer "
            "count against its initiative's max_attempts",
        },
    ),
    "task.unblocked": _kind("task", "A task was unblocked.", {"to": "the status it went back to"}),
    "task.deleted": _kind(
        "task",
        "A task was deleted, with its subtasks.",
        {"phase_id": "its phase (null: none)", "subtask_ids": "the subtasks deleted with it"},
        _FROM_CHANGE_SET,
    ),
    "dependency.added": _kind(
        "phase|task",
        "A phase or task now depends on another (the subject).",
        _DEPENDENCY,
        _FROM_CHANGE_SET,
    ),
    "dependency.removed": _kind(
        "phase|task",
        "A phase or task no longer depends on another (the subject).",
        _DEPENDENCY,
        _FROM_CHANGE_SET,
    ),
    # --- pages ---
    "page.created": _kind(
        "page",
        "A page was added to an initiative's tree.",
        {"title": "its title", "parent_page_id": "the page it is under (null: the root)"},
        _FROM_CHANGE_SET,
    ),
    "page.updated": _kind("page", "A page's title or content changed.", _FIELDS, _FROM_CHANGE_SET),
    "page.moved": _kind(
        "page",
        "A page moved in its initiative's tree: under another page, or to another place "
        "among its siblings.",
        {
            "from_parent_page_id": "the page it was under",
            "parent_page_id": "the page it is under",
            "from_sort_order": "its place before",
            "sort_order": "its place now",
        },
        _FROM_CHANGE_SET,
    ),
    "page.deleted": _kind(
        "page",
        "A page was deleted, with the pages under it.",
        {"title": "its title", "page_ids": "the pages deleted with it"},
        _FROM_CHANGE_SET,
    ),
    # --- projects ---
    "project.created": _kind(
        "project",
        "A project (git repository) was registered.",
        {"name": "its name", "url": "its URL"},
    ),
    "project.updated": _kind("project", "A project's fields changed.", _FIELDS),
    "project.fetched": _kind("project", "A project's repository was fetched."),
    "project.deleted": _kind(
        "project",
        "A project was deleted, and unlinked from its initiatives.",
        {"name": "its name", "initiative_ids": "the initiatives that used it"},
    ),
    # --- agents ---
    "agent.registered": _kind(
        "agent",
        "An agent was registered.",
        {
            "name": "its name",
            "task_id": "its task (or null)",
            "account_id": "the account claimed for it (or null)",
        },
    ),
    "agent.status_changed": _kind("agent", "An agent's status changed.", _FROM_TO),
    "agent.dismissed": _kind("agent", "A person dismissed an agent from the working views."),
    "agent.updated": _kind(
        "agent",
        "An agent's name, placement, account or mode changed, or its runner reported its "
        "worktree, pid or CLI session.",
        _FIELDS,
    ),
    "agent.deleted": _kind(
        "agent",
        "An agent was deleted, with its proposals and questions (its log stays).",
        {"name": "its name"},
    ),
    "agent.log_deleted": _kind(
        "agent", "An agent's whole log was deleted.", {"chunks": "how many chunks"}
    ),
    # --- API tokens (a run's token is the system's, made with its run: not on the feed) ---
    "api_token.created": _kind(
        "api_token",
        "An API token was made for a tool or a person (its secret is never on the feed).",
        {"name": "its name", "kind": "tool or person"},
        {"person_id": "the person a personal token acts for"},
    ),
    "api_token.revoked": _kind(
        "api_token", "An API token was revoked: it never authenticates again.", {"name": "its name"}
    ),
    # --- accounts ---
    "account.created": _kind(
        "account",
        "A provider account was added to the rotation.",
        {"provider": "its provider", "email": "its login"},
    ),
    "account.updated": _kind(
        "account",
        "An account's fields changed (a secret given counts as changed; its value is never "
        "on the feed).",
        _FIELDS,
    ),
    "account.deleted": _kind(
        "account", "An account was deleted.", {"provider": "its provider", "email": "its login"}
    ),
    "account.claimed": _kind(
        "account",
        "An account was claimed (for an agent).",
        {"provider": "its provider"},
        {"agent_id": "the agent registered with it"},
    ),
    "account.exhausted": _kind(
        "account", "An account was parked (rate-limited).", {"until": "when it is usable again"}
    ),
    "account.released": _kind("account", "A parked account was put back in the rotation."),
    # --- runs and budgets ---
    "run.started": _kind(
        "run",
        "A runner took a task: its run started, with its agent and account.",
        {
            "task_id": "its task",
            "agent_id": "the agent registered for it",
            "account_id": "the account claimed for it",
            "attempt": "its attempt number (1 for the first)",
            "runner_name": "the runner that holds it",
        },
        {
            "resumed_from": "the run it resumes (a resume only)",
            "session_number": "the agent's session number (a resume only)",
        },
    ),
    "run.resumed": _kind(
        "run",
        "A restarted runner resumed a live run: it ended crashed, and its next run (same "
        "task, agent, account and CLI session) started.",
        {
            "task_id": "its task",
            "resumed_as": "the run that carries it on",
            "attempt": "the new run's attempt number",
            "session_number": "the new run's session number",
        },
    ),
    "run.finished": _kind(
        "run",
        "A run's runner reported it over: succeeded, failed, crashed or stopped.",
        {"task_id": "its task", "outcome": "how it ended", "exit_code": "its exit code (or null)"},
    ),
    "run.lost": _kind(
        "run",
        "A run sent no heartbeat within its timeout; the sweep took it back.",
        {"task_id": "its task", "heartbeat_at": "its last heartbeat"},
    ),
    "run.reported": _kind(
        "run",
        "A run's runner reported its process, worktree, CLI session or start commits.",
        {
            "task_id": "its task",
            "fields": "the names of the run's fields whose values changed",
            "start_commits": "the commit each project started from, as reported",
        },
    ),
    "run.cancelled": _kind("run", "A person cancelled a run.", {"task_id": "its task"}),
    "run.budget_stopped": _kind(
        "run",
        "A budget was spent: the run was stopped at its heartbeat.",
        {"task_id": "its task", "budget_ids": "the budgets spent"},
    ),
    "budget.warned": _kind(
        "budget",
        "A budget's spending crossed its warning threshold.",
        {
            "spent": "what its scope spent (tokens or micro-dollars)",
            "limit": "its limit",
            "warn_percent": "its threshold, in percent of the limit",
            "run_id": "the run whose usage crossed it",
        },
    ),
    "budget.created": _kind(
        "budget",
        "A person set a budget.",
        {
            "scope_type": "what it caps (all, initiative, phase, task, account)",
            "scope_id": "the record capped (empty for everything)",
            "metric": "tokens or cost",
            "limit": "its limit",
        },
    ),
    "budget.updated": _kind(
        "budget", "A person raised, lowered, switched or changed a budget.", _FIELDS
    ),
    "budget.deleted": _kind(
        "budget",
        "A person lifted a budget.",
        {
            "scope_type": "what it capped",
            "scope_id": "the record capped (empty for everything)",
            "metric": "tokens or cost",
            "limit": "its limit",
        },
    ),
    "run_limit.created": _kind(
        "run_limit",
        "A person set a limit on live runs.",
        {
            "scope_type": "what it caps (all, initiative, account, runner)",
            "scope_id": "the record or runner capped (empty for everything)",
            "max_live": "the most live runs",
        },
    ),
    "run_limit.updated": _kind(
        "run_limit",
        "A person changed a limit on live runs.",
        {"from": "the most live runs before", "to": "the most live runs after"},
    ),
    "run_limit.deleted": _kind(
        "run_limit",
        "A person lifted a limit on live runs.",
        {
            "scope_type": "what it capped",
            "scope_id": "the record or runner capped (empty for everything)",
            "max_live": "the most live runs",
        },
    ),
    # --- messages and questions ---
    "message.sent": _kind(
        "message",
        "A message was sent.",
        {
            "recipient_type": "user or agent",
            "recipient_id": "the agent (null: a person)",
            "parent_id": "the message it replies to (or null)",
        },
    ),
    "message.read": _kind("message", "A pending message was marked read."),
    "message.updated": _kind("message", "A message was edited.", _FIELDS),
    "message.deleted": _kind(
        "message",
        "A message was deleted, with its replies.",
        {"reply_ids": "the replies deleted with it"},
    ),
    "question.asked": _kind(
        "conversation",
        "An agent asked another agent a question.",
        {"from_agent_id": "who asks", "to_agent_id": "who is asked"},
    ),
    "question.answered": _kind(
        "conversation",
        "A question was answered.",
        {"from_agent_id": "who asked", "to_agent_id": "who answered"},
    ),
    "question.updated": _kind(
        "conversation", "A question, or who asks whom about what, was edited.", _FIELDS
    ),
    "question.deleted": _kind(
        "conversation",
        "A question was deleted.",
        {"from_agent_id": "who asked", "to_agent_id": "who was asked"},
    ),
    # --- proposals and change sets ---
    "proposal.created": _kind(
        "proposal",
        "An agent proposed a change.",
        {"target_type": "page, phase or task", "target_id": "the record it changes (null: new)"},
    ),
    "proposal.updated": _kind("proposal", "A pending proposal was edited.", _FIELDS),
    "proposal.accepted": _kind(
        "proposal",
        "A person accepted a proposal; the records it created or changed each have their "
        "own event, with the same change_set_id.",
        {CHANGE_SET_ID: "the change set that records what the accept did"},
    ),
    "proposal.reopened": _kind(
        "proposal",
        "An accepted proposal is pending again: its change set was reverted.",
        {CHANGE_SET_ID: "the change set reverted", REVERTED: "true"},
    ),
    "proposal.dismissed": _kind("proposal", "A person dismissed a proposal."),
    "proposal.deleted": _kind(
        "proposal",
        "A proposal was deleted (a change set that accepted it stays).",
        {"target_type": "page, phase or task", "target_id": "the record it changed (or null)"},
    ),
    "change_set.reverted": _kind(
        "change_set",
        "A change set was reverted; each record it put back has its own event, with this "
        "change_set_id.",
        {
            "proposal_id": "the proposal it accepted (or null)",
            "chat_session_id": "the chat session it was made in (or null)",
        },
    ),
    # --- review comments ---
    "review_comment.created": _kind(
        "review_comment", "A review comment was added to a phase's diff.", _COMMENT
    ),
    "review_comment.updated": _kind(
        "review_comment", "A review comment was edited.", {**_COMMENT, **_FIELDS}
    ),
    "review_comment.resolved": _kind(
        "review_comment",
        "A review comment was resolved (by a person, or by completing the rework task it "
        "was handed to).",
        _COMMENT,
        {"task_id": "the rework task whose completion resolved it"},
    ),
    "review_comment.handed_over": _kind(
        "review_comment",
        "'Request changes' handed an open review comment to a rework task; it stays open "
        "until that task completes or a person resolves it.",
        {**_COMMENT, "task_id": "the rework task"},
    ),
    "review_comment.unresolved": _kind(
        "review_comment", "A resolved review comment was reopened.", _COMMENT
    ),
    "review_comment.deleted": _kind("review_comment", "A review comment was deleted.", _COMMENT),
    # --- chat ---
    "chat.opened": _kind(
        "chat_session",
        "A chat session was opened on a phase or task.",
        {
            "target_type": "phase or task",
            "target_id": "the phase or task",
            "agent_id": "the agent in the session (or null)",
        },
    ),
    "chat.updated": _kind("chat_session", "A chat session's agent changed.", _FIELDS),
    "chat.message_posted": _kind(
        "chat_message",
        "A message was posted in a chat session.",
        {
            "chat_session_id": "the session",
            "role": "user, assistant or system",
            CHANGE_SET_ID: "the change set an assistant's message applied (or null)",
        },
    ),
    "chat.closed": _kind(
        "chat_session",
        "A chat session was closed.",
        {"target_type": "phase or task", "target_id": "the phase or task"},
    ),
    "chat.deleted": _kind(
        "chat_session",
        "A chat session was deleted, with its messages.",
        {
            "target_type": "phase or task",
            "target_id": "the phase or task",
            "messages": "how many messages went with it",
        },
    ),
    "chat.message_deleted": _kind(
        "chat_message",
        "A message was deleted from a chat session.",
        {"chat_session_id": "the session"},
    ),
}


def event_record(
    kind: str,
    *,
    subject_type: str,
    subject_id: str,
    initiative_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Record an event in the caller's transaction, made by the actor the door named
    (``core.actors.current_actor``). An unknown kind, or a subject or ``data`` keys its
    kind does not list, is a programming error (``LookupError``): every kind is listed
    in ``EVENT_KINDS`` with what it carries."""
    check_event(kind, subject_type, data or {})
    with transaction.atomic():
        event = events.append(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            initiative_id=initiative_id,
            data=data,
            actor=current_actor().as_fields(),
        )
        live.notify(live.events_channel())
        return event


def check_event(kind: str, subject_type: str, data: Mapping[str, Any]) -> None:
    """Refuse (``LookupError``) an event its kind does not describe: an unknown kind,
    another subject, a ``data`` key missing or not listed."""
    spec = EVENT_KINDS.get(kind)
    if spec is None:
        raise LookupError(f"Unknown event kind {kind!r}; add it to core.events.EVENT_KINDS.")
    if subject_type not in spec.subject:
        raise LookupError(
            f"An event {kind!r} is about a {' or '.join(spec.subject)}, not a {subject_type!r}."
        )
    missing = sorted(set(spec.data) - set(data))
    unknown = sorted(set(data) - set(spec.data) - set(spec.optional))
    if missing or unknown:
        raise LookupError(
            f"The data of an event {kind!r} lacks {missing} or has unlisted keys {unknown}; "
            "change the event or its entry in core.events.EVENT_KINDS."
        )


def event_last_id() -> int:
    """The id of the newest committed event (0 when there is none): where a page that
    follows the feed from now on starts."""
    return events.last_id()


def event_list(
    *,
    after: int = 0,
    limit: int = DEFAULT_KEYSET_PAGE_SIZE,
    initiative_id: str | None = None,
    kinds: list[str] | None = None,
    wait: float = 0,
) -> list[Event]:
    """The next events after the cursor ``after``, oldest first; with ``wait`` (seconds,
    at most ``MAX_WAIT_SECONDS``) the call returns as soon as one commits, or empty when
    none has by then. An unknown kind is ``invalid_kind``. (``event_list_waiting`` is
    the same for an async caller: its wait holds no thread and no connection.)"""
    read = _reader(after=after, limit=limit, initiative_id=initiative_id, kinds=kinds)
    return live.read_when_found_sync(read, channel=live.events_channel(), wait=check_wait(wait))


async def event_list_waiting(
    *,
    after: int = 0,
    limit: int = DEFAULT_KEYSET_PAGE_SIZE,
    initiative_id: str | None = None,
    kinds: list[str] | None = None,
    wait: float = 0,
) -> list[Event]:
    """``event_list`` for an async caller (a long poll, a stream)."""
    read = _reader(after=after, limit=limit, initiative_id=initiative_id, kinds=kinds)
    return await live.read_when_found(read, channel=live.events_channel(), wait=check_wait(wait))


def _reader(
    *, after: int, limit: int, initiative_id: str | None, kinds: list[str] | None
) -> Callable[[], list[Event]]:
    unknown = sorted(set(kinds or ()) - set(EVENT_KINDS))
    if unknown:
        raise InvalidInput(
            f"Unknown event kind(s): {', '.join(unknown)}.",
            code="invalid_kind",
            details={"kinds": unknown, "allowed": sorted(EVENT_KINDS)},
        )
    return lambda: events.find_after(after, limit=limit, initiative_id=initiative_id, kinds=kinds)


def event_prune(*, older_than: timedelta) -> int:
    """Delete the events older than ``older_than``; how many were deleted."""
    return events.delete_older_than(timezone.now() - older_than)
