""" "Blank" means one thing to the document and to the server: what Python's strip removes,
U+001C-U+001F included (the stateful fuzzer sent a log chunk of one U+001C that the
document allowed and the repository refused as empty)."""

import re
from http import HTTPStatus

import pytest

from core.schemas.base import NOT_BLANK_PATTERN, TEXT_NOT_BLANK_PATTERN
from tests.api.helpers import assert_error, post_json, url
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

SEPARATORS = ["\x1c", "\x1d", "\x1e", "\x1f", " \x1f\t"]


@pytest.mark.parametrize("pattern", [NOT_BLANK_PATTERN, TEXT_NOT_BLANK_PATTERN])
@pytest.mark.parametrize("blank", SEPARATORS)
def test_the_document_calls_separators_blank(pattern, blank):
    assert re.fullmatch(pattern, blank) is None
    assert re.fullmatch(pattern, f"{blank}x{blank}")


@pytest.mark.parametrize("blank", SEPARATORS)
def test_a_name_of_separators_is_refused_and_one_around_them_is_stripped(api_client, blank):
    refused = post_json(api_client, "/api/initiatives", {"name": blank})
    assert_error(refused, HTTPStatus.BAD_REQUEST, "empty_name")

    created = post_json(api_client, "/api/initiatives", {"name": f"{blank}Payments{blank}"})
    assert created.status_code == HTTPStatus.CREATED
    assert created.json()["name"] == "Payments"


@pytest.mark.parametrize("blank", SEPARATORS)
def test_a_log_chunk_of_separators_is_refused_as_the_document_says(api_client, blank):
    agent = AgentFactory()
    response = post_json(
        api_client, url("append_agent_log", agent_id=agent.id), [{"content": blank}]
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, "empty_content")
