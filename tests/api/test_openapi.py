"""The OpenAPI document: valid enough for tools, complete, and honest about security."""

from http import HTTPStatus

import pytest
from django.test import Client

from agents.api import router as agents_router
from agents.api_runs import router as runs_router
from core.api import router as core_router
from cw_project.api import API_VERSION, api
from reviews.api import router as reviews_router

pytestmark = pytest.mark.django_db


@pytest.fixture
def document() -> dict:
    response = Client().get("/api/openapi.json")
    assert response.status_code == HTTPStatus.OK
    return response.json()


def declared_operations():
    for router in (core_router, agents_router, runs_router, reviews_router):
        for path, view in router.path_operations.items():
            for operation in view.operations:
                for method in operation.methods:
                    yield "/api" + path, method.lower()


def test_document_is_openapi_3_with_the_api_version(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == api.title
    assert document["info"]["version"] == API_VERSION
    assert isinstance(document["paths"], dict)


def test_document_validates_against_the_openapi_specification(document):
    from openapi_spec_validator import validate

    validate(document)


#: What the issues specify the API exposes; a route removed or renamed fails here (every
#: route's documentation is checked by the tests below).
SPECIFIED_OPERATIONS = {
    ("get", "/api/accounts"),
    ("post", "/api/accounts"),
    ("post", "/api/accounts/claim"),
    ("post", "/api/accounts/clear-expired-exhaustion"),
    ("get", "/api/accounts/{account_id}"),
    ("patch", "/api/accounts/{account_id}"),
    ("delete", "/api/accounts/{account_id}"),
    ("post", "/api/accounts/{account_id}/exhaust"),
    ("post", "/api/agents"),
    ("get", "/api/agents"),
    ("get", "/api/agents/by-name/{name}"),
    ("get", "/api/agents/{agent_id}"),
    ("post", "/api/agents/{agent_id}/crashed"),
    ("post", "/api/agents/{agent_id}/dismiss"),
    ("post", "/api/agents/{agent_id}/idle"),
    ("post", "/api/agents/{agent_id}/logs"),
    ("get", "/api/agents/{agent_id}/logs"),
    ("delete", "/api/agents/{agent_id}/logs"),
    ("get", "/api/agents/{agent_id}/logs/sessions"),
    ("get", "/api/agents/{agent_id}/logs/records"),
    ("get", "/api/agents/{agent_id}/logs/stream"),
    ("post", "/api/agents/{agent_id}/proposals/accept-all"),
    ("get", "/api/agents/{agent_id}/proposals/counts"),
    ("post", "/api/agents/{agent_id}/proposals/dismiss-all"),
    ("get", "/api/agents/{agent_id}/questions"),
    ("post", "/api/agents/{agent_id}/running"),
    ("post", "/api/agents/{agent_id}/stopped"),
    ("post", "/api/agents/{agent_id}/waiting-for-input"),
    ("get", "/api/change-sets/{change_set_id}"),
    ("post", "/api/change-sets/{change_set_id}/revert"),
    ("post", "/api/chat-sessions"),
    ("get", "/api/chat-sessions/{session_id}"),
    ("post", "/api/chat-sessions/{session_id}/close"),
    ("get", "/api/chat-sessions/{session_id}/messages"),
    ("post", "/api/chat-sessions/{session_id}/messages"),
    ("get", "/api/checkpoints"),
    ("post", "/api/conversations"),
    ("get", "/api/conversations/{conversation_id}"),
    ("post", "/api/conversations/{conversation_id}/answer"),
    ("get", "/api/events"),
    ("post", "/api/initiatives"),
    ("get", "/api/initiatives"),
    ("get", "/api/initiatives/{initiative_id}"),
    ("patch", "/api/initiatives/{initiative_id}"),
    ("post", "/api/initiatives/{initiative_id}/approve"),
    ("post", "/api/initiatives/{initiative_id}/archive"),
    ("post", "/api/initiatives/{initiative_id}/execution-mode"),
    ("get", "/api/initiatives/{initiative_id}/pages"),
    ("post", "/api/initiatives/{initiative_id}/pages"),
    ("post", "/api/initiatives/{initiative_id}/pages/root"),
    ("post", "/api/initiatives/{initiative_id}/phases"),
    ("get", "/api/initiatives/{initiative_id}/projects"),
    ("put", "/api/initiatives/{initiative_id}/projects"),
    ("post", "/api/initiatives/{initiative_id}/tasks"),
    ("post", "/api/messages"),
    ("get", "/api/messages/pending"),
    ("get", "/api/messages/requiring-response"),
    ("get", "/api/messages/{message_id}"),
    ("post", "/api/messages/{message_id}/read"),
    ("post", "/api/messages/{message_id}/replies"),
    ("get", "/api/pages/{page_id}"),
    ("patch", "/api/pages/{page_id}"),
    ("delete", "/api/pages/{page_id}"),
    ("post", "/api/pages/{page_id}/move"),
    ("get", "/api/phases"),
    ("get", "/api/phases/{phase_id}"),
    ("patch", "/api/phases/{phase_id}"),
    ("delete", "/api/phases/{phase_id}"),
    ("post", "/api/phases/{phase_id}/approve"),
    ("post", "/api/phases/{phase_id}/approve-plan"),
    ("post", "/api/phases/{phase_id}/block"),
    ("post", "/api/phases/{phase_id}/complete"),
    ("get", "/api/phases/{phase_id}/dependencies"),
    ("post", "/api/phases/{phase_id}/dependencies"),
    ("delete", "/api/phases/{phase_id}/dependencies/{depends_on_id}"),
    ("post", "/api/phases/{phase_id}/request-changes"),
    ("get", "/api/phases/{phase_id}/review-brief"),
    ("get", "/api/phases/{phase_id}/review-comments"),
    ("post", "/api/phases/{phase_id}/review-comments"),
    ("post", "/api/phases/{phase_id}/start"),
    ("post", "/api/phases/{phase_id}/tasks"),
    ("post", "/api/phases/{phase_id}/unblock"),
    ("post", "/api/projects"),
    ("get", "/api/projects"),
    ("get", "/api/projects/{project_id}"),
    ("patch", "/api/projects/{project_id}"),
    ("delete", "/api/projects/{project_id}"),
    ("post", "/api/projects/{project_id}/fetched"),
    ("post", "/api/projects/{project_id}/fetch"),
    ("get", "/api/proposals"),
    ("post", "/api/proposals"),
    ("get", "/api/proposals/{proposal_id}"),
    ("post", "/api/proposals/{proposal_id}/accept"),
    ("post", "/api/proposals/{proposal_id}/dismiss"),
    ("get", "/api/ready-tasks"),
    ("post", "/api/runs/take-next"),
    ("get", "/api/runs"),
    ("get", "/api/budgets"),
    ("post", "/api/budgets"),
    ("patch", "/api/budgets/{budget_id}"),
    ("delete", "/api/budgets/{budget_id}"),
    ("get", "/api/run-limits"),
    ("post", "/api/run-limits"),
    ("patch", "/api/run-limits/{run_limit_id}"),
    ("delete", "/api/run-limits/{run_limit_id}"),
    ("get", "/api/runs/{run_id}"),
    ("patch", "/api/runs/{run_id}"),
    ("get", "/api/tasks/{task_id}/attempts"),
    ("post", "/api/runs/{run_id}/heartbeat"),
    ("post", "/api/runs/{run_id}/finish"),
    ("post", "/api/runs/{run_id}/cancel"),
    ("post", "/api/runs/{run_id}/resume"),
    ("post", "/api/tasks/{task_id}/requeue"),
    ("patch", "/api/review-comments/{comment_id}"),
    ("delete", "/api/review-comments/{comment_id}"),
    ("post", "/api/review-comments/{comment_id}/resolve"),
    ("post", "/api/review-comments/{comment_id}/unresolve"),
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{task_id}"),
    ("patch", "/api/tasks/{task_id}"),
    ("delete", "/api/tasks/{task_id}"),
    ("post", "/api/tasks/{task_id}/block"),
    ("post", "/api/tasks/{task_id}/complete"),
    ("get", "/api/tasks/{task_id}/context"),
    ("get", "/api/tasks/{task_id}/dependencies"),
    ("post", "/api/tasks/{task_id}/dependencies"),
    ("delete", "/api/tasks/{task_id}/dependencies/{depends_on_id}"),
    ("post", "/api/tasks/{task_id}/start"),
    ("post", "/api/tasks/{task_id}/subtasks"),
    ("post", "/api/tasks/{task_id}/unblock"),
    ("get", "/api/whoami"),
    ("get", "/api/events/stream"),
    ("get", "/api/agents/{agent_id}/logs/events"),
    ("get", "/api/agents/{agent_id}/questions/stream"),
}


def test_document_lists_every_specified_operation(document):
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == SPECIFIED_OPERATIONS


def test_every_declared_route_is_documented(document):
    operations = list(declared_operations())
    assert ("/api/whoami", "get") in operations
    for path, method in operations:
        assert method in document["paths"].get(path, {}), f"{method.upper()} {path} is missing"


#: Operations that hand out secrets: tools only, so a bearer token and no session.
BEARER_ONLY = {
    ("/api/accounts/claim", "post"),
    ("/api/runs/take-next", "post"),
    ("/api/runs/{run_id}/resume", "post"),
}


def test_every_operation_declares_both_security_schemes_except_the_claim(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerTokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["StaffSessionAuth"]["in"] == "cookie"
    assert set(schemes) == {"BearerTokenAuth", "StaffSessionAuth"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = (
                [{"BearerTokenAuth": []}]
                if (path, method) in BEARER_ONLY
                else [{"BearerTokenAuth": []}, {"StaffSessionAuth": []}]
            )
            assert operation.get("security") == expected, f"{method.upper()} {path}"
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert BEARER_ONLY.issubset(documented)


def test_error_responses_are_documented_with_the_error_shape(document):
    responses = document["paths"]["/api/whoami"]["get"]["responses"]
    assert set(responses) >= {"200", "401", "403"}
    error_ref = responses["401"]["content"]["application/json"]["schema"]["$ref"]
    error_schema = document["components"]["schemas"][error_ref.rsplit("/", 1)[-1]]
    assert set(error_schema["properties"]) == {"code", "message", "details", "deprecated_codes"}
    assert set(error_schema["required"]) == {"code", "message"}


def test_docs_page_points_at_the_schema():
    response = Client().get("/api/docs")
    assert response.status_code == HTTPStatus.OK
    assert b"openapi.json" in response.content


def test_links_reach_every_operation_taking_an_id_from_a_create(document):
    """Each operation with a path parameter is the target of a link from a create (so a
    stateful client reaches it with a real id), and every link names an operation and
    gives exactly its path parameters."""
    operations = {
        operation["operationId"]: operation
        for item in document["paths"].values()
        for operation in item.values()
    }
    targets = set()
    for operation in operations.values():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                target = operations[link["operationId"]]
                path_params = {p["name"] for p in target["parameters"] if p["in"] == "path"}
                assert set(link["parameters"]) == path_params, link
                assert all(
                    v.startswith(("$response.body#/", "$request.path."))
                    for v in link["parameters"].values()
                )
                targets.add(link["operationId"])
    with_ids = {
        operation_id
        for operation_id, operation in operations.items()
        if any(p["in"] == "path" for p in operation.get("parameters", []))
    }
    assert with_ids <= targets
    created = document["paths"]["/api/initiatives"]["post"]["responses"]["201"]["links"]
    assert created["core_api_plans_retrieve_initiative"]["parameters"] == {
        "initiative_id": "$response.body#/id"
    }
