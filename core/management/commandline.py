"""What cw's operator commands share: refusals, JSON output and progress bars.

Every ``cw_*`` command follows the same conventions:

- a domain refusal becomes one line on standard error, the reason and its stable code
  (``refusal``), and exit status 1 (Django's ``CommandError``);
- ``--json`` prints one JSON document on standard output (``write_json``), nothing else;
- anything that can take more than a second shows a progress bar on standard error, but
  only when standard error is a terminal and only once the work has run for a second
  (``progress``): under cron, in a pipe or in tests the bar writes nothing;
- every change a command makes is recorded as the system's, under the command's name
  and the operator's when given (``--operator`` or ``CW_OPERATOR``): ``CwCommand``;
- a command that writes a file refuses to write over the database it reads
  (``refuse_database_file``);
- text a command did not write itself (names, emails, log records, refusals that quote
  them) is printed through ``core.text.terminal_safe`` (``write_json`` through
  ``json_terminal_safe``), so it cannot clear the screen, move the cursor or retitle
  the window of whoever reads the output.
"""

import json
import os
import re
import sys
from collections.abc import Iterable
from datetime import timedelta
from typing import IO, Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import connection
from tqdm import tqdm

from core.actors import Actor, acting_as
from core.errors import DomainError
from core.text import json_terminal_safe, terminal_safe

T = TypeVar("T")

#: ``<whole number><unit>``: ``m`` for minutes, ``h`` for hours, ``d`` for days.
DURATION_PATTERN = re.compile(r"(?P<count>\d{1,6})(?P<unit>[mhd])")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

#: Seconds a piece of work runs before its progress bar appears.
PROGRESS_DELAY = 1.0


#: The environment variable naming the operator when ``--operator`` is not given.
OPERATOR_VARIABLE = "CW_OPERATOR"


class CwCommand(BaseCommand):
    """A cw command: what it changes is recorded as done by the system under the
    command's name, with the operator's name when given (``--operator NAME`` or the
    ``CW_OPERATOR`` variable), e.g. ``cw_accounts (alice)``."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--operator",
            default=None,
            help=f"Who runs the command, for the event feed (default: ${OPERATOR_VARIABLE}).",
        )
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        command = type(self).__module__.rsplit(".", 1)[-1]
        operator = (options.get("operator") or os.environ.get(OPERATOR_VARIABLE) or "").strip()
        name = f"{command} ({operator})" if operator else command
        with acting_as(Actor.system(name, via="command")):
            return super().execute(*args, **options)


#: The files SQLite keeps beside a database, by their suffix: writing over one of them
#: breaks the database as surely as writing over the file itself.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def refuse_database_file(path: str | os.PathLike[str], database: str | None = None) -> None:
    """A ``CommandError`` when writing ``path`` would write over ``database`` (by default
    the SQLite file cw reads; nothing to refuse on PostgreSQL) or a file SQLite keeps
    beside it: the same file by name, through a symbolic link or a hard link."""
    if database is None:
        if connection.vendor != "sqlite":
            return
        database = str(connection.settings_dict["NAME"])
    target = os.path.abspath(os.path.expanduser(path))
    for suffix in ("", *SQLITE_COMPANIONS):
        file = database + suffix
        if os.path.realpath(target) == os.path.realpath(file) or (
            os.path.exists(target) and os.path.exists(file) and os.path.samefile(target, file)
        ):
            what = "the database itself" if not suffix else f"the database's {suffix} file"
            raise CommandError(f"{path} is {what} ({database}); choose another file.")


def refusal(error: DomainError) -> CommandError:
    """The command's refusal for a domain error: ``message (code)``, exit status 1."""
    return CommandError(terminal_safe(f"{error.message} ({error.code})"))


def parse_duration(option: str, text: str) -> timedelta:
    """A positive duration written ``90m``, ``2h`` or ``30d``; a ``CommandError`` naming
    ``option`` and the accepted forms otherwise."""
    match = DURATION_PATTERN.fullmatch(text.strip())
    if match is None or int(match["count"]) == 0:
        raise CommandError(
            f"{option} must be a positive duration like 90m, 2h or 30d (got '{text}')."
        )
    return timedelta(**{DURATION_UNITS[match["unit"]]: int(match["count"])})


def write_json(stdout: OutputWrapper | IO[str], data: Any) -> None:
    """One JSON document (indented, keys in the order given) and a newline; no raw
    character a terminal acts on (``json_terminal_safe``)."""
    stdout.write(json_terminal_safe(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


def _stream(stream: OutputWrapper | IO[str] | None) -> IO[str]:
    """The real stream behind Django's ``OutputWrapper`` (standard error by default)."""
    if stream is None:
        return sys.stderr
    if isinstance(stream, OutputWrapper):
        return stream._out  # type: ignore[return-value]
    return stream


def is_terminal(stream: OutputWrapper | IO[str] | None) -> bool:
    real = _stream(stream)
    try:
        return bool(real.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "row",
    stream: OutputWrapper | IO[str] | None = None,
) -> "tqdm[T]":
    """A tqdm progress bar on ``stream`` (standard error) when it is a terminal, shown
    after ``PROGRESS_DELAY`` seconds; a silent pass-through otherwise.

    Use it around an iterable (``for row in progress(rows, total=n, desc="Export")``)
    or as a context manager that is advanced by hand (``bar.update(n)``).
    """
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=_stream(stream),
        disable=not is_terminal(stream),
        delay=PROGRESS_DELAY,
        leave=False,
        dynamic_ncols=True,
    )
