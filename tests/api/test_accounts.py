"""The accounts API (``agents/api.py``): CRUD, round-robin claims, exhaustion, refusals."""

from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import Account
from core.models import Event
from core.schemas import MAX_LIMIT
from cw_project.api import api
from tests.api.helpers import as_json, assert_error, assert_refusal, patch_json, post_json
from tests.factories import AccountFactory, AgentFactory

pytestmark = pytest.mark.django_db

CONFIG = '{"oauthAccount": {"emailAddress": "dev@example.com"}}'
CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-test"}}'

#: Every operation of the accounts router: (method, URL name, whether it takes an id).
ENDPOINTS = [
    ("get", "list_accounts", False),
    ("post", "create_account", False),
    ("post", "claim_account", False),
    ("post", "clear_expired_exhaustion", False),
    ("get", "retrieve_account", True),
    ("patch", "update_account", True),
    ("delete", "delete_account", True),
    ("post", "mark_account_exhausted", True),
]


def url(name: str, account_id: str | None = None) -> str:
    if account_id is None:
        return reverse(f"api-1:{name}")
    return reverse(f"api-1:{name}", kwargs={"account_id": account_id})


def account_body(account: Account) -> dict[str, Any]:
    """The ``AccountOut`` body of ``account`` as stored now."""
    account.refresh_from_db()
    return {
        "id": account.id,
        "email": account.email,
        "provider": account.provider,
        "has_config": account.config_json is not None,
        "has_credentials": account.credentials is not None,
        "is_exhausted": account.is_exhausted,
        "exhausted_until": as_json(account.exhausted_until),
        "last_used_at": as_json(account.last_used_at),
        "sort_order": account.sort_order,
        "created_at": as_json(account.created_at),
        "updated_at": as_json(account.updated_at),
    }


def claim_body(account: Account) -> dict[str, Any]:
    """The ``AccountClaimOut`` body: ``AccountOut`` plus the clear secrets."""
    body = account_body(account)
    return {**body, "config_json": account.config_json, "credentials": account.credentials}


def raw_secret_columns(account_id: str) -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config_json, credentials FROM accounts WHERE id = %s", [account_id])
        return cursor.fetchone()


def error_locations(body: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in body["details"]["errors"]]


def future(**delta: float) -> datetime:
    return timezone.now() + timedelta(**delta)


def past(**delta: float) -> datetime:
    return timezone.now() - timedelta(**delta)


# --- authentication ---------------------------------------------------------------------


def test_endpoint_table_lists_every_accounts_operation():
    schema = api.get_openapi_schema()
    operations = {
        operation["operationId"].removeprefix("agents_api_")
        for item in schema["paths"].values()
        for operation in item.values()
        if operation["operationId"].startswith("agents_api_")
        and operation.get("tags") == ["accounts"]
    }
    assert operations == {name for _, name, _ in ENDPOINTS}


@pytest.mark.parametrize(("method", "name", "takes_id"), ENDPOINTS)
def test_every_endpoint_refuses_an_anonymous_caller_with_401(method, name, takes_id):
    account = AccountFactory(credentials=CREDENTIALS)
    before = account_body(account)
    path = url(name, account.id if takes_id else None)
    kwargs = {} if method == "get" else {"data": {}, "content_type": "application/json"}

    response = getattr(Client(), method)(path, **kwargs)

    body = assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert "claudeAiOauth" not in response.content.decode()
    assert body["details"] == {}
    # Nothing happened: not claimed, not deleted, not changed.
    assert account_body(account) == before


