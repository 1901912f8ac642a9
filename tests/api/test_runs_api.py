"""The runs API (``agents/api_runs.py``, tag ``runs``): take-next (tools only, with the
account's secrets), heartbeat, finish, lists, retrieval and a person's cancel."""

import threading
import time
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from agents.models import Budget, Run, RunLimit, UsageBucket
from agents.services import run_finish
from core.models import Event, Task
from core.ratelimits import WRITE_THROTTLE
from core.tokens import api_token_create
from tests import factories as f
from tests.api.helpers import assert_error, patch_json, post_json, url

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-test"}}'
RUNNER = {"runner_name": "runner-1", "runner_host": "build-01", "providers": ["claude"]}
USAGE = {
    "model": "claude-sonnet-4",
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_read_tokens": 3,
    "cache_write_tokens": 4,
    "cost_micros": 5_000,
}

#: Every operation of the runs router, with its method and path.
OPERATIONS = {
    "take_next_run": ("post", "/api/runs/take-next"),
    "beat_run": ("post", "/api/runs/{run_id}/heartbeat"),
    "finish_run": ("post", "/api/runs/{run_id}/finish"),
    "list_runs": ("get", "/api/runs"),
    "retrieve_run": ("get", "/api/runs/{run_id}"),
    "cancel_run": ("post", "/api/runs/{run_id}/cancel"),
    "retrieve_task_attempts": ("get", "/api/tasks/{task_id}/attempts"),
    "report_run": ("patch", "/api/runs/{run_id}"),
    "requeue_task": ("post", "/api/tasks/{task_id}/requeue"),
}


@pytest.fixture
def personal_client() -> Client:
    """A client with a personal token: a person's, not a tool's."""
    user = get_user_model().objects.create_user(username="ada", is_staff=True)
    _, clear = api_token_create(name="ada-laptop", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def ready_task(**fields) -> Task:
    """A pending auto task whose phase is in progress (so take-next hands it out)."""
    initiative = f.InitiativeFactory(execution_mode="yolo")
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    return f.TaskFactory(phase=phase, **fields)


def take(client: Client, **body) -> dict:
    response = post_json(client, url("take_next_run"), {**RUNNER, **body})
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


# --- the document ----------------------------------------------------------------------


@pytest.fixture
def document() -> dict:
    response = Client().get("/api/openapi.json")
    assert response.status_code == HTTPStatus.OK
    return response.json()


def test_every_runs_operation_is_documented_with_its_errors(document):
    for name, (method, path) in OPERATIONS.items():
        operation = document["paths"][path][method]
        assert operation["operationId"].endswith(name), name
        assert operation["tags"] == ["runs"], name
        assert operation.get("summary") and operation.get("description"), name
        responses = set(operation["responses"])
        assert {"400", "401", "403", "404", "409", "422"} <= responses, name
    assert "204" in document["paths"]["/api/runs/take-next"]["post"]["responses"]
    security = document["paths"]["/api/runs/take-next"]["post"]["security"]
    assert security == [{"BearerTokenAuth": []}]


def test_the_document_states_the_bounds_the_server_enforces(document):
    schemas = document["components"]["schemas"]
    usage = schemas["UsageIn"]["properties"]
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_micros",
    ):
        assert (usage[name]["minimum"], usage[name]["maximum"]) == (0, 10**12), name
    heartbeat = schemas["RunHeartbeatIn"]["properties"]
    assert heartbeat["usage"]["maxItems"] == 1_000
    assert schemas["RunFinishIn"]["properties"]["usage"]["maxItems"] == 1_000
    take_next = schemas["TakeNextIn"]["properties"]
    assert (take_next["wait"]["minimum"], take_next["wait"]["maximum"]) == (0, 30)
    assert take_next["wait"]["x-error-code"] == "invalid_wait"
    assert (take_next["providers"]["minItems"], take_next["providers"]["maxItems"]) == (1, 20)
    timeout = take_next["heartbeat_timeout_seconds"]["anyOf"][0]
    assert (timeout["minimum"], timeout["maximum"]) == (10, 86_400)
    commits = schemas["RunFinishIn"]["properties"]["end_commits"]["anyOf"][0]
    assert commits["additionalProperties"]["pattern"] == "^[0-9a-f]{40}([0-9a-f]{24})?$"
    assert commits["propertyNames"]["pattern"] == "^[^\\u0000]*$"
    outcome = schemas["RunFinishIn"]["properties"]["outcome"]
    assert set(outcome["enum"]) == {"succeeded", "failed", "crashed", "stopped"}
    assert schemas["TakeNextOut"]["properties"]["attempts"]["maxItems"] == 10
    attempt = schemas["RunAttemptOut"]["properties"]
    assert attempt["log_tail"]["maxItems"] == 20
    assert attempt["log_tail"]["items"]["maxLength"] == 500
    assert attempt["error"]["anyOf"][0]["maxLength"] == 2_000


