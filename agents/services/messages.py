"""What may happen to messages between agents and people: sent, replied to, read.

A reply marks the message it answers ``responded`` in the same transaction, and a
message that has been answered is in neither "pending for a person" nor "requiring a
response" (``MessageRepository.unanswered``). A person's answer to an agent waiting
for input puts the agent back to running once none of its questions waits any more
(``agent_mark_running``), so its page, the dashboard and ``cw_status`` stop saying
it waits. Answering a message addressed to a person
is a person's gate (``require_person``).
"""

from typing import Any

from django.db import transaction
from typing_extensions import Unpack

from agents.models import AgentStatus, Message, MessageStatus, MessageType, ParticipantType
from agents.repositories import AgentRepository, MessageChanges, MessageRepository
from agents.services.agents import agent_mark_running
from core.actors import Actor, require_person
from core.errors import InvalidInput
from core.events import event_record
from core.repositories.people import PersonRepository
from core.services.feed import RecordFeed, apply_update, record_all, snapshot

agents = AgentRepository()
messages = MessageRepository()
people = PersonRepository()


def _reply_ids(values: Any) -> dict[str, Any]:
    """The replies a message's delete takes along, at every depth, oldest first."""
    found: list[str] = []
    level = [values["id"]]
    while level:
        level = [reply.pk for pk in level for reply in messages.find_replies(pk)]
        found.extend(level)
    return {"reply_ids": found}


#: A message's edits and deletion on the feed (its sending is ``message.sent``).
MESSAGES = RecordFeed("message", deleted_data=_reply_ids, initiative_column=None)


def _check_participant(role: str, kind: str, participant_id: str | None) -> None:
    """An agent participant names an existing agent (``agent_not_found``; left out,
    ``message_sender_required`` or ``message_recipient_required``); a person is named
    by an existing person's id (``person_not_found``) or not at all (the team)."""
    if kind != ParticipantType.AGENT:
        if participant_id is not None:
            people.require(participant_id)
        return
    if participant_id is None and role == "recipient":
        raise InvalidInput(
            "A message to an agent names the agent (recipient_id).",
            code="message_recipient_required",
            details={"field": "recipient_id"},
        )
    if participant_id is None:
        raise InvalidInput(
            "A message from an agent names the agent (sender_id).",
            code="message_sender_required",
            details={"field": "sender_id"},
        )
    agents.require(participant_id)


def _check_participants(message: Message, changes: dict[str, Any]) -> None:
    """The sender and recipient an edit leaves a message with are checked as a new
    message's are."""
    for role in ("sender", "recipient"):
        if f"{role}_type" in changes or f"{role}_id" in changes:
            kind = changes.get(f"{role}_type", getattr(message, f"{role}_type"))
            named = changes.get(f"{role}_id", getattr(message, f"{role}_id"))
            _check_participant(role, kind, named)


def _resume_if_answered(message: Message) -> None:
    """A person answered an agent (``message``, a response to it): an agent waiting for
    input runs again once no message of its to people waits for an answer."""
    if not (
        message.sender_type == ParticipantType.USER
        and message.recipient_type == ParticipantType.AGENT
        and message.type == MessageType.RESPONSE
        and message.recipient_id
    ):
        return
    agent = agents.get_for_update(message.recipient_id)
    if agent.status != AgentStatus.WAITING_FOR_INPUT:
        return
    if messages.agent_awaits_person(agent.pk):
        return
    agent_mark_running(agent_id=agent.pk)


def _record_sent(message: Message) -> None:
    event_record(
        "message.sent",
        subject_type="message",
        subject_id=message.pk,
        data={
            "recipient_type": message.recipient_type,
            "recipient_id": message.recipient_id,
            "parent_id": message.parent_message_id,
        },
    )


@transaction.atomic
def message_send(
    *,
    sender_type: str,
    recipient_type: str,
    content: str,
    sender_id: str | None = None,
    recipient_id: str | None = None,
    type: str = MessageType.INFO,
    requires_response: bool = False,
    parent_message_id: str | None = None,
) -> Message:
    """Send a message (pending), in a thread under ``parent_message_id`` when given
    (``message_not_found`` when there is no such message; a reply that answers it is
    ``message_reply``); records ``message.sent``. Blank content is ``empty_content``; an
    agent participant that does not exist is ``agent_not_found``."""
    _check_participant("sender", sender_type, sender_id)
    _check_participant("recipient", recipient_type, recipient_id)
    if parent_message_id is not None:
        messages.require(parent_message_id)
    message = messages.create(
        sender_type=sender_type,
        sender_id=sender_id,
        recipient_type=recipient_type,
        recipient_id=recipient_id,
        type=type,
        content=content,
        requires_response=requires_response,
        parent_message_id=parent_message_id,
    )
    _record_sent(message)
    _resume_if_answered(message)
    return message


@transaction.atomic
def message_reply(
    *,
    message_id: str,
    sender_type: str,
    content: str,
    sender_id: str | None = None,
    actor: Actor | None = None,
) -> Message:
    """Reply to a message: the reply (type ``response``) goes to the message's sender,
    and the message is marked ``responded`` in the same transaction; records
    ``message.sent``. A person's reply to a waiting agent may put it back to running
    (see the module docstring).

    Replying to a message addressed to a person is a person's gate: anyone else gets
    403 ``person_required``.
    """
    parent = messages.get_for_update(message_id)
    if parent.recipient_type == ParticipantType.USER:
        require_person(actor, "answer a message addressed to a person")
    _check_participant("sender", sender_type, sender_id)
    reply = messages.create(
        sender_type=sender_type,
        sender_id=sender_id,
        recipient_type=parent.sender_type,
        recipient_id=parent.sender_id,
        type=MessageType.RESPONSE,
        content=content,
        parent_message=parent,
    )
    messages.mark_responded(parent.pk)
    _record_sent(reply)
    _resume_if_answered(reply)
    return reply


@transaction.atomic
def message_update(*, message_id: str, **changes: Unpack[MessageChanges]) -> Message:
    """Change a message's fields (its status moves only by reading and replying: it is
    ``invalid_field`` here); its sender and recipient are checked as ``message_send``
    checks them. Records ``message.updated`` with the fields that changed (nothing when
    none did)."""
    message = messages.get_for_update(message_id)
    _check_participants(message, dict(changes))
    return apply_update(MESSAGES, messages, message, changes)


@transaction.atomic
def message_delete(*, message_id: str) -> None:
    """Delete a message with its replies (``message_not_found`` when there is none);
    records ``message.deleted`` naming the replies that went with it."""
    message = messages.get_for_update(message_id)
    events = MESSAGES.deleted(snapshot(message))
    messages.delete(message.pk)
    record_all(events)


@transaction.atomic
def message_mark_read(*, message_id: str) -> Message:
    """Mark a pending message read (one already read or responded to stays as it is);
    records ``message.read`` when it was pending."""
    was_pending = messages.get_for_update(message_id).status == MessageStatus.PENDING
    message = messages.mark_read(message_id)
    if was_pending and message.status == MessageStatus.READ:
        event_record("message.read", subject_type="message", subject_id=message.pk)
    return message
