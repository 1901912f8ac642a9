"""Account secrets never leave the server in clear, except in the claim that hands them out
to a tool.

Accounts are created through the API with distinctive secrets, then every operation of
the OpenAPI document is called (path ids filled with real records) and no response may
carry a secret, nor the stored ciphertext; only a bearer token's claim answers one, and
a staff session (a person) is refused the claim, so its crawl sees no secret at all. The
database columns hold only ``fernet:`` tokens, and refused submissions never echo the
secret they carried.
"""

import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from agents.models import Account
from tests.api.helpers import post_json
from tests.api.openapi_calls import (
    SECRET_FIELDS,
    call,
    operations,
    plausible_records,
    response_text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.processes]  # fetch_project runs git

CLAIM_OPERATION = ("post", "/api/accounts/claim")


@dataclass
class Secrets:
    """Every clear secret handed to the API (``issued``), the unique marker inside each,
    and those of the fixture's accounts by account id."""

    issued: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    by_account: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def new(self, key: str = "token") -> str:
        """A fresh secret: JSON text whose value is a unique marker."""
        marker = f"SECRET-{uuid.uuid4().hex}"
        self.markers.append(marker)
        self.issued.append(f'{{"{key}": "{marker}"}}')
        return self.issued[-1]

    def found_in(self, text: str) -> list[str]:
        return [marker for marker in self.markers if marker in text]


def raw_secret_columns(account_id: str) -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config_json, credentials FROM accounts WHERE id = %s", [account_id])
        return cursor.fetchone()


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def accounts(api_client, secrets) -> list[Account]:
    """Three accounts created through the API: both secrets, credentials only, config only."""
    specs = [
        {"email": "both@example.com", "config_json": secrets.new(), "credentials": secrets.new()},
        {"email": "creds@example.com", "credentials": secrets.new("accessToken")},
        {"email": "config@example.com", "provider": "codex", "config_json": secrets.new()},
    ]
    created = []
    for spec in specs:
        response = post_json(api_client, reverse("api-1:create_account"), spec)
        assert response.status_code == HTTPStatus.CREATED, response.content
        account = Account.objects.get(pk=response.json()["id"])
        secrets.by_account[account.id] = {
            name: spec.get(name) for name in SECRET_FIELDS
        }  # what the claim must hand back
        created.append(account)
    return created


@pytest.fixture
def records(accounts) -> dict[str, str]:
    """A real id for each kind of record a path parameter may name (``<kind>_id``)."""
    return plausible_records(accounts[0])


def crawl(client: Client, ids, secrets) -> dict[tuple[str, str], Any]:
    """Every operation of the API called once by ``client``: (method, path) → response."""
    answered = {}
    for method, path, operation in operations():
        answered[(method, path)] = call(client, method, path, operation, ids, secrets)
    assert set(answered) == {(method, path) for method, path, _ in operations()}
    return answered


def crawler_client(**defaults: str) -> Client:
    # Failures of other endpoints answer 500 instead of raising into the test: a
    # broken endpoint is that endpoint's test's business, a leak is this one's.
    return Client(raise_request_exception=False, **defaults)


def test_no_operation_answers_a_token_holder_a_secret_except_the_claim(api_token, records, secrets):
    answered = crawl(crawler_client(HTTP_AUTHORIZATION=f"Bearer {api_token[1]}"), records, secrets)
    statuses = {op: response.status_code for op, response in answered.items()}

    leaks = {
        op: secrets.found_in(response_text(response))
        for op, response in answered.items()
        if op != CLAIM_OPERATION
    }
    assert {op: found for op, found in leaks.items() if found} == {}, statuses
    ciphertext = [op for op, response in answered.items() if "fernet:" in response_text(response)]
    assert ciphertext == []

    # The accounts operations did their work.
    account_failures = {
        op: status
        for op, status in statuses.items()
        if op[1].startswith("/api/accounts") and not 200 <= status < 300
    }
    assert account_failures == {}

    # The claim handed out some account (one of the fixture's, or one the crawl created)
    # with exactly the clear secrets it was given.
    claim = answered[CLAIM_OPERATION].json()
    handed_out = [claim[name] for name in SECRET_FIELDS if claim[name] is not None]
    assert handed_out
    assert all(value in secrets.issued for value in handed_out)
    assert [claim["has_config"], claim["has_credentials"]] == [
        claim[name] is not None for name in SECRET_FIELDS
    ]


def test_no_operation_answers_a_staff_session_any_secret_and_the_claim_is_refused(
    staff_user, records, secrets
):
    client = crawler_client()
    client.force_login(staff_user)
    assert not Account.objects.filter(last_used_at__isnull=False).exists()

    answered = crawl(client, records, secrets)
    statuses = {op: response.status_code for op, response in answered.items()}

    leaks = {op: secrets.found_in(response_text(r)) for op, r in answered.items()}
    assert {op: found for op, found in leaks.items() if found} == {}, statuses
    assert [op for op, r in answered.items() if "fernet:" in response_text(r)] == []

    # A person cannot claim: refused before any account is handed out (a claim stamps
    # last_used_at; nothing else does).
    claim = answered[CLAIM_OPERATION]
    assert claim.status_code == HTTPStatus.FORBIDDEN
    assert claim.json()["code"] == "tool_token_required"
    assert not Account.objects.filter(last_used_at__isnull=False).exists()

    # Every other accounts operation works for the staff session.
    account_failures = {
        op: status
        for op, status in statuses.items()
        if op[1].startswith("/api/accounts") and op != CLAIM_OPERATION and not 200 <= status < 300
    }
    assert account_failures == {}


