"""Chat: a person refines one phase or task with an agent, in a session of messages.

A target has at most one active session (the database's partial unique index decides,
so two racing openers share one session). An assistant message may name the change set
it applied; that change set is reverted through ``change_set_revert`` like any other.
"""

from django.db import transaction

from core.errors import Conflict, InvalidInput
from core.events import event_record
from core.repositories import check_choice
from reviews.models import ChatMessage, ChatRole, ChatSession, ChatTargetType
from reviews.repositories import ChatSessionRepository, target_initiative_id

sessions = ChatSessionRepository()


@transaction.atomic
def chat_session_open(
    *, target_type: str, target_id: str, agent_id: str | None = None
) -> tuple[ChatSession, bool]:
    """The active session on a phase or task, opening one when there is none; returns
    it and whether this call opened it.

    A session already active is returned as it is (its agent unchanged). Of two callers
    racing to open the first session, one opens it and the other gets it. Refuses an
    unknown target type (``invalid_target_type``), a missing target or agent (NotFound)
    and a task in no initiative (``chat_target_without_initiative``).
    """
    check_choice(ChatTargetType, target_type, "target_type")
    initiative_id = target_initiative_id(target_type, target_id)
    if initiative_id is None:
        raise InvalidInput(
            f"Task '{target_id}' belongs to no initiative: a chat session needs one.",
            code="chat_target_without_initiative",
            details={"target_type": target_type, "target_id": str(target_id)},
        )
    active = sessions.find_active_session(target_type, target_id)
    if active is not None:
        return active, False
    try:
        session = _create(target_type, target_id, initiative_id, agent_id)
    except Conflict as error:
        # Another caller opened it since we looked: theirs is the one active session.
        if error.code != "chat_session_already_active":
            raise
        active = sessions.find_active_session(target_type, target_id)
        if active is None:
            raise
        return active, False
    return session, True


@transaction.atomic
def chat_session_create(
    *,
    target_type: str,
    target_id: str,
    initiative_id: str | None = None,
    agent_id: str | None = None,
) -> ChatSession:
    """Open a session on a phase or task that has no active one (a person's add form):
    where ``chat_session_open`` answers the active session, this refuses it (Conflict
    ``chat_session_already_active``), and a given ``initiative_id`` must be the
    target's (``chat_target_other_initiative``). Records ``chat.opened``."""
    check_choice(ChatTargetType, target_type, "target_type")
    return _create(
        target_type,
        target_id,
        initiative_id or target_initiative_id(target_type, target_id),
        agent_id,
    )


def _create(
    target_type: str, target_id: str, initiative_id: str | None, agent_id: str | None
) -> ChatSession:
    if initiative_id is None:
        raise InvalidInput(
            f"Task '{target_id}' belongs to no initiative: a chat session needs one.",
            code="chat_target_without_initiative",
            details={"target_type": target_type, "target_id": str(target_id)},
        )
    session = sessions.create_session(
        target_type=target_type,
        target_id=target_id,
        initiative_id=initiative_id,
        agent_id=agent_id,
    )
    event_record(
        "chat.opened",
        subject_type="chat_session",
        subject_id=session.pk,
        initiative_id=initiative_id,
        data={"target_type": target_type, "target_id": target_id, "agent_id": agent_id},
    )
    return session


@transaction.atomic
def chat_session_update(*, session_id: str, agent_id: str | None) -> ChatSession:
    """Put another agent (or none) in a session; records ``chat.updated`` (nothing when
    it is the agent already there). A missing session or agent is NotFound."""
    session = sessions.get_for_update(session_id)
    before = session.agent_id
    sessions.update_session(session, agent_id=agent_id)
    if session.agent_id != before:
        event_record(
            "chat.updated",
            subject_type="chat_session",
            subject_id=session.pk,
            initiative_id=session.initiative_id,
            data={"fields": ["agent_id"]},
        )
    return session


@transaction.atomic
def chat_message_post(
    *, session_id: str, role: str, content: str, change_set_id: str | None = None
) -> ChatMessage:
    """Append a message to an active session and record ``chat.message_posted``.

    Only an assistant message may name a change set (the one it applied), of the
    session's initiative. Refuses an unknown role, blank content, a missing session or
    change set, a change set on another role's message (``chat_change_set_not_assistant``)
    or of another initiative, and a closed session (Conflict ``chat_session_closed``).
    """
    check_choice(ChatRole, role, "role")
    if change_set_id is not None and role != ChatRole.ASSISTANT:
        raise InvalidInput(
            "Only an assistant message may name the change set it applied.",
            code="chat_change_set_not_assistant",
            details={"role": role, "change_set_id": str(change_set_id)},
        )
    message = sessions.create_message(
        chat_session_id=session_id, role=role, content=content, change_set_id=change_set_id
    )
    event_record(
        "chat.message_posted",
        subject_type="chat_message",
        subject_id=message.pk,
        initiative_id=sessions.initiative_id_of(session_id),
        data={"chat_session_id": session_id, "role": role, "change_set_id": change_set_id},
    )
    return message


@transaction.atomic
def chat_session_close(*, session_id: str) -> ChatSession:
    """Close an active session, exactly once (Conflict ``chat_session_closed`` when it is
    closed already), and record ``chat.closed``. The target may then get a new one."""
    session = sessions.close_session(session_id)
    event_record(
        "chat.closed",
        subject_type="chat_session",
        subject_id=session.pk,
        initiative_id=session.initiative_id,
        data={"target_type": session.target_type, "target_id": session.target_id},
    )
    return session


@transaction.atomic
def chat_session_delete(*, session_id: str) -> None:
    """Delete a session with its messages (``chat_session_not_found`` when there is
    none; a change set it made stays, unlinked); records ``chat.deleted``."""
    session = sessions.get_for_update(session_id)
    messages = sessions.count_messages(session.pk)
    sessions.delete_session(session.pk)
    event_record(
        "chat.deleted",
        subject_type="chat_session",
        subject_id=session.pk,
        initiative_id=session.initiative_id,
        data={
            "target_type": session.target_type,
            "target_id": session.target_id,
            "messages": messages,
        },
    )


@transaction.atomic
def chat_message_delete(*, message_id: str) -> None:
    """Delete one message of a session's transcript (``chat_message_not_found`` when
    there is none); records ``chat.message_deleted``."""
    message = sessions.get_message(message_id)
    initiative_id = sessions.initiative_id_of(message.chat_session_id)
    sessions.delete_message(message.pk)
    event_record(
        "chat.message_deleted",
        subject_type="chat_message",
        subject_id=message.pk,
        initiative_id=initiative_id,
        data={"chat_session_id": message.chat_session_id},
    )
