"""Read, export and prune agents' logs (their output, JSON Lines and plain lines, stored
as log chunks).

    manage.py cw_logs tail brave-otter                 # the last 20 records, readable
    manage.py cw_logs tail brave-otter -n 100 --raw    # the last 100 lines as stored
    manage.py cw_logs tail <agent id> -f               # then follow, until Ctrl-C
    manage.py cw_logs tail brave-otter -f --interval 0.5 --timeout 60
    manage.py cw_logs export brave-otter > brave-otter.ndjson
    manage.py cw_logs export brave-otter --after-id 12345 | gzip > rest.ndjson.gz
    manage.py cw_logs prune --older-than 30d --dry-run  # what would go, removing nothing
    manage.py cw_logs prune --older-than 30d [--agent brave-otter] [--json]

AGENT is an agent's id or its name (names are unique). A chunk holds one or more lines
(JSON Lines records, or plain text the agent printed); ``tail`` counts and prints
records, ``export`` writes chunks.

``tail`` prints each record behind the time of its chunk (``HH:MM:SS``, in the
project's time zone), with Claude Code's ``stream-json`` records made readable: a
session's start, the assistant's text, ``→ Tool: input`` for a tool call,
``← result (n lines)`` for its result, and the run's end with its duration and cost.
A line that is not JSON (``Error: rate limit reached``) is printed as it is, plain, like
any other record this does not know; ``--raw`` prints
every line as stored. Colour only when standard output is a terminal (and never with
``--no-color``).

``export`` writes NDJSON to standard output, one object per chunk in id (write) order:
``{"id", "agent_id", "agent_name", "session_number", "created_at", "content"}``, with
``created_at`` in ISO 8601 and ``content`` the chunk's text exactly as stored
(so an export loses nothing). It reads one page of chunks at a time: memory stays flat
however long the log.

``prune`` deletes the chunks written more than ``--older-than`` ago (of every agent's
log, or one agent's), in short batches that are each committed on their own, and prints
per agent how many it removed (or, with ``--dry-run``, would remove) and the total.

Reads and deletes go through ``LogChunkRepository`` and the ``agents.services`` log
functions. A refusal exits with status 1 and one line on standard error: the reason and
its code.
"""

import argparse
import time
from datetime import datetime
from typing import Any

import orjson
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.utils import timezone

from agents.logformat import LogRecord, describe, parse_line, record_lines
from agents.models import Agent
from agents.repositories import AgentLogCount, AgentRepository, LogChunkRepository, LogChunkRow
from agents.services import agent_log_iter, agent_log_prune
from core.errors import DomainError
from core.management.commandline import (
    CwCommand,
    is_terminal,
    parse_duration,
    progress,
    refusal,
    write_json,
)
from core.repositories import MAX_KEYSET_PAGE_SIZE
from core.text import json_terminal_safe, terminal_safe

agents = AgentRepository()
logs = LogChunkRepository()

#: Records ``tail`` prints before it follows, unless ``-n`` says otherwise.
DEFAULT_TAIL_RECORDS = 20
#: Seconds between two reads of new chunks while following.
DEFAULT_INTERVAL = 1.0
#: The width of ``HH:MM:SS `` (continuation lines are indented by as much).
TIME_WIDTH = 9


def positive_int(text: str) -> int:
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 (got '{text}')")
    return value


def non_negative_int(text: str) -> int:
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 (got '{text}')")
    return value


def positive_seconds(text: str) -> float:
    value = _number(float, text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got '{text}')")
    return value