# --- take-next ---------------------------------------------------------------------------


def test_take_next_hands_a_tool_the_task_agent_run_and_account_with_secrets(api_client):
    account = f.AccountFactory(credentials=CREDENTIALS)
    task = ready_task()

    body = take(api_client, heartbeat_timeout_seconds=300)

    run = Run.objects.get()
    assert body["task"]["id"] == task.pk and body["task"]["status"] == "in_progress"
    assert body["agent"]["id"] == run.agent_id and body["agent"]["status"] == "running"
    assert body["run"]["id"] == run.pk
    assert body["run"]["outcome"] == "running" and body["run"]["attempt"] == 1
    assert body["run"]["heartbeat_timeout_seconds"] == 300
    assert body["account"]["id"] == account.pk
    assert body["account"]["credentials"] == CREDENTIALS
    started = Event.objects.get(kind="run.started")
    assert started.actor_type == "tool" and started.actor_name == "test-tool"


def test_take_next_and_the_task_attempts_tell_a_retry_what_failed(api_client):
    f.AccountFactory(credentials=CREDENTIALS)
    task = ready_task()
    task.initiative.retry_backoff_seconds = 0
    task.initiative.save()
    first = take(api_client)
    assert first["attempts"] == []
    f.AgentLogChunkFactory(
        agent_id=first["agent"]["id"], content="Error: rate limit reached\nExit 1\n"
    )
    finish = {"runner_name": "runner-1", "outcome": "crashed", "exit_code": 1, "error": "boom"}
    finished = post_json(api_client, url("finish_run", run_id=first["run"]["id"]), finish)
    assert finished.status_code == HTTPStatus.OK

    second = take(api_client)

    (earlier,) = second["attempts"]
    assert {k: v for k, v in earlier.items() if k not in ("started_at", "ended_at")} == {
        "run_id": first["run"]["id"],
        "attempt": 1,
        "outcome": "crashed",
        "exit_code": 1,
        "error": "boom",
        "summary": None,
        "log_tail": ["Error: rate limit reached", "Exit 1"],
    }
    response = api_client.get(url("retrieve_task_attempts", task_id=task.pk))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == second["attempts"]


def test_the_attempts_of_an_unknown_task_are_404(api_client):
    response = api_client.get(url("retrieve_task_attempts", task_id="nope"))

    assert_error(response, HTTPStatus.NOT_FOUND, "task_not_found")


def test_take_next_answers_204_when_nothing_fits(api_client):
    f.AccountFactory()

    response = post_json(api_client, url("take_next_run"), RUNNER)

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""


def test_take_next_refuses_a_person_and_hands_out_no_secret(personal_client, staff_client):
    f.AccountFactory(credentials=CREDENTIALS)
    ready_task()

    for client in (personal_client, staff_client):
        response = post_json(client, url("take_next_run"), RUNNER)
        body = assert_error(response, HTTPStatus.FORBIDDEN, "tool_token_required")
        assert "sk-ant" not in response.content.decode()
        assert body["details"] == {} or "credentials" not in body["details"]
    assert not Run.objects.exists()
    assert Task.objects.get().status == "pending"


def test_take_next_refuses_an_unknown_provider(api_client):
    response = post_json(api_client, url("take_next_run"), {**RUNNER, "providers": ["codex"]})

    assert_error(response, HTTPStatus.BAD_REQUEST, "unknown_provider")


def test_take_next_refuses_a_wait_out_of_range(api_client):
    f.AccountFactory()

    response = post_json(api_client, url("take_next_run"), {**RUNNER, "wait": 31})

    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_wait")


