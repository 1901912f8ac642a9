"""Read an initiative back from a ``cw_export`` document.

    manage.py cw_import auth-rewrite.json
    manage.py cw_import auth-rewrite.json --as-new       # a copy under fresh ids
    manage.py cw_import auth-rewrite.json --dry-run      # check it, write nothing
    gunzip -c auth-rewrite.json.gz | manage.py cw_import - --json

Every record keeps its id, times and state, and is validated as any write is; the
import is one transaction, so it writes everything or nothing. Ids that already exist
are refused with the list of clashes (exit 1); ``--as-new`` gives every record a fresh
id instead, keeping every relationship, and renames taken agent names and branches.
Projects the database already has (same id, or same URL) are linked, not duplicated.
A file from a newer cw (a newer format version) is refused. ``reviews.services.
transfer`` describes the document and the rules.

A refusal exits with status 1 and one line on standard error: the reason and its code.
"""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.db import transaction

from core.errors import DomainError
from core.management.commandline import CwCommand, progress, refusal, write_json
from core.text import terminal_safe
from operations.transfer import ImportResult, import_initiative, load_document

STDIN = "-"


class _DryRun(Exception):
    """Rolls a --dry-run import back once it has been checked and written."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result


class Command(CwCommand):
    help = (
        "Import an initiative from a cw_export document, keeping ids and relationships "
        "(or under fresh ids with --as-new). All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file", metavar="FILE", help="The export document; - reads standard input."
        )
        parser.add_argument(
            "--as-new",
            action="store_true",
            help=(
                "Give every record a fresh id (every relationship follows) and rename taken "
                "agent names and branches: import a copy next to the original."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check and write everything in a transaction, then roll it back.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print what was imported (new initiative id, rows per table, renames) as JSON.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = self._read(options["file"])
        try:
            result = self._import(load_document(data), options)
        except _DryRun as dry:
            result = dry.result
        except DomainError as error:
            clashes = error.details.get("clashes") if isinstance(error.details, dict) else None
            if clashes:
                for key, values in clashes.items():
                    self.stderr.write(terminal_safe(f"{key}: {' '.join(values)}"))
            raise refusal(error) from error
        if options["json"]:
            write_json(self.stdout, {**result.as_dict(), "dry_run": options["dry_run"]})
            return
        rows = ", ".join(f"{n} {table}" for table, n in result.counts.items() if n)
        verb = "Would import" if options["dry_run"] else "Imported"
        lines = [f"{verb} initiative {result.initiative_id}: {rows or 'nothing'}."]
        if result.reused_projects:
            lines.append(f"Linked existing projects: {', '.join(result.reused_projects)}.")
        for key, names in result.renamed.items():
            listed = ", ".join(f"{old} -> {new}" for old, new in names.items())
            lines.append(f"Renamed ({key}, taken): {listed}.")
        for line in lines:  # ids and names from the file: none may act on the terminal
            self.stdout.write(terminal_safe(line))
        for key, count in result.cleared_references.items():
            self.stdout.write(f"Cleared {count} {key} (not in the file or the database).")
        if not result.log_chunk_ids_kept:
            self.stdout.write("Log chunks got new ids (in the same order): theirs were taken.")

    def _read(self, name: str) -> bytes:
        if name == STDIN:
            return sys.stdin.buffer.read()
        path = Path(name).expanduser()
        try:
            return path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}.") from error

    def _import(self, document: Any, options: dict[str, Any]) -> ImportResult:
        with progress(desc="Import", stream=self.stderr) as bar:

            def advance(table: str, rows: int, total: int) -> None:
                if bar.total is None:
                    bar.total = total
                bar.update(rows)

            with transaction.atomic():
                result = import_initiative(document, as_new=options["as_new"], progress=advance)
                if options["dry_run"]:
                    raise _DryRun(result)
            return result
