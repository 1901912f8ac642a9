"""The ``cw_accounts`` operator command: add, list, exhaust, release, clear-expired."""

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.models import Account
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-very-secret-token"}}'
CONFIG = '{"oauthAccount": {"emailAddress": "a@example.com", "hidden": "config-secret"}}'
SECRETS = ("sk-ant-very-secret-token", "config-secret")


def run(*args: str) -> tuple[str, str]:
    """Run ``cw_accounts`` with ``args``; its standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    call_command("cw_accounts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def secret_files(tmp_path: Path) -> tuple[Path, Path]:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(CREDENTIALS, encoding="utf-8")
    config = tmp_path / "claude.json"
    config.write_text(CONFIG, encoding="utf-8")
    return credentials, config


# --- add -------------------------------------------------------------------------------


def test_add_from_files_stores_the_secrets_and_prints_only_the_id(secret_files):
    credentials, config = secret_files

    out, err = run(
        "add",
        "--provider",
        "claude",
        "--email",
        "a@example.com",
        "--credentials-file",
        str(credentials),
        "--config-file",
        str(config),
        "--sort-order",
        "3",
    )

    account = Account.objects.get()
    assert out.strip() == account.pk
    assert err == ""
    assert account.credentials == CREDENTIALS
    assert account.config_json == CONFIG
    assert (account.provider, account.email, account.sort_order) == ("claude", "a@example.com", 3)


def test_add_json_describes_the_account_without_its_secrets(secret_files):
    credentials, _ = secret_files

    out, _ = run(
        "add",
        "--provider",
        "codex",
        "--email",
        "b@example.com",
        "--credentials-file",
        str(credentials),
        "--json",
    )

    assert_no_secret(out)
    data = json.loads(out)
    account = Account.objects.get()
    assert data["id"] == account.pk
    assert data["provider"] == "codex"
    assert data["email"] == "b@example.com"
    assert data["sort_order"] == 0
    assert data["is_exhausted"] is False
    assert data["exhausted_until"] is None
    assert data["last_used_at"] is None
    assert data["credentials_are_set"] is True
    assert data["config_is_set"] is False
    assert data["created_at"] == account.created_at.isoformat()
    assert "credentials" not in data
    assert "config_json" not in data


def test_add_reads_a_secret_from_standard_input(monkeypatch, secret_files):
    _, config = secret_files
    monkeypatch.setattr(sys, "stdin", io.StringIO(CREDENTIALS))

    out, _ = run(
        "add",
        "--provider",
        "claude",
        "--email",
        "a@example.com",
        "--credentials-file",
        "-",
        "--config-file",
        str(config),
    )

    assert_no_secret(out)
    account = Account.objects.get(pk=out.strip())
    assert account.credentials == CREDENTIALS
    assert account.config_json == CONFIG


def test_add_refuses_both_secrets_from_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(CREDENTIALS))

    with pytest.raises(CommandError, match="standard input"):
        run(
            "add",
            "--provider",
            "claude",
            "--email",
            "a@example.com",
            "--credentials-file",
            "-",
            "--config-file",
            "-",
        )
    assert not Account.objects.exists()


def test_add_refuses_a_missing_file_naming_it(tmp_path):
    missing = tmp_path / "nowhere.json"

    with pytest.raises(CommandError) as refused:
        run(
            "add",
            "--provider",
            "claude",
            "--email",
            "a@example.com",
            "--credentials-file",
            str(missing),
        )
    assert str(missing) in str(refused.value)
    assert "--credentials-file" in str(refused.value)
    assert not Account.objects.exists()


def test_add_refuses_a_duplicate_email_with_its_code(secret_files):
    AccountFactory(provider="claude", email="a@example.com")

    with pytest.raises(CommandError, match=r"\(account_email_taken\)$"):
        run("add", "--provider", "claude", "--email", "A@example.com")
    assert Account.objects.count() == 1


def test_add_refuses_a_secret_that_is_not_json_without_echoing_it(tmp_path):
    credentials = tmp_path / "credentials.json"
    credentials.write_text("not json sk-ant-very-secret-token", encoding="utf-8")

    with pytest.raises(CommandError, match=r"\(invalid_json\)$") as refused:
        run(
            "add",
            "--provider",
            "claude",
            "--email",
            "a@example.com",
            "--credentials-file",
            str(credentials),
        )
    assert_no_secret(str(refused.value))


def test_secrets_cannot_be_given_as_arguments():
    with pytest.raises(CommandError, match="unrecognized arguments: --credentials"):
        run("add", "--provider", "claude", "--email", "a@example.com", "--credentials", "{}")


# --- list ------------------------------------------------------------------------------


def test_list_json_shows_every_account_and_no_secret():
    parked = AccountFactory(
        provider="claude",
        credentials=CREDENTIALS,
        config_json=CONFIG,
        is_exhausted=True,
        exhausted_until=timezone.now() + timedelta(hours=1),
    )
    other = AccountFactory(provider="codex")

    out, _ = run("list", "--json")

    assert_no_secret(out)
    data = json.loads(out)
    assert [item["id"] for item in data] == [parked.pk, other.pk]
    assert data[0]["credentials_are_set"] is True
    assert data[0]["config_is_set"] is True
    assert data[0]["is_exhausted"] is True
    assert data[0]["exhausted_until"] == parked.exhausted_until.isoformat()
    assert data[1]["credentials_are_set"] is False


def test_list_filters_by_provider():
    AccountFactory(provider="claude", email="c@example.com")
    codex = AccountFactory(provider="codex", email="x@example.com")

    out, _ = run("list", "--provider", "codex", "--json")

    assert [item["id"] for item in json.loads(out)] == [codex.pk]
    out, _ = run("list", "--provider", "nope")
    assert out.strip() == "No 'nope' accounts."


def test_list_table_shows_states_and_no_secret():
    until = timezone.now() + timedelta(hours=2)
    available = AccountFactory(email="free@example.com", credentials=CREDENTIALS)
    exhausted = AccountFactory(
        email="busy@example.com", config_json=CONFIG, is_exhausted=True, exhausted_until=until
    )
    parked = AccountFactory(email="parked@example.com", is_exhausted=True)

    out, _ = run("list")

    assert_no_secret(out)
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split()[:3] == ["ID", "PROVIDER", "EMAIL"]
    assert "available" in lines[available.pk]
    assert f"exhausted until {until.isoformat()}" in lines[exhausted.pk]
    assert "parked" in lines[parked.pk]
    assert "never" in lines[available.pk]


def test_list_without_accounts():
    out, _ = run("list")
    assert out.strip() == "No accounts."


# --- exhaust / release / clear-expired -------------------------------------------------


def test_exhaust_for_a_duration():
    account = AccountFactory()
    before = timezone.now()

    out, _ = run("exhaust", account.pk, "--until", "2h")

    account.refresh_from_db()
    assert account.is_exhausted
    assert before + timedelta(hours=2) <= account.exhausted_until
    assert account.exhausted_until <= timezone.now() + timedelta(hours=2)
    assert account.pk in out
    assert account.exhausted_until.isoformat() in out


@pytest.mark.parametrize("duration,delta", [("90m", timedelta(minutes=90)), ("1d", timedelta(1))])
def test_exhaust_accepts_minutes_and_days(duration, delta):
    account = AccountFactory()

    out, _ = run("exhaust", account.pk, "--until", duration, "--json")

    data = json.loads(out)
    account.refresh_from_db()
    assert data["is_exhausted"] is True
    assert data["exhausted_until"] == account.exhausted_until.isoformat()
    assert abs(account.exhausted_until - (timezone.now() + delta)) < timedelta(minutes=1)


def test_exhaust_until_an_iso_time():
    account = AccountFactory()
    until = (timezone.now() + timedelta(days=2)).replace(microsecond=0)

    run("exhaust", account.pk, "--until", until.isoformat())

    account.refresh_from_db()
    assert account.is_exhausted
    assert account.exhausted_until == until


def test_exhaust_refuses_a_naive_time():
    account = AccountFactory()
    naive = (timezone.now() + timedelta(days=2)).replace(tzinfo=None).isoformat()

    with pytest.raises(CommandError, match=r"\(exhausted_until_naive\)$"):
        run("exhaust", account.pk, "--until", naive)
    account.refresh_from_db()
    assert not account.is_exhausted


def test_exhaust_refuses_a_past_time():
    account = AccountFactory()
    past = (timezone.now() - timedelta(hours=1)).isoformat()

    with pytest.raises(CommandError, match=r"\(exhausted_until_past\)$"):
        run("exhaust", account.pk, "--until", past)
    account.refresh_from_db()
    assert not account.is_exhausted


@pytest.mark.parametrize("when", ["soon", "0h", "2w", "-1h"])
def test_exhaust_refuses_an_unreadable_until(when):
    account = AccountFactory()

    with pytest.raises(CommandError, match="--until"):
        run("exhaust", account.pk, "--until", when)


def test_exhaust_refuses_an_unknown_account():
    with pytest.raises(CommandError, match=r"\(account_not_found\)$"):
        run("exhaust", "nope", "--until", "2h")


def test_release_puts_a_parked_account_back():
    account = AccountFactory(is_exhausted=True, exhausted_until=timezone.now() + timedelta(1))

    out, _ = run("release", account.pk)

    account.refresh_from_db()
    assert not account.is_exhausted
    assert account.exhausted_until is None
    assert account.pk in out


def test_release_refuses_an_unknown_account():
    with pytest.raises(CommandError, match=r"\(account_not_found\)$"):
        run("release", "nope")


def test_clear_expired_releases_the_lapsed_exhaustions_and_counts_them():
    past = timezone.now() - timedelta(minutes=5)
    lapsed = [AccountFactory(is_exhausted=True, exhausted_until=past) for _ in range(2)]
    still = AccountFactory(is_exhausted=True, exhausted_until=timezone.now() + timedelta(1))

    out, _ = run("clear-expired")

    assert out.strip() == "Released 2 accounts."
    for account in lapsed:
        account.refresh_from_db()
        assert not account.is_exhausted
    still.refresh_from_db()
    assert still.is_exhausted
    out, _ = run("clear-expired")
    assert out.strip() == "Released 0 accounts."


# --- as a process --------------------------------------------------------------------


@pytest.mark.processes
def test_a_refusal_exits_with_status_1_and_one_line_on_stderr():
    """A refusal made before any database access, so the process needs no test database
    (it would not see this test's one)."""
    run_ = subprocess.run(
        [sys.executable, "manage.py", "cw_accounts", "exhaust", "x", "--until", "soon"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run_.returncode == 1
    assert run_.stdout == ""
    assert len(run_.stderr.strip().splitlines()) == 1
    assert "--until" in run_.stderr
