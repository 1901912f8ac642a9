"""The conversations API (tag ``conversations``): ask, pending questions with a bounded
wait, answer exactly once."""

import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import services
from agents.models import Conversation
from core.models import Event
from tests.api.helpers import assert_error, post_json, url
from tests.factories import AgentFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def test_ask_then_answer_once(api_client):
    asker, asked = AgentFactory(), AgentFactory()
    response = post_json(
        api_client,
        url("ask_question"),
        {"from_agent_id": asker.id, "to_agent_id": asked.id, "question": "Which port?"},
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    conversation = response.json()
    assert (conversation["status"], conversation["answer"]) == ("pending", None)
    pending = api_client.get(url("list_pending_questions", agent_id=asked.id)).json()
    assert [c["id"] for c in pending] == [conversation["id"]]

    path = url("answer_question", conversation_id=conversation["id"])
    response = post_json(api_client, path, {"answer": "8000"})
    assert response.status_code == HTTPStatus.OK
    assert (response.json()["status"], response.json()["answer"]) == ("answered", "8000")
    assert_error(
        post_json(api_client, path, {"answer": "9000"}), 409, "conversation_already_answered"
    )
    retrieved = api_client.get(url("retrieve_conversation", conversation_id=conversation["id"]))
    assert retrieved.json()["answer"] == "8000"
    assert api_client.get(url("list_pending_questions", agent_id=asked.id)).json() == []
    assert list(Event.objects.order_by("id").values_list("kind", flat=True)) == [
        "question.asked",
        "question.answered",
    ]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"question": "  "}, 400, "empty_question"),
        ({"question": "a\x00"}, 422, "validation_error"),
        ({"to_agent_id": "nope"}, 404, "agent_not_found"),
        ({"extra": 1}, 422, "validation_error"),
    ],
)
def test_ask_refusals_write_nothing(api_client, fields, status, code):
    body = {
        "from_agent_id": AgentFactory().id,
        "to_agent_id": AgentFactory().id,
        "question": "Why?",
        **fields,
    }
    assert_error(post_json(api_client, url("ask_question"), body), status, code)
    assert not Conversation.objects.exists() and not Event.objects.exists()


def test_answer_refusals(api_client):
    assert_error(
        post_json(api_client, url("answer_question", conversation_id="nope"), {"answer": "x"}),
        404,
        "conversation_not_found",
    )
    conversation = ConversationFactory()
    assert_error(
        post_json(
            api_client, url("answer_question", conversation_id=conversation.id), {"answer": " "}
        ),
        400,
        "empty_answer",
    )
    conversation.refresh_from_db()
    assert conversation.status == "pending"


def test_pending_questions_refuse_a_wait_above_30_seconds(api_client):
    agent = AgentFactory()
    path = url("list_pending_questions", agent_id=agent.id)
    # The schema refuses it with the code the service gives the same refusal.
    assert_error(api_client.get(path, {"wait": 31}), 400, "invalid_wait")
    assert_error(api_client.get(path, {"wait": -1}), 400, "invalid_wait")
    assert_error(
        api_client.get(url("list_pending_questions", agent_id="nope")), 404, "agent_not_found"
    )


def test_pending_questions_cost_the_same_queries_at_1_and_100(api_client):
    asked = AgentFactory()
    ConversationFactory(to_agent=asked)
    path = url("list_pending_questions", agent_id=asked.id)
    api_client.get(path)
    with CaptureQueriesContext(connection) as one:
        api_client.get(path)
    for _ in range(99):
        ConversationFactory(to_agent=asked)
    with CaptureQueriesContext(connection) as hundred:
        assert len(api_client.get(path).json()) == 100
    assert len(hundred) == len(one)


@pytest.mark.django_db(transaction=True)
def test_a_waiting_call_returns_as_soon_as_a_question_arrives(api_client):
    asker, asked = AgentFactory(), AgentFactory()

    def ask_later() -> None:
        try:
            time.sleep(0.5)
            services.conversation_ask(
                from_agent_id=asker.id, to_agent_id=asked.id, question="Ready?"
            )
        finally:
            connection.close()

    thread = threading.Thread(target=ask_later)
    started = time.monotonic()
    thread.start()
    try:
        response = api_client.get(url("list_pending_questions", agent_id=asked.id), {"wait": 20})
    finally:
        thread.join(10)
    assert response.status_code == HTTPStatus.OK
    assert [c["question"] for c in response.json()] == ["Ready?"]
    assert time.monotonic() - started < 10
