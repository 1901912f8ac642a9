"""The API over real HTTP, as a tool drives it: a running server, a bearer token, JSON."""

import json
import urllib.error
import urllib.request
from http import HTTPStatus

import pytest

from core.tokens import api_token_create, api_token_revoke
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def call(base: str, method: str, path: str, token: str | None = None, body: bytes | None = None):
    request = urllib.request.Request(base + path, data=body, method=method)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_tool_proposes_a_person_accepts_and_secrets_stay_write_only(
    live_server, django_user_model
):
    base = live_server.url
    _token, clear = api_token_create(name="orchestrator")
    lead = django_user_model.objects.create_user(username="lead", password="x" * 16)
    _personal, personal = api_token_create(name="lead-laptop", person=lead)
    agent = f.AgentFactory()
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative)

    assert call(base, "GET", "/api/whoami", clear) == (
        HTTPStatus.OK,
        {
            "kind": "token",
            "name": "orchestrator",
            "actor": {"type": "tool", "id": _token.pk, "name": "orchestrator", "via": "api"},
        },
    )
    assert call(base, "GET", "/api/whoami", personal)[1]["actor"] == {
        "type": "person",
        "id": str(lead.pk),
        "name": "lead",
        "via": "api",
    }
    status, proposal = call(
        base,
        "POST",
        "/api/proposals",
        clear,
        json.dumps(
            {
                "agent_id": agent.id,
                "initiative_id": initiative.id,
                "target_type": "task",
                "title": "Write the migration",
                "metadata": {"phase_id": phase.id, "priority": "high"},
            }
        ).encode(),
    )
    assert status == HTTPStatus.CREATED
    accept = f"/api/proposals/{proposal['id']}/accept"
    status, refusal = call(base, "POST", accept, clear)
    assert (status, refusal["code"]) == (HTTPStatus.FORBIDDEN, "person_required")
    status, change_set = call(base, "POST", accept, personal)
    assert status == HTTPStatus.OK
    assert [e["entity_type"] for e in change_set["entries"]] == ["tasks", "proposals"]
    task_id = change_set["entries"][0]["entity_id"]

    # A proposal that changes an existing record (outside any test transaction here).
    status, update = call(
        base,
        "POST",
        "/api/proposals",
        clear,
        json.dumps(
            {
                "agent_id": agent.id,
                "initiative_id": initiative.id,
                "target_type": "task",
                "target_id": task_id,
                "title": "Write the migration, reversibly",
            }
        ).encode(),
    )
    assert (status, update["target_id"]) == (HTTPStatus.CREATED, task_id)

    secret = '{"token": "LIVE-SECRET"}'
    status, account = call(
        base,
        "POST",
        "/api/accounts",
        clear,
        json.dumps({"email": "bot@example.com", "credentials": secret}).encode(),
    )
    assert (status, account["has_credentials"]) == (HTTPStatus.CREATED, True)
    assert "LIVE-SECRET" not in json.dumps(call(base, "GET", "/api/accounts", clear)[1])
    status, claimed = call(
        base, "POST", "/api/accounts/claim", clear, json.dumps({"provider": "claude"}).encode()
    )
    assert (status, claimed["credentials"]) == (HTTPStatus.OK, secret)


def test_missing_revoked_and_garbage_get_the_error_shape_never_500(live_server):
    base = live_server.url
    token, clear = api_token_create(name="short-lived")

    status, body = call(base, "GET", "/api/proposals")
    assert (status, body["code"]) == (HTTPStatus.UNAUTHORIZED, "not_authenticated")

    status, body = call(base, "POST", "/api/proposals", clear, b"{not json")
    assert (status, body["code"]) == (HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")
    status, body = call(base, "POST", "/api/proposals", clear, b'{"title": 5}')
    assert (status, body["code"]) == (HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")

    api_token_revoke(token_id_or_prefix=token.id)
    status, body = call(base, "GET", "/api/whoami", clear)
    assert (status, body["code"]) == (HTTPStatus.UNAUTHORIZED, "not_authenticated")
