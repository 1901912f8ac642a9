"""The conversation services (``agents/services/conversations.py``): asking, answering
exactly once, and a bounded wait for pending questions."""

import threading
import time

import pytest

from agents import services
from agents.models import Conversation
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_conversation_ask_and_answer_record_their_events():
    asker, asked = f.AgentFactory(), f.AgentFactory()
    initiative = f.InitiativeFactory()
    conversation = services.conversation_ask(
        from_agent_id=asker.id,
        to_agent_id=asked.id,
        question="Which port?",
        initiative_id=initiative.id,
    )
    assert services.conversation_list_pending(agent_id=asked.id) == [conversation]
    answered = services.conversation_answer(conversation_id=conversation.id, answer="8000")
    assert (answered.status, answered.answer) == ("answered", "8000")
    assert services.conversation_list_pending(agent_id=asked.id) == []
    events = list(Event.objects.order_by("id"))
    assert [e.kind for e in events] == ["question.asked", "question.answered"]
    assert all(e.initiative_id == initiative.id for e in events)
    assert events[0].data == {"from_agent_id": asker.id, "to_agent_id": asked.id}


def test_a_second_answer_is_a_conflict_and_keeps_the_first():
    conversation = f.ConversationFactory()
    services.conversation_answer(conversation_id=conversation.id, answer="first")
    with pytest.raises(Conflict) as error:
        services.conversation_answer(conversation_id=conversation.id, answer="second")
    assert error.value.code == "conversation_already_answered"
    conversation.refresh_from_db()
    assert conversation.answer == "first"
    assert Event.objects.filter(kind="question.answered").count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"question": " "}, "empty_question"),
        ({"question": "a\x00"}, "invalid_value"),
        ({"to_agent_id": "nope"}, "agent_not_found"),
        ({"from_agent_id": "nope"}, "agent_not_found"),
    ],
)
def test_conversation_ask_refusals_write_nothing(fields, code):
    values = {
        "from_agent_id": f.AgentFactory().id,
        "to_agent_id": f.AgentFactory().id,
        "question": "Why?",
        **fields,
    }
    with pytest.raises((InvalidInput, NotFound)) as error:
        services.conversation_ask(**values)
    assert error.value.code == code
    assert not Conversation.objects.exists() and not Event.objects.exists()


def test_a_blank_answer_is_refused():
    conversation = f.ConversationFactory()
    with pytest.raises(InvalidInput) as error:
        services.conversation_answer(conversation_id=conversation.id, answer="  ")
    assert error.value.code == "empty_answer"


@pytest.mark.parametrize("wait", [-1, 30.5, True, "5"])
def test_a_wait_outside_0_to_30_seconds_is_refused(wait):
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        services.conversation_list_pending(agent_id=agent.id, wait=wait)
    assert error.value.code == "invalid_wait"


def test_pending_for_an_unknown_agent_is_not_found():
    with pytest.raises(NotFound):
        services.conversation_list_pending(agent_id="nope")


def test_a_wait_with_nothing_pending_returns_empty_after_the_wait():
    agent = f.AgentFactory()
    started = time.monotonic()
    assert services.conversation_list_pending(agent_id=agent.id, wait=0.3) == []
    assert 0.3 <= time.monotonic() - started < 5


@pytest.mark.django_db(transaction=True)
def test_a_wait_returns_as_soon_as_a_question_arrives():
    asker, asked = f.AgentFactory(), f.AgentFactory()

    def ask_later() -> None:
        try:
            time.sleep(0.4)
            services.conversation_ask(
                from_agent_id=asker.id, to_agent_id=asked.id, question="Ready?"
            )
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=ask_later)
    started = time.monotonic()
    thread.start()
    try:
        found = services.conversation_list_pending(agent_id=asked.id, wait=20)
    finally:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert [c.question for c in found] == ["Ready?"]
    assert elapsed < 10