@pytest.mark.parametrize(
    "change",
    [
        {"providers": []},
        {"runner_name": ""},
        {"heartbeat_timeout_seconds": 5},
        {"unknown": 1},
    ],
)
def test_take_next_refuses_malformed_bodies(api_client, change):
    f.AccountFactory()

    response = post_json(api_client, url("take_next_run"), {**RUNNER, **change})

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


@pytest.mark.django_db(transaction=True)
def test_a_waiting_take_next_answers_as_soon_as_a_run_ends(api_client):
    f.AccountFactory(credentials=CREDENTIALS)
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=1)
    phase = ready_task().phase
    f.TaskFactory(phase=phase)
    first = take(api_client)

    def finish_later() -> None:
        try:
            time.sleep(0.5)
            run_finish(run_id=first["run"]["id"], runner_name="runner-1", outcome="succeeded")
        finally:
            connection.close()

    thread = threading.Thread(target=finish_later)
    started = time.monotonic()
    thread.start()
    try:
        response = post_json(api_client, url("take_next_run"), {**RUNNER, "wait": 20})
    finally:
        thread.join(10)

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["task"]["id"] != first["task"]["id"]
    assert time.monotonic() - started < 10


def test_take_next_counts_against_the_write_limit(settings, api_client):
    settings.CW_API_WRITE_RATE_LIMIT = 1
    f.AccountFactory()
    try:
        assert post_json(api_client, url("take_next_run"), RUNNER).status_code == 204

        response = post_json(api_client, url("take_next_run"), RUNNER)

        body = assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "throttled")
        assert int(response["Retry-After"]) == body["details"]["retry_after"] >= 1
    finally:
        WRITE_THROTTLE.forget()


# --- heartbeat -----------------------------------------------------------------------------


def test_heartbeat_records_usage_and_answers_continue_with_budgets(api_client):
    run = f.RunFactory()
    budget = f.BudgetFactory(limit=1_000)

    response = post_json(
        api_client,
        url("beat_run", run_id=run.pk),
        {"runner_name": "runner-1", "usage": [USAGE], "pid": 4242, "session_id": "s-1"},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["decision"] == "continue" and body["reason"] is None
    assert body["budgets"] == [
        {
            "budget_id": budget.pk,
            "scope_type": "all",
            "scope_id": "",
            "metric": "tokens",
            "window_seconds": None,
            "limit": 1_000,
            "spent": 127,
            "warn_percent": 80,
            "warn_reached": False,
            "spent_out": False,
        }
    ]
    run.refresh_from_db()
    assert (run.input_tokens, run.cost_micros, run.pid, run.session_id) == (100, 5_000, 4242, "s-1")


def test_heartbeat_answers_stop_once_a_budget_is_spent(api_client):
    run = f.RunFactory()
    f.BudgetFactory(limit=100)

    response = post_json(
        api_client, url("beat_run", run_id=run.pk), {"runner_name": "runner-1", "usage": [USAGE]}
    )

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert (body["decision"], body["reason"]) == ("stop", "budget_spent")
    assert body["budgets"][0]["spent_out"] is True
    run.refresh_from_db()
    assert run.outcome == "budget_stopped"


def test_heartbeat_of_a_run_held_by_another_runner_is_409_run_not_held(api_client):
    run = f.RunFactory()

    response = post_json(
        api_client, url("beat_run", run_id=run.pk), {"runner_name": "runner-2", "usage": [USAGE]}
    )

    body = assert_error(response, HTTPStatus.CONFLICT, "run_not_held")
    assert body["details"]["runner_name"] == "runner-1"
    assert not UsageBucket.objects.exists()


def test_heartbeat_of_a_run_that_is_over_is_409_run_not_live(api_client, staff_client):
    run = f.RunFactory()
    assert post_json(staff_client, url("cancel_run", run_id=run.pk), {}).status_code == 200

    response = post_json(api_client, url("beat_run", run_id=run.pk), {"runner_name": "runner-1"})

    body = assert_error(response, HTTPStatus.CONFLICT, "run_not_live")
    assert (body["details"]["outcome"], body["details"]["reason"]) == ("cancelled", "cancelled")


@pytest.mark.parametrize(
    "report",
    [
        {"input_tokens": -1},
        {"output_tokens": 10**12 + 1},
        {"cost_micros": 1.5},
        {"tokens": 3},
    ],
)
def test_heartbeat_refuses_negative_or_absurd_usage_writing_nothing(api_client, report):
    run = f.RunFactory()

    response = post_json(
        api_client, url("beat_run", run_id=run.pk), {"runner_name": "runner-1", "usage": [report]}
    )

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert not UsageBucket.objects.exists()


def test_heartbeat_refuses_more_than_1000_reports(api_client):
    run = f.RunFactory()

    response = post_json(
        api_client,
        url("beat_run", run_id=run.pk),
        {"runner_name": "runner-1", "usage": [USAGE] * 1_001},
    )

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


def test_heartbeat_of_an_unknown_run_is_404(api_client):
    response = post_json(api_client, url("beat_run", run_id="nope"), {"runner_name": "runner-1"})

    assert_error(response, HTTPStatus.NOT_FOUND, "run_not_found")


# --- the runner's report -------------------------------------------------------------------


def test_a_runner_reports_its_runs_facts_and_the_agent_takes_them(api_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))
    project = f.InitiativeProjectFactory(initiative=run.task.initiative).project
    sha = "e" * 40

    response = patch_json(
        api_client,
        url("report_run", run_id=run.pk),
        {
            "runner_name": "runner-1",
            "pid": 4242,
            "worktree_path": "/srv/cw/worktrees/run-1",
            "session_id": "sess-1",
            "start_commits": {project.pk: sha},
        },
    )

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert (body["pid"], body["worktree_path"], body["session_id"]) == (
        4242,
        "/srv/cw/worktrees/run-1",
        "sess-1",
    )
    run.agent.refresh_from_db()
    assert (run.agent.worktree_id, run.agent.pid) == ("/srv/cw/worktrees/run-1", 4242)
    assert run.commits.get().start_commit == sha
    event = Event.objects.get(kind="run.reported")
    assert (event.actor_type, event.actor_name) == ("tool", "test-tool")


