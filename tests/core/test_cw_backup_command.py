"""cw_backup: an online, integrity-checked copy of the SQLite database; on PostgreSQL,
the pg_dump / pg_restore commands to run instead."""

import json
import sqlite3
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from agents.models import AgentLogChunk
from agents.repositories import LogChunkRepository
from core.management.commands import cw_backup
from core.models import Initiative
from tests import factories as f

on_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="copies SQLite only")
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")


def integrity(path) -> list[str]:
    copy = sqlite3.connect(path)
    try:
        return [row[0] for row in copy.execute("PRAGMA integrity_check")]
    finally:
        copy.close()


def rows(path, sql: str) -> list[tuple]:
    copy = sqlite3.connect(path)
    try:
        return copy.execute(sql).fetchall()
    finally:
        copy.close()


def backup(path, *args: str) -> str:
    out = StringIO()
    call_command("cw_backup", str(path), *args, stdout=out)
    return out.getvalue()


# --- SQLite ------------------------------------------------------------------------------


@on_sqlite
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step_pages", [cw_backup.STEP_PAGES, 4])
def test_a_backup_holds_the_committed_rows_and_passes_its_check(tmp_path, monkeypatch, step_pages):
    monkeypatch.setattr(cw_backup, "STEP_PAGES", step_pages)
    f.InitiativeFactory.create_batch(5)
    target = tmp_path / "cw.backup.sqlite3"

    out = backup(target)

    assert out.startswith("Backed up ")
    assert f"to {target} (integrity ok) in " in out
    assert integrity(target) == ["ok"]
    expected = sorted(Initiative.objects.values_list("id", "name"))
    assert sorted(rows(target, "SELECT id, name FROM initiatives")) == expected
    # A self-contained file (no -wal needed) and nothing left beside it.
    assert rows(target, "PRAGMA journal_mode") == [("delete",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@on_sqlite
@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step_pages", [cw_backup.STEP_PAGES, 8])
def test_a_backup_taken_while_a_writer_appends_is_consistent(tmp_path, monkeypatch, step_pages):
    monkeypatch.setattr(cw_backup, "STEP_PAGES", step_pages)
    agent = f.AgentFactory()
    chunk = {
        "agent_id": agent.id,
        "agent_name": agent.name,
        "content": json.dumps({"type": "text", "text": "x" * 2000}) + "\n",
    }
    # Several steps' worth of pages, so the copy is not over in one step.
    LogChunkRepository().append_chunks([chunk] * 2500)
    writing = threading.Event()
    errors: list[BaseException] = []

    def append_for_a_second():
        try:
            logs = LogChunkRepository()
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                logs.append_chunks([chunk, chunk])
                writing.set()
        except BaseException as error:  # collected and asserted below
            errors.append(error)
        finally:
            writing.set()
            connection.close()

    writer = threading.Thread(target=append_for_a_second)
    writer.start()
    try:
        assert writing.wait(10)
        before = AgentLogChunk.objects.count()
        target = tmp_path / "during-writes.sqlite3"
        out = backup(target, "--json")
        after = AgentLogChunk.objects.count()
    finally:
        writer.join()

    assert errors == []
    assert json.loads(out)["integrity"] == "ok"
    assert integrity(target) == ["ok"]
    [(copied,)] = rows(target, "SELECT count(*) FROM agent_log_chunks")
    assert before <= copied <= after
    assert AgentLogChunk.objects.count() >= after


@on_sqlite
@pytest.mark.django_db
def test_an_existing_path_is_refused_without_force_and_replaced_with_it(tmp_path):
    target = tmp_path / "cw.sqlite3"
    target.write_text("an older backup")

    with pytest.raises(CommandError, match="exists; pass --force"):
        backup(target)
    assert target.read_text() == "an older backup"

    backup(target, "--force")
    assert integrity(target) == ["ok"]
    assert rows(target, "SELECT count(*) FROM initiatives") == [(0,)]


@on_sqlite
@pytest.mark.django_db
def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        backup(tmp_path / "missing" / "cw.sqlite3")
    assert not (tmp_path / "missing").exists()


@on_sqlite
@pytest.mark.django_db
def test_the_database_itself_is_refused_even_with_force():
    with pytest.raises(CommandError, match="the database itself"):
        backup(connection.settings_dict["NAME"], "--force")


@on_sqlite
@pytest.mark.django_db
def test_a_directory_as_path_is_refused(tmp_path):
    with pytest.raises(CommandError, match="is a directory"):
        backup(tmp_path, "--force")


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_a_refusal_exits_with_status_1_and_one_line(tmp_path, capsys):
    command = cw_backup.Command()
    with pytest.raises(SystemExit) as exited:
        command.run_from_argv(["manage.py", "cw_backup", str(tmp_path / "no" / "x.sqlite3")])
    assert exited.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("CommandError: ")
    assert "\n" not in error


@on_sqlite
@pytest.mark.django_db
def test_json_describes_the_copy(tmp_path):
    target = tmp_path / "cw.sqlite3"

    result = json.loads(backup(target, "--json"))

    assert result["path"] == str(target)
    assert result["bytes"] == target.stat().st_size > 0
    assert result["seconds"] >= 0
    assert result["integrity"] == "ok"
    assert result["engine"] == "sqlite"


@on_sqlite
@pytest.mark.django_db
def test_a_failed_integrity_check_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(cw_backup, "_integrity", lambda path: ["*** in database main ***"])
    target = tmp_path / "cw.sqlite3"
    target.write_text("the previous backup")

    with pytest.raises(CommandError, match="integrity check"):
        backup(target, "--force")

    assert target.read_text() == "the previous backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


# --- PostgreSQL --------------------------------------------------------------------------


@on_postgres
@pytest.mark.django_db
def test_on_postgres_the_pg_dump_command_is_printed_and_nothing_copied(tmp_path, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", "s3cret-pass")
    target = tmp_path / "cw.dump"

    out = backup(target)

    assert "copies SQLite only" in out
    assert "pg_dump --format=custom" in out
    assert "pg_restore" in out
    assert connection.settings_dict["NAME"] in out
    assert str(target) in out
    assert "s3cret-pass" not in out
    assert "PGPASSWORD" in out
    assert not target.exists()


@on_postgres
@pytest.mark.django_db
def test_on_postgres_json_gives_the_commands_as_lists(tmp_path, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", "s3cret-pass")
    target = tmp_path / "cw.dump"

    out = backup(target, "--json")
    result = json.loads(out)

    assert result["engine"] == "postgresql"
    assert result["command"][0] == "pg_dump"
    assert result["command"][-1] == connection.settings_dict["NAME"]
    assert str(target) in result["command"]
    assert result["restore"][0] == "pg_restore"
    assert result["restore"][-1] == str(target)
    assert "s3cret-pass" not in out
    assert not target.exists()


# --- either database ---------------------------------------------------------------------


def test_pg_commands_name_the_connection_and_leave_out_what_is_not_set():
    dump, restore = cw_backup.pg_commands(
        {"NAME": "cw", "USER": "postgres", "HOST": "127.0.0.1", "PORT": 5432, "PASSWORD": "x"},
        "/backups/cw.dump",
    )
    assert dump == [
        "pg_dump",
        "--format=custom",
        "--file",
        "/backups/cw.dump",
        "--host",
        "127.0.0.1",
        "--port",
        "5432",
        "--username",
        "postgres",
        "cw",
    ]
    assert restore[0] == "pg_restore"
    assert restore[-3:] == ["--dbname", "cw", "/backups/cw.dump"]
    assert "--host" in restore
    assert "x" not in dump + restore

    local, _ = cw_backup.pg_commands({"NAME": "cw", "HOST": "", "PORT": "", "USER": ""}, "b")
    assert local == ["pg_dump", "--format=custom", "--file", "b", "cw"]


def test_sizes_read_like_a_person_would_write_them():
    assert cw_backup._size(512) == "512 B"
    assert cw_backup._size(12_300_000) == "12.3 MB"
    assert cw_backup._size(2_500_000_000) == "2.5 GB"
