"""The chat API over HTTP: open or get a session, retrieve it, list and post messages, close."""

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import Event
from core.repositories import MAX_KEYSET_PAGE_SIZE
from core.tokens import api_token_create
from reviews.models import ChangeSetStatus, ChatMessage, ChatSession
from tests import factories as f
from tests.api.helpers import as_json as iso
from tests.api.helpers import assert_error, post_json, url

pytestmark = pytest.mark.django_db

#: The chat operations docs/api.md specifies, by operation name (the handler's).
CHAT_OPERATIONS = {
    "open_chat_session": ("post", "/api/chat-sessions"),
    "retrieve_chat_session": ("get", "/api/chat-sessions/{session_id}"),
    "list_chat_messages": ("get", "/api/chat-sessions/{session_id}/messages"),
    "post_chat_message": ("post", "/api/chat-sessions/{session_id}/messages"),
    "close_chat_session": ("post", "/api/chat-sessions/{session_id}/close"),
}


# --- helpers -------------------------------------------------------------------------------


def session_body(session: ChatSession) -> dict[str, Any]:
    session.refresh_from_db()
    return {
        "id": session.id,
        "target_type": session.target_type,
        "target_id": session.target_id,
        "initiative_id": session.initiative_id,
        "agent_id": session.agent_id,
        "status": session.status,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
    }


def message_body(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "chat_session_id": message.chat_session_id,
        "role": message.role,
        "content": message.content,
        "change_set_id": message.change_set_id,
        "created_at": iso(message.created_at),
    }


@pytest.fixture
def phase():
    return f.PhaseFactory()


@pytest.fixture
def session(api_client, phase) -> ChatSession:
    response = post_json(
        api_client, url("open_chat_session"), {"target_type": "phase", "target_id": phase.id}
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    return ChatSession.objects.get(pk=response.json()["id"])


def post_message(client: Client, session: ChatSession, **body: Any) -> Any:
    return post_json(client, url("post_chat_message", session_id=session.id), body)


# --- the document and authentication ----------------------------------------------------------


def test_openapi_lists_every_chat_operation_with_its_errors_and_tag():
    document = Client().get("/api/openapi.json").json()

    for name, (method, path) in CHAT_OPERATIONS.items():
        operation = document["paths"][path][method]
        assert operation["operationId"].endswith(name), (name, operation["operationId"])
        assert operation["tags"] == ["chat"]
        assert operation["summary"]
        assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert {"200", "201"} <= set(document["paths"]["/api/chat-sessions"]["post"]["responses"])


@pytest.mark.parametrize("name", sorted(CHAT_OPERATIONS))
def test_every_chat_operation_requires_authentication(name):
    method, path = CHAT_OPERATIONS[name]
    response = Client().generic(method.upper(), path.replace("{session_id}", "x"))
    assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")


# --- open, retrieve, close ---------------------------------------------------------------------


def test_open_answers_201_with_a_new_session_then_200_with_the_same_one(api_client, phase):
    agent = f.AgentFactory()
    body = {"target_type": "phase", "target_id": phase.id, "agent_id": agent.id}

    first = post_json(api_client, url("open_chat_session"), body)
    second = post_json(api_client, url("open_chat_session"), body)

    assert first.status_code == HTTPStatus.CREATED
    session = ChatSession.objects.get()
    assert first.json() == session_body(session)
    assert session.agent_id == agent.id
    assert (second.status_code, second.json()) == (HTTPStatus.OK, session_body(session))


def test_staff_session_opens_a_session_on_a_task(staff_client, phase):
    task = f.TaskFactory(phase=phase)

    response = post_json(
        staff_client, url("open_chat_session"), {"target_type": "task", "target_id": task.id}
    )

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["initiative_id"] == phase.initiative_id


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"target_type": "phase", "target_id": "missing"}, 404, "phase_not_found"),
        ({"target_type": "task", "target_id": "missing"}, 404, "task_not_found"),
        ({"target_type": "page", "target_id": "x"}, 400, "invalid_target_type"),
        ({"target_type": "phase"}, 422, "validation_error"),
        ({"target_type": "phase", "target_id": "x", "extra": 1}, 422, "validation_error"),
        ({"target_type": "phase", "target_id": "a\u0000b"}, 422, "validation_error"),
    ],
)
def test_open_refusals(api_client, body, status, code):
    assert_error(post_json(api_client, url("open_chat_session"), body), status, code)
    assert ChatSession.objects.count() == 0