def test_a_report_of_a_project_outside_the_initiative_is_400_writing_nothing(api_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))
    outsider = f.ProjectFactory()

    response = patch_json(
        api_client,
        url("report_run", run_id=run.pk),
        {"runner_name": "runner-1", "pid": 7, "start_commits": {outsider.pk: "e" * 40}},
    )

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "run_commit_other_initiative")
    assert body["details"]["project_ids"] == [outsider.pk]
    run.refresh_from_db()
    assert run.pid is None


@pytest.mark.parametrize(
    ("runner", "cancel", "code"),
    [("runner-2", False, "run_not_held"), ("runner-1", True, "run_not_live")],
)
def test_a_report_is_refused_as_a_heartbeat_is(api_client, staff_client, runner, cancel, code):
    run = f.RunFactory()
    if cancel:
        assert post_json(staff_client, url("cancel_run", run_id=run.pk), {}).status_code == 200

    response = patch_json(api_client, url("report_run", run_id=run.pk), {"runner_name": runner})

    assert_error(response, HTTPStatus.CONFLICT, code)


@pytest.mark.parametrize(
    "change", [{"pid": 0}, {"start_commits": {"prj_1": "abc"}}, {"worktree_path": "x" * 1025}]
)
def test_a_malformed_report_is_422(api_client, change):
    run = f.RunFactory()

    response = patch_json(
        api_client, url("report_run", run_id=run.pk), {"runner_name": "runner-1", **change}
    )

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


# --- finish --------------------------------------------------------------------------------


def test_finish_failed_returns_the_task_to_the_queue(api_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))

    response = post_json(
        api_client,
        url("finish_run", run_id=run.pk),
        {"runner_name": "runner-1", "outcome": "failed", "exit_code": 2, "error": "boom"},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert (body["outcome"], body["exit_code"], body["error"]) == ("failed", 2, "boom")
    assert body["ended_at"] is not None
    assert Task.objects.get(pk=run.task_id).status == "pending"


def test_a_second_finish_is_409_run_not_live(api_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))
    finish = {"runner_name": "runner-1", "outcome": "stopped"}
    assert post_json(api_client, url("finish_run", run_id=run.pk), finish).status_code == 200

    response = post_json(api_client, url("finish_run", run_id=run.pk), finish)

    assert_error(response, HTTPStatus.CONFLICT, "run_not_live")


