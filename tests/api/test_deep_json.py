"""Deeply nested JSON bodies over HTTP (``POST /api/proposals``): refused in the error
shape, never a 500. Metadata nested past ``MAX_JSON_DEPTH`` is a 400 ``json_too_deep``;
a body nested past what the JSON parser reads is a 422 ``malformed_json``."""

from http import HTTPStatus

import pytest

from core.repositories.validation import MAX_JSON_DEPTH
from reviews.models import Proposal
from tests import factories as f
from tests.api.helpers import assert_error, url

pytestmark = pytest.mark.django_db

#: The refusals a nested body may meet, by code: the repositories' bound, or the parser's.
REFUSALS = {
    "json_too_deep": HTTPStatus.BAD_REQUEST,
    "malformed_json": HTTPStatus.UNPROCESSABLE_ENTITY,
    "validation_error": HTTPStatus.UNPROCESSABLE_ENTITY,
}


def nested_object(depth: int) -> str:
    """A JSON object ``depth`` deep, the outermost included: ``nested_object(2)`` is
    ``{"k":{}}``."""
    return '{"k":' * (depth - 1) + "{}" + "}" * (depth - 1)


def nested_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def create_with_metadata(client, metadata: str):
    """``POST /api/proposals`` of a valid proposal whose ``metadata`` is the JSON text
    ``metadata`` (written out by hand: ``json.dumps`` itself cannot write the deepest)."""
    agent, initiative = f.AgentFactory(), f.InitiativeFactory()
    raw = (
        f'{{"agent_id": "{agent.id}", "initiative_id": "{initiative.id}", '
        f'"target_type": "task", "title": "Deep", "metadata": {metadata}}}'
    )
    return client.post(url("create_proposal"), raw, content_type="application/json")


def assert_refused(response) -> str:
    """The response is one of ``REFUSALS`` in the error shape (not a 500); its code."""
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, response.content[:300]
    code = response.json().get("code")
    assert code in REFUSALS, response.content[:300]
    assert_error(response, REFUSALS[code], code)
    return code


def test_metadata_as_deep_as_the_bound_is_created(api_client):
    response = create_with_metadata(api_client, nested_object(MAX_JSON_DEPTH))
    assert response.status_code == HTTPStatus.CREATED, response.content[:300]
    assert Proposal.objects.get().metadata is not None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100, 500])
def test_metadata_past_the_bound_is_400_json_too_deep(api_client, depth):
    body = assert_error(
        create_with_metadata(api_client, nested_object(depth)),
        HTTPStatus.BAD_REQUEST,
        "json_too_deep",
    )
    assert body["details"] == {"field": "metadata", "max_depth": MAX_JSON_DEPTH}
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("depth", [100, 500, 1_000, 5_000])
def test_deeply_nested_metadata_is_refused_never_a_500(api_client, depth):
    # The depths at which the parser gives up depend on Python's stack, so between the
    # bound and that point either refusal is right; past it only the parser's.
    code = assert_refused(create_with_metadata(api_client, nested_object(depth)))
    if depth <= 500:
        assert code == "json_too_deep"
    if depth >= 5_000:
        assert code == "malformed_json"
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("depth", [100, 500, 1_000, 5_000])
@pytest.mark.parametrize("nested", [nested_object, nested_array])
def test_a_deeply_nested_body_is_refused_never_a_500(api_client, nested, depth):
    response = api_client.post(
        url("create_proposal"), nested(depth), content_type="application/json"
    )
    code = assert_refused(response)
    if depth >= 5_000:
        assert code == "malformed_json"
    assert not Proposal.objects.exists()
