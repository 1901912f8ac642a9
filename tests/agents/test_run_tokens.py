"""A token for each run (issue 22, ``agents/run_tokens.py``): take-next hands out the
run's token, which lets the run's agent do only what its own agent may, names the agent
on the events it records, and stops working once the run ends, however it ends."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Run
from agents.run_tokens import RUN_TOKEN_OPERATIONS
from agents.services import run_cancel, run_finish, run_heartbeat, run_sweep
from core.actors import Actor
from core.models import ApiToken, Event, Task
from core.tokens import api_token_create, api_token_list, hash_token
from cw_project.api import api
from tests import factories as f
from tests.api.helpers import assert_error, bearer, post_json, send_json

pytestmark = pytest.mark.django_db

RUNNER = {"runner_name": "runner-1", "runner_host": "build-01", "providers": ["claude"]}


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """A followed stream ends after a second, so a test reads it whole."""
    monkeypatch.setenv("CW_SSE_MAX_SECONDS", "1")


@pytest.fixture
def runner() -> Client:
    """The runner's own tool token."""
    _, clear = api_token_create(name="runner-1")
    return bearer(clear)


def ready_task() -> Task:
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=0)
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    return f.TaskFactory(phase=phase)


def take(runner: Client) -> dict[str, Any]:
    response = post_json(runner, "/api/runs/take-next", RUNNER)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


@dataclass
class Taken:
    """One run handed out: its ids, and a client with its token."""

    run_id: str
    agent_id: str
    agent_name: str
    task_id: str
    initiative_id: str
    token: str

    @property
    def client(self) -> Client:
        return bearer(self.token)

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Taken":
        return cls(
            run_id=body["run"]["id"],
            agent_id=body["agent"]["id"],
            agent_name=body["agent"]["name"],
            task_id=body["task"]["id"],
            initiative_id=body["task"]["initiative_id"],
            token=body["run_token"],
        )


@pytest.fixture
def two(runner) -> tuple[Taken, Taken]:
    """Two live runs of two tasks (of two initiatives), each with its agent and token."""
    f.AccountFactory()
    f.AccountFactory()
    ready_task()
    ready_task()
    return Taken.of(take(runner)), Taken.of(take(runner))


def drained(response) -> Any:
    """A streamed answer read whole (so the stream is closed), else the answer."""
    if getattr(response, "streaming", False):

        async def collect() -> bytes:
            return b"".join([part async for part in response.streaming_content])

        if response.is_async:
            async_to_sync(collect)()
        else:
            b"".join(response.streaming_content)
    return response


def call(client: Client, method: str, path: str, body: Any = None) -> Any:
    if body is None:
        return drained(getattr(client, method.lower())(path))
    return drained(send_json(client, method, path, body))


# --- what take-next hands out -------------------------------------------------------------


def test_take_next_hands_out_the_run_token_once_and_stores_only_its_hash(runner, two):
    mine, _ = two
    token = ApiToken.objects.get(run_id=mine.run_id)
    assert mine.token.startswith("cw_")
    assert token.token_hash == hash_token(mine.token)
    assert mine.token not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert token.kind == "run" and token.name == f"run:{mine.run_id}"
    # Not listed with the tools' and people's tokens.
    assert [t.name for t in api_token_list()] == ["runner-1"]
    # Read again, the run does not carry it.
    assert "run_token" not in runner.get(f"/api/runs/{mine.run_id}").json()


def test_a_run_token_names_its_agent_as_the_actor(two):
    mine, _ = two
    token = ApiToken.objects.get(run_id=mine.run_id)

    whoami = mine.client.get("/api/whoami").json()
    response = post_json(
        mine.client,
        "/api/conversations",
        {"from_agent_id": mine.agent_id, "to_agent_id": two[1].agent_id, "question": "Port?"},
    )

    assert response.status_code == HTTPStatus.CREATED, response.content
    actor = {"type": "tool", "id": token.pk, "name": f"agent:{mine.agent_name}", "via": "api"}
    assert whoami["actor"] == actor
    asked = Event.objects.get(kind="question.asked")
    assert (asked.actor_type, asked.actor_id, asked.actor_name) == (
        "tool",
        token.pk,
        f"agent:{mine.agent_name}",
    )


