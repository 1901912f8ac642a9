"""Writing an initiative's export document (see ``operations.transfer``)."""

from collections.abc import Iterator
from typing import IO, Any

import orjson
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import ParticipantType
from agents.repositories import (
    LogChunkRepository,
)
from core.repositories import (
    InitiativeRepository,
)
from core.repositories.pagination import MAX_KEYSET_PAGE_SIZE
from operations.transfer.document import FORMAT, LOGS, TABLES, VERSION, Progress, store


def export_initiative(
    initiative_id: str,
    out: IO[bytes],
    *,
    with_logs: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write the initiative's document to ``out`` (see the module docstring), streamed
    table by table and row by row (log chunks a page at a time, never all in memory).
    Returns the rows written per table. Refuses an unknown initiative
    (``initiative_not_found``)."""
    InitiativeRepository().require(initiative_id)
    selection = _Selection(initiative_id, with_logs=with_logs)
    counts = selection.counts()
    total = sum(counts.values())
    header = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now(),
        "initiative_id": initiative_id,
        "with_logs": with_logs,
        "counts": counts,
    }
    out.write(orjson.dumps(header, option=orjson.OPT_UTC_Z)[:-1] + b', "tables": {')
    for position, table in enumerate(TABLES):
        out.write(b"%s\n%s: [" % (b"," if position else b"", orjson.dumps(table)))
        first = True
        for row in selection.rows(table):
            out.write(b"\n" if first else b",\n")
            out.write(orjson.dumps(row, option=orjson.OPT_UTC_Z))
            first = False
            if progress is not None:
                progress(table, 1, total)
        out.write(b"]")
    out.write(b"\n}}\n")
    return counts


class _Selection:
    """Which rows of each table belong to one initiative's document."""

    def __init__(self, initiative_id: str, *, with_logs: bool) -> None:
        self.initiative_id = initiative_id
        self.with_logs = with_logs
        own = Q(initiative_id=initiative_id)
        phases = _column("phases", own)
        tasks = _column("tasks", own | Q(phase_id__in=phases))
        self.where: dict[str, Q] = {
            "initiatives": Q(pk=initiative_id),
            "phases": Q(initiative_id=initiative_id),
            "phase_dependencies": Q(phase_id__in=phases),
            "tasks": Q(pk__in=tasks),
            "task_dependencies": Q(task_id__in=tasks),
            "pages": Q(initiative_id=initiative_id),
            "initiative_projects": Q(initiative_id=initiative_id),
            "projects": Q(pk__in=_column("initiative_projects", own, "project_id")),
            "proposals": Q(initiative_id=initiative_id),
            "review_comments": Q(phase_id__in=phases),
            "conversations": Q(initiative_id=initiative_id)
            | Q(phase_id__in=phases)
            | Q(task_id__in=tasks),
            "chat_sessions": Q(initiative_id=initiative_id),
            "chat_messages": Q(chat_session_id__in=_column("chat_sessions", own)),
            "change_sets": Q(initiative_id=initiative_id),
            "change_set_entries": Q(change_set_id__in=_column("change_sets", own)),
        }
        self.agent_ids = self._agent_ids(tasks)
        self.where["agents"] = Q(pk__in=self.agent_ids)
        self.where["messages"] = Q(
            sender_type=ParticipantType.AGENT, sender_id__in=self.agent_ids
        ) | Q(recipient_type=ParticipantType.AGENT, recipient_id__in=self.agent_ids)
        self.where[LOGS] = Q(agent_id__in=self.agent_ids) if with_logs else Q(pk__in=[])

    def _agent_ids(self, tasks: models.QuerySet) -> list[str]:
        """The initiative's agents, its tasks' agents, and every agent a proposal, a
        conversation or a chat session of the initiative names (a required reference
        must travel with the record)."""
        ids = set(
            store("agents")
            .queryset()
            .filter(Q(initiative_id=self.initiative_id) | Q(task_id__in=tasks))
            .values_list("pk", flat=True)
        )
        named = [
            ("proposals", ("agent_id",)),
            ("conversations", ("from_agent_id", "to_agent_id")),
            ("chat_sessions", ("agent_id",)),
        ]
        for table, columns in named:
            for values in store(table).queryset().filter(self.where[table]).values_list(*columns):
                ids.update(value for value in values if value is not None)
        return sorted(ids)

    def counts(self) -> dict[str, int]:
        return {
            table: store(table).queryset().filter(self.where[table]).count() for table in TABLES
        }

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        if table == LOGS:
            yield from self._log_rows()
            return
        columns = [f.attname for f in TABLES[table]._meta.concrete_fields]
        yield from (
            store(table)
            .queryset()
            .filter(self.where[table])
            .order_by("pk")
            .values(*columns)
            .iterator(chunk_size=2000)
        )

    def _log_rows(self) -> Iterator[dict[str, Any]]:
        if not self.with_logs:
            return
        logs = LogChunkRepository()
        for agent_id in self.agent_ids:
            after = 0
            while page := logs.find_by_agent_id(agent_id, after=after, limit=MAX_KEYSET_PAGE_SIZE):
                for chunk in page:
                    yield chunk._asdict()
                after = page[-1].id


def _column(table: str, where: Q, column: str = "pk") -> models.QuerySet:
    """A subquery: ``column`` of the rows of ``table`` matching ``where``, read through the
    table's repository."""
    return store(table).queryset().filter(where).values(column)
