"""Account secrets are Fernet-encrypted in the database and clear in Python."""

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from agents.models import Account
from agents.repositories import AccountRepository
from agents.secrets import (
    PREFIX,
    EncryptedTextField,
    SecretKeyError,
    decrypt,
    encrypt,
)
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

CONFIG = '{"oauthAccount": {"emailAddress": "dev@example.com"}}'
CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-very-secret"}}'

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def key_a(settings):
    # pytest-django's settings fixture sends setting_changed, which resets the key cache.
    settings.CW_SECRET_KEYS = [KEY_A]
    return settings


def rotate_secrets() -> int:
    return AccountRepository().rotate_secrets()


def raw_columns(account_id: str) -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT config_json, credentials FROM accounts WHERE id = %s", [account_id])
        return cursor.fetchone()


def write_raw_columns(account_id: str, config_json: str | None, credentials: str | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts SET config_json = %s, credentials = %s WHERE id = %s",
            [config_json, credentials, account_id],
        )


def test_database_column_holds_a_prefixed_token_not_the_clear_text():
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)

    raw_config, raw_credentials = raw_columns(account.id)

    assert raw_config.startswith(PREFIX)
    assert raw_credentials.startswith(PREFIX)
    assert "very-secret" not in raw_credentials
    assert "emailAddress" not in raw_config
    assert Fernet(KEY_A).decrypt(raw_credentials.removeprefix(PREFIX)).decode() == CREDENTIALS


def test_model_reads_back_the_clear_text():
    account = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)

    fresh = Account.objects.get(pk=account.pk)

    assert fresh.config_json == CONFIG
    assert fresh.credentials == CREDENTIALS
    assert list(Account.objects.values_list("credentials", flat=True)) == [CREDENTIALS]


@pytest.mark.parametrize("value", ["", "ünïcødé ✓ 密钥", "fernet without colon"])
def test_empty_and_unicode_values_round_trip_encrypted(value):
    account = AccountFactory(credentials=value)

    assert raw_columns(account.id)[1].startswith(PREFIX)
    assert Account.objects.get(pk=account.pk).credentials == value


def test_none_stays_null_in_the_database_and_none_in_python():
    account = AccountFactory(config_json=None, credentials=None)

    assert raw_columns(account.id) == (None, None)
    fresh = Account.objects.get(pk=account.pk)
    assert fresh.config_json is None
    assert fresh.credentials is None
    assert Account.objects.filter(credentials__isnull=True).count() == 1


def test_queryset_update_encrypts_too():
    account = AccountFactory(credentials=None)

    Account.objects.filter(pk=account.pk).update(credentials=CREDENTIALS)

    assert raw_columns(account.id)[1].startswith(PREFIX)
    assert "very-secret" not in raw_columns(account.id)[1]
    assert Account.objects.get(pk=account.pk).credentials == CREDENTIALS


def test_bulk_create_encrypts_too():
    (account,) = Account.objects.bulk_create([Account(email="a@example.com", credentials="x")])

    assert raw_columns(account.id)[1].startswith(PREFIX)


def test_an_already_encrypted_value_is_never_encrypted_twice():
    token = encrypt(CREDENTIALS)

    assert encrypt(token) == token
    assert EncryptedTextField().get_prep_value(token) == token
    assert decrypt(token) == CREDENTIALS


def test_each_encryption_is_randomised():
    assert encrypt(CREDENTIALS) != encrypt(CREDENTIALS)