def test_the_api_documents_are_free_of_secrets(api_client, accounts, secrets):
    for path in ("/api/openapi.json", "/api/docs"):
        response = api_client.get(path)
        assert response.status_code == HTTPStatus.OK
        assert secrets.found_in(response_text(response)) == []


def test_claim_answers_the_clear_secrets_of_the_account_it_hands_out(api_client, accounts, secrets):
    response = post_json(api_client, reverse("api-1:claim_account"), {"provider": "codex"})

    assert response.status_code == HTTPStatus.OK
    codex = accounts[2]
    assert response.json()["id"] == codex.id
    assert response.json()["config_json"] == secrets.by_account[codex.id]["config_json"]
    assert response.json()["credentials"] is None
    assert secrets.found_in(response.content.decode()) == secrets.found_in(
        secrets.by_account[codex.id]["config_json"]
    )


# --- at rest ------------------------------------------------------------------------------


def test_database_columns_hold_fernet_tokens_never_the_clear_text(accounts, secrets):
    for account in accounts:
        clear = secrets.by_account[account.id]
        raw = dict(zip(SECRET_FIELDS, raw_secret_columns(account.id), strict=True))
        for name in SECRET_FIELDS:
            if clear[name] is None:
                assert raw[name] is None
            else:
                assert raw[name].startswith("fernet:")
                assert secrets.found_in(raw[name]) == []
                assert getattr(account, name) == clear[name]


def test_secrets_replaced_over_patch_are_stored_encrypted(api_client, accounts, secrets):
    account = accounts[1]
    config, credentials = secrets.new(), secrets.new()

    response = api_client.patch(
        reverse("api-1:update_account", kwargs={"account_id": account.id}),
        {"config_json": config, "credentials": credentials},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.OK
    assert secrets.found_in(response.content.decode()) == []
    raw_config, raw_credentials = raw_secret_columns(account.id)
    assert raw_config.startswith("fernet:")
    assert raw_credentials.startswith("fernet:")
    assert secrets.found_in(raw_config + raw_credentials) == []
    account.refresh_from_db()
    assert (account.config_json, account.credentials) == (config, credentials)


# --- refused submissions ------------------------------------------------------------------


def refused_submissions(secret: str) -> list[tuple[str, dict[str, Any] | str]]:
    """(what is wrong, the body) pairs that carry ``secret`` and must be refused."""
    marker = secret.split('"')[3]
    return [
        ("config_json not JSON", {"email": "a@example.com", "config_json": f"not json {marker}"}),
        ("credentials not JSON", {"email": "a@example.com", "credentials": f"{{{marker}"}),
        ("secret as an object", {"email": "a@example.com", "credentials": {"token": marker}}),
        ("secret as a list", {"email": "a@example.com", "config_json": [marker]}),
        ("bad email", {"email": "nope", "config_json": secret, "credentials": secret}),
        ("email too long", {"email": "a" * 400 + "@x.io", "credentials": secret}),
        ("bad sort_order", {"email": "a@example.com", "credentials": secret, "sort_order": "x"}),
        ("malformed JSON", '{"email": "a@example.com", "credentials": "' + marker + '",'),
        ("NUL in a secret", {"email": "a@example.com", "credentials": secret[:-2] + '\x00"}'}),
    ]


@pytest.mark.parametrize("case", range(len(refused_submissions('{"t": "m"}'))))
def test_a_refused_create_never_echoes_the_secret(api_client, secrets, case):
    what, body = refused_submissions(secrets.new())[case]

    response = api_client.post(
        reverse("api-1:create_account"),
        body,
        content_type="application/json",
    )

    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY), what
    assert secrets.found_in(response_text(response)) == [], what
    assert not Account.objects.exists()


@pytest.mark.parametrize("case", range(len(refused_submissions('{"t": "m"}'))))
def test_a_refused_update_never_echoes_the_secret(api_client, accounts, secrets, case):
    account = accounts[0]
    raw_before = raw_secret_columns(account.id)
    what, body = refused_submissions(secrets.new())[case]

    response = api_client.patch(
        reverse("api-1:update_account", kwargs={"account_id": account.id}),
        body,
        content_type="application/json",
    )

    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY), what
    assert secrets.found_in(response_text(response)) == [], what
    assert raw_secret_columns(account.id) == raw_before


# --- the admin ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "takes_id"),
    [("changelist", False), ("add", False), ("change", True), ("history", True), ("delete", True)],
)
def test_admin_account_pages_show_no_secret(admin_client, accounts, secrets, view, takes_id):
    account = accounts[0]
    args = [account.id] if takes_id else []

    response = admin_client.get(reverse(f"admin:agents_account_{view}", args=args))

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    if view != "add":
        assert account.email in page
    assert secrets.found_in(page) == []
    assert "fernet:" not in page


def test_admin_account_search_shows_no_secret(admin_client, accounts, secrets):
    response = admin_client.get(reverse("admin:agents_account_changelist"), {"q": "example"})

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert all(account.email in page for account in accounts)
    assert secrets.found_in(page) == []
    assert "fernet:" not in page
