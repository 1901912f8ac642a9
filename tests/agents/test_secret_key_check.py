"""The system check ``agents.E001`` / ``agents.E002``: the configured keys read the stored
secrets. It runs with every command's checks (not only ``check --database``), and skips
before ``migrate`` or when the database is out of reach."""

from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import OperationalError, connection
from django.test import override_settings

from agents.checks import check_secret_keys
from agents.models import Account
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"oauth": "CREDENTIAL-SECRET-1e4a"}'

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def account():
    # override_settings sends setting_changed, which empties agents.secrets' key cache.
    with override_settings(CW_SECRET_KEYS=[KEY_A]):
        return AccountFactory(credentials=CREDENTIALS)


def error_ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def test_passes_with_the_key_the_secrets_were_encrypted_with(account):
    with override_settings(CW_SECRET_KEYS=[KEY_A]):
        assert check_secret_keys() == []


def test_passes_during_a_rotation_with_the_old_key_kept_after_the_new(account):
    with override_settings(CW_SECRET_KEYS=[KEY_B, KEY_A]):
        assert check_secret_keys() == []


def test_passes_with_no_secret_stored():
    AccountFactory(config_json=None, credentials=None)
    with override_settings(CW_SECRET_KEYS=[KEY_B]):
        assert check_secret_keys() == []


def test_a_wrong_key_is_an_error_naming_the_setting_and_the_fix(account):
    with override_settings(CW_SECRET_KEYS=[KEY_B]):
        (error,) = check_secret_keys()

    assert error.id == "agents.E001"
    assert error.level == checks.ERROR
    assert account.pk in error.msg
    assert "CW_SECRET_KEYS" in error.msg
    assert "rotate_secrets" in error.hint
    assert "Rotating the secret keys" in error.hint
    assert KEY_A not in error.msg + error.hint  # never a key
    assert "CREDENTIAL-SECRET" not in error.msg + error.hint


def test_an_invalid_key_is_an_error_without_echoing_it():
    with override_settings(CW_SECRET_KEYS=["not-a-fernet-key"]):
        (error,) = check_secret_keys()
    assert error.id == "agents.E002"
    assert "not-a-fernet-key" not in error.msg


def test_runs_with_the_checks_of_every_command_not_only_check_database(account):
    with override_settings(CW_SECRET_KEYS=[KEY_B]):
        assert "agents.E001" in error_ids(checks.run_checks(include_deployment_checks=False))
        with pytest.raises(SystemCheckError, match=r"agents\.E001"):
            call_command("check")


def test_reports_nothing_before_migrate(account):
    with (
        override_settings(CW_SECRET_KEYS=[KEY_B]),
        mock.patch.object(Account._meta, "db_table", "accounts_not_migrated_yet"),
    ):
        assert check_secret_keys() == []


def test_reports_nothing_when_the_database_is_out_of_reach(account):
    with (
        override_settings(CW_SECRET_KEYS=[KEY_B]),
        mock.patch.object(connection, "cursor", side_effect=OperationalError("unreachable")),
    ):
        assert check_secret_keys() == []


def test_only_for_the_agents_app_when_apps_are_named(account):
    from django.apps import apps

    with override_settings(CW_SECRET_KEYS=[KEY_B]):
        assert check_secret_keys(app_configs=[apps.get_app_config("core")]) == []
        assert error_ids(check_secret_keys(app_configs=[apps.get_app_config("agents")])) == [
            "agents.E001"
        ]
