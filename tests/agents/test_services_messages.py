"""The message services (``agents/services/messages.py``): sending, replying (which marks
the message responded, and is a person's gate for a message to a person), and the one
rule that an answered message is never pending."""

import pytest
from django.contrib.auth import get_user_model

from agents import services
from agents.models import Message, MessageStatus
from agents.repositories import MessageRepository
from core.actors import Actor
from core.errors import InvalidInput, NotFound, PermissionRequired
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db

messages = MessageRepository()


@pytest.fixture
def person() -> Actor:
    return Actor.person(get_user_model().objects.create_user(username="lead", is_staff=True))


def test_message_send_records_message_sent():
    agent = f.AgentFactory()
    message = services.message_send(
        sender_type="agent",
        sender_id=agent.id,
        recipient_type="user",
        type="question",
        content="Which database?",
        requires_response=True,
    )
    assert message.status == MessageStatus.PENDING
    event = Event.objects.get(kind="message.sent")
    assert event.subject_id == message.id
    assert event.data == {"recipient_type": "user", "recipient_id": None, "parent_id": None}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": "  "}, "empty_content"),
        ({"content": "a\x00b"}, "invalid_value"),
        ({"sender_id": "nope"}, "agent_not_found"),
        ({"recipient_type": "agent", "recipient_id": None}, "message_recipient_required"),
        ({"recipient_type": "agent", "recipient_id": "nope"}, "agent_not_found"),
    ],
)
def test_message_send_refusals_write_nothing(fields, code):
    agent = f.AgentFactory()
    values = {
        "sender_type": "agent",
        "sender_id": agent.id,
        "recipient_type": "user",
        "content": "hello",
        **fields,
    }
    with pytest.raises((InvalidInput, NotFound)) as error:
        services.message_send(**values)
    assert error.value.code == code
    assert not Message.objects.exists() and not Event.objects.exists()


def test_a_persons_reply_marks_the_question_responded_in_the_same_call(person):
    agent = f.AgentFactory()
    question = f.MessageFactory(sender_id=agent.id, requires_response=True, type="question")
    reply = services.message_reply(
        message_id=question.id, sender_type="user", content="PostgreSQL.", actor=person
    )
    question.refresh_from_db()
    assert question.status == MessageStatus.RESPONDED
    assert (reply.recipient_type, reply.recipient_id, reply.type) == ("agent", agent.id, "response")
    assert reply.parent_message_id == question.id
    assert Event.objects.get(kind="message.sent").data["parent_id"] == question.id


def test_a_tool_cannot_answer_a_message_addressed_to_a_person():
    question = f.MessageFactory(requires_response=True)
    with pytest.raises(PermissionRequired) as error:
        services.message_reply(
            message_id=question.id,
            sender_type="agent",
            content="I decide.",
            actor=Actor.tool("bot"),
        )
    assert error.value.code == "person_required"
    question.refresh_from_db()
    assert question.status == MessageStatus.PENDING
    assert Message.objects.count() == 1 and not Event.objects.exists()


def test_a_tool_may_answer_a_message_addressed_to_an_agent():
    agent = f.AgentFactory()
    message = f.MessageFactory(sender_type="user", recipient_type="agent", recipient_id=agent.id)
    reply = services.message_reply(
        message_id=message.id, sender_type="agent", sender_id=agent.id, content="On it."
    )
    assert reply.recipient_type == "user"


def test_reply_to_an_unknown_message_is_not_found(person):
    with pytest.raises(NotFound) as error:
        services.message_reply(message_id="nope", sender_type="user", content="x", actor=person)
    assert error.value.code == "message_not_found"


def test_pending_and_requiring_response_agree_an_answered_message_is_in_neither(person):
    answered = f.MessageFactory(requires_response=True)
    replied_elsewhere = f.MessageFactory(requires_response=True)
    open_question = f.MessageFactory(requires_response=True)
    services.message_reply(message_id=answered.id, sender_type="user", content="Yes.", actor=person)
    # A reply written without the service still answers its message.
    messages.create(
        sender_type="user",
        recipient_type="agent",
        content="No.",
        parent_message_id=replied_elsewhere.id,
    )
    assert messages.find_pending_for_user() == [open_question]
    assert messages.find_requiring_response() == [open_question]


def test_message_mark_read_leaves_pending_but_keeps_requiring_response():
    question = f.MessageFactory(requires_response=True)
    assert services.message_mark_read(message_id=question.id).status == MessageStatus.READ
    assert messages.find_pending_for_user() == []
    assert messages.find_requiring_response() == [question]


def test_message_mark_read_records_message_read_once():
    message = f.MessageFactory()

    services.message_mark_read(message_id=message.id)
    services.message_mark_read(message_id=message.id)  # already read: nothing changes
    with pytest.raises(NotFound):
        services.message_mark_read(message_id="missing")

    assert list(Event.objects.values_list("kind", "subject_type", "subject_id", "data")) == [
        ("message.read", "message", message.id, {})
    ]


def test_marking_a_responded_message_read_records_nothing():
    message = f.MessageFactory(status=MessageStatus.RESPONDED)

    assert services.message_mark_read(message_id=message.id).status == MessageStatus.RESPONDED
    assert not Event.objects.exists()


# --- who a message is from ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"sender_id": "no-such-agent"}, NotFound, "agent_not_found"),
        ({"sender_id": None}, InvalidInput, "message_sender_required"),
        ({"sender_type": "user", "sender_id": "no-such-agent"}, NotFound, "person_not_found"),
    ],
)
def test_a_message_edited_to_name_no_sender_is_refused(changes, error, code):
    agent = f.AgentFactory()
    message = services.message_send(
        sender_type="agent", sender_id=agent.pk, recipient_type="user", content="Hi"
    )

    with pytest.raises(error) as refused:
        services.message_update(message_id=message.pk, **changes)

    assert refused.value.code == code
    message.refresh_from_db()
    assert (message.sender_type, message.sender_id) == ("agent", agent.pk)


def test_a_message_from_a_person_names_an_existing_person_or_nobody():
    lead = get_user_model().objects.create_user(username="lead")

    named = services.message_send(
        sender_type="user", sender_id=str(lead.pk), recipient_type="user", content="Hi"
    )
    team = services.message_send(sender_type="user", recipient_type="user", content="Hi")

    assert (named.sender_id, team.sender_id) == (str(lead.pk), None)
    with pytest.raises(NotFound) as refused:
        services.message_send(
            sender_type="user", sender_id=str(lead.pk + 1), recipient_type="user", content="Hi"
        )
    assert refused.value.code == "person_not_found"