def test_finish_refuses_an_outcome_a_runner_does_not_report(api_client):
    run = f.RunFactory()

    response = post_json(
        api_client,
        url("finish_run", run_id=run.pk),
        {"runner_name": "runner-1", "outcome": "cancelled"},
    )

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    run.refresh_from_db()
    assert run.outcome == "running"


def test_finish_refuses_a_malformed_end_commit_writing_nothing(api_client):
    project = f.ProjectFactory()
    run = f.RunFactory(task=ready_task(status="in_progress"))

    response = post_json(
        api_client,
        url("finish_run", run_id=run.pk),
        {"runner_name": "runner-1", "outcome": "succeeded", "end_commits": {project.pk: "abc"}},
    )

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    run.refresh_from_db()
    assert run.outcome == "running"


def test_finish_of_a_run_held_by_another_runner_is_409_run_not_held(api_client):
    run = f.RunFactory()

    response = post_json(
        api_client,
        url("finish_run", run_id=run.pk),
        {"runner_name": "runner-2", "outcome": "succeeded"},
    )

    assert_error(response, HTTPStatus.CONFLICT, "run_not_held")


# --- end to end ----------------------------------------------------------------------------


def test_take_next_heartbeat_finish_end_to_end_with_a_tool_token(api_client):
    f.AccountFactory(credentials=CREDENTIALS)
    project = f.ProjectFactory()
    task = ready_task()
    taken = take(api_client)
    run_id = taken["run"]["id"]

    beat = post_json(
        api_client, url("beat_run", run_id=run_id), {"runner_name": "runner-1", "usage": [USAGE]}
    )
    assert beat.status_code == HTTPStatus.OK, beat.content
    assert beat.json()["decision"] == "continue"
    sha = "a" * 40
    finished = post_json(
        api_client,
        url("finish_run", run_id=run_id),
        {
            "runner_name": "runner-1",
            "outcome": "succeeded",
            "exit_code": 0,
            "summary": "Done.",
            "end_commits": {project.pk: sha},
            "usage": [{**USAGE, "input_tokens": 1}],
        },
    )

    assert finished.status_code == HTTPStatus.OK, finished.content
    body = finished.json()
    assert (body["outcome"], body["summary"], body["input_tokens"]) == ("succeeded", "Done.", 101)
    task.refresh_from_db()
    assert task.status == "completed"
    assert Run.objects.get().commits.get().end_commit == sha
    kinds = list(Event.objects.filter(subject_type="run").values_list("kind", flat=True))
    assert kinds == ["run.started", "run.finished"]
    listed = api_client.get(url("list_runs"), {"task_id": task.pk}).json()
    assert [item["id"] for item in listed["items"]] == [run_id]


# --- reads ---------------------------------------------------------------------------------


def test_list_runs_filters_by_task_agent_outcome_and_runner(api_client):
    first = f.RunFactory()
    second = f.RunFactory(runner_name="runner-2")
    Run.objects.filter(pk=second.pk).update(outcome="failed", ended_at=second.started_at)

    def ids(**params) -> list[str]:
        response = api_client.get(url("list_runs"), params)
        assert response.status_code == HTTPStatus.OK, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [first.pk, second.pk]
    assert ids(task_id=first.task_id) == [first.pk]
    assert ids(agent_id=second.agent_id) == [second.pk]
    assert ids(outcome="failed") == [second.pk]
    assert ids(runner_name="runner-1") == [first.pk]
    assert api_client.get(url("list_runs"), {"limit": 1}).json()["total"] == 2


def test_list_runs_refuses_an_unknown_outcome(api_client):
    response = api_client.get(url("list_runs"), {"outcome": "exploded"})

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


def test_retrieve_run_and_its_404(api_client):
    run = f.RunFactory()

    response = api_client.get(url("retrieve_run", run_id=run.pk))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == run.pk and response.json()["task_id"] == run.task_id
    assert_error(
        api_client.get(url("retrieve_run", run_id="nope")), HTTPStatus.NOT_FOUND, "run_not_found"
    )


