"""Resuming a run (issue 22, ``agents/services/resume.py``, ``POST /runs/{run_id}/resume``):
a restarted runner ends its live run ``crashed`` and starts the next one of the same task,
agent and account, carrying the CLI session and the worktree on, in one transaction; the
task never leaves ``in_progress``. Refusals write nothing."""

from http import HTTPStatus
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from agents.models import Run
from agents.services import run_finish
from core.models import ApiToken, Event, Task
from core.repositories import TaskRepository
from core.tokens import api_token_create
from tests import factories as f
from tests.agents.run_invariants import assert_runs_agree
from tests.api.helpers import assert_error, bearer, patch_json, post_json

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-test"}}'
RUNNER = {"runner_name": "runner-1", "runner_host": "build-01", "providers": ["claude"]}


@pytest.fixture
def runner() -> Client:
    _, clear = api_token_create(name="runner-1")
    return bearer(clear)


def ready_task(**initiative: Any) -> Task:
    initiative = f.InitiativeFactory(execution_mode="yolo", retry_backoff_seconds=0, **initiative)
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    return f.TaskFactory(phase=phase)


def take(runner: Client) -> dict[str, Any]:
    response = post_json(runner, "/api/runs/take-next", RUNNER)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def resume(client: Client, run_id: str, runner_name: str = "runner-1") -> Any:
    return post_json(client, f"/api/runs/{run_id}/resume", {"runner_name": runner_name})


@pytest.fixture
def taken(runner) -> dict[str, Any]:
    """A live run whose runner reported its worktree and CLI session."""
    f.AccountFactory(credentials=CREDENTIALS)
    ready_task()
    body = take(runner)
    report = {"runner_name": "runner-1", "worktree_path": "/w/run-1", "session_id": "sess-1"}
    assert patch_json(runner, f"/api/runs/{body['run']['id']}", report).status_code == 200
    return body


def test_a_resume_ends_the_run_crashed_and_carries_it_on_in_the_next(runner, taken):
    old_id = taken["run"]["id"]

    response = resume(runner, old_id)

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    old, new = Run.objects.get(pk=old_id), Run.objects.get(pk=body["run"]["id"])
    assert old.outcome == "crashed" and old.ended_at is not None
    assert old.error == f"The runner restarted; resumed as run {new.pk}."
    assert new.outcome == "running"
    assert (new.task_id, new.agent_id, new.account_id) == (
        old.task_id,
        old.agent_id,
        old.account_id,
    )
    assert (new.attempt, new.session_number) == (old.attempt + 1, old.session_number + 1)
    assert (new.session_id, new.worktree_path) == ("sess-1", "/w/run-1")
    assert (new.runner_name, new.runner_host) == (old.runner_name, old.runner_host)
    assert new.heartbeat_timeout_seconds == old.heartbeat_timeout_seconds
    # The answer is take-next's shape.
    assert set(body) == {"task", "agent", "run", "run_token", "account", "attempts"}
    assert body["task"]["status"] == "in_progress" and body["agent"]["status"] == "running"
    assert body["run"]["session_id"] == "sess-1" and body["run"]["attempt"] == 2
    assert body["account"]["credentials"] == CREDENTIALS
    assert [a["run_id"] for a in body["attempts"]] == [old_id]
    # The task never left in_progress, never entered the ready queue.
    assert Task.objects.get(pk=new.task_id).status == "in_progress"
    assert not TaskRepository().ready_queryset().filter(pk=new.task_id).exists()
    assert_runs_agree()


def test_a_resume_records_the_old_runs_end_and_the_new_runs_start_by_its_runner(runner, taken):
    old_id = taken["run"]["id"]
    before = Event.objects.count()

    new_id = resume(runner, old_id).json()["run"]["id"]

    recorded = list(Event.objects.order_by("id")[before:])
    assert [(e.kind, e.subject_id) for e in recorded] == [
        ("run.resumed", old_id),
        ("run.started", new_id),
    ]
    resumed, started = recorded
    assert resumed.data == {
        "task_id": taken["task"]["id"],
        "resumed_as": new_id,
        "attempt": 2,
        "session_number": 2,
    }
    assert started.data["resumed_from"] == old_id and started.data["session_number"] == 2
    assert started.data["attempt"] == 2
    for event in recorded:
        assert (event.actor_type, event.actor_name) == ("tool", "runner-1")


