"""Copy the embedded SQLite database to a file while cw keeps running.

    manage.py cw_backup /srv/backups/cw-2024-05-01.sqlite3
    manage.py cw_backup /srv/backups/cw-latest.sqlite3 --force --json

The copy is taken through SQLite's online backup API from a connection of its own, a
few pages at a time, so writers are never held up for long (a write between two steps
makes SQLite start over; after MAX_RESTARTS of those the copy is taken in one step, from
one read snapshot, which in WAL mode does not block writers either). It lands in a
temporary file next to PATH, must pass ``PRAGMA integrity_check``, and only then is renamed over
PATH, so PATH is either the old file or a complete, checked new one.

Restoring: stop cw, copy the backup over the database file, remove any ``-wal`` and
``-shm`` files next to it, start cw.

On PostgreSQL nothing is copied: the command prints the ``pg_dump`` (and matching
``pg_restore``) command for the configured database instead. A password is never
printed; set ``PGPASSWORD`` (or use ``~/.pgpass``) yourself.
"""

import contextlib
import json
import os
import shlex
import sqlite3
import tempfile
import time
from argparse import RawDescriptionHelpFormatter
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db import connection

from core.management.commandline import progress, refuse_database_file

#: Pages copied per step of the online backup; the source is read-locked only per step.
STEP_PAGES = 1024
#: A writer between two steps makes SQLite start the copy again from the first page.
#: After this many restarts the copy is taken in one step (one consistent read
#: snapshot; in WAL mode that does not block writers either).
MAX_RESTARTS = 20
#: Shown instead of a password that is set.
PASSWORD_PLACEHOLDER = "<password>"  # noqa: S105 (placeholder, not a secret)

RESTORE_HELP = """\
Restoring a SQLite backup:
  1. stop cw (web server and workers);
  2. copy the backup over the database file;
  3. remove DATABASE-wal and DATABASE-shm next to it, if present;
  4. start cw.
On PostgreSQL the command only prints the pg_dump / pg_restore commands to run."""


class _HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's argument order, with the restore steps kept as written."""


class _Restarting(Exception):
    """Raised from the progress callback to give up on copying in steps."""


class Command(BaseCommand):
    help = (
        "Copy the SQLite database to PATH, online and integrity-checked (on PostgreSQL, "
        "print the pg_dump command instead)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, epilog=RESTORE_HELP, **kwargs)
        parser.formatter_class = _HelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH", help="The backup file to write.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace PATH if it exists (only once the new copy has passed its check).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the result as one JSON object.",
        )

    def handle(self, *args, **options):
        if connection.vendor == "postgresql":
            self._postgresql(options["path"], as_json=options["json"])
            return
        if connection.vendor != "sqlite":
            raise CommandError(
                f"cw_backup copies SQLite only (the database is {connection.vendor})."
            )
        database = str(connection.settings_dict["NAME"])
        target = _checked_target(options["path"], database, force=options["force"])
        started = time.monotonic()
        with progress(desc="Backup", unit="page", stream=self.stderr) as bar:

            def advance(remaining: int, total: int) -> None:
                bar.total = total
                bar.n = total - remaining
                bar.refresh()

            size = backup_sqlite(database, target, advance)
        seconds = time.monotonic() - started
        if options["json"]:
            result = {
                "path": target,
                "bytes": size,
                "seconds": round(seconds, 3),
                "integrity": "ok",
                "engine": "sqlite",
            }
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up {_size(size)} to {target} (integrity ok) in {seconds:.1f} s."
            )
        )

    def _postgresql(self, path: str, *, as_json: bool) -> None:
        settings = connection.settings_dict
        dump, restore = pg_commands(settings, path)
        password_set = bool(settings.get("PASSWORD"))
        if as_json:
            result: dict[str, Any] = {"engine": "postgresql", "command": dump, "restore": restore}
            if password_set:
                result["env"] = {"PGPASSWORD": PASSWORD_PLACEHOLDER}
            self.stdout.write(json.dumps(result))
            return
        prefix = f"PGPASSWORD='{PASSWORD_PLACEHOLDER}' " if password_set else ""
        self.stdout.write(
            "cw_backup copies SQLite only; this database is PostgreSQL. Back it up with:"
        )
        self.stdout.write(f"  {prefix}{shlex.join(dump)}")
        self.stdout.write("and restore it (with cw stopped) with:")
        self.stdout.write(f"  {prefix}{shlex.join(restore)}")
        if password_set:
            self.stdout.write(
                f"Replace {PASSWORD_PLACEHOLDER} with the password, or use ~/.pgpass."
            )


