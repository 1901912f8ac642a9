"""Reading an export document back into the database (see ``operations.transfer``)."""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

import orjson
from django.db import IntegrityError, models, transaction

from agents.models import ParticipantType
from agents.repositories import (
    AgentRepository,
    LogChunkRepository,
)
from core.errors import Conflict, DomainError, InvalidInput
from core.events import event_record
from core.models import (
    generate_id,
)
from core.repositories import (
    InitiativeRepository,
    ProjectRepository,
    Repository,
    find_cycle,
)
from operations.transfer.document import (
    FORMAT,
    LOGS,
    SELF_REFERENCES,
    TABLES,
    VERSION,
    WRITERS,
    Progress,
    reader,
    store,
)

#: Log chunks written per ``restore_chunks`` call.
CHUNK_BATCH = 5000


@dataclass
class ImportResult:
    """What an import wrote."""

    initiative_id: str
    source_initiative_id: str
    as_new: bool
    #: Rows written per table (projects: created ones only).
    counts: dict[str, int]
    #: Projects linked as they were already in the database, by id.
    reused_projects: list[str] = field(default_factory=list)
    #: ``table.column`` -> how many optional references were cleared because the
    #: record they named is in neither the file nor the database (e.g. accounts).
    cleared_references: dict[str, int] = field(default_factory=dict)
    #: Names changed because they were taken (``as_new``): ``table.column`` -> {old: new}.
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Whether log chunks kept their ids (else they were appended under new ones).
    log_chunk_ids_kept: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "initiative_id": self.initiative_id,
            "source_initiative_id": self.source_initiative_id,
            "as_new": self.as_new,
            "counts": self.counts,
            "reused_projects": self.reused_projects,
            "cleared_references": self.cleared_references,
            "renamed": self.renamed,
            "log_chunk_ids_kept": self.log_chunk_ids_kept,
        }


def load_document(data: bytes) -> dict[str, Any]:
    """Parse an export file's bytes; ``import_invalid_document`` when it is not JSON.

    A lone surrogate (``"\\ud800"``), which orjson refuses, is JSON all the same: ``json``
    reads it, and each table's rules decide (a log chunk's content stores it escaped,
    ``core.text.storable_text``; a name refuses it)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        try:
            document = json.loads(data, parse_constant=_not_json)
        except (ValueError, RecursionError):
            raise InvalidInput(
                f"The file is not a JSON document: {error}.",
                code="import_invalid_document",
            ) from error
    return document


def _not_json(constant: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON (orjson refuses them too)."""
    raise ValueError(f"{constant} is not JSON")


def import_initiative(
    document: Any, *, as_new: bool = False, progress: Progress | None = None
) -> ImportResult:
    """Write the records of an export document (see the module docstring), all or
    nothing, and return what was written."""
    tables, source_id = _checked_document(document)
    try:
        with transaction.atomic():
            plan = _Plan(tables, as_new=as_new)
            plan.check_clashes()
            plan.resolve_references()
            plan.check_graphs()
            result = plan.write(progress)
            event_record(
                "initiative.imported",
                subject_type="initiative",
                subject_id=result.initiative_id,
                initiative_id=result.initiative_id,
                data={"source_id": source_id, "as_new": as_new, "counts": result.counts},
            )
    except IntegrityError as error:
        # A reference the checks could not see, refused when the transaction commits.
        raise Conflict(
            f"The database refused the import and nothing was written: {error}.",
            code="import_refused",
        ) from error
    return result


def _checked_document(document: Any) -> tuple[dict[str, list[dict[str, Any]]], str]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(
            f"This is not a cw initiative export (its format is not '{FORMAT}').",
            code="import_invalid_document",
        )
    version = document.get("version")
    if type(version) is not int or version < 1:
        raise InvalidInput(
            "The export names no format version (a whole number from 1).",
            code="import_invalid_document",
        )
    if version > VERSION:
        raise InvalidInput(
            f"This file is in export format version {version}, written by a newer cw; "
            f"this cw reads versions 1 to {VERSION}. Upgrade cw to import it.",
            code="import_version_unsupported",
            details={"version": version, "supported": VERSION},
        )
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise _invalid("it has no tables")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise _invalid(f"unknown tables {', '.join(unknown)}")
    for table, rows in tables.items():
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise _invalid(f"the {table} table is not a list of rows")
        columns = {f.attname for f in TABLES[table]._meta.concrete_fields}
        for index, row in enumerate(rows):
            extra = sorted(set(row) - columns)
            if extra or "id" not in row:
                problem = f"has unknown columns {', '.join(extra)}" if extra else "has no id"
                raise _invalid(f"row {index} of {table} {problem}")
    counts = document.get("counts")
    if isinstance(counts, dict):
        for table in TABLES:
            if table in counts and counts[table] != len(tables.get(table, [])):
                raise _invalid(
                    f"its header counts {counts[table]} {table} but the file holds "
                    f"{len(tables.get(table, []))} (is it truncated or edited?)"
                )
    initiatives = tables.get("initiatives", [])
    source_id = document.get("initiative_id")
    if len(initiatives) != 1 or initiatives[0].get("id") != source_id:
        raise _invalid("it must hold exactly the one initiative its header names")
    full = {table: list(tables.get(table, [])) for table in TABLES}
    for table, rows in full.items():
        ids = [row["id"] for row in rows]
        if len(set(map(str, ids))) != len(ids):
            raise _invalid(f"the {table} table holds an id twice")
    return full, source_id


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(
        f"The export cannot be imported: {problem}.", code="import_invalid_document"
    )


