"""Account secrets never leave in clear through serialization (``dumpdata``) nor the
admin's history (``LogEntry``); ``loaddata`` of a dump restores the same secrets."""

import json
from http import HTTPStatus
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.admin.models import LogEntry
from django.core import serializers
from django.core.management import call_command
from django.urls import reverse

from agents.models import Account
from agents.secrets import PREFIX, decrypt
from core.models import Event
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

CONFIG = '{"token": "CONFIG-SECRET-77a1"}'
CREDENTIALS = '{"oauth": "CREDENTIAL-SECRET-3c9e"}'


@pytest.fixture(autouse=True)
def secret_key(settings):
    settings.CW_SECRET_KEYS = [Fernet.generate_key().decode()]


def dump_accounts(fmt: str = "json") -> str:
    out = StringIO()
    call_command("dumpdata", "agents.account", format=fmt, stdout=out)
    return out.getvalue()


def test_dumpdata_writes_secrets_encrypted_never_in_clear():
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    AccountFactory(config_json=None, credentials=None)

    dump = dump_accounts()

    assert "CONFIG-SECRET" not in dump
    assert "CREDENTIAL-SECRET" not in dump
    fields = {row["pk"]: row["fields"] for row in json.loads(dump)}
    assert fields[account.pk]["config_json"].startswith(PREFIX)
    assert decrypt(fields[account.pk]["config_json"]) == CONFIG
    assert decrypt(fields[account.pk]["credentials"]) == CREDENTIALS
    unset = next(row for pk, row in fields.items() if pk != account.pk)
    assert (unset["config_json"], unset["credentials"]) == (None, None)


@pytest.mark.parametrize("fmt", ["json", "xml", "jsonl"])
def test_every_serializer_format_writes_no_clear_secret(fmt):
    AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    dump = dump_accounts(fmt)
    assert "SECRET" not in dump
    assert PREFIX in dump


def test_loaddata_of_a_dump_restores_the_same_secrets(tmp_path):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    fixture = tmp_path / "accounts.json"
    fixture.write_text(dump_accounts())
    Account.objects.all().delete()

    call_command("loaddata", str(fixture), verbosity=0)

    restored = Account.objects.get(pk=account.pk)
    assert (restored.config_json, restored.credentials) == (CONFIG, CREDENTIALS)


def test_deserialized_objects_keep_the_encrypted_form_until_read_back():
    account = AccountFactory(credentials=CREDENTIALS)
    data = serializers.serialize("json", [account])
    (loaded,) = serializers.deserialize("json", data)
    # The stored form is saved as is: get_prep_value never encrypts a token twice.
    assert loaded.object.credentials.startswith(PREFIX)
    loaded.save()
    account.refresh_from_db()
    assert account.credentials == CREDENTIALS


def test_admin_history_of_a_secret_change_holds_no_secret(admin_client):
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    response = admin_client.post(
        reverse("admin:agents_account_change", args=[account.pk]),
        {
            "email": account.email,
            "provider": account.provider,
            "sort_order": 0,
            "new_config_json": '{"token": "NEW-CONFIG-SECRET-5d0f"}',
            "new_credentials": "",
            "clear_credentials": "on",
        },
    )
    assert response.status_code == HTTPStatus.FOUND

    # The change is on the feed by field name, never by value, and the History page says so.
    event = Event.objects.get(kind="account.updated", subject_id=account.pk)
    assert "config_json" in event.data["fields"]
    page = admin_client.get(reverse("admin:agents_account_history", args=[account.pk]))
    history = json.dumps(event.data) + page.content.decode()
    assert "SECRET" not in history
    assert PREFIX not in history
    assert "config json" in page.content.decode()
    assert not LogEntry.objects.exists()  # the admin's own log is not written
    account.refresh_from_db()
    assert account.config_json == '{"token": "NEW-CONFIG-SECRET-5d0f"}'
