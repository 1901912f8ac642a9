"""Operator commands of the core app: the first superuser, pruning the event feed."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.events import event_record
from core.models import Event

pytestmark = pytest.mark.django_db


def test_ensure_superuser_prints_a_generated_password_once_and_it_logs_in(capsys, monkeypatch):
    monkeypatch.delenv("CW_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("CW_ADMIN_USERNAME", raising=False)

    call_command("ensure_superuser")
    first = capsys.readouterr().out
    password = re.search(r"password: (\S+)", first).group(1)
    call_command("ensure_superuser")
    second = capsys.readouterr().out

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert password not in second
    assert "exists" in second
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_ensure_superuser_takes_credentials_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("CW_ADMIN_USERNAME", "alice")
    monkeypatch.setenv("CW_ADMIN_PASSWORD", "a long passphrase")

    call_command("ensure_superuser")

    alice = get_user_model().objects.get(username="alice")
    assert alice.is_superuser and alice.check_password("a long passphrase")
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


class TestPruneEvents:
    @pytest.fixture
    def old_and_new(self):
        old, new = (
            event_record("task.started", subject_type="task", subject_id=name)
            for name in ("old", "new")
        )
        Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
        return old, new

    def test_removes_events_older_than_the_age_and_says_how_many(self, capsys, old_and_new):
        call_command("prune_events", "--older-than", "30d")

        assert "Removed 1 event(s)" in capsys.readouterr().out
        assert list(Event.objects.values_list("subject_id", flat=True)) == ["new"]

    def test_dry_run_counts_and_removes_nothing(self, capsys, old_and_new):
        call_command("prune_events", "--older-than", "48h", "--dry-run")

        assert "Would remove 1 event(s)" in capsys.readouterr().out
        assert Event.objects.count() == 2

    def test_an_age_in_minutes_is_read_as_every_command_reads_durations(self, capsys):
        old = event_record("task.started", subject_type="task", subject_id="old")
        Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=91))
        event_record("task.started", subject_type="task", subject_id="new")

        call_command("prune_events", "--older-than", "90m")

        assert "Removed 1 event(s) older than 90m" in capsys.readouterr().out
        assert list(Event.objects.values_list("subject_id", flat=True)) == ["new"]

    @pytest.mark.parametrize("age", ["30", "0d", "-3d", "2w", "1.5h", "d"])
    def test_an_unreadable_age_is_refused_in_one_line(self, age):
        with pytest.raises(CommandError, match="like 90m, 2h or 30d") as refused:
            call_command("prune_events", f"--older-than={age}")
        assert "\n" not in str(refused.value)