class _Plan:
    """One import: the document's rows, the ids they get, and the checks before writing."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]], *, as_new: bool) -> None:
        self.tables = {table: [dict(row) for row in rows] for table, rows in tables.items()}
        self.as_new = as_new
        self.total = sum(len(rows) for rows in tables.values())
        self.result = ImportResult(
            initiative_id="",
            source_initiative_id=tables["initiatives"][0]["id"],
            as_new=as_new,
            counts={},
        )
        #: Old id -> new id of every text-id record in the file (shortuuids are unique
        #: across tables, so one map serves every reference).
        self.ids: dict[str, str] = {}
        self._match_projects()
        for table, rows in self.tables.items():
            if table in (LOGS, "projects"):
                continue
            for row in rows:
                self.ids[row["id"]] = generate_id() if as_new else row["id"]
        self.result.initiative_id = self.ids[self.result.source_initiative_id]
        #: New id -> the file's id, to name a refused row as the file does.
        self.file_ids = {new: old for old, new in self.ids.items()}

    def _match_projects(self) -> None:
        """Link projects the database has (by id, else by URL); create the others."""
        projects = self.tables["projects"]
        repo = ProjectRepository()
        by_id = repo.existing_ids(row["id"] for row in projects)
        urls = {row.get("url") for row in projects if row["id"] not in by_id}
        by_url = dict(repo.queryset().filter(url__in=urls).values_list("url", "pk"))
        created = []
        for row in projects:
            if row["id"] in by_id:
                self.ids[row["id"]] = row["id"]
            elif row.get("url") in by_url:
                self.ids[row["id"]] = by_url[row["url"]]
            else:
                self.ids[row["id"]] = generate_id() if self.as_new else row["id"]
                created.append(row)
                continue
            self.result.reused_projects.append(self.ids[row["id"]])
        self.tables["projects"] = created

    def check_clashes(self) -> None:
        """Refuse ids and unique names that are taken (``as_new``: rename the names)."""
        clashes: dict[str, list[str]] = {}
        if not self.as_new:
            for table, rows in self.tables.items():
                if table != LOGS and rows:
                    taken = store(table).existing_ids(row["id"] for row in rows)
                    if taken:
                        clashes[table] = sorted(taken)
        names: list[tuple[str, str, Repository[Any], int]] = [
            ("agents", "name", AgentRepository(), 100),
            ("initiatives", "branch", InitiativeRepository(), 255),
        ]
        for table, column, repo, most in names:
            wanted = {row[column]: row for row in self.tables[table] if row.get(column)}
            taken = set(
                repo.queryset()
                .filter(**{f"{column}__in": list(wanted)})
                .exclude(pk__in=[self.ids[row["id"]] for row in wanted.values()])
                .values_list(column, flat=True)
            )
            if not taken:
                continue
            if not self.as_new:
                clashes[f"{table}.{column}"] = sorted(taken)
                continue
            renamed = self.result.renamed.setdefault(f"{table}.{column}", {})
            for name in sorted(taken):
                renamed[name] = wanted[name][column] = _free_name(
                    repo, column, name, most, set(wanted)
                )
        if clashes:
            listed = ", ".join(f"{len(values)} in {key}" for key, values in clashes.items())
            count = sum(len(values) for values in clashes.values())
            raise Conflict(
                f"{count} of the file's ids or names already exist ({listed}). Import it "
                "under fresh ids with --as-new, or into another database.",
                code="import_clash",
                details={"clashes": clashes},
            )
        for row in self.tables[LOGS]:
            agent = self.ids.get(row.get("agent_id"))  # type: ignore[arg-type]
            renamed_agents = self.result.renamed.get("agents.name", {})
            if agent is not None and row.get("agent_name") in renamed_agents:
                row["agent_name"] = renamed_agents[row["agent_name"]]

    def resolve_references(self) -> None:
        """Point every reference at its record's new id; clear an optional one naming a
        record in neither the file nor the database; refuse a required one."""
        for table, rows in self.tables.items():
            model = TABLES[table]
            foreign = [f for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey)]
            for f in foreign:
                target = f.related_model._meta.db_table  # type: ignore[union-attr]
                outside = {
                    row[f.attname]
                    for row in rows
                    if row.get(f.attname) is not None and row[f.attname] not in self.ids
                }
                known = reader(target).existing_ids(outside)
                for row in rows:
                    value = row.get(f.attname)
                    if value is None:
                        continue
                    if value in self.ids:
                        row[f.attname] = self.ids[value]
                    elif value not in known:
                        if not f.null:
                            raise InvalidInput(
                                f"The export cannot be imported: {table} '{row['id']}' "
                                f"refers to {target} '{value}', which is in neither the file "
                                "nor the database.",
                                code="import_missing_reference",
                                details={"table": table, "id": row["id"], "column": f.attname},
                            )
                        row[f.attname] = None
                        key = f"{table}.{f.attname}"
                        self.result.cleared_references[key] = (
                            self.result.cleared_references.get(key, 0) + 1
                        )
            for row in rows:
                self._soft_references(table, row)
                if table != LOGS:
                    row["id"] = self.ids[row["id"]]

    def _soft_references(self, table: str, row: dict[str, Any]) -> None:
        """References held as plain text columns (no foreign key) follow their record."""
        ids = self.ids
        if table in ("proposals", "chat_sessions") and row.get("target_id") in ids:
            row["target_id"] = ids[row["target_id"]]
        elif table == "messages":
            for side in ("sender", "recipient"):
                if (
                    row.get(f"{side}_type") == ParticipantType.AGENT
                    and row.get(f"{side}_id") in ids
                ):
                    row[f"{side}_id"] = ids[row[f"{side}_id"]]
        elif table == LOGS and row.get("agent_id") in ids:
            row["agent_id"] = ids[row["agent_id"]]
        elif table == "change_set_entries":
            if row.get("entity_id") in ids:
                row["entity_id"] = ids[row["entity_id"]]
            for side in ("before", "after"):
                values = row.get(side)
                if isinstance(values, dict):
                    row[side] = {
                        key: ids.get(value, value)
                        if (key == "id" or key.endswith("_id")) and isinstance(value, str)
                        else value
                        for key, value in values.items()
                    }

    def check_graphs(self) -> None:
        """Refuse a parent chain that loops; order each tree's rows parents first."""
        for table, column in SELF_REFERENCES.items():
            rows = self.tables[table]
            by_id = {row["id"]: row for row in rows}
            graph = {row["id"]: [row[column]] if row.get(column) in by_id else [] for row in rows}
            try:
                order = list(TopologicalSorter(graph).static_order())
            except CycleError as error:
                raise _invalid(
                    f"the {column} of {table} loops ({' -> '.join(error.args[1])})"
                ) from error
            self.tables[table] = [by_id[id] for id in order]
        for table, src, dst in (
            ("phase_dependencies", "phase_id", "depends_on_phase_id"),
            ("task_dependencies", "task_id", "depends_on_task_id"),
        ):
            cycle = find_cycle((row[src], row[dst]) for row in self.tables[table])
            if cycle:
                raise _invalid(f"its {table} close a cycle ({' -> '.join(cycle)})")

    def write(self, progress: Progress | None) -> ImportResult:
        counts = self.result.counts
        for table, rows in self.tables.items():
            if table == LOGS:
                counts[table] = self._write_logs(rows, progress)
                continue
            try:
                counts[table] = WRITERS[table](rows)
            except DomainError as error:
                raise _in_table(table, rows, error, self.file_ids) from error
            if progress is not None:
                progress(table, len(rows), self.total)
        return self.result

    def _write_logs(self, rows: list[dict[str, Any]], progress: Progress | None) -> int:
        logs = LogChunkRepository()
        ids = [row["id"] for row in rows]
        keep = not self.as_new and not logs.existing_ids(ids)
        self.result.log_chunk_ids_kept = keep or not rows
        for start in range(0, len(rows), CHUNK_BATCH):
            batch = rows[start : start + CHUNK_BATCH]
            try:
                logs.restore_chunks(batch, keep_ids=keep)
            except DomainError as error:
                if isinstance(error.details, dict) and "index" in error.details:
                    error.details = {**error.details, "index": start + error.details["index"]}
                raise _in_table(LOGS, rows, error, {}) from error
            if progress is not None:
                progress(LOGS, len(batch), self.total)
        return len(rows)


def _in_table(
    table: str, rows: Sequence[dict[str, Any]], error: DomainError, file_ids: dict[Any, Any]
) -> DomainError:
    """The refusal of a row, naming its table and its id in the file (``file_ids`` maps
    the ids rows were given back to the file's)."""
    details = error.details if isinstance(error.details, dict) else {}
    index = details.pop("index", None)
    where = table
    if isinstance(index, int) and 0 <= index < len(rows):
        id = rows[index]["id"]
        id = file_ids.get(id, id)
        where = f"{table} '{id}'"
        details["id"] = id
    error.message = f"{where}: {error.message}"
    error.details = {**details, "table": table}
    return error


def _free_name(repo: Repository[Any], column: str, name: str, most: int, wanted: set[str]) -> str:
    """``name-2``, ``name-3``… : the first that neither the database nor the file holds."""
    stem = re.sub(r"-\d+$", "", name)
    for n in range(2, 10_000):
        suffix = f"-{n}"
        candidate = stem[: most - len(suffix)] + suffix
        if candidate not in wanted and not repo.queryset().filter(**{column: candidate}).exists():
            return candidate
    raise Conflict(f"No free name like '{name}' is left.", code="import_clash")
