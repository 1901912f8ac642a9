"""Operator commands of the core app: the first superuser."""

import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_ensure_superuser_prints_a_generated_password_once_and_it_logs_in(capsys, monkeypatch):
    monkeypatch.delenv("CW_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("CW_ADMIN_USERNAME", raising=False)

    call_command("ensure_superuser")
    first = capsys.readouterr().out
    password = re.search(r"password: (\S+)", first).group(1)
    call_command("ensure_superuser")
    second = capsys.readouterr().out

    assert authenticate(username="admin", password=password).is_superuser
    assert password not in second
    assert "exists" in second
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_ensure_superuser_takes_credentials_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("CW_ADMIN_USERNAME", "alice")
    monkeypatch.setenv("CW_ADMIN_PASSWORD", "a long passphrase")

    call_command("ensure_superuser")

    assert authenticate(username="alice", password="a long passphrase").is_superuser
    assert "a long passphrase" not in capsys.readouterr().out


def test_ensure_superuser_refuses_an_empty_password(monkeypatch):
    monkeypatch.setenv("CW_ADMIN_PASSWORD", " ")
    with pytest.raises(CommandError, match="empty"):
        call_command("ensure_superuser")
    assert not get_user_model().objects.exists()


def test_the_embedded_database_folder_is_made_on_first_connection(tmp_path, settings):
    from cw_project.db.sqlite3.base import DatabaseWrapper

    path = tmp_path / "not" / "yet" / "cw.sqlite3"
    wrapper = DatabaseWrapper(
        {
            "ENGINE": "cw_project.db.sqlite3",
            "NAME": str(path),
            "OPTIONS": settings.SQLITE_OPTIONS,
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
        }
    )
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        wrapper.close()
    assert path.exists()