def test_a_run_token_check_is_the_token_lookup_alone(runner, two):
    mine, _ = two
    for client in (runner, mine.client):
        client.get("/api/whoami")  # stamps last_used_at once
    with CaptureQueriesContext(connection) as tool:
        assert runner.get("/api/whoami").status_code == HTTPStatus.OK
    with CaptureQueriesContext(connection) as run_token:
        assert mine.client.get("/api/whoami").status_code == HTTPStatus.OK
    assert len(run_token) == len(tool)


# --- every allowed operation: its own succeeds, another's is refused ---------------------


@dataclass(frozen=True)
class Case:
    """A request of an allowed operation for the run ``mine`` (built from both runs), and
    the status it answers; ``other`` builds the same request naming the other run's."""

    method: str
    path: str
    mine: Callable[[Taken, Taken], tuple[str, Any]]
    status: int
    other: Callable[[Taken, Taken], tuple[str, Any]] | None


def _question(to: Taken, frm: Taken) -> str:
    return f.ConversationFactory(from_agent_id=frm.agent_id, to_agent_id=to.agent_id).pk


CASES = [
    Case("GET", "/whoami", lambda m, o: ("/api/whoami", None), 200, None),
    Case(
        "GET",
        "/runs/{run_id}",
        lambda m, o: (f"/api/runs/{m.run_id}", None),
        200,
        lambda m, o: (f"/api/runs/{o.run_id}", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}",
        lambda m, o: (f"/api/agents/{m.agent_id}", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}", None),
    ),
    Case(
        "GET",
        "/tasks/{task_id}",
        lambda m, o: (f"/api/tasks/{m.task_id}", None),
        200,
        lambda m, o: (f"/api/tasks/{o.task_id}", None),
    ),
    Case(
        "GET",
        "/tasks/{task_id}/context",
        lambda m, o: (f"/api/tasks/{m.task_id}/context", None),
        200,
        lambda m, o: (f"/api/tasks/{o.task_id}/context", None),
    ),
    Case(
        "POST",
        "/agents/{agent_id}/logs",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs", [{"content": '{"type": "system"}'}]),
        201,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs", [{"content": "x"}]),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/logs",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/logs/stream",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs/stream", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs/stream", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/logs/events",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs/events", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs/events", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/logs/records",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs/records", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs/records", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/logs/sessions",
        lambda m, o: (f"/api/agents/{m.agent_id}/logs/sessions", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/logs/sessions", None),
    ),
    Case(
        "POST",
        "/conversations",
        lambda m, o: (
            "/api/conversations",
            {"from_agent_id": m.agent_id, "to_agent_id": o.agent_id, "question": "Port?"},
        ),
        201,
        lambda m, o: (
            "/api/conversations",
            {"from_agent_id": o.agent_id, "to_agent_id": m.agent_id, "question": "Port?"},
        ),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/questions",
        lambda m, o: (f"/api/agents/{m.agent_id}/questions", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/questions", None),
    ),
    Case(
        "GET",
        "/agents/{agent_id}/questions/stream",
        lambda m, o: (f"/api/agents/{m.agent_id}/questions/stream", None),
        200,
        lambda m, o: (f"/api/agents/{o.agent_id}/questions/stream", None),
    ),
    Case(
        "GET",
        "/conversations/{conversation_id}",
        lambda m, o: (f"/api/conversations/{_question(o, m)}", None),
        200,
        # Between the other agent and a third one.
        lambda m, o: (
            f"/api/conversations/{f.ConversationFactory(to_agent_id=o.agent_id).pk}",
            None,
        ),
    ),
    Case(
        "POST",
        "/conversations/{conversation_id}/answer",
        lambda m, o: (f"/api/conversations/{_question(m, o)}/answer", {"answer": "8080"}),
        200,
        # A question the run's own agent asked: the other one answers it.
        lambda m, o: (f"/api/conversations/{_question(o, m)}/answer", {"answer": "8080"}),
    ),
    Case(
        "POST",
        "/messages",
        lambda m, o: (
            "/api/messages",
            {
                "sender_type": "agent",
                "sender_id": m.agent_id,
                "recipient_type": "user",
                "content": "Done.",
            },
        ),
        201,
        lambda m, o: (
            "/api/messages",
            {
                "sender_type": "agent",
                "sender_id": o.agent_id,
                "recipient_type": "user",
                "content": "Done.",
            },
        ),
    ),
    Case(
        "POST",
        "/proposals",
        lambda m, o: (
            "/api/proposals",
            {
                "agent_id": m.agent_id,
                "initiative_id": m.initiative_id,
                "target_type": "task",
                "title": "Split the task",
            },
        ),
        201,
        lambda m, o: (
            "/api/proposals",
            {
                "agent_id": o.agent_id,
                "initiative_id": o.initiative_id,
                "target_type": "task",
                "title": "Split the task",
            },
        ),
    ),
]


def test_the_cases_cover_every_allowed_operation():
    assert {(case.method, case.path) for case in CASES} == set(RUN_TOKEN_OPERATIONS)


def test_every_allowed_operation_is_in_the_document_by_its_operation_id():
    paths = api.get_openapi_schema()["paths"]
    for (method, path), allowed in RUN_TOKEN_OPERATIONS.items():
        operation = paths["/api" + path][method.lower()]
        assert operation["operationId"] == allowed.operation_id, (method, path)
        assert {401, 403} <= {int(status) for status in operation["responses"]}
        assert allowed.describe() in operation["description"], (method, path)
    described = [
        (method, path)
        for path, item in paths.items()
        for method, operation in item.items()
        if "A run's token (`CW_RUN_TOKEN`) may call this" in operation.get("description", "")
    ]
    assert len(described) == len(RUN_TOKEN_OPERATIONS)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.method} {case.path}")
def test_an_allowed_operation_succeeds_for_its_own_and_is_refused_for_another(two, case):
    mine, other = two
    path, body = case.mine(mine, other)

    response = call(mine.client, case.method, path, body)

    assert response.status_code == case.status, response.content
    if case.other is None:
        return
    path, body = case.other(mine, other)
    events = Event.objects.count()
    refused = call(mine.client, case.method, path, body)
    found = assert_error(refused, HTTPStatus.FORBIDDEN, "run_token_out_of_scope")
    assert found["details"]["operation"] == f"{case.method} {case.path}"
    assert Event.objects.count() == events


def test_a_message_to_another_agent_and_a_proposal_on_another_initiative_are_refused(two):
    mine, other = two
    to_agent = {
        "sender_type": "agent",
        "sender_id": mine.agent_id,
        "recipient_type": "agent",
        "recipient_id": other.agent_id,
        "content": "Psst.",
    }
    elsewhere = {
        "agent_id": mine.agent_id,
        "initiative_id": other.initiative_id,
        "target_type": "task",
        "title": "Elsewhere",
    }
    for path, body in (("/api/messages", to_agent), ("/api/proposals", elsewhere)):
        response = post_json(mine.client, path, body)
        assert_error(response, HTTPStatus.FORBIDDEN, "run_token_out_of_scope")


REFUSED = [
    ("POST", "/api/runs/take-next", lambda m: RUNNER),
    ("POST", "/api/runs/{run}/heartbeat", lambda m: {"runner_name": "runner-1"}),
    (
        "POST",
        "/api/runs/{run}/finish",
        lambda m: {"runner_name": "runner-1", "outcome": "succeeded"},
    ),
    ("POST", "/api/runs/{run}/resume", lambda m: {"runner_name": "runner-1"}),
    ("PATCH", "/api/runs/{run}", lambda m: {"runner_name": "runner-1", "pid": 7}),
    ("GET", "/api/runs", None),
    ("GET", "/api/agents", None),
    ("GET", "/api/accounts", None),
    ("POST", "/api/accounts/claim", lambda m: {"provider": "claude", "agent_id": m.agent_id}),
    ("POST", "/api/agents/{agent}/crashed", lambda m: {"exit_code": 1}),
    ("DELETE", "/api/agents/{agent}/logs", None),
    ("POST", "/api/tasks/{task}/complete", lambda m: {"summary": "Done."}),
    ("PATCH", "/api/tasks/{task}", lambda m: {"name": "Renamed"}),
    ("GET", "/api/proposals", None),
    ("GET", "/api/messages/pending", None),
    ("GET", "/api/events", None),
    ("POST", "/api/initiatives", lambda m: {"name": "Mine now"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), REFUSED, ids=[r[0] + " " + r[1] for r in REFUSED]
)
def test_an_operation_off_the_list_is_refused_for_its_own_too(two, method, path, body):
    mine, _ = two
    path = path.format(run=mine.run_id, agent=mine.agent_id, task=mine.task_id)
    events = Event.objects.count()

    response = call(mine.client, method, path, None if body is None else body(mine))

    found = assert_error(response, HTTPStatus.FORBIDDEN, "run_token_out_of_scope")
    assert found["details"]["reason"]
    assert Event.objects.count() == events
    assert Run.objects.get(pk=mine.run_id).outcome == "running"


def test_the_runners_own_token_keeps_working(runner, two):
    mine, _ = two
    response = post_json(runner, f"/api/runs/{mine.run_id}/heartbeat", {"runner_name": "runner-1"})
    assert response.status_code == HTTPStatus.OK
    assert runner.get("/api/runs").status_code == HTTPStatus.OK


# --- the token dies with its run -----------------------------------------------------------


def _dead(taken: Taken) -> None:
    for method, path, body in (
        ("GET", "/api/whoami", None),
        ("POST", f"/api/agents/{taken.agent_id}/logs", [{"content": "after the end"}]),
    ):
        assert_error(
            call(taken.client, method, path, body), HTTPStatus.UNAUTHORIZED, "not_authenticated"
        )


def _finish(taken: Taken) -> None:
    run_finish(run_id=taken.run_id, runner_name="runner-1", outcome="succeeded")


def _sweep(taken: Taken) -> None:
    Run.objects.filter(pk=taken.run_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert [swept.run_id for swept in run_sweep()] == [taken.run_id]


def _cancel(taken: Taken) -> None:
    person = get_user_model().objects.create_user(username="lead", is_staff=True)
    run_cancel(run_id=taken.run_id, actor=Actor.person(person))


def _budget(taken: Taken) -> None:
    f.BudgetFactory(scope_type="task", scope_id=taken.task_id, limit=10)
    usage = [{"model": "m", "input_tokens": 50}]
    assert (
        run_heartbeat(run_id=taken.run_id, runner_name="runner-1", usage=usage).decision == "stop"
    )


@pytest.mark.parametrize(
    "end",
    [_finish, _sweep, _cancel, _budget],
    ids=["finished", "lost", "cancelled", "budget_stopped"],
)
def test_the_token_stops_working_when_its_run_ends(two, end):
    mine, other = two
    assert mine.client.get("/api/whoami").status_code == HTTPStatus.OK

    end(mine)

    _dead(mine)
    assert other.client.get("/api/whoami").status_code == HTTPStatus.OK


def test_the_admin_shows_a_run_token_with_its_run(two):
    mine, _ = two
    token = ApiToken.objects.get(run_id=mine.run_id)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser(username="root"))

    listed = admin.get("/admin/core/apitoken/", {"run__isempty": "0"})
    page = admin.get(f"/admin/core/apitoken/{token.pk}/change/")

    assert listed.status_code == page.status_code == HTTPStatus.OK
    assert token.name in listed.content.decode()
    assert mine.token not in page.content.decode()