def test_the_old_runs_token_dies_and_the_new_one_works(runner, taken):
    body = resume(runner, taken["run"]["id"]).json()

    old = bearer(taken["run_token"]).get("/api/whoami")
    new = bearer(body["run_token"]).get(f"/api/runs/{body['run']['id']}")

    assert_error(old, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert new.status_code == HTTPStatus.OK
    assert ApiToken.objects.filter(run_id=body["run"]["id"]).count() == 1


def test_a_resumed_run_finishes_as_any_run(runner, taken):
    body = resume(runner, taken["run"]["id"]).json()

    run_finish(run_id=body["run"]["id"], runner_name="runner-1", outcome="succeeded")

    assert Task.objects.get(pk=body["task"]["id"]).status == "completed"
    assert_runs_agree()


# --- refusals: nothing written -------------------------------------------------------------


def _nothing_written(run_id: str, events: int) -> None:
    assert Run.objects.count() == 1
    assert Event.objects.count() == events
    assert_runs_agree()


def test_a_resume_of_a_run_held_by_another_runner_is_refused(runner, taken):
    events = Event.objects.count()

    response = resume(runner, taken["run"]["id"], runner_name="runner-2")

    assert_error(response, HTTPStatus.CONFLICT, "run_not_held")
    assert Run.objects.get(pk=taken["run"]["id"]).outcome == "running"
    _nothing_written(taken["run"]["id"], events)


def test_a_resume_of_a_run_that_is_over_is_refused(runner, taken):
    run_finish(run_id=taken["run"]["id"], runner_name="runner-1", outcome="failed")
    events = Event.objects.count()

    response = resume(runner, taken["run"]["id"])

    found = assert_error(response, HTTPStatus.CONFLICT, "run_not_live")
    assert found["details"]["outcome"] == "failed"
    assert Event.objects.count() == events


def test_a_resume_of_an_unknown_run_is_404(runner):
    assert_error(resume(runner, "x" * 22), HTTPStatus.NOT_FOUND, "run_not_found")


def test_a_resume_that_would_spend_the_last_attempt_is_refused_and_the_runner_finishes_it(
    runner,
):
    f.AccountFactory(credentials=CREDENTIALS)
    task = ready_task(max_attempts=3)
    run_id = take(runner)["run"]["id"]
    run_id = resume(runner, run_id).json()["run"]["id"]  # crash 1 of 3
    run_id = resume(runner, run_id).json()["run"]["id"]  # crash 2 of 3
    events = Event.objects.count()

    response = resume(runner, run_id)

    found = assert_error(response, HTTPStatus.CONFLICT, "run_attempts_spent")
    assert found["details"] == {"id": run_id, "failures": 3, "max_attempts": 3}
    assert Run.objects.get(pk=run_id).outcome == "running"
    assert Event.objects.count() == events
    assert_runs_agree()
    # The runner then finishes it crashed: the task is blocked, its attempts spent.
    run_finish(run_id=run_id, runner_name="runner-1", outcome="crashed")
    assert Task.objects.get(pk=task.pk).status == "blocked"


def test_a_resume_on_a_spent_budget_is_refused(runner, taken):
    usage = {"runner_name": "runner-1", "usage": [{"model": "m", "input_tokens": 50}]}
    beat = post_json(runner, f"/api/runs/{taken['run']['id']}/heartbeat", usage)
    assert beat.json()["decision"] == "continue"
    f.BudgetFactory(scope_type="task", scope_id=taken["task"]["id"], limit=10)
    events = Event.objects.count()

    response = resume(runner, taken["run"]["id"])

    found = assert_error(response, HTTPStatus.CONFLICT, "budget_spent")
    assert len(found["details"]["budget_ids"]) == 1
    _nothing_written(taken["run"]["id"], events)


def test_a_run_whose_account_is_gone_cannot_be_resumed(runner, taken):
    Run.objects.filter(pk=taken["run"]["id"]).update(account=None)  # as a deletion leaves it
    events = Event.objects.count()

    response = resume(runner, taken["run"]["id"])

    assert_error(response, HTTPStatus.CONFLICT, "run_not_resumable")
    assert Run.objects.get(pk=taken["run"]["id"]).outcome == "running"
    _nothing_written(taken["run"]["id"], events)


def test_a_person_may_not_resume_a_run(taken):
    user = get_user_model().objects.create_user(username="ada", is_staff=True)
    _, clear = api_token_create(name="ada-laptop", person=user)
    staff = Client()
    staff.force_login(user)
    events = Event.objects.count()

    for client in (bearer(clear), staff):
        response = resume(client, taken["run"]["id"])
        assert response.status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.UNAUTHORIZED)
        assert "sk-ant" not in response.content.decode()
    assert_error(resume(bearer(clear), taken["run"]["id"]), 403, "tool_token_required")
    assert_error(resume(staff, taken["run"]["id"]), 403, "tool_token_required")
    _nothing_written(taken["run"]["id"], events)


def test_a_resume_whose_account_secrets_are_unreadable_is_refused(runner):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(CW_SECRET_KEYS=[old_key]):
        account = f.AccountFactory(credentials=CREDENTIALS)
        ready_task()
        run_id = take(runner)["run"]["id"]
    events = Event.objects.count()

    with override_settings(CW_SECRET_KEYS=[new_key]):
        response = resume(runner, run_id)

    found = assert_error(response, HTTPStatus.CONFLICT, "account_secret_unreadable")
    assert found["details"]["account_ids"] == [account.pk]
    assert "sk-ant" not in response.content.decode()
    _nothing_written(run_id, events)