def test_open_with_an_unknown_agent_is_404_and_opens_nothing(api_client, phase):
    body = {"target_type": "phase", "target_id": phase.id, "agent_id": "missing"}
    assert_error(post_json(api_client, url("open_chat_session"), body), 404, "agent_not_found")
    assert ChatSession.objects.count() == 0


def test_open_on_a_task_in_no_initiative_is_400(api_client):
    task = f.TaskFactory(phase=None, initiative=None)
    body = {"target_type": "task", "target_id": task.id}
    assert_error(
        post_json(api_client, url("open_chat_session"), body),
        HTTPStatus.BAD_REQUEST,
        "chat_target_without_initiative",
    )


def test_retrieve_chat_session(api_client, session):
    response = api_client.get(url("retrieve_chat_session", session_id=session.id))
    assert (response.status_code, response.json()) == (HTTPStatus.OK, session_body(session))


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "retrieve_chat_session"),
        ("get", "list_chat_messages"),
        ("post", "close_chat_session"),
    ],
)
def test_unknown_chat_session_is_404(api_client, method, name):
    response = api_client.generic(method.upper(), url(name, session_id="missing"))
    assert_error(response, HTTPStatus.NOT_FOUND, "chat_session_not_found")


def test_close_answers_the_closed_session_once_then_409(api_client, session):
    response = api_client.post(url("close_chat_session", session_id=session.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == session_body(session)
    assert response.json()["status"] == "closed"
    assert_error(
        api_client.post(url("close_chat_session", session_id=session.id)),
        HTTPStatus.CONFLICT,
        "chat_session_closed",
    )
    assert list(Event.objects.filter(kind="chat.closed").values_list("subject_id", flat=True)) == [
        session.id
    ]


def test_after_close_open_answers_201_with_a_new_session(api_client, session):
    api_client.post(url("close_chat_session", session_id=session.id))
    body = {"target_type": session.target_type, "target_id": session.target_id}

    response = post_json(api_client, url("open_chat_session"), body)

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["id"] != session.id


# --- messages ----------------------------------------------------------------------------------


def test_post_message_answers_201_with_the_message(api_client, session):
    response = post_message(api_client, session, role="user", content="Split this phase.")

    assert response.status_code == HTTPStatus.CREATED
    assert response.json() == message_body(ChatMessage.objects.get())
    [event] = Event.objects.filter(kind="chat.message_posted")
    assert (event.subject_id, event.initiative_id) == (response.json()["id"], session.initiative_id)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"role": "user", "content": "  "}, 400, "empty_content"),
        ({"role": "robot", "content": "Hi"}, 400, "invalid_role"),
        ({"role": "user"}, 400, "empty_content"),
        ({"role": "user", "content": "Hi", "extra": True}, 422, "validation_error"),
        ({"role": "user", "content": "a\u0000b"}, 422, "validation_error"),
        ({"role": "user", "content": "x" * 1_000_001}, 422, "validation_error"),
        ({"role": "assistant", "content": "Hi", "change_set_id": "missing"}, 404, None),
    ],
)
def test_post_message_refusals_write_nothing(api_client, session, body, status, code):
    response = post_message(api_client, session, **body)

    assert_error(response, status, code or "change_set_not_found")
    assert ChatMessage.objects.count() == 0
    assert not Event.objects.filter(kind="chat.message_posted").exists()


def test_post_to_a_closed_session_is_409(api_client, session):
    api_client.post(url("close_chat_session", session_id=session.id))
    assert_error(
        post_message(api_client, session, role="user", content="Hello?"),
        HTTPStatus.CONFLICT,
        "chat_session_closed",
    )


def test_a_user_message_may_not_name_a_change_set(api_client, session):
    change_set = f.ChangeSetFactory(initiative_id=session.initiative_id)
    response = post_message(
        api_client, session, role="user", content="Mine", change_set_id=change_set.id
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, "chat_change_set_not_assistant")


def test_a_change_set_of_another_initiative_is_400(api_client, session):
    other = f.ChangeSetFactory()
    response = post_message(
        api_client, session, role="assistant", content="Done", change_set_id=other.id
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, "chat_change_set_other_initiative")


