"""The messages API (tag ``messages``): send, reply (a person's gate for a message to a
person), pending for a person and requiring a response (which agree), mark read."""

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents.models import Message
from core.models import Event
from core.tokens import api_token_create
from tests.api.helpers import assert_error, post_json, url
from tests.factories import AgentFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def personal_client() -> Client:
    """A client with a personal token tied to a user: it acts as that person."""
    user = get_user_model().objects.create_user(username="ada", is_staff=True)
    _, clear = api_token_create(name="ada-laptop", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def test_an_agent_sends_a_question_to_people(api_client):
    agent = AgentFactory()
    response = post_json(
        api_client,
        url("send_message"),
        {
            "sender_type": "agent",
            "sender_id": agent.id,
            "recipient_type": "user",
            "type": "question",
            "content": "Which database?",
            "requires_response": True,
        },
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    message = Message.objects.get()
    assert body["id"] == message.id
    assert (body["status"], body["type"], body["parent_message_id"]) == (
        "pending",
        "question",
        None,
    )
    assert Event.objects.filter(kind="message.sent", subject_id=message.id).exists()
    assert api_client.get(url("retrieve_message", message_id=message.id)).json() == body


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"content": "   "}, 400, "empty_content"),
        ({"content": "a\x00"}, 422, "validation_error"),
        ({"recipient_type": "robot"}, 400, "invalid_recipient_type"),
        ({"sender_id": "nope"}, 404, "agent_not_found"),
        ({"sender_type": "user", "recipient_type": "agent"}, 400, "message_recipient_required"),
        ({}, 400, "message_sender_required"),
        ({"sender_type": "user", "sender_id": "no-such-agent"}, 404, "person_not_found"),
    ],
)
def test_send_refusals_write_nothing(api_client, fields, status, code):
    body = {"sender_type": "agent", "recipient_type": "user", "content": "hi", **fields}
    assert_error(post_json(api_client, url("send_message"), body), status, code)
    assert not Message.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("who", ["staff_client", "personal_client"])
def test_a_person_answers_a_question_and_it_is_no_longer_pending(who, request, api_client):
    client = request.getfixturevalue(who)
    agent = AgentFactory()
    question = MessageFactory(sender_id=agent.id, requires_response=True, type="question")
    response = post_json(
        client,
        url("reply_to_message", message_id=question.id),
        {"sender_type": "user", "content": "PostgreSQL."},
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert (body["recipient_type"], body["recipient_id"]) == ("agent", agent.id)
    assert body["parent_message_id"] == question.id
    question.refresh_from_db()
    assert question.status == "responded"
    assert api_client.get(url("list_messages_pending_for_person")).json()["total"] == 0
    assert api_client.get(url("list_messages_requiring_response")).json()["total"] == 0


def test_a_tool_token_replying_to_a_persons_message_is_person_required(api_client):
    question = MessageFactory(requires_response=True)
    response = post_json(
        api_client,
        url("reply_to_message", message_id=question.id),
        {"sender_type": "agent", "content": "I decide."},
    )
    assert_error(response, HTTPStatus.FORBIDDEN, "person_required")
    question.refresh_from_db()
    assert question.status == "pending"
    assert Message.objects.count() == 1


def test_a_tool_replies_to_a_message_addressed_to_its_agent(api_client):
    agent = AgentFactory()
    message = MessageFactory(sender_type="user", recipient_type="agent", recipient_id=agent.id)
    response = post_json(
        api_client,
        url("reply_to_message", message_id=message.id),
        {"sender_type": "agent", "sender_id": agent.id, "content": "Done."},
    )
    assert response.status_code == HTTPStatus.CREATED


def test_reply_refusals(api_client, staff_client):
    assert_error(
        post_json(
            staff_client,
            url("reply_to_message", message_id="nope"),
            {"sender_type": "user", "content": "x"},
        ),
        404,
        "message_not_found",
    )
    question = MessageFactory()
    assert_error(
        post_json(
            staff_client,
            url("reply_to_message", message_id=question.id),
            {"sender_type": "user", "content": " "},
        ),
        400,
        "empty_content",
    )
    assert Message.objects.count() == 1


def test_pending_and_requiring_response_lists_agree(api_client, staff_client):
    answered = MessageFactory(requires_response=True)
    info = MessageFactory()
    open_question = MessageFactory(requires_response=True)
    to_agent = MessageFactory(
        sender_type="user",
        recipient_type="agent",
        recipient_id=AgentFactory().id,
        requires_response=True,
    )
    post_json(
        staff_client,
        url("reply_to_message", message_id=answered.id),
        {"sender_type": "user", "content": "Yes."},
    )
    pending = api_client.get(url("list_messages_pending_for_person")).json()
    requiring = api_client.get(url("list_messages_requiring_response")).json()
    assert [m["id"] for m in pending["items"]] == [info.id, open_question.id]
    assert [m["id"] for m in requiring["items"]] == [open_question.id, to_agent.id]


def test_mark_message_read(api_client):
    message = MessageFactory()
    response = api_client.post(url("mark_message_read", message_id=message.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "read"
    assert api_client.get(url("list_messages_pending_for_person")).json()["total"] == 0
    assert_error(
        api_client.post(url("mark_message_read", message_id="nope")), 404, "message_not_found"
    )


@pytest.mark.parametrize(
    "name", ["list_messages_pending_for_person", "list_messages_requiring_response"]
)
def test_message_lists_cost_the_same_queries_at_1_and_100_items(api_client, name):
    MessageFactory(requires_response=True)
    api_client.get(url(name))
    with CaptureQueriesContext(connection) as one:
        api_client.get(url(name))
    for _ in range(99):
        MessageFactory(requires_response=True)
    with CaptureQueriesContext(connection) as hundred:
        assert api_client.get(url(name), {"limit": 200}).json()["total"] == 100
    assert len(hundred) == len(one)
