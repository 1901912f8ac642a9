"""The agents' records edited and deleted (what the admin's forms call): each records
its event, an edit that changes nothing records nothing, a refusal records nothing."""

import pytest

from agents import services
from agents.models import Agent, Conversation, Message
from core.errors import InvalidInput, NotFound
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db


def events() -> list[tuple[str, str, str, str | None, dict]]:
    return [
        (e.kind, e.subject_type, e.subject_id, e.initiative_id, e.data)
        for e in Event.objects.order_by("id")
    ]


def test_an_agent_registered_with_a_chosen_account_does_not_claim_it():
    account = f.AccountFactory()

    agent, claimed = services.agent_register(
        worktree_id="/wt", account_id=account.id, output_file_path="/wt/out.jsonl"
    )

    assert (agent.account_id, agent.output_file_path, claimed) == (
        account.id,
        "/wt/out.jsonl",
        None,
    )
    assert [kind for kind, *_ in events()] == ["agent.registered"]
    assert events()[0][4]["account_id"] == account.id


def test_an_agent_cannot_both_claim_and_be_given_an_account():
    account = f.AccountFactory()

    with pytest.raises(InvalidInput) as refused:
        services.agent_register(worktree_id="/wt", account_id=account.id, claim_account=True)

    assert refused.value.code == "invalid_field"
    assert (Agent.objects.count(), events()) == (0, [])


def test_agent_update_records_its_changed_fields_and_refuses_its_lifecycle():
    agent = f.AgentFactory(mode="execute")

    services.agent_update(agent_id=agent.id, mode="execute")  # no change
    services.agent_update(agent_id=agent.id, mode="plan", worktree_id="/elsewhere")
    for refused in ({"status": "running"}, {"pid": 1}, {"mode": "dance"}):
        with pytest.raises(InvalidInput):
            services.agent_update(agent_id=agent.id, **refused)

    assert events() == [
        (
            "agent.updated",
            "agent",
            agent.id,
            agent.initiative_id,
            {"fields": ["worktree_id", "mode"]},
        )
    ]


def test_agent_delete_records_agent_deleted():
    agent = f.AgentFactory(name="brave-otter")

    services.agent_delete(agent_id=agent.id)
    with pytest.raises(NotFound):
        services.agent_delete(agent_id=agent.id)

    assert events() == [
        ("agent.deleted", "agent", agent.id, agent.initiative_id, {"name": "brave-otter"})
    ]


def test_a_message_sent_in_a_thread_names_its_parent():
    parent = f.MessageFactory()

    message = services.message_send(
        sender_type="user",
        recipient_type="agent",
        recipient_id=f.AgentFactory().id,
        content="And another thing.",
        parent_message_id=parent.id,
    )
    with pytest.raises(NotFound):
        services.message_send(
            sender_type="user", recipient_type="user", content="x", parent_message_id="gone"
        )

    assert message.parent_message_id == parent.id
    assert [(kind, data["parent_id"]) for kind, _t, _s, _i, data in events()] == [
        ("message.sent", parent.id)
    ]


def test_message_update_and_delete_record_their_events():
    message = f.MessageFactory(content="Old")
    reply = f.MessageFactory(parent_message=message)
    reply_to_reply = f.MessageFactory(parent_message=reply)

    services.message_update(message_id=message.id, content="Old")  # no change
    services.message_update(message_id=message.id, content="New", requires_response=True)
    with pytest.raises(InvalidInput):
        services.message_update(message_id=message.id, status="read")
    services.message_delete(message_id=message.id)
    with pytest.raises(NotFound):
        services.message_delete(message_id=message.id)

    assert events() == [
        (
            "message.updated",
            "message",
            message.id,
            None,
            {"fields": ["content", "requires_response"]},
        ),
        (
            "message.deleted",
            "message",
            message.id,
            None,
            {"reply_ids": [reply.id, reply_to_reply.id]},
        ),
    ]
    assert not Message.objects.exists()


def test_conversation_update_and_delete_record_question_events():
    conversation = f.ConversationFactory(question="Which port?")
    where = ("conversation", conversation.id, conversation.initiative_id)

    services.conversation_update(conversation_id=conversation.id, question="Which port?")
    services.conversation_update(conversation_id=conversation.id, question="Which host?")
    with pytest.raises(InvalidInput):
        services.conversation_update(conversation_id=conversation.id, answer="8080")
    services.conversation_delete(conversation_id=conversation.id)
    with pytest.raises(NotFound):
        services.conversation_delete(conversation_id=conversation.id)

    assert events() == [
        ("question.updated", *where, {"fields": ["question"]}),
        (
            "question.deleted",
            *where,
            {
                "from_agent_id": conversation.from_agent_id,
                "to_agent_id": conversation.to_agent_id,
            },
        ),
    ]
    assert not Conversation.objects.exists()