def test_the_change_set_an_assistant_message_applied_reverts_through_revert(api_client, session):
    user = get_user_model().objects.create_user(username="reviewer", password="unused-password")
    _token, clear = api_token_create(name="reviewer-token", person=user)
    person_client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    proposal = f.ProposalFactory(initiative_id=session.initiative_id, metadata=None)
    change_set_id = person_client.post(url("accept_proposal", proposal_id=proposal.id)).json()["id"]

    posted = post_message(
        api_client, session, role="assistant", content="Added it.", change_set_id=change_set_id
    )
    reverted = api_client.post(
        url("revert_change_set", change_set_id=posted.json()["change_set_id"])
    )

    assert posted.status_code == HTTPStatus.CREATED
    assert reverted.status_code == HTTPStatus.OK
    assert reverted.json()["status"] == ChangeSetStatus.REVERTED


# --- listing messages ------------------------------------------------------------------------


def test_list_messages_reads_forward_by_cursor(api_client, session):
    posted = [
        post_message(api_client, session, role="user", content=f"M{i}").json() for i in range(5)
    ]
    path = url("list_chat_messages", session_id=session.id)

    first = api_client.get(path, {"limit": 2}).json()
    second = api_client.get(path, {"limit": 2, "after": first["next_after"]}).json()
    third = api_client.get(path, {"limit": 2, "after": second["next_after"]}).json()
    end = api_client.get(path, {"limit": 2, "after": third["next_after"]}).json()

    assert first == {"items": posted[:2], "next_after": posted[1]["id"], "more": True}
    assert second == {"items": posted[2:4], "next_after": posted[3]["id"], "more": True}
    assert third == {"items": posted[4:], "next_after": posted[4]["id"], "more": False}
    assert end == {"items": [], "next_after": posted[4]["id"], "more": False}


def test_list_messages_of_a_session_without_any_is_empty(api_client, session):
    response = api_client.get(url("list_chat_messages", session_id=session.id))
    assert response.json() == {"items": [], "next_after": None, "more": False}


def test_list_messages_after_a_message_of_another_session_is_400_invalid_cursor(
    api_client, session
):
    stranger = f.ChatMessageFactory()
    response = api_client.get(
        url("list_chat_messages", session_id=session.id), {"after": stranger.id}
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_cursor")


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": MAX_KEYSET_PAGE_SIZE + 1}])
def test_list_messages_limit_out_of_range_is_invalid_limit(api_client, session, query):
    response = api_client.get(url("list_chat_messages", session_id=session.id), query)
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_limit")


def test_a_page_of_long_messages_stops_at_the_byte_cap(api_client, session, settings):
    settings.CW_API_PAGE_MAX_BYTES = 1000
    contents = ["é" * 200, "a" * 500, "b" * 200, "c" * 2000, "d" * 10]  # 400, 500, … bytes
    for content in contents:
        post_message(api_client, session, role="user", content=content)
    path = url("list_chat_messages", session_id=session.id)

    pages, after = [], None
    while True:
        page = api_client.get(path, {"after": after} if after else {}).json()
        pages.append([item["content"] for item in page["items"]])
        after = page["next_after"]
        if not page["more"]:
            break

    assert pages == [contents[:2], contents[2:3], contents[3:4], contents[4:]]


@pytest.mark.parametrize("rows", [1, 100])
def test_list_messages_query_count_does_not_grow_with_the_page(
    api_client, session, rows, django_assert_num_queries
):
    ChatMessage.objects.bulk_create(
        ChatMessage(chat_session=session, role="user", content=f"M{i}") for i in range(rows)
    )
    first = ChatMessage.objects.order_by("created_at", "id").first()
    path = url("list_chat_messages", session_id=session.id)
    api_client.get(path)  # stamps the token's last_used_at outside the measure

    # Authentication (1) + the session exists (1) + the page: its messages' sizes (1),
    # then the messages that fit the byte cap (1).
    with django_assert_num_queries(4):
        response = api_client.get(path, {"limit": MAX_KEYSET_PAGE_SIZE})
    assert len(response.json()["items"]) == rows
    # ... and the cursor's own lookup (1) with ``after``.
    # (With nothing after the cursor, the sizes query finds none to read.)
    with django_assert_num_queries(5 if rows > 1 else 4):
        response = api_client.get(path, {"limit": MAX_KEYSET_PAGE_SIZE, "after": first.id})
    assert len(response.json()["items"]) == rows - 1
