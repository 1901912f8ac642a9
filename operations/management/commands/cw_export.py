"""Write an initiative, with everything that belongs to it, as one JSON document.

    manage.py cw_export <initiative-id> -o auth-rewrite.json
    manage.py cw_export <initiative-id> --with-logs -o auth-rewrite.json --json
    manage.py cw_export <initiative-id> | gzip > auth-rewrite.json.gz

The document (``operations.transfer`` describes it) holds the initiative's
phases, tasks, dependencies, pages, projects, agents, proposals, change sets, review
comments, messages, conversations and chat sessions, and with ``--with-logs`` its
agents' log chunks; ``cw_import`` reads it back. Accounts (secrets), API tokens and the
event feed are not exported.

Without ``-o`` the document goes to standard output and the summary to standard error.
With ``-o`` it is written to a temporary file next to FILE and renamed over it only when
complete, so FILE is never left half-written; FILE is never the database cw reads (nor
its ``-wal``, ``-shm`` or ``-journal`` file, by name, link or hard link), even with
``--force``. A refusal exits with status 1 and one line on standard error: the reason
and its code.
"""

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.management.commandline import progress, refusal, refuse_database_file, write_json
from core.text import terminal_safe
from operations.transfer import export_initiative


class Command(BaseCommand):
    help = (
        "Export an initiative (phases, tasks, dependencies, pages, projects, agents, "
        "proposals, change sets, review comments, messages, conversations, chat sessions, "
        "and with --with-logs its log chunks) as one versioned JSON document for cw_import."
    )

    def add_arguments(self, parser):
        parser.add_argument("initiative_id", metavar="INITIATIVE", help="The initiative's id.")
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            help=(
                "Write the document to FILE (replaced only once complete) instead of "
                "standard output."
            ),
        )
        parser.add_argument(
            "--with-logs",
            action="store_true",
            help="Include the agents' log chunks (can be most of the file).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace FILE when it exists (refused otherwise).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the summary (rows per table, file, size) as JSON on standard output "
            "(needs -o).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        if options["json"] and output is None:
            raise CommandError("--json needs -o FILE: the document itself goes to standard output.")
        try:
            if output is None:
                counts = self._export(options, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                size = None
            else:
                counts, size = self._export_to_file(options, Path(output))
        except DomainError as error:
            raise refusal(error) from error
        summary = {
            "initiative_id": options["initiative_id"],
            "file": output,
            "bytes": size,
            "with_logs": options["with_logs"],
            "counts": counts,
        }
        if options["json"]:
            write_json(self.stdout, summary)
            return
        rows = ", ".join(f"{n} {table}" for table, n in counts.items() if n)
        where = f" to {output} ({size:,} bytes)" if output else ""
        stream = self.stdout if output else self.stderr
        stream.write(
            terminal_safe(f"Exported initiative {options['initiative_id']}{where}: {rows}.")
        )

    def _export(self, options: dict[str, Any], out: IO[bytes]) -> dict[str, int]:
        with progress(desc="Export", stream=self.stderr) as bar:

            def advance(table: str, rows: int, total: int) -> None:
                if bar.total is None:
                    bar.total = total
                bar.update(rows)

            return export_initiative(
                options["initiative_id"], out, with_logs=options["with_logs"], progress=advance
            )

    def _export_to_file(self, options: dict[str, Any], path: Path) -> tuple[dict[str, int], int]:
        path = path.expanduser()
        refuse_database_file(path)
        if path.exists() and not options["force"]:
            raise CommandError(f"{path} exists; pass --force to replace it.")
        if not path.parent.is_dir():
            raise CommandError(f"Cannot write {path}: {path.parent} is not a directory.")
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                counts = self._export(options, out)
                out.flush()
                os.fsync(out.fileno())
            # mkstemp makes the file private; give it the mode any new file gets here.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return counts, path.stat().st_size
