"""Text nested deeper than a JSON parser reads (100,000 brackets) where the API parses
JSON of its own: a log append's JSON body, an account's secrets. Each is a 400 with the
field's code, never a 500 ``RecursionError``; nothing is written. A log chunk's content
is any text, parsed by no one: nested that deep, it is stored as it is."""

import json
from http import HTTPStatus

import pytest

from agents.models import Account, AgentLogChunk
from tests import factories as f
from tests.api.helpers import assert_error, patch_json, post_json, url

pytestmark = pytest.mark.django_db

#: Past orjson's 1,024 levels and Python's recursion limit alike.
DEPTHS = [1_100, 100_000]


def brackets(depth: int) -> str:
    return "[" * depth + "]" * depth


def braces(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("nested", [brackets, braces])
def test_a_json_log_body_nested_past_the_parser_is_400_invalid_log_body(api_client, depth, nested):
    agent = f.AgentFactory()

    response = api_client.post(
        url("append_agent_log", agent_id=agent.id),
        nested(depth),
        content_type="application/json",
    )

    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_log_body")
    assert not AgentLogChunk.objects.exists()


@pytest.mark.parametrize("depth", DEPTHS)
def test_an_ndjson_line_nested_past_the_parser_is_stored_as_it_is(api_client, depth):
    agent = f.AgentFactory()
    body = '{"type": "system"}\n' + brackets(depth) + "\n"

    response = api_client.post(
        url("append_agent_log", agent_id=agent.id), body, content_type="application/x-ndjson"
    )

    assert response.status_code == HTTPStatus.CREATED, response.content
    stored = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert stored == ['{"type": "system"}', brackets(depth)]


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_chunk_whose_content_nests_past_the_parser_is_stored_as_it_is(api_client, depth):
    agent = f.AgentFactory()
    chunks = [{"content": '{"type": "system"}'}, {"content": brackets(depth)}]

    response = post_json(api_client, url("append_agent_log", agent_id=agent.id), chunks)

    assert response.status_code == HTTPStatus.CREATED, response.content
    stored = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert stored == [chunk["content"] for chunk in chunks]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("field", ["config_json", "credentials"])
def test_an_account_secret_nested_past_the_parser_is_400_invalid_json(api_client, depth, field):
    response = post_json(
        api_client, url("create_account"), {"email": "deep@example.com", field: brackets(depth)}
    )

    refusal = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_json")
    assert refusal["details"] == {"field": field}
    assert not Account.objects.exists()


@pytest.mark.parametrize("field", ["config_json", "credentials"])
def test_an_account_secret_changed_to_deep_nesting_is_400_and_kept(api_client, field):
    account = f.AccountFactory()
    stored = Account.objects.values_list(field, flat=True).get(pk=account.pk)

    response = patch_json(
        api_client, url("update_account", account_id=account.id), {field: brackets(100_000)}
    )

    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_json")
    assert Account.objects.values_list(field, flat=True).get(pk=account.pk) == stored


def test_a_secret_as_deep_as_the_parser_reads_is_stored(api_client):
    response = post_json(
        api_client,
        url("create_account"),
        {"email": "deep@example.com", "config_json": json.dumps([[[["ok"]]]])},
    )

    assert response.status_code == HTTPStatus.CREATED