def test_staff_session_may_use_the_accounts_api(staff_client):
    account = AccountFactory()
    response = staff_client.get(url("retrieve_account", account.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == account_body(account)


# --- list -------------------------------------------------------------------------------


def test_list_answers_accounts_in_rotation_order_without_secrets(api_client):
    second = AccountFactory(sort_order=2, config_json=CONFIG)
    first = AccountFactory(sort_order=1, credentials=CREDENTIALS)
    codex = AccountFactory(provider="codex", sort_order=0)

    response = api_client.get(url("list_accounts"))

    assert response.status_code == HTTPStatus.OK
    # Ordered by provider, then sort_order.
    assert response.json() == {
        "items": [account_body(first), account_body(second), account_body(codex)],
        "total": 3,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }


def test_list_filters_by_provider(api_client):
    AccountFactory.create_batch(2, provider="claude")
    codex = AccountFactory(provider="codex")

    body = api_client.get(url("list_accounts"), {"provider": "codex"}).json()

    assert body == {
        "items": [account_body(codex)],
        "total": 1,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }


def test_list_of_an_unknown_provider_is_an_empty_page(api_client):
    AccountFactory()
    body = api_client.get(url("list_accounts"), {"provider": "gemini"}).json()
    assert body == {"items": [], "total": 0, "limit": 50, "offset": 0, "next_offset": None}


def test_list_pages_with_limit_and_offset_cover_every_account_once(api_client):
    accounts = AccountFactory.create_batch(5)
    expected = [account.id for account in accounts]  # increasing sort_order

    pages = [
        api_client.get(url("list_accounts"), {"limit": 2, "offset": offset}).json()
        for offset in (0, 2, 4)
    ]

    assert [[item["id"] for item in page["items"]] for page in pages] == [
        expected[0:2],
        expected[2:4],
        expected[4:5],
    ]
    assert {(page["total"], page["limit"]) for page in pages} == {(5, 2)}
    assert [page["offset"] for page in pages] == [0, 2, 4]
    assert [page["next_offset"] for page in pages] == [2, 4, None]


def test_list_offset_past_the_end_is_an_empty_page_with_the_total(api_client):
    AccountFactory.create_batch(2)
    body = api_client.get(url("list_accounts"), {"offset": 10}).json()
    assert body == {"items": [], "total": 2, "limit": 50, "offset": 10, "next_offset": None}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": MAX_LIMIT + 1}, "invalid_limit"),
        ({"limit": 0}, "invalid_limit"),
        ({"offset": -1}, "invalid_offset"),
        ({"limit": "many"}, "invalid_limit"),
    ],
)
def test_list_refuses_out_of_range_paging_with_its_code(api_client, query, code):
    response = api_client.get(url("list_accounts"), query)
    assert_refusal(response, code)


def make_accounts_with_secrets(count: int) -> None:
    Account.objects.bulk_create(
        Account(
            email=f"bulk{i}@example.com",
            sort_order=i,
            config_json=CONFIG,
            credentials=CREDENTIALS,
        )
        for i in range(count)
    )


@pytest.mark.parametrize("rows", [10, MAX_LIMIT, 1000])
def test_list_query_count_does_not_grow_with_rows(api_client, rows, django_assert_max_num_queries):
    make_accounts_with_secrets(rows)
    api_client.get(url("list_accounts"))  # stamps the token's last_used_at outside the measure
    # Authentication (1) + the texts' sizes (1) + the page (1) + the total (1).
    with django_assert_max_num_queries(4):
        response = api_client.get(url("list_accounts"), {"limit": MAX_LIMIT})
    body = response.json()
    assert body["total"] == rows
    assert len(body["items"]) == min(rows, MAX_LIMIT)


def test_list_reads_no_secret_so_it_decrypts_nothing(api_client, monkeypatch):
    make_accounts_with_secrets(3)
    AccountFactory(sort_order=3)  # one without secrets, last in rotation order

    def refuse_to_decrypt(value: str) -> str:
        raise AssertionError("the list decrypted a secret")

    monkeypatch.setattr("agents.secrets.decrypt", refuse_to_decrypt)
    # The patch bites: loading a whole row does decrypt.
    with pytest.raises(AssertionError, match="decrypted"):
        Account.objects.filter(config_json__isnull=False).first()

    response = api_client.get(url("list_accounts"))

    assert response.status_code == HTTPStatus.OK
    flags = [(item["has_config"], item["has_credentials"]) for item in response.json()["items"]]
    assert flags == [(True, True)] * 3 + [(False, False)]