# --- cancel --------------------------------------------------------------------------------


def test_a_person_cancels_a_live_run(personal_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))

    response = post_json(personal_client, url("cancel_run", run_id=run.pk), {})

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["outcome"] == "cancelled"
    event = Event.objects.get(kind="run.cancelled")
    assert event.actor_type == "person"
    assert Task.objects.get(pk=run.task_id).status == "pending"


def test_cancel_is_a_persons_gate(api_client):
    run = f.RunFactory()

    response = post_json(api_client, url("cancel_run", run_id=run.pk), {})

    assert_error(response, HTTPStatus.FORBIDDEN, "person_required")
    run.refresh_from_db()
    assert run.outcome == "running"


def test_cancel_of_a_run_that_is_over_is_409(staff_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))
    assert post_json(staff_client, url("cancel_run", run_id=run.pk), {}).status_code == 200

    response = post_json(staff_client, url("cancel_run", run_id=run.pk), {})

    assert_error(response, HTTPStatus.CONFLICT, "run_not_live")


# --- budgets and limits --------------------------------------------------------------------

CAP_OPERATIONS = {
    "list_budgets": ("get", "/api/budgets"),
    "create_budget": ("post", "/api/budgets"),
    "update_budget": ("patch", "/api/budgets/{budget_id}"),
    "delete_budget": ("delete", "/api/budgets/{budget_id}"),
    "list_run_limits": ("get", "/api/run-limits"),
    "create_run_limit": ("post", "/api/run-limits"),
    "update_run_limit": ("patch", "/api/run-limits/{run_limit_id}"),
    "delete_run_limit": ("delete", "/api/run-limits/{run_limit_id}"),
}


def test_every_budget_and_limit_operation_is_documented_with_its_bounds(document):
    for name, (method, path) in CAP_OPERATIONS.items():
        operation = document["paths"][path][method]
        assert operation["operationId"].endswith(name), name
        assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"]), name
    schemas = document["components"]["schemas"]
    budget = schemas["BudgetIn"]
    assert budget["if"] == {"properties": {"scope_type": {"const": "all"}}}
    window = budget["properties"]["window_seconds"]["anyOf"][0]
    assert (window["minimum"], window["maximum"], window["multipleOf"]) == (600, 31_536_000, 600)
    assert budget["properties"]["limit"]["minimum"] == 1
    percent = budget["properties"]["warn_percent"]
    assert (percent["minimum"], percent["maximum"]) == (1, 100)
    assert schemas["RunLimitIn"]["properties"]["max_live"]["minimum"] == 0


def test_a_person_sets_raises_and_lifts_a_budget(personal_client):
    initiative = f.InitiativeFactory()
    created = post_json(
        personal_client,
        url("create_budget"),
        {
            "scope_type": "initiative",
            "scope_id": initiative.pk,
            "metric": "tokens",
            "limit": 1_000,
            "window_seconds": 18_000,
        },
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    budget = created.json()
    assert (budget["scope_id"], budget["limit"], budget["warn_percent"]) == (
        initiative.pk,
        1_000,
        80,
    )

    raised = patch_json(
        personal_client, url("update_budget", budget_id=budget["id"]), {"limit": 5_000}
    )
    assert raised.status_code == HTTPStatus.OK, raised.content
    assert (raised.json()["limit"], raised.json()["window_seconds"]) == (5_000, 18_000)
    listed = personal_client.get(url("list_budgets"), {"scope_type": "initiative"}).json()
    assert [item["id"] for item in listed["items"]] == [budget["id"]]

    lifted = personal_client.delete(url("delete_budget", budget_id=budget["id"]))
    assert lifted.status_code == HTTPStatus.NO_CONTENT
    assert not Budget.objects.exists()
    events = Event.objects.filter(subject_type="budget").order_by("id")
    assert [(e.kind, e.actor_type) for e in events] == [
        ("budget.created", "person"),
        ("budget.updated", "person"),
        ("budget.deleted", "person"),
    ]
    assert events[1].data == {"fields": ["limit"]}


def test_budget_writes_are_a_persons_gate(api_client):
    budget = f.BudgetFactory()

    refused = [
        post_json(api_client, url("create_budget"), {**BUDGET, "limit": 5}),
        patch_json(api_client, url("update_budget", budget_id=budget.pk), {"limit": 5}),
        api_client.delete(url("delete_budget", budget_id=budget.pk)),
    ]

    for response in refused:
        assert_error(response, HTTPStatus.FORBIDDEN, "person_required")
    assert Budget.objects.get().limit == 1_000_000
    assert api_client.get(url("list_budgets")).json()["total"] == 1


BUDGET = {"scope_type": "all", "metric": "cost", "limit": 10}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**BUDGET, "scope_type": "task", "scope_id": "nope"}, 404, "budget_scope_not_found"),
        ({**BUDGET, "scope_id": "x"}, 400, "invalid_scope_id"),
        ({**BUDGET, "scope_type": "task"}, 400, "invalid_scope_id"),
        ({**BUDGET, "limit": 0}, 400, "invalid_limit"),
        ({**BUDGET, "window_seconds": 601}, 422, "validation_error"),
        ({**BUDGET, "warn_percent": 101}, 422, "validation_error"),
    ],
)
def test_bad_budgets_are_refused_writing_nothing(staff_client, body, status, code):
    response = post_json(staff_client, url("create_budget"), body)

    assert_error(response, status, code)
    assert not Budget.objects.exists()
    assert not Event.objects.filter(subject_type="budget").exists()


