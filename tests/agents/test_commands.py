"""Operator commands of the agents app."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from agents.models import Account

pytestmark = pytest.mark.django_db


def _raw_credentials(account_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM accounts WHERE id = %s", [account_id])
        return cursor.fetchone()[0]


def test_rotate_secrets_moves_every_secret_to_the_new_key(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CW_SECRET_KEYS = [old]
    account = Account.objects.create(email="a@example.com", credentials='{"k": "v"}')
    stored_under_old = _raw_credentials(account.id)

    settings.CW_SECRET_KEYS = [new, old]
    call_command("rotate_secrets")

    assert "Re-encrypted the secrets of 1 row(s)." in capsys.readouterr().out
    assert _raw_credentials(account.id) != stored_under_old
    settings.CW_SECRET_KEYS = [new]
    account.refresh_from_db()
    assert account.credentials == '{"k": "v"}'


def test_rotate_secrets_without_the_old_key_fails_with_a_reason(settings):
    settings.CW_SECRET_KEYS = [Fernet.generate_key().decode()]
    Account.objects.create(email="a@example.com", credentials='{"k": "v"}')
    settings.CW_SECRET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="CW_SECRET_KEYS"):
        call_command("rotate_secrets")
