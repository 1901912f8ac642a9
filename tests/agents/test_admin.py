"""The account admin never shows a secret, and lets a person replace or clear one."""

from http import HTTPStatus

import pytest
from django.urls import reverse

from agents.models import Account

pytestmark = pytest.mark.django_db

CONFIG = '{"token": "CONFIG-SECRET-4b1d"}'
CREDENTIALS = '{"oauth": "CREDENTIAL-SECRET-9f2e"}'


@pytest.fixture
def account():
    return Account.objects.create(
        email="a@example.com", config_json=CONFIG, credentials=CREDENTIALS
    )


def test_changelist_and_change_page_never_show_secrets(admin_client, account):
    for url in (
        reverse("admin:agents_account_changelist"),
        reverse("admin:agents_account_change", args=[account.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode()
        assert "CONFIG-SECRET" not in body
        assert "CREDENTIAL-SECRET" not in body
        assert "fernet:" not in body


def _post(admin_client, account, **extra):
    data = {
        "email": account.email,
        "provider": account.provider,
        "sort_order": 0,
        "new_config_json": "",
        "new_credentials": "",
        **extra,
    }
    return admin_client.post(reverse("admin:agents_account_change", args=[account.pk]), data)


def test_saving_without_new_secrets_keeps_them(admin_client, account):
    response = _post(admin_client, account, email="b@example.com")
    assert response.status_code == HTTPStatus.FOUND
    account.refresh_from_db()
    assert (account.email, account.config_json, account.credentials) == (
        "b@example.com",
        CONFIG,
        CREDENTIALS,
    )


def test_a_secret_can_be_replaced_or_cleared(admin_client, account):
    _post(admin_client, account, new_config_json='{"token": "new"}', clear_credentials="on")
    account.refresh_from_db()
    assert account.config_json == '{"token": "new"}'
    assert account.credentials is None


def test_a_secret_that_is_not_json_is_refused_with_a_message(admin_client, account):
    response = _post(admin_client, account, new_credentials="not json")
    assert response.status_code == HTTPStatus.OK
    assert "must be JSON text" in response.content.decode()
    account.refresh_from_db()
    assert account.credentials == CREDENTIALS


def test_a_refused_form_does_not_echo_the_submitted_secrets(admin_client, account):
    response = _post(
        admin_client,
        account,
        email="not an email",
        new_config_json='{"token": "TYPED-SECRET-1"}',
        new_credentials='{"oauth": "TYPED-SECRET-2"}',
    )
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert "TYPED-SECRET" not in body


def test_exhaustion_is_read_only_in_the_form_and_released_by_an_action(admin_client, account):
    from datetime import timedelta

    from django.utils import timezone

    Account.objects.filter(pk=account.pk).update(
        is_exhausted=True, exhausted_until=timezone.now() + timedelta(hours=1)
    )
    page = admin_client.get(reverse("admin:agents_account_change", args=[account.pk]))
    assert 'name="is_exhausted"' not in page.content.decode()

    admin_client.post(
        reverse("admin:agents_account_changelist"),
        {"action": "account_release", "_selected_action": [account.pk]},
    )

    account.refresh_from_db()
    assert (account.is_exhausted, account.exhausted_until) == (False, None)