def test_a_person_sets_changes_and_lifts_a_limit(staff_client):
    created = post_json(
        staff_client,
        url("create_run_limit"),
        {"scope_type": "runner", "scope_id": "runner-9", "max_live": 2},
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    limit_id = created.json()["id"]
    assert created.json()["max_live"] == 2

    changed = patch_json(
        staff_client, url("update_run_limit", run_limit_id=limit_id), {"max_live": 0}
    )
    assert changed.status_code == HTTPStatus.OK, changed.content
    assert changed.json()["max_live"] == 0
    listed = staff_client.get(url("list_run_limits"), {"scope_type": "runner"}).json()
    assert [item["id"] for item in listed["items"]] == [limit_id]
    lifted = staff_client.delete(url("delete_run_limit", run_limit_id=limit_id))
    assert lifted.status_code == HTTPStatus.NO_CONTENT
    assert not RunLimit.objects.exists()
    kinds = list(
        Event.objects.filter(subject_type="run_limit").order_by("id").values_list("kind", "data")
    )
    assert kinds == [
        (
            "run_limit.created",
            {"scope_type": "runner", "scope_id": "runner-9", "max_live": 2},
        ),
        ("run_limit.updated", {"from": 2, "to": 0}),
        (
            "run_limit.deleted",
            {"scope_type": "runner", "scope_id": "runner-9", "max_live": 0},
        ),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"scope_type": "all", "max_live": -1}, 422, "validation_error"),
        (
            {"scope_type": "account", "scope_id": "nope", "max_live": 1},
            404,
            "run_limit_scope_not_found",
        ),
        ({"scope_type": "all", "scope_id": "x", "max_live": 1}, 400, "invalid_scope_id"),
    ],
)
def test_bad_limits_are_refused_writing_nothing(staff_client, body, status, code):
    response = post_json(staff_client, url("create_run_limit"), body)

    assert_error(response, status, code)
    assert not RunLimit.objects.exists()


def test_a_second_limit_on_a_scope_is_409(staff_client):
    f.RunLimitFactory(scope_type="all", scope_id="", max_live=3)

    response = post_json(
        staff_client, url("create_run_limit"), {"scope_type": "all", "max_live": 1}
    )

    assert_error(response, HTTPStatus.CONFLICT, "run_limit_taken")


def test_limit_writes_are_a_persons_gate(api_client):
    limit = f.RunLimitFactory()

    refused = [
        post_json(api_client, url("create_run_limit"), {"scope_type": "all", "max_live": 1}),
        patch_json(api_client, url("update_run_limit", run_limit_id=limit.pk), {"max_live": 1}),
        api_client.delete(url("delete_run_limit", run_limit_id=limit.pk)),
    ]

    for response in refused:
        assert_error(response, HTTPStatus.FORBIDDEN, "person_required")
    assert RunLimit.objects.get().max_live == 4
