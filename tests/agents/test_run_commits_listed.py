"""``GET /api/runs`` and ``GET /api/runs/{id}`` give each run's commits (per project,
start and end): what a checker compares with the git repositories."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import RunCommit
from core.tokens import api_token_create
from tests.factories import ProjectFactory, RunFactory

pytestmark = pytest.mark.django_db


def test_the_runs_list_and_a_run_give_their_commits_in_a_fixed_number_of_queries(client):
    _, token = api_token_create(name="checker")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    project = ProjectFactory()
    runs = [RunFactory() for _ in range(3)]
    for number, run in enumerate(runs):
        RunCommit.objects.create(
            run=run, project=project, start_commit=f"{number}" * 40, end_commit="f" * 40
        )
    client.get("/api/runs?limit=1", **auth)  # the token's first use writes its last use
    with CaptureQueriesContext(connection) as few:
        answer = client.get("/api/runs?limit=1", **auth)
    with CaptureQueriesContext(connection) as many:
        answer = client.get("/api/runs", **auth)
    assert answer.status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)
    listed = {item["id"]: item["commits"] for item in answer.json()["items"]}
    for number, run in enumerate(runs):
        assert listed[run.pk] == [
            {"project_id": project.pk, "start_commit": f"{number}" * 40, "end_commit": "f" * 40}
        ]
    one = client.get(f"/api/runs/{runs[0].pk}", **auth).json()
    assert one["commits"] == listed[runs[0].pk]


def test_the_schema_forbids_every_commit_key_the_server_refuses(client):
    """A project id key with a NUL is refused (422), and the OpenAPI document forbids it
    (``propertyNames``), so a client generated from it never sends one."""
    from cw_project.api import api

    schemas = api.get_openapi_schema()["components"]["schemas"]
    for schema, field in (("RunFinishIn", "end_commits"), ("RunReportIn", "start_commits")):
        stated = schemas[schema]["properties"][field]["anyOf"][0]
        assert stated["propertyNames"] == {"maxLength": 64, "pattern": "^[^\\u0000]*$"}
        assert stated["additionalProperties"]["pattern"] == "^[0-9a-f]{40}([0-9a-f]{24})?$"
    _, token = api_token_create(name="runner")
    run = RunFactory()
    answer = client.post(
        f"/api/runs/{run.pk}/finish",
        {"runner_name": run.runner_name, "outcome": "failed", "end_commits": {"a\x00": "f" * 40}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"
    run.refresh_from_db()
    assert run.outcome == "running"
