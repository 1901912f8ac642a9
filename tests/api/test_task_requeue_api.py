"""``POST /api/tasks/{task_id}/requeue`` (``agents/api_runs.py``): a person's requeue of a
task with fresh attempts, and its refusals, each writing nothing."""

from http import HTTPStatus

import pytest
from django.utils import timezone

from agents.models import Run
from core.models import Event, Task
from tests import factories as f
from tests.api.helpers import assert_error, post_json, url
from tests.api.test_runs_api import personal_client, ready_task  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def blocked_after_failures(max_attempts: int = 2) -> Task:
    """A task blocked from pending with ``max_attempts`` failed runs, as the run services
    leave it."""
    initiative = f.InitiativeFactory(execution_mode="yolo", max_attempts=max_attempts)
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    task = f.TaskFactory(phase=phase, status="blocked", blocked_from_status="pending")
    for attempt in range(1, max_attempts + 1):
        f.RunFactory(task=task, attempt=attempt, outcome="failed", ended_at=timezone.now())
    return task


def test_a_person_requeues_a_blocked_task_with_fresh_attempts(personal_client):  # noqa: F811
    task = blocked_after_failures()

    response = post_json(personal_client, url("requeue_task", task_id=task.pk), {})

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert (body["id"], body["status"]) == (task.pk, "pending")
    event = Event.objects.get(kind="task.requeued")
    assert event.data == {"from": "blocked", "attempts_reset": 2}
    assert (event.actor_type, event.actor_name, event.actor_via) == ("person", "ada", "api")
    assert not Run.objects.filter(task=task, attempts_reset_at__isnull=True).exists()


def test_a_staff_session_requeues_too(staff_client):
    task = blocked_after_failures()

    response = post_json(staff_client, url("requeue_task", task_id=task.pk), {})

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["status"] == "pending"


def test_requeue_is_a_persons_gate(api_client):
    task = blocked_after_failures()

    response = post_json(api_client, url("requeue_task", task_id=task.pk), {})

    assert_error(response, HTTPStatus.FORBIDDEN, "person_required")
    task.refresh_from_db()
    assert task.status == "blocked"
    assert not Event.objects.filter(kind="task.requeued").exists()
    assert not Run.objects.filter(attempts_reset_at__isnull=False).exists()


def test_requeue_of_a_task_that_does_not_exist_is_404(staff_client):
    response = post_json(staff_client, url("requeue_task", task_id="no-such-task"), {})

    assert_error(response, HTTPStatus.NOT_FOUND, "task_not_found")


def test_requeue_of_a_task_with_a_live_run_is_409_naming_the_run(staff_client):
    run = f.RunFactory(task=ready_task(status="in_progress"))

    response = post_json(staff_client, url("requeue_task", task_id=run.task_id), {})

    body = assert_error(response, HTTPStatus.CONFLICT, "task_has_live_run")
    assert body["details"] == {"id": run.task_id, "run_id": run.pk}
    assert Task.objects.get(pk=run.task_id).status == "in_progress"
    assert not Event.objects.exists()


@pytest.mark.parametrize("status", ["pending", "completed"])
def test_requeue_of_a_pending_or_completed_task_is_409_with_allowed_from(staff_client, status):
    task = f.TaskFactory(status=status)

    response = post_json(staff_client, url("requeue_task", task_id=task.pk), {})

    body = assert_error(response, HTTPStatus.CONFLICT, "transition_not_allowed")
    assert body["details"] == {
        "id": task.pk,
        "status": status,
        "allowed_from": ["blocked", "in_progress"],
    }
    assert not Event.objects.exists()
