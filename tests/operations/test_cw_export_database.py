"""``cw_export -o FILE`` never writes over the database it reads (it once replaced a live
1.1 GB database with a 1.4 KB file): the database file, a symbolic or hard link to it, a
path through a linked directory, or the ``-wal``/``-shm``/``-journal`` file beside it is
refused with one line and exit status 1, ``--force`` or not, and the database is left as
it was. ``cw_backup`` refuses the same files through the same helper."""

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError

from core.management.commandline import refuse_database_file
from tests.serverprocess import clean_environment, manage

pytestmark = pytest.mark.processes


class SqliteDatabase:
    """A migrated SQLite database of its own, with one initiative, and the environment
    that points ``manage.py`` at it (whatever database the suite runs on)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "cw.sqlite3"
        self.env = clean_environment(
            DATABASE_URL=f"sqlite:///{self.path}",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        )
        self.run("migrate", "--no-input")
        created = self.run(
            "shell",
            "-c",
            "from core.services import initiative_create; "
            "print(initiative_create(name='Export me').pk)",
        )
        self.initiative_id = created.stdout.strip().splitlines()[-1]

    def run(self, *arguments: str, check: bool = True):
        run = manage(self.env, *arguments)
        if check:
            assert run.returncode == 0, run.stderr + run.stdout
        return run

    def fingerprint(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[SqliteDatabase]:
    yield SqliteDatabase(tmp_path_factory.mktemp("export-over-database"))


def same_path(database: SqliteDatabase, tmp_path: Path) -> Path:
    return database.path


def symbolic_link(database: SqliteDatabase, tmp_path: Path) -> Path:
    link = tmp_path / "link.sqlite3"
    link.symlink_to(database.path)
    return link


def hard_link(database: SqliteDatabase, tmp_path: Path) -> Path:
    link = tmp_path / "hard.sqlite3"
    os.link(database.path, link)
    return link


def through_a_linked_directory(database: SqliteDatabase, tmp_path: Path) -> Path:
    directory = tmp_path / "elsewhere"
    directory.symlink_to(database.path.parent, target_is_directory=True)
    return directory / database.path.name


def relative_path(database: SqliteDatabase, tmp_path: Path) -> Path:
    # manage.py runs in the project's directory.
    return Path(os.path.relpath(database.path, settings.BASE_DIR))


def wal_file(database: SqliteDatabase, tmp_path: Path) -> Path:
    return Path(f"{database.path}-wal")


TARGETS: list[Callable[[SqliteDatabase, Path], Path]] = [
    same_path,
    symbolic_link,
    hard_link,
    through_a_linked_directory,
    relative_path,
    wal_file,
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda target: target.__name__)
@pytest.mark.parametrize("force", [False, True], ids=["", "--force"])
def test_cw_export_refuses_to_write_over_its_database(database, tmp_path, target, force):
    path = target(database, tmp_path)
    before = database.fingerprint()

    run = database.run(
        "cw_export",
        database.initiative_id,
        "-o",
        str(path),
        *(["--force"] if force else []),
        check=False,
    )

    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "is the database" in lines[0]
    assert "choose another file" in lines[0]
    assert database.fingerprint() == before
    with sqlite3.connect(database.path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("SELECT name FROM initiatives").fetchall() == [("Export me",)]


def test_cw_export_still_writes_another_file(database, tmp_path):
    path = tmp_path / "export.json"

    database.run("cw_export", database.initiative_id, "-o", str(path))

    assert b"Export me" in path.read_bytes()


@pytest.mark.parametrize("target", TARGETS, ids=lambda target: target.__name__)
def test_cw_backup_refuses_the_same_files(database, tmp_path, target):
    path = target(database, tmp_path)
    before = database.fingerprint()

    run = database.run("cw_backup", str(path), "--force", check=False)

    assert run.returncode == 1
    assert "is the database" in run.stderr
    assert database.fingerprint() == before


# --- the helper itself -------------------------------------------------------------------------


@pytest.fixture
def a_database(tmp_path) -> Path:
    path = tmp_path / "data" / "cw.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"SQLite format 3\x00")
    return path


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_the_helper_refuses_the_database_and_the_files_beside_it(a_database, suffix):
    with pytest.raises(CommandError, match="is the database"):
        refuse_database_file(f"{a_database}{suffix}", str(a_database))


def test_the_helper_refuses_a_hard_link_made_after_the_path_was_named(a_database, tmp_path):
    link = tmp_path / "copy.sqlite3"
    os.link(a_database, link)

    with pytest.raises(CommandError, match="the database itself"):
        refuse_database_file(link, str(a_database))


@pytest.mark.parametrize("name", ["cw.sqlite3.bak", "cw.sqlite", "other.sqlite3"])
def test_the_helper_lets_other_files_through(a_database, name):
    refuse_database_file(a_database.parent / name, str(a_database))
