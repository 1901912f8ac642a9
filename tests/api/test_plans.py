"""The core router's reads of planning records."""

from http import HTTPStatus

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db


def test_retrieve_phase_answers_the_phase_with_its_status(api_client):
    phase = f.PhaseFactory(name="Build")

    response = api_client.get(f"/api/phases/{phase.id}")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == phase.id
    assert body["initiative_id"] == phase.initiative_id
    assert (body["name"], body["status"]) == ("Build", "pending")


def test_retrieve_task_answers_the_task(api_client):
    task = f.TaskFactory(name="Write tests")

    body = api_client.get(f"/api/tasks/{task.id}").json()

    assert (body["id"], body["name"], body["status"], body["type"]) == (
        task.id,
        "Write tests",
        "pending",
        "auto",
    )


@pytest.mark.parametrize(
    ("path", "code"), [("phases", "phase_not_found"), ("tasks", "task_not_found")]
)
def test_unknown_ids_are_404_with_the_records_code(api_client, path, code):
    response = api_client.get(f"/api/{path}/nope")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == code


def test_the_openapi_enum_of_a_task_status_is_the_models(api_client):
    from core.models import TaskStatus

    schema = api_client.get("/api/openapi.json").json()["components"]["schemas"]

    assert schema["TaskStatus"]["enum"] == list(TaskStatus.values)