def test_an_old_key_still_decrypts_and_rotation_moves_every_row_to_the_current_key(key_a):
    rotated = AccountFactory(config_json=CONFIG, credentials=CREDENTIALS)
    half = AccountFactory(config_json=None, credentials=CREDENTIALS)
    untouched = AccountFactory(config_json=None, credentials=None)
    before = raw_columns(rotated.id)

    key_a.CW_SECRET_KEYS = [KEY_B, KEY_A]
    assert Account.objects.get(pk=rotated.pk).credentials == CREDENTIALS

    assert rotate_secrets() == 2

    after = raw_columns(rotated.id)
    assert after[0] != before[0]
    assert after[1] != before[1]
    assert raw_columns(untouched.id) == (None, None)
    key_a.CW_SECRET_KEYS = [KEY_B]
    assert Account.objects.get(pk=rotated.pk).config_json == CONFIG
    assert Account.objects.get(pk=rotated.pk).credentials == CREDENTIALS
    assert Account.objects.get(pk=half.pk).credentials == CREDENTIALS
    assert Account.objects.get(pk=half.pk).config_json is None


def test_rotation_does_not_move_updated_at():
    account = AccountFactory(credentials=CREDENTIALS)
    updated_at = Account.objects.get(pk=account.pk).updated_at

    rotate_secrets()

    assert Account.objects.get(pk=account.pk).updated_at == updated_at


def test_rotation_encrypts_clear_values_stored_before_encryption():
    account = AccountFactory(config_json=None, credentials=None)
    write_raw_columns(account.id, CONFIG, None)

    assert Account.objects.get(pk=account.pk).config_json == CONFIG  # legacy clear text reads
    assert rotate_secrets() == 1

    assert raw_columns(account.id)[0].startswith(PREFIX)
    assert Account.objects.get(pk=account.pk).config_json == CONFIG


def test_a_value_no_configured_key_opens_gives_a_clear_error_naming_the_setting(key_a):
    account = AccountFactory(credentials=CREDENTIALS)

    key_a.CW_SECRET_KEYS = [KEY_B]

    with pytest.raises(ImproperlyConfigured, match="CW_SECRET_KEYS") as raised:
        Account.objects.get(pk=account.pk)
    assert isinstance(raised.value, SecretKeyError)
    assert raised.value.__cause__ is None
    with pytest.raises(SecretKeyError, match="CW_SECRET_KEYS"):
        rotate_secrets()


def test_a_corrupt_stored_token_gives_the_same_clear_error():
    account = AccountFactory(credentials=None)
    write_raw_columns(account.id, None, PREFIX + "not-a-token-ü")

    with pytest.raises(SecretKeyError, match="CW_SECRET_KEYS"):
        Account.objects.get(pk=account.pk)


@pytest.mark.parametrize("keys", [[], ["not-a-fernet-key"], [KEY_A, "short"]])
def test_unusable_key_setting_is_refused_without_echoing_the_key(key_a, keys):
    key_a.CW_SECRET_KEYS = keys

    with pytest.raises(SecretKeyError, match="CW_SECRET_KEYS") as raised:
        encrypt("x")
    assert "not-a-fernet-key" not in str(raised.value)


def test_a_single_key_given_as_a_string_is_accepted(key_a):
    key_a.CW_SECRET_KEYS = KEY_B

    assert Fernet(KEY_B).decrypt(encrypt("x").removeprefix(PREFIX)) == b"x"


def test_the_configured_keys_are_valid_fernet_keys_without_any_set_up():
    # Read the module, not django.conf.settings, which the autouse fixture overrides.
    # Without CW_SECRET_KEYS in the environment this is the key derived from SECRET_KEY.
    import cw_project.settings as project_settings

    assert project_settings.CW_SECRET_KEYS
    for key in project_settings.CW_SECRET_KEYS:
        Fernet(key)


def test_migration_encrypts_clear_rows_forward_and_decrypts_them_backward():
    migration = importlib.import_module("agents.migrations.0002_encrypt_account_secrets")
    schema_editor = SimpleNamespace(connection=connection)
    account = AccountFactory(config_json=None, credentials=None)
    write_raw_columns(account.id, CONFIG, None)

    migration.encrypt_clear_values(apps, schema_editor)

    assert raw_columns(account.id)[0].startswith(PREFIX)
    assert raw_columns(account.id)[1] is None

    migration.decrypt_values(apps, schema_editor)

    assert raw_columns(account.id) == (CONFIG, None)
