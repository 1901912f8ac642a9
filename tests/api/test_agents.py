"""The agents API (``agents/api.py``, tag ``agents``): registration (with an account
claimed for tools only), lists, retrieval and the lifecycle transitions."""

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from core.models import Event
from core.tokens import api_token_create
from cw_project.api import api
from tests.api.helpers import assert_error, post_json, url
from tests.factories import AccountFactory, AgentFactory, TaskFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-test"}}'

#: Every operation of the Agents table of docs/api.md.
OPERATIONS = [
    "register_agent",
    "list_agents",
    "retrieve_agent",
    "retrieve_agent_by_name",
    "mark_agent_running",
    "mark_agent_waiting",
    "mark_agent_idle",
    "mark_agent_stopped",
    "mark_agent_crashed",
    "dismiss_agent",
    "append_agent_log",
    "list_agent_log",
    "stream_agent_log",
    "retrieve_agent_log_sessions",
    "delete_agent_log",
    "send_message",
    "reply_to_message",
    "retrieve_message",
    "list_messages_pending_for_person",
    "list_messages_requiring_response",
    "mark_message_read",
    "ask_question",
    "list_pending_questions",
    "retrieve_conversation",
    "answer_question",
]


@pytest.fixture
def personal_client() -> Client:
    """A client with a personal token: a person's, not a tool's."""
    user = get_user_model().objects.create_user(username="ada", is_staff=True)
    _, clear = api_token_create(name="ada-laptop", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def test_every_agents_operation_is_in_the_openapi_document():
    client = Client()
    document = client.get("/api/openapi.json").json()
    operations = {
        operation["operationId"].removeprefix("agents_api_"): operation
        for item in document["paths"].values()
        for operation in item.values()
    }
    for name in OPERATIONS:
        assert name in operations, name
        operation = operations[name]
        assert operation.get("summary"), name
        assert operation["tags"][0] in {"agents", "logs", "messages", "conversations"}
        assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"]), name


def test_register_agent_generates_a_name_and_binds_the_task(api_client):
    task = TaskFactory()
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w/1", "task_id": task.id}
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    agent = Agent.objects.get()
    assert body["account"] is None
    assert body["agent"]["id"] == agent.id and body["agent"]["name"] == agent.name
    assert body["agent"]["status"] == "idle"
    assert body["agent"]["initiative_id"] == task.initiative_id
    assert Event.objects.filter(kind="agent.registered", subject_id=agent.id).exists()


def test_registering_with_an_unknown_initiative_is_an_invalid_reference(api_client):
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w/1", "initiative_id": "paths"}
    )

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_reference")
    assert set(body["details"]["fields"]) == {"initiative"}
    assert not Agent.objects.exists()


def test_registering_with_an_empty_initiative_id_is_an_invalid_reference(api_client):
    """An empty id names no record; model validation skips a blank foreign key, and the
    database's deferred foreign key then failed the commit (a 500 under make serve)."""
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w/1", "initiative_id": ""}
    )

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_reference")
    assert set(body["details"]["fields"]) == {"initiative"}
    assert not Agent.objects.exists()


def test_a_tool_registers_an_agent_with_a_claimed_account_and_its_secrets(api_client):
    account = AccountFactory(credentials=CREDENTIALS)
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w/1", "claim_account": True}
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert body["account"]["id"] == account.id
    assert body["account"]["credentials"] == CREDENTIALS
    assert body["agent"]["account_id"] == account.id


@pytest.mark.parametrize("who", ["staff_client", "personal_client"])
def test_a_person_cannot_claim_an_account_with_an_agent(who, request):
    client = request.getfixturevalue(who)
    AccountFactory(credentials=CREDENTIALS)
    response = post_json(
        client, url("register_agent"), {"worktree_id": "/w/1", "claim_account": True}
    )
    assert_error(response, HTTPStatus.FORBIDDEN, "tool_token_required")
    assert "claudeAiOauth" not in response.content.decode()
    assert not Agent.objects.exists()


def test_a_person_may_register_an_agent_without_an_account(staff_client):
    response = post_json(staff_client, url("register_agent"), {"worktree_id": "/w/1"})
    assert response.status_code == HTTPStatus.CREATED


def test_register_without_an_available_account_is_409_and_writes_nothing(api_client):
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w/1", "claim_account": True}
    )
    assert_error(response, HTTPStatus.CONFLICT, "account_unavailable")
    assert not Agent.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"worktree_id": "  "}, 422, "validation_error"),
        ({"worktree_id": "/w", "name": "a\x00b"}, 422, "validation_error"),
        ({"worktree_id": "/w", "mode": "dance"}, 400, "invalid_mode"),
        ({"worktree_id": "/w", "colour": "red"}, 422, "validation_error"),
        ({"worktree_id": "/w", "task_id": "nope"}, 404, "task_not_found"),
    ],
)
def test_register_refusals_write_nothing(api_client, body, status, code):
    assert_error(post_json(api_client, url("register_agent"), body), status, code)
    assert not Agent.objects.exists()