def pg_commands(settings: dict[str, Any], path: str) -> tuple[list[str], list[str]]:
    """The ``pg_dump`` and ``pg_restore`` argument lists for a database's settings."""
    connection_args: list[str] = []
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if settings.get(key):
            connection_args += [flag, str(settings[key])]
    name = str(settings.get("NAME") or "")
    dump = ["pg_dump", "--format=custom", "--file", path, *connection_args, name]
    restore = [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        *connection_args,
        "--dbname",
        name,
        path,
    ]
    return dump, restore


def _checked_target(path: str, database: str, *, force: bool) -> str:
    """PATH as an absolute path, or a ``CommandError`` saying why it cannot be written."""
    target = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(database):
        raise CommandError(f"The database file {database} does not exist.")
    refuse_database_file(path, database)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise CommandError(f"The directory {directory} does not exist.")
    if os.path.isdir(target):
        raise CommandError(f"{path} is a directory; give a file name.")
    if os.path.lexists(target) and not force:
        raise CommandError(f"{path} exists; pass --force to replace it.")
    return target


def backup_sqlite(
    database: str, target: str, advance: Callable[[int, int], None] | None = None
) -> int:
    """Copy ``database`` online to ``target`` through a checked temporary file.

    ``advance(remaining, total)`` is told the pages left after each step. Returns the
    size of the copy in bytes. ``target`` is only replaced (atomically)
    once the copy has passed ``PRAGMA integrity_check``; on any failure the temporary
    file is removed and ``target`` is left as it was.
    """
    directory, name = os.path.split(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(handle)
    try:
        _copy(database, temporary, advance)
        problems = _integrity(temporary)
        if problems != ["ok"]:
            shown = "; ".join(problems[:3]) or "no answer"
            raise CommandError(
                f"The copy failed its integrity check ({shown}); {target} untouched."
            )
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(directory)
    except BaseException:
        _remove(temporary)
        raise
    return os.path.getsize(target)


def _copy(database: str, temporary: str, advance: Callable[[int, int], None] | None = None) -> None:
    source = sqlite3.connect(database, timeout=30)
    try:
        destination = sqlite3.connect(temporary)
        try:
            try:
                source.backup(destination, pages=STEP_PAGES, progress=_restart_counter(advance))
            except _Restarting:
                source.backup(destination, pages=-1)
            # A self-contained file: no -wal next to it once restored or opened.
            destination.execute("PRAGMA journal_mode=DELETE").fetchall()
        finally:
            destination.close()
    except sqlite3.Error as error:
        raise CommandError(f"The backup failed: {error}.") from error
    finally:
        source.close()


def _restart_counter(
    advance: Callable[[int, int], None] | None = None,
) -> Callable[[int, int, int], None]:
    """A progress callback that gives up once the copy has started over too often (and
    tells ``advance`` how far the copy is)."""
    last_remaining: int | None = None
    restarts = 0

    def step(status: int, remaining: int, total: int) -> None:
        nonlocal last_remaining, restarts
        if last_remaining is not None and remaining >= last_remaining:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise _Restarting
        last_remaining = remaining
        if advance is not None:
            advance(remaining, total)

    return step


def _integrity(path: str) -> list[str]:
    try:
        check = sqlite3.connect(path)
        try:
            return [str(row[0]) for row in check.execute("PRAGMA integrity_check").fetchall()]
        finally:
            check.close()
    except sqlite3.Error as error:
        return [str(error)]


def _fsync(path: str) -> None:
    """Flush a file (or a directory's entries) to disk, where the system allows it."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: str) -> None:
    for leftover in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)


def _size(count: int) -> str:
    """``12.3 MB``-style: decimal units, one decimal."""
    size = float(count)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
