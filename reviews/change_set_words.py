"""What a change set did, in words a person reads: one line per record it touched.

"Added the task 'Write the migration'", "Changed the phase 'Build': name, content",
"Added a dependency: the task 'Deploy' now waits for 'Migrate'", "Deleted the page
'Notes'". Each line names the record it is about (``model`` and ``record_id``) while
that record still exists, so a page can link to it. Names come from the values the
change set recorded; the records an edge links are read in one query per table.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import models

from core.services.feed import changed_columns
from reviews.models import ChangeAction, ChangeSetEntry
from reviews.services.change_sets import REGISTRY, DependencyTable

_VERBS: dict[str, str] = {
    ChangeAction.CREATE: "Added",
    ChangeAction.UPDATE: "Changed",
    ChangeAction.DELETE: "Deleted",
}


@dataclass(frozen=True)
class EntryLine:
    """One record a change set touched, said in words; ``model``/``record_id`` name the
    record while it exists (None once it is gone)."""

    text: str
    model: type[models.Model] | None = None
    record_id: str | None = None


def _name(values: dict[str, Any] | None) -> str:
    values = values or {}
    return str(values.get("name") or values.get("title") or values.get("id") or "?")


def _changed(entry: ChangeSetEntry) -> list[str]:
    """The fields an update changed, in words (``parent_page_id`` → "parent page")."""
    return [
        column.removesuffix("_id").replace("_", " ")
        for column in changed_columns(entry.before or {}, entry.after or {})
    ]


def describe_entries(entries: list[ChangeSetEntry]) -> list[EntryLine]:
    """A line per entry, in the order the change set made them."""
    edges: dict[DependencyTable, set[str]] = defaultdict(set)
    records: dict[Any, set[str]] = defaultdict(set)
    for entry in entries:
        table = REGISTRY.get(entry.entity_type)
        if isinstance(table, DependencyTable):
            values = entry.after if entry.action == ChangeAction.CREATE else entry.before
            edges[table] |= {str(v) for v in (values or {}).values() if isinstance(v, str)}
        elif table is not None:
            records[table].add(entry.entity_id)
    names: dict[type[models.Model], dict[str, str]] = defaultdict(dict)
    for table, ids in edges.items():
        found = table.repository.find_by_ids(sorted(ids))
        names[table.repository.model].update({str(r.pk): str(r) for r in found})
    existing = {
        table.model: {str(r.pk) for r in table.repository.find_by_ids(sorted(ids))}
        for table, ids in records.items()
    }
    return [_line(entry, names, existing) for entry in entries]


def _line(
    entry: ChangeSetEntry,
    names: dict[type[models.Model], dict[str, str]],
    existing: dict[type[models.Model], set[str]],
) -> EntryLine:
    table = REGISTRY.get(entry.entity_type)
    verb = _VERBS.get(entry.action, entry.action)
    if table is None:
        return EntryLine(f"{verb} a row of {entry.entity_type}")
    if isinstance(table, DependencyTable):
        return _edge_line(entry, table, names)
    thing = table.model._meta.verbose_name
    values = entry.before if entry.action == ChangeAction.DELETE else entry.after
    text = f"{verb} the {thing} '{_name(values)}'"
    if entry.action == ChangeAction.UPDATE:
        changed = _changed(entry)
        text += f": {', '.join(changed)}" if changed else " (no field changed)"
    alive = entry.entity_id in existing.get(table.model, set())
    return EntryLine(text, table.model if alive else None, entry.entity_id if alive else None)


def _edge_line(
    entry: ChangeSetEntry, table: DependencyTable, names: dict[type[models.Model], dict[str, str]]
) -> EntryLine:
    node_model = table.repository.model
    thing = node_model._meta.verbose_name
    values = (entry.after if entry.action == ChangeAction.CREATE else entry.before) or {}
    columns = [c for c in values if c.endswith("_id") and c != "id"]
    node_column = next((c for c in columns if not c.startswith("depends_on")), None)
    target_column = next((c for c in columns if c.startswith("depends_on")), None)
    known = names.get(node_model, {})
    node = known.get(str(values.get(node_column)), str(values.get(node_column)))
    target = known.get(str(values.get(target_column)), str(values.get(target_column)))
    if entry.action == ChangeAction.CREATE:
        return EntryLine(f"Added a dependency: the {thing} '{node}' now waits for '{target}'")
    return EntryLine(f"Removed a dependency: the {thing} '{node}' no longer waits for '{target}'")