def test_retrieve_update_and_exhaust_decrypt_nothing(api_client, monkeypatch):
    make_accounts_with_secrets(1)
    account = Account.objects.get()

    def refuse_to_decrypt(value: str) -> str:
        raise AssertionError("a secret was decrypted")

    monkeypatch.setattr("agents.secrets.decrypt", refuse_to_decrypt)
    until = (timezone.now() + timedelta(hours=1)).isoformat()

    responses = [
        api_client.get(url("retrieve_account", account_id=account.id)),
        api_client.patch(
            url("update_account", account_id=account.id),
            {"sort_order": 5},
            content_type="application/json",
        ),
        post_json(
            api_client, url("mark_account_exhausted", account_id=account.id), {"until": until}
        ),
    ]

    assert [r.status_code for r in responses] == [HTTPStatus.OK] * 3
    assert all(r.json()["has_credentials"] for r in responses)


def test_update_that_clears_a_secret_answers_it_is_no_longer_set(api_client):
    make_accounts_with_secrets(1)
    account = Account.objects.get()
    response = api_client.patch(
        url("update_account", account_id=account.id),
        {"credentials": None},
        content_type="application/json",
    )
    assert (response.json()["has_config"], response.json()["has_credentials"]) == (True, False)


# --- create -----------------------------------------------------------------------------


def test_create_stores_the_account_encrypted_and_answers_it_without_secrets(api_client):
    response = post_json(
        api_client,
        url("create_account"),
        {
            "email": "dev@example.com",
            "provider": "codex",
            "config_json": CONFIG,
            "credentials": CREDENTIALS,
            "sort_order": 7,
        },
    )

    assert response.status_code == HTTPStatus.CREATED
    account = Account.objects.get()
    assert response.json() == account_body(account)
    assert (account.email, account.provider, account.sort_order) == ("dev@example.com", "codex", 7)
    assert (account.config_json, account.credentials) == (CONFIG, CREDENTIALS)
    assert response.json()["has_config"] is True
    assert response.json()["has_credentials"] is True
    assert all(raw.startswith("fernet:") for raw in raw_secret_columns(account.id))


def test_create_with_only_an_email_uses_the_defaults(api_client):
    response = post_json(api_client, url("create_account"), {"email": "dev@example.com"})

    assert response.status_code == HTTPStatus.CREATED
    account = Account.objects.get()
    body = response.json()
    assert body == account_body(account)
    assert (body["provider"], body["sort_order"]) == ("claude", 0)
    assert (body["has_config"], body["has_credentials"], body["is_exhausted"]) == (
        False,
        False,
        False,
    )
    assert (body["exhausted_until"], body["last_used_at"]) == (None, None)
    assert raw_secret_columns(account.id) == (None, None)


def test_create_refuses_a_bad_email_with_400_invalid_email(api_client):
    response = post_json(api_client, url("create_account"), {"email": "not-an-email"})

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_email")
    assert body["details"] == {"field": "email"}
    assert not Account.objects.exists()


@pytest.mark.parametrize("field", ["config_json", "credentials"])
def test_create_refuses_a_secret_that_is_not_json_without_echoing_it(api_client, field):
    secret = "not json: sk-ant-DO-NOT-ECHO-4242"

    response = post_json(
        api_client, url("create_account"), {"email": "dev@example.com", field: secret}
    )

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_json")
    assert body["details"] == {"field": field}
    assert "DO-NOT-ECHO" not in response.content.decode()
    assert not Account.objects.exists()


@pytest.mark.parametrize("email", ["dev@example.com", "DEV@Example.com"])
def test_create_refuses_the_same_provider_and_email_twice_with_409(api_client, email):
    AccountFactory(email="dev@example.com", provider="codex", credentials=CREDENTIALS)

    response = post_json(
        api_client,
        url("create_account"),
        {"email": email, "provider": "codex", "credentials": CREDENTIALS},
    )

    body = assert_error(response, HTTPStatus.CONFLICT, "account_email_taken")
    assert "already exists" in body["message"]
    assert "claudeAiOauth" not in response.content.decode()
    assert Account.objects.count() == 1