def _number(kind: type, text: str) -> Any:
    """``text`` as an ``int`` or a ``float``; argparse's error naming the option else."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got '{text}')") from None


# --- records ---------------------------------------------------------------------------

#: How ``tail`` styles each kind of record (``agents.logformat``'s kinds).
TERMINAL_KINDS = {
    "system": "session",
    "assistant_text": "text",
    "tool_call": "tool",
    "tool_result": "result",
    "error": "error",
    "text": "output",
    "other": "raw",
}


def describe_record(line: str) -> list[tuple[str, str]]:
    """A record made readable (``agents.logformat``): ``(kind, text)`` pairs, one a line
    to print, where kind is ``session``, ``text``, ``tool``, ``result``, ``done``,
    ``error``, ``output`` (a line that is not JSON, as it is) or ``raw`` (a record this
    does not know, as it is)."""
    return [(_terminal_kind(record), describe(record)) for record in parse_line(line)]


def _terminal_kind(record: LogRecord) -> str:
    if record["kind"] == "result":
        return "error" if record.get("is_error") else "done"
    return TERMINAL_KINDS[record["kind"]]


# --- the command -----------------------------------------------------------------------


class Command(CwCommand):
    help = (
        "Read, export and prune agents' logs: tail (and follow) an agent's log, export "
        "it as NDJSON, prune chunks older than a duration."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{tail,export,prune}")

        tail = actions.add_parser(
            "tail",
            help="Print the last records of an agent's log; -f follows new ones.",
            description=(
                "Print the last records of an agent's log, readable (Claude Code's "
                "stream-json made into lines) or as stored (--raw); with -f, keep "
                "printing new records as they arrive until Ctrl-C (or --timeout)."
            ),
        )
        tail.add_argument("agent", metavar="AGENT", help="The agent's id or name.")
        tail.add_argument(
            "-n",
            "--lines",
            type=non_negative_int,
            default=DEFAULT_TAIL_RECORDS,
            metavar="N",
            help=f"How many records to print (default {DEFAULT_TAIL_RECORDS}; 0 for none).",
        )
        tail.add_argument(
            "-f",
            "--follow",
            action="store_true",
            help="Keep printing new records as they are written, until Ctrl-C (exit 0).",
        )
        tail.add_argument(
            "--interval",
            type=positive_seconds,
            default=DEFAULT_INTERVAL,
            metavar="SECONDS",
            help=f"With -f: seconds between two reads of new chunks (default {DEFAULT_INTERVAL}).",
        )
        tail.add_argument(
            "--timeout",
            type=positive_seconds,
            metavar="SECONDS",
            help="With -f: stop following after this many seconds (exit 0); for scripts.",
        )
        tail.add_argument(
            "--raw",
            action="store_true",
            help="Print the lines as stored: no time, nothing made readable.",
        )

        export = actions.add_parser(
            "export",
            help="Write an agent's whole log to standard output as NDJSON.",
            description=(
                "Write an agent's log to standard output as NDJSON, one object per chunk "
                "in write order: id, agent_id, agent_name, session_number, created_at "
                "(ISO 8601) and content (the chunk's text as stored). Streamed a "
                "page at a time; a progress bar on standard error when it is a terminal."
            ),
        )
        export.add_argument("agent", metavar="AGENT", help="The agent's id or name.")
        export.add_argument(
            "--after-id",
            type=non_negative_int,
            metavar="ID",
            help="Only the chunks with an id above this one (resume an earlier export).",
        )
        export.add_argument(
            "--page-size",
            type=positive_int,
            metavar="N",
            help=f"Chunks read per query (1 to {MAX_KEYSET_PAGE_SIZE}; default 1000).",
        )

        prune = actions.add_parser(
            "prune",
            help="Delete log chunks older than a duration (--dry-run to only count them).",
            description=(
                "Delete the log chunks written more than --older-than ago, of every "
                "agent's log or of --agent's, in short batches; print per agent how many "
                "were removed (or would be, with --dry-run) and the total."
            ),
        )
        prune.add_argument(
            "--older-than",
            required=True,
            metavar="DURATION",
            help="Remove chunks written longer ago than this: 90m, 12h, 30d.",
        )
        prune.add_argument(
            "--agent", metavar="AGENT", help="Only this agent's log (its id or name)."
        )
        prune.add_argument(
            "--dry-run",
            action="store_true",
            help="Remove nothing; print what would be removed (the same report).",
        )
        prune.add_argument(
            "--json",
            action="store_true",
            help=(
                "Print one JSON document: older_than, before, dry_run, agents "
                "([{agent_id, agent_name, chunks}]) and total."
            ),
        )

    def handle(self, *args, **options):
        if not options.get("force_color") and not is_terminal(self.stdout):
            self.style = no_style()
        handlers = {"tail": self.tail, "export": self.export, "prune": self.prune}
        try:
            handlers[options["action"]](options)
        except DomainError as error:
            raise refusal(error) from error

    # --- subcommands -------------------------------------------------------------------

    def tail(self, options: dict[str, Any]) -> None:
        """The last ``--lines`` records, then (``-f``) every new one until interrupted."""
        if options["timeout"] is not None and not options["follow"]:
            raise CommandError("--timeout applies only with -f/--follow.")
        agent = resolve_agent(options["agent"])
        last_id, records = self._last_records(agent.pk, options["lines"])
        for row, record in records:
            self._print_record(row, record, raw=options["raw"])
        self.stdout.flush()
        if options["follow"]:
            try:
                self._follow(agent.pk, last_id, options)
            except KeyboardInterrupt:
                return

    def export(self, options: dict[str, Any]) -> None:
        """The log as NDJSON on standard output, one page of chunks at a time."""
        agent = resolve_agent(options["agent"])
        chunks = agent_log_iter(
            agent_id=agent.pk, page_size=options["page_size"], after=options["after_id"]
        )
        for row in progress(chunks, desc="Export", unit="chunk", stream=self.stderr):
            self.stdout.write(export_line(row))
        self.stdout.flush()

    def prune(self, options: dict[str, Any]) -> None:
        """Delete (or count) the chunks older than ``--older-than``; report per agent."""
        age = parse_duration("--older-than", options["older_than"])
        agent_id = resolve_agent(options["agent"]).pk if options["agent"] else None
        before = timezone.now() - age
        with progress(desc="Prune", unit="chunk", stream=self.stderr) as bar:
            pruned = agent_log_prune(
                older_than=before,
                agent_id=agent_id,
                dry_run=options["dry_run"],
                on_batch=bar.update,
            )
        total = sum(count.chunks for count in pruned)
        if options["json"]:
            write_json(
                self.stdout,
                {
                    "older_than": options["older_than"],
                    "before": before.isoformat(),
                    "dry_run": options["dry_run"],
                    "agents": [count._asdict() for count in pruned],
                    "total": total,
                },
            )
            return
        self._report_prune(pruned, total, options["older_than"], before, options["dry_run"])

    # --- output ------------------------------------------------------------------------

    def _last_records(
        self, agent_id: str, wanted: int
    ) -> tuple[int, list[tuple[LogChunkRow, str]]]:
        """The id of the log's last chunk (0 when it has none) and its last ``wanted``
        records with their chunks, oldest first. Every chunk holds at least one record,
        so it reads ``wanted`` chunks at most, a page at a time from the end."""
        pages: list[list[LogChunkRow]] = []
        found, before = 0, None
        while True:
            limit = max(1, min(wanted - found, MAX_KEYSET_PAGE_SIZE))
            page = logs.find_last_by_agent_id(agent_id, before=before, limit=limit)
            if page:
                pages.append(page)
                found += sum(len(record_lines(row.content)) for row in page)
            if len(page) < limit or found >= wanted:
                break
            before = page[0].id
        last_id = pages[0][-1].id if pages else 0
        rows = [row for page in reversed(pages) for row in page]
        records = [(row, record) for row in rows for record in record_lines(row.content)]
        return last_id, records[len(records) - wanted :] if wanted else []

    def _follow(self, agent_id: str, last_id: int, options: dict[str, Any]) -> None:
        """Read the chunks after ``last_id`` every ``--interval`` seconds and print their
        records, until interrupted or ``--timeout`` has passed (then one last read)."""
        interval, timeout = options["interval"], options["timeout"]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = interval
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                wait = min(interval, remaining)
            time.sleep(wait)
            for row in agent_log_iter(agent_id=agent_id, after=last_id):
                for record in record_lines(row.content):
                    self._print_record(row, record, raw=options["raw"])
                last_id = row.id
            self.stdout.flush()

    def _print_record(self, row: LogChunkRow, record: str, *, raw: bool) -> None:
        if raw:
            self.stdout.write(terminal_safe(record))
            return
        stamp = self.style.SQL_FIELD(timezone.localtime(row.created_at).strftime("%H:%M:%S"))
        for kind, text in describe_record(record):
            first, *rest = [terminal_safe(line, lines=True) for line in text.splitlines()] or [""]
            self.stdout.write(f"{stamp} {self._styled(kind, first)}")
            for line in rest:
                self.stdout.write(" " * TIME_WIDTH + self._styled(kind, line))

    def _styled(self, kind: str, text: str) -> str:
        style = {
            "session": self.style.MIGRATE_HEADING,
            "tool": self.style.SQL_KEYWORD,
            "result": self.style.HTTP_INFO,
            "done": self.style.SUCCESS,
            "error": self.style.ERROR,
        }.get(kind)
        return style(text) if style is not None else text

    def _report_prune(
        self,
        pruned: list[AgentLogCount],
        total: int,
        older_than: str,
        before: datetime,
        dry_run: bool,
    ) -> None:
        verb = "would remove" if dry_run else "removed"
        when = f"older than {older_than} (written before {before.isoformat(timespec='seconds')})"
        if not pruned:
            self.stdout.write(f"No chunks {when}.")
            return
        for count in pruned:
            self.stdout.write(
                terminal_safe(f"{count.agent_name} ({count.agent_id}): ")
                + f"{verb} {_chunks(count.chunks)}"
            )
        line = f"Total: {verb} {_chunks(total)} {when}."
        self.stdout.write(line if dry_run else self.style.SUCCESS(line))


def resolve_agent(text: str) -> Agent:
    """The agent ``text`` names by id or, failing that, by name; ``agent_not_found``."""
    agent = agents.find_by_id(text) or agents.find_by_name(text)
    if agent is None:
        raise agents.not_found(text)
    return agent


def export_line(row: LogChunkRow) -> str:
    """A chunk as one NDJSON line (``write`` adds the newline), the same JSON with no raw
    character a terminal acts on (``json_terminal_safe``)."""
    return json_terminal_safe(
        orjson.dumps(
            {
                "id": row.id,
                "agent_id": row.agent_id,
                "agent_name": row.agent_name,
                "session_number": row.session_number,
                "created_at": row.created_at.isoformat(),
                "content": row.content,
            }
        ).decode()
    )


def _chunks(count: int) -> str:
    return f"{count:,} chunk" + ("" if count == 1 else "s")