def test_register_with_a_taken_name_is_409(api_client):
    AgentFactory(name="calm-fox")
    response = post_json(
        api_client, url("register_agent"), {"worktree_id": "/w", "name": "calm-fox"}
    )
    assert_error(response, HTTPStatus.CONFLICT, "agent_name_taken")


def test_list_agents_filters_by_status_task_and_initiative(api_client):
    task = TaskFactory()
    wanted = AgentFactory(status="running", task=task, initiative=task.initiative)
    AgentFactory(status="running")
    AgentFactory(status="idle", task=task)
    response = api_client.get(
        url("list_agents"),
        {"status": "running", "task_id": task.id, "initiative_id": task.initiative_id},
    )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert [item["id"] for item in body["items"]] == [wanted.id]
    assert body["total"] == 1
    assert_error(api_client.get(url("list_agents"), {"status": "lost"}), 400, "invalid_status")


def list_queries(client: Client, name: str, **kwargs: str) -> int:
    """Queries one list request costs (after a first request, which may stamp the
    token's ``last_used_at``)."""
    client.get(url(name, **kwargs))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(name, **kwargs), {"limit": 200})
    assert response.status_code == HTTPStatus.OK
    return len(queries)


def test_list_agents_costs_the_same_queries_at_1_and_100_items(api_client):
    AgentFactory(task=TaskFactory())
    one = list_queries(api_client, "list_agents")
    for _ in range(99):
        AgentFactory()
    assert list_queries(api_client, "list_agents") == one


def test_retrieve_agent_by_id_and_by_name(api_client):
    agent = AgentFactory(name="calm-fox")
    assert api_client.get(url("retrieve_agent", agent_id=agent.id)).json()["name"] == "calm-fox"
    response = api_client.get("/api/agents/by-name/calm-fox")
    assert response.json()["id"] == agent.id
    assert_error(api_client.get(url("retrieve_agent", agent_id="nope")), 404, "agent_not_found")
    assert_error(api_client.get("/api/agents/by-name/nope"), 404, "agent_not_found")


def test_an_agent_runs_waits_and_stops_through_its_transitions(api_client):
    agent = AgentFactory()
    response = post_json(
        api_client, url("mark_agent_running", agent_id=agent.id), {"pid": 7, "session_id": "s1"}
    )
    assert response.status_code == HTTPStatus.OK
    assert (response.json()["status"], response.json()["pid"]) == ("running", 7)
    response = post_json(
        api_client,
        url("mark_agent_waiting", agent_id=agent.id),
        {"pending_questions": [{"q": "Which db?"}]},
    )
    assert response.json()["pending_questions"] == [{"q": "Which db?"}]
    post_json(api_client, url("mark_agent_running", agent_id=agent.id), {})
    response = post_json(
        api_client,
        url("mark_agent_crashed", agent_id=agent.id),
        {"exit_code": 137, "result": {"error": "killed"}},
    )
    body = response.json()
    assert (body["status"], body["exit_code"], body["result"]) == (
        "crashed",
        137,
        {"error": "killed"},
    )
    assert body["pending_questions"] is None
    assert Event.objects.filter(kind="agent.status_changed").count() == 4


def test_a_transition_that_makes_no_sense_is_409_with_the_allowed_states(api_client):
    agent = AgentFactory(status="stopped")
    response = post_json(api_client, url("mark_agent_idle", agent_id=agent.id), {})
    body = assert_error(response, HTTPStatus.CONFLICT, "transition_not_allowed")
    assert body["details"]["allowed_from"] == ["running", "waiting_for_input"]
    agent.refresh_from_db()
    assert agent.status == "stopped"
    assert not Event.objects.exists()


def test_a_transition_of_an_unknown_agent_is_404(api_client):
    response = post_json(api_client, url("mark_agent_stopped", agent_id="nope"), {})
    assert_error(response, HTTPStatus.NOT_FOUND, "agent_not_found")


def test_dismiss_agent_once(api_client):
    agent = AgentFactory(status="idle")
    response = api_client.post(url("dismiss_agent", agent_id=agent.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["user_dismissed_at"] is not None
    assert_error(
        api_client.post(url("dismiss_agent", agent_id=agent.id)),
        HTTPStatus.CONFLICT,
        "agent_already_dismissed",
    )


def test_operations_refuse_an_anonymous_caller(client):
    agent = AgentFactory()
    assert_error(client.get(url("retrieve_agent", agent_id=agent.id)), 401, "not_authenticated")
    assert_error(client.post(url("dismiss_agent", agent_id=agent.id)), 401, "not_authenticated")


def test_the_openapi_document_describes_both_log_bodies():
    operation = api.get_openapi_schema()["paths"]["/api/agents/{agent_id}/logs"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson"}
    assert content["application/json"]["schema"]["maxItems"] == 1000