def test_create_takes_the_same_email_for_another_provider(api_client):
    AccountFactory(email="dev@example.com", provider="claude")

    response = post_json(
        api_client, url("create_account"), {"email": "dev@example.com", "provider": "codex"}
    )

    assert response.status_code == HTTPStatus.CREATED
    assert Account.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({}, "email", "validation_error"),
        ({"email": "a@"}, "email", "invalid_email"),  # shorter than 3
        ({"email": "x" * 321 + "@example.com"}, "email", "invalid_email"),
        ({"email": "dev@example.com", "provider": ""}, "provider", "validation_error"),
        ({"email": "dev@example.com", "sort_order": "first"}, "sort_order", "validation_error"),
        ({"email": "dev@example.com", "config_json": {"a": 1}}, "config_json", "validation_error"),
    ],
)
def test_create_refuses_a_body_that_breaks_the_schema(api_client, payload, field, code):
    # The email's own code when the schema refuses it; 422 for a field without one.
    location = ["body", "payload", field]
    response = post_json(api_client, url("create_account"), payload)

    body = assert_refusal(response, code)
    assert location in error_locations(body)
    assert not Account.objects.exists()


@pytest.mark.parametrize("field", ["config_json", "credentials"])
@pytest.mark.parametrize("bad", ['"\ud800"', '{"token": "\udfff"}', '{"a": "\u0000"}'])
def test_create_refuses_a_secret_no_database_can_store_with_422(api_client, field, bad):
    # A lone surrogate cannot be encoded as UTF-8 (to encrypt or store); NUL is refused
    # by PostgreSQL. Both are refused before anything is written, naming only the field.
    response = post_json(api_client, url("create_account"), {"email": "a@example.com", field: bad})

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert error_locations(body) == [["body", "payload", field]]
    assert not Account.objects.exists()


@pytest.mark.parametrize("field", ["email", "provider", "config_json", "credentials"])
def test_update_refuses_a_lone_surrogate_and_changes_nothing(api_client, field):
    account = AccountFactory(credentials=CREDENTIALS)
    before = account_body(account)
    raw_before = raw_secret_columns(account.id)

    response = patch_json(api_client, url("update_account", account.id), {field: "x\udc00@y.z"})

    body = assert_refusal(response, "invalid_email" if field == "email" else "validation_error")
    assert error_locations(body) == [["body", "payload", field]]
    assert account_body(account) == before
    assert raw_secret_columns(account.id) == raw_before


def test_create_refuses_malformed_json_with_422(api_client):
    response = api_client.post(
        url("create_account"), '{"email": "dev@example.com",', content_type="application/json"
    )
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")
    assert not Account.objects.exists()


# --- retrieve ---------------------------------------------------------------------------


