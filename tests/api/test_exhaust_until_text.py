"""``POST /accounts/{id}/exhaust`` takes ``until`` as the OpenAPI document says: RFC 3339
text (``type: string, format: date-time``). A number (``0`` was read as 1970, a time past,
and released the account) or text that is not a date and time with its zone is a 422."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from tests import factories as f
from tests.api.helpers import assert_error, post_json, url

pytestmark = pytest.mark.django_db


def in_an_hour() -> str:
    return (timezone.now() + timedelta(hours=1)).replace(microsecond=0).isoformat()


@pytest.mark.parametrize(
    "until",
    [
        0,
        1_900_000_000,
        1.5,
        True,
        "0",
        "1900000000",
        "2099-05-01",
        "2099-05-01T12:00",
        "2099-05-01T12:00+00:00",
        "2099-05-01 12:00:00Z",
        "tomorrow",
        [],
        {},
    ],
)
def test_an_until_that_is_not_rfc3339_text_is_422_and_changes_nothing(api_client, until):
    account = f.AccountFactory(is_exhausted=True, exhausted_until=timezone.now() + timedelta(1))
    parked_until = account.exhausted_until

    response = post_json(
        api_client, url("mark_account_exhausted", account_id=account.id), {"until": until}
    )

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert [error["loc"] for error in body["details"]["errors"]] == [["body", "payload", "until"]]
    account.refresh_from_db()
    assert (account.is_exhausted, account.exhausted_until) == (True, parked_until)


@pytest.mark.parametrize(
    "written",
    [
        lambda text: text,
        lambda text: text.replace("+00:00", "Z"),
        lambda text: text.replace("T", "t").replace("+00:00", "z"),
        lambda text: text.replace("+00:00", ".123456+00:00"),
    ],
)
def test_an_until_in_rfc3339_text_parks_the_account(api_client, written):
    account = f.AccountFactory()

    response = post_json(
        api_client,
        url("mark_account_exhausted", account_id=account.id),
        {"until": written(in_an_hour())},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["is_exhausted"] is True


def test_the_document_states_until_as_date_time_text(client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["AccountExhaustIn"]

    assert schema["properties"]["until"]["type"] == "string"
    assert schema["properties"]["until"]["format"] == "date-time"
    assert schema["required"] == ["until"]