def test_retrieve_answers_the_account_without_secrets(api_client):
    account = AccountFactory(config_json=CONFIG)

    response = api_client.get(url("retrieve_account", account.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == account_body(account)
    assert "oauthAccount" not in response.content.decode()
    assert (response.json()["has_config"], response.json()["has_credentials"]) == (True, False)


def test_retrieve_of_an_unknown_id_is_404_account_not_found(api_client):
    response = api_client.get(url("retrieve_account", "missing"))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {
        "code": "account_not_found",
        "message": "Account 'missing' does not exist.",
        "details": {"id": "missing"},
    }


# --- update -----------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent(api_client):
    account = AccountFactory(email="old@example.com", sort_order=1, config_json=CONFIG)
    before = account_body(account)

    response = patch_json(
        api_client, url("update_account", account.id), {"email": "new@example.com"}
    )

    assert response.status_code == HTTPStatus.OK
    after = account_body(account)
    assert response.json() == after
    assert after["email"] == "new@example.com"
    assert after["updated_at"] > before["updated_at"]
    unchanged = {key for key in before if key not in {"email", "updated_at"}}
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
    assert account.config_json == CONFIG


def test_update_of_sort_order_alone_leaves_the_stored_secrets_untouched(api_client):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    raw_before = raw_secret_columns(account.id)

    response = patch_json(api_client, url("update_account", account.id), {"sort_order": 9})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["sort_order"] == 9
    assert (response.json()["has_config"], response.json()["has_credentials"]) == (True, True)
    # Not even re-encrypted: the stored tokens are byte for byte the same.
    assert raw_secret_columns(account.id) == raw_before
    account.refresh_from_db()
    assert (account.config_json, account.credentials) == (CONFIG, CREDENTIALS)


def test_update_with_null_credentials_clears_them_and_keeps_config(api_client):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    raw_config_before, _ = raw_secret_columns(account.id)

    response = patch_json(api_client, url("update_account", account.id), {"credentials": None})

    assert response.status_code == HTTPStatus.OK
    assert response.json() == account_body(account)
    assert (response.json()["has_config"], response.json()["has_credentials"]) == (True, False)
    assert raw_secret_columns(account.id) == (raw_config_before, None)
    assert (account.config_json, account.credentials) == (CONFIG, None)


def test_update_replaces_a_secret_and_stores_it_encrypted(api_client):
    account = AccountFactory(config_json=CONFIG)
    new_config = '{"oauthAccount": {"emailAddress": "other@example.com"}}'

    response = patch_json(
        api_client, url("update_account", account.id), {"config_json": new_config}
    )

    assert response.status_code == HTTPStatus.OK
    assert "other@example.com" not in response.content.decode()
    account.refresh_from_db()
    assert account.config_json == new_config
    raw_config, _ = raw_secret_columns(account.id)
    assert raw_config.startswith("fernet:")
    assert "other@example.com" not in raw_config


def test_update_of_an_unknown_id_is_404_account_not_found(api_client):
    response = patch_json(api_client, url("update_account", "missing"), {"sort_order": 1})
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {
        "code": "account_not_found",
        "message": "Account 'missing' does not exist.",
        "details": {"id": "missing"},
    }


def test_update_refuses_a_bad_email_with_400_and_changes_nothing(api_client):
    account = AccountFactory()
    before = account_body(account)

    response = patch_json(api_client, url("update_account", account.id), {"email": "nope"})

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_email")
    assert body["details"] == {"field": "email"}
    assert account_body(account) == before


def test_update_refuses_an_email_another_account_of_the_provider_has_with_409(api_client):
    AccountFactory(email="taken@example.com")
    account = AccountFactory(email="free@example.com")
    before = account_body(account)

    response = patch_json(
        api_client, url("update_account", account.id), {"email": "Taken@example.com"}
    )

    assert_error(response, HTTPStatus.CONFLICT, "account_email_taken")
    assert account_body(account) == before


@pytest.mark.parametrize("field", ["config_json", "credentials"])
def test_update_refuses_a_secret_that_is_not_json_without_echoing_it(api_client, field):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    raw_before = raw_secret_columns(account.id)

    response = patch_json(
        api_client, url("update_account", account.id), {field: "{broken sk-DO-NOT-ECHO-77"}
    )

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_json")
    assert body["details"] == {"field": field}
    assert "DO-NOT-ECHO" not in response.content.decode()
    assert raw_secret_columns(account.id) == raw_before


@pytest.mark.parametrize(
    "payload",
    [
        {"sort_order": "first"},
        {"sort_order": 1.5},
        {"email": 42},
        {"provider": ["claude"]},
        {"config_json": {"token": "x"}},
        {"credentials": 12},
    ],
)
def test_update_refuses_fields_of_the_wrong_type(api_client, payload):
    account = AccountFactory(config_json=CONFIG)
    before = account_body(account)

    response = patch_json(api_client, url("update_account", account.id), payload)

    body = assert_refusal(response, "invalid_email" if "email" in payload else "validation_error")
    assert ["body", "payload", *payload] in error_locations(body)
    assert account_body(account) == before


@pytest.mark.parametrize("field", ["email", "provider", "sort_order"])
def test_update_refuses_null_for_a_required_field_with_a_4xx(api_client, field):
    account = AccountFactory()
    before = account_body(account)

    response = patch_json(api_client, url("update_account", account.id), {field: None})

    assert HTTPStatus.BAD_REQUEST <= response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
    assert set(response.json()) == {"code", "message", "details"}
    assert account_body(account) == before


@pytest.mark.parametrize("payload", [{"is_exhausted": False}, {"sort_order": 1, "emial": "x@y.z"}])
def test_update_refuses_unknown_fields_with_422(api_client, payload):
    # A field the patch cannot change must not be silently dropped: the caller would
    # believe it changed (e.g. un-parked the account) while nothing did.
    account = AccountFactory(is_exhausted=True, exhausted_until=future(hours=1))
    before = account_body(account)

    response = patch_json(api_client, url("update_account", account.id), payload)

    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert account_body(account) == before


# --- delete -----------------------------------------------------------------------------


def test_delete_removes_the_account_and_unlinks_its_agents(api_client):
    account = AccountFactory()
    agent = AgentFactory(account=account)

    response = api_client.delete(url("delete_account", account.id))

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert not Account.objects.filter(pk=account.id).exists()
    agent.refresh_from_db()
    assert agent.account_id is None
    event = Event.objects.get()
    assert (event.kind, event.subject_id, event.data, event.actor_via) == (
        "account.deleted",
        account.id,
        {"provider": account.provider, "email": account.email},
        "api",
    )


def test_delete_of_an_unknown_id_is_404_account_not_found(api_client):
    AccountFactory()
    response = api_client.delete(url("delete_account", "missing"))
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "account_not_found"
    assert Account.objects.count() == 1
    assert not Event.objects.exists()


# --- claim ------------------------------------------------------------------------------


def claim(client: Client, provider: str | None = None):
    return post_json(
        client, url("claim_account"), {} if provider is None else {"provider": provider}
    )


def test_claim_hands_out_the_account_with_its_secrets_and_stamps_it(api_client):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    started = timezone.now()

    response = claim(api_client)

    assert response.status_code == HTTPStatus.OK
    assert response.json() == claim_body(account)
    assert (response.json()["config_json"], response.json()["credentials"]) == (CONFIG, CREDENTIALS)
    assert account.last_used_at >= started


def test_staff_session_claim_is_refused_403_tool_token_required(staff_client):
    # People never see a secret in clear: claiming hands secrets to a tool, so it takes
    # an API token, never a browser session (the admin masks secrets for people).
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    before = account_body(account)

    response = claim(staff_client)

    body = assert_error(response, HTTPStatus.FORBIDDEN, "tool_token_required")
    assert "API token" in body["message"]
    assert body["details"] == {}
    assert "claudeAiOauth" not in response.content.decode()
    assert "oauthAccount" not in response.content.decode()
    assert account_body(account) == before  # not claimed: last_used_at unchanged


def test_staff_session_with_csrf_token_is_still_refused_the_claim(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    csrf_secret = "a" * 32
    client.cookies["csrftoken"] = csrf_secret
    AccountFactory(credentials=CREDENTIALS)

    response = client.post(
        url("claim_account"), "{}", content_type="application/json", HTTP_X_CSRFTOKEN=csrf_secret
    )

    assert_error(response, HTTPStatus.FORBIDDEN, "tool_token_required")
    assert "claudeAiOauth" not in response.content.decode()


def test_staff_session_with_a_bad_bearer_token_claim_is_401(staff_client):
    # The caller chose a token: a bad one never falls back to the session.
    AccountFactory(credentials=CREDENTIALS)

    response = staff_client.post(
        url("claim_account"), {}, content_type="application/json", HTTP_AUTHORIZATION="Bearer x"
    )

    assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_non_staff_session_claim_is_401(django_user_model):
    user = django_user_model.objects.create_user(username="dev", password="unused")
    client = Client()
    client.force_login(user)
    AccountFactory(credentials=CREDENTIALS)

    assert_error(claim(client), HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_bearer_token_wins_over_a_staff_session_for_the_claim(staff_user, api_token):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token[1]}")
    client.force_login(staff_user)
    account = AccountFactory(credentials=CREDENTIALS)

    response = claim(client)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == account.id
    assert response.json()["credentials"] == CREDENTIALS


def test_claims_rotate_round_robin_through_every_account(api_client):
    first, second, third = AccountFactory.create_batch(3)

    claimed = [claim(api_client).json()["id"] for _ in range(4)]

    # Never-used accounts in sort order, then the least recently used one again.
    assert claimed == [first.id, second.id, third.id, first.id]
    assert len(set(claimed[:3])) == 3


def test_claim_hands_out_only_the_provider_asked_for(api_client):
    AccountFactory(provider="claude")
    codex = AccountFactory(provider="codex")

    claimed = [claim(api_client, "codex").json()["id"] for _ in range(2)]

    assert claimed == [codex.id, codex.id]


def test_claim_skips_an_account_exhausted_over_http(api_client):
    parked, free = AccountFactory.create_batch(2)
    exhausted = post_json(
        api_client,
        url("mark_account_exhausted", parked.id),
        {"until": future(hours=1).isoformat()},
    )
    assert exhausted.status_code == HTTPStatus.OK

    claimed = [claim(api_client).json()["id"] for _ in range(3)]

    assert claimed == [free.id, free.id, free.id]
    parked.refresh_from_db()
    assert parked.last_used_at is None


def test_claim_takes_an_account_whose_exhaustion_has_lapsed_and_releases_it(api_client):
    account = AccountFactory(is_exhausted=True, exhausted_until=past(minutes=1))

    response = claim(api_client)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == account.id
    assert (response.json()["is_exhausted"], response.json()["exhausted_until"]) == (False, None)
    account.refresh_from_db()
    assert (account.is_exhausted, account.exhausted_until) == (False, None)


def test_claim_with_every_account_exhausted_is_409_with_the_next_release(api_client):
    soonest = future(hours=1)
    AccountFactory(is_exhausted=True, exhausted_until=future(hours=3))
    AccountFactory(is_exhausted=True, exhausted_until=soonest)
    AccountFactory(is_exhausted=True, exhausted_until=None)  # parked until a person acts
    AccountFactory(provider="codex")  # available, but another provider

    response = claim(api_client)

    body = assert_error(response, HTTPStatus.CONFLICT, "account_unavailable")
    assert body["message"] == (
        "No 'claude' account is available: all are exhausted, or none exists."
    )
    assert set(body["details"]) == {"provider", "next_available_at"}
    assert body["details"]["provider"] == "claude"
    assert datetime.fromisoformat(body["details"]["next_available_at"]) == soonest


def test_claim_with_no_account_of_the_provider_is_409_with_no_next_release(api_client):
    AccountFactory(provider="claude")

    response = claim(api_client, "gemini")

    body = assert_error(response, HTTPStatus.CONFLICT, "account_unavailable")
    assert body["details"] == {"provider": "gemini", "next_available_at": None}


def test_claim_refuses_an_empty_provider_with_422(api_client):
    AccountFactory()
    response = claim(api_client, "")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert Account.objects.get().last_used_at is None


# --- exhaust ----------------------------------------------------------------------------


def test_exhaust_parks_the_account_until_the_time_given(api_client):
    account = AccountFactory()
    until = future(hours=2)

    response = post_json(
        api_client, url("mark_account_exhausted", account.id), {"until": until.isoformat()}
    )

    assert response.status_code == HTTPStatus.OK
    assert response.json() == account_body(account)
    assert (account.is_exhausted, account.exhausted_until) == (True, until)


def test_exhaust_accepts_any_time_zone(api_client):
    account = AccountFactory()
    until = future(hours=2).replace(microsecond=0)
    in_paris = until.astimezone(timezone.get_fixed_timezone(120))

    response = post_json(
        api_client, url("mark_account_exhausted", account.id), {"until": in_paris.isoformat()}
    )

    assert response.status_code == HTTPStatus.OK
    account.refresh_from_db()
    assert account.exhausted_until == until


def test_exhaust_refuses_a_naive_time_with_422(api_client):
    account = AccountFactory()
    naive = future(hours=2).replace(tzinfo=None).isoformat()

    response = post_json(api_client, url("mark_account_exhausted", account.id), {"until": naive})

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert ["body", "payload", "until"] in error_locations(body)
    account.refresh_from_db()
    assert account.is_exhausted is False


@pytest.mark.parametrize("payload", [{}, {"until": "tomorrow"}, {"until": None}])
def test_exhaust_refuses_a_missing_or_unreadable_time_with_422(api_client, payload):
    account = AccountFactory()
    response = post_json(api_client, url("mark_account_exhausted", account.id), payload)
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


@pytest.mark.parametrize("parked", [False, True])
def test_exhaust_until_a_past_time_leaves_the_account_available(api_client, parked):
    # A schema cannot say "in the future", and a reset time a moment away may arrive
    # late: a past time means the account is usable now (released if it was parked).
    account = AccountFactory(
        is_exhausted=parked, exhausted_until=future(hours=1) if parked else None
    )

    response = post_json(
        api_client,
        url("mark_account_exhausted", account.id),
        {"until": past(minutes=5).isoformat()},
    )

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert (body["is_exhausted"], body["exhausted_until"]) == (False, None)
    account.refresh_from_db()
    assert (account.is_exhausted, account.exhausted_until) == (False, None)


def test_exhaust_of_an_unknown_id_is_404_account_not_found(api_client):
    response = post_json(
        api_client,
        url("mark_account_exhausted", "missing"),
        {"until": future(hours=1).isoformat()},
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {
        "code": "account_not_found",
        "message": "Account 'missing' does not exist.",
        "details": {"id": "missing"},
    }


# --- clear expired exhaustion -----------------------------------------------------------


def test_clear_expired_exhaustion_releases_only_the_lapsed_accounts(api_client):
    lapsed = AccountFactory(is_exhausted=True, exhausted_until=past(minutes=1))
    lapsed_codex = AccountFactory(
        provider="codex", is_exhausted=True, exhausted_until=past(hours=1)
    )
    still_parked = AccountFactory(is_exhausted=True, exhausted_until=future(hours=1))
    parked_by_hand = AccountFactory(is_exhausted=True, exhausted_until=None)
    free = AccountFactory()
    untouched = {a.id: account_body(a) for a in (still_parked, parked_by_hand, free)}
    lapsed_updated_at = account_body(lapsed)["updated_at"]

    response = post_json(api_client, url("clear_expired_exhaustion"), {})

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"released": 2}
    for account in (lapsed, lapsed_codex):
        body = account_body(account)
        assert (body["is_exhausted"], body["exhausted_until"]) == (False, None)
    assert account_body(lapsed)["updated_at"] > lapsed_updated_at
    assert {a.id: account_body(a) for a in (still_parked, parked_by_hand, free)} == untouched


def test_clear_expired_exhaustion_with_nothing_lapsed_answers_zero(api_client):
    AccountFactory(is_exhausted=True, exhausted_until=future(hours=1))
    response = post_json(api_client, url("clear_expired_exhaustion"), {})
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"released": 0}


@pytest.mark.parametrize("until", ["9999-12-31T23:00:00-15:00", "2999-01-01T00:00:00Z"])
def test_exhaust_until_a_time_too_far_away_parks_the_account_for_a_year(api_client, until):
    account = AccountFactory()
    before = timezone.now()

    response = post_json(api_client, url("mark_account_exhausted", account.id), {"until": until})

    assert response.status_code == HTTPStatus.OK
    account.refresh_from_db()
    assert account.is_exhausted is True
    year = timedelta(days=366)
    assert before + year <= account.exhausted_until <= timezone.now() + year
    assert api_client.get(url("retrieve_account", account.id)).status_code == HTTPStatus.OK


def test_a_nul_in_a_path_id_or_filter_is_a_422_on_every_database(api_client):
    assert_error(
        api_client.get("/api/proposals/a%00b"), HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"
    )
    assert_error(
        api_client.get(url("list_accounts"), {"provider": "a\x00"}),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_error",
    )
