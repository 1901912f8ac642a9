"""What the feed says when a record is created, changed or deleted: one ``RecordFeed``
per table, used by the plan services and by change sets (an accepted proposal, a chat
edit, a revert: ``reviews.services.change_sets.change_set_events``) alike, so an event
has the same ``data`` whichever way the change came.

A feed works on a record's column values (``snapshot``), before and after: the events
are worked out (``PendingEvent``) before a delete takes the record (and what goes with
it) away, and recorded (``record_all``) after the writes, in the same transaction, as
every service records its events. An update that changes nothing records nothing.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import models

from core.events import event_record
from core.models import Initiative, Page, Phase, Project, Task
from core.repositories import (
    DependencyRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    Repository,
    TaskRepository,
)

#: A record's columns by column name, JSON-safe (``snapshot``).
Values = Mapping[str, Any]

#: Columns every write moves, which say nothing about what changed.
BOOKKEEPING = frozenset({"updated_at"})


def snapshot(record: models.Model) -> dict[str, Any]:
    """Every column of ``record`` by column name, as JSON-safe values."""
    values: dict[str, Any] = {}
    for model_field in record._meta.concrete_fields:
        value = getattr(record, model_field.attname)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        values[model_field.column] = value
    return values


def changed_columns(before: Values, after: Values) -> list[str]:
    """The columns whose values differ, in the table's order (``updated_at`` aside)."""
    return [
        name
        for name, value in after.items()
        if name not in BOOKKEEPING and (name not in before or before[name] != value)
    ]


def _field(model: type[models.Model], name: str) -> models.Field | None:
    """The concrete field called ``name``, by name or attribute name (``phase_id``)."""
    for model_field in model._meta.concrete_fields:
        if name in (model_field.name, model_field.attname):
            return model_field
    return None


def unchanged(record: models.Model, changes: Mapping[str, Any]) -> bool:
    """Whether setting ``changes`` (by field name, or a relation's ``<name>_id``) would
    leave every column of ``record`` as it is."""
    for name, value in changes.items():
        model_field = _field(type(record), name)
        if model_field is None:
            return False
        if model_field.is_relation and isinstance(value, models.Model):
            value = value.pk
        if getattr(record, model_field.attname) != value:
            return False
    return True


M = TypeVar("M", bound=models.Model)


def apply_update(
    feed: "RecordFeed",
    repository: Repository[Any],
    record: M,
    changes: Mapping[str, Any],
) -> M:
    """Update ``record`` (locked by the caller) through ``repository.update`` and
    record what changed (``feed.updated``). An update that would change nothing is not
    written (``updated_at`` stays) and records nothing; a field no update may set is
    refused all the same."""
    repository.check_update_fields(changes)
    if unchanged(record, changes):
        return record
    before = snapshot(record)
    repository.update(record, **changes)  # type: ignore[attr-defined]
    record_all(feed.updated(before, snapshot(record)))
    return record


@dataclass(frozen=True)
class PendingEvent:
    """An event worked out and not yet recorded (``record_all`` records it)."""

    kind: str
    subject_type: str
    subject_id: str
    initiative_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def record(self) -> None:
        event_record(
            self.kind,
            subject_type=self.subject_type,
            subject_id=self.subject_id,
            initiative_id=self.initiative_id,
            data=self.data,
        )


def record_all(events: Iterable[PendingEvent]) -> None:
    """Record ``events`` in order, in the caller's transaction."""
    for event in events:
        event.record()


@dataclass(frozen=True)
class Split:
    """Columns whose change is an event of its own kind rather than part of
    ``<subject>.updated`` (a page's place in the tree, an initiative's mode)."""

    columns: frozenset[str]
    #: The kind, or how to tell it from the values before and after.
    kind: str | Callable[[Values, Values], str]
    data: Callable[[Values, Values], dict[str, Any]]

    def kind_of(self, before: Values, after: Values) -> str:
        return self.kind if isinstance(self.kind, str) else self.kind(before, after)


def _none(values: Values) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class RecordFeed:
    """The events of one table's records: ``<subject>.created`` / ``.updated`` /
    ``.deleted``, with the data the table's kinds list in ``core.events.EVENT_KINDS``.

    ``created_data`` and ``deleted_data`` read the record's values; ``deleted_data`` may
    also read what the delete will take along, so it runs before the delete. ``extra``
    (a change set's id) is added to every event's data.
    """

    subject: str
    created_data: Callable[[Values], dict[str, Any]] = _none
    deleted_data: Callable[[Values], dict[str, Any]] = _none
    splits: tuple[Split, ...] = ()
    #: The column naming the record's initiative (``id`` for an initiative; None: none).
    initiative_column: str | None = "initiative_id"
    #: What its kinds start with, when not the subject (a conversation's are ``question.*``).
    prefix: str | None = None

    def kind(self, action: str) -> str:
        return f"{self.prefix or self.subject}.{action}"

    def initiative_id(self, values: Values) -> str | None:
        return None if self.initiative_column is None else values.get(self.initiative_column)

    def _event(self, kind: str, values: Values, data: dict[str, Any]) -> PendingEvent:
        return PendingEvent(kind, self.subject, str(values["id"]), self.initiative_id(values), data)

    def created(self, values: Values, **extra: Any) -> list[PendingEvent]:
        return [self._event(self.kind("created"), values, self.created_data(values) | extra)]

    def updated(self, before: Values, after: Values, **extra: Any) -> list[PendingEvent]:
        """The events of the changes from ``before`` to ``after``: one per split whose
        columns changed, then ``<subject>.updated`` naming the other changed columns;
        none when nothing changed."""
        changed = changed_columns(before, after)
        events = []
        for split in self.splits:
            if split.columns & set(changed):
                kind = split.kind_of(before, after)
                events.append(self._event(kind, after, split.data(before, after) | extra))
        rest = [name for name in changed if not any(name in s.columns for s in self.splits)]
        if rest:
            events.append(self._event(self.kind("updated"), after, {"fields": rest} | extra))
        return events

    def deleted(self, values: Values, **extra: Any) -> list[PendingEvent]:
        return [self._event(self.kind("deleted"), values, self.deleted_data(values) | extra)]

    def events(
        self, action: str, before: Values | None, after: Values | None, **extra: Any
    ) -> list[PendingEvent]:
        """The events of one change (a change set entry's ``action``, before and after)."""
        if action == "create":
            assert after is not None
            return self.created(after, **extra)
        if action == "delete":
            assert before is not None
            return self.deleted(before, **extra)
        assert before is not None and after is not None
        return self.updated(before, after, **extra)


@dataclass(frozen=True)
class DependencyFeed:
    """The events of a dependency edge table: ``dependency.added`` / ``.removed``, about
    the phase or task that depends (an edge is never updated)."""

    repository: DependencyRepository[Any]
    subject: str

    def _columns(self) -> tuple[str, str]:
        """The edge's two columns: the node that depends, the node it depends on."""
        model = self.repository.edge_model
        ends = [
            model._meta.get_field(name)
            for name in (self.repository.edge_from, self.repository.edge_to)
        ]
        node, depends_on = (end.column for end in ends if isinstance(end, models.ForeignKey))
        return node, depends_on

    def edge(self, kind: str, node_id: str, depends_on_id: str, **extra: Any) -> PendingEvent:
        return PendingEvent(
            kind,
            self.subject,
            node_id,
            self.repository.initiative_id_of(node_id),
            {"depends_on_id": depends_on_id} | extra,
        )

    def events(
        self, action: str, before: Values | None, after: Values | None, **extra: Any
    ) -> list[PendingEvent]:
        node, depends_on = self._columns()
        values = after if action == "create" else before
        assert values is not None
        kind = "dependency.added" if action == "create" else "dependency.removed"
        return [self.edge(kind, values[node], values[depends_on], **extra)]


_phases, _tasks, _pages = PhaseRepository(), TaskRepository(), PageRepository()
_projects = ProjectRepository()


def _page_place(before: Values, after: Values) -> dict[str, Any]:
    return {
        "from_parent_page_id": before["parent_page_id"],
        "parent_page_id": after["parent_page_id"],
        "from_sort_order": before["sort_order"],
        "sort_order": after["sort_order"],
    }


def _project_initiatives(values: Values) -> dict[str, Any]:
    return {"initiative_ids": _projects.initiative_ids_of(values["id"])}


INITIATIVES = RecordFeed(
    "initiative",
    created_data=lambda v: {"name": v["name"], "execution_mode": v["execution_mode"]},
    deleted_data=lambda v: {"name": v["name"]},
    splits=(
        Split(
            frozenset({"execution_mode"}),
            "initiative.execution_mode_changed",
            lambda before, after: {"from": before["execution_mode"], "to": after["execution_mode"]},
        ),
    ),
    initiative_column="id",
)
PHASES = RecordFeed(
    "phase",
    created_data=lambda v: {"name": v["name"]},
    deleted_data=lambda v: {"name": v["name"], "task_ids": _tasks.ids_in_phase(v["id"])},
)
TASKS = RecordFeed(
    "task",
    created_data=lambda v: {
        "name": v["name"],
        "phase_id": v["phase_id"],
        "parent_task_id": v["parent_task_id"],
        "category": v["category"],
    },
    deleted_data=lambda v: {
        "phase_id": v["phase_id"],
        "subtask_ids": _tasks.descendant_ids(v["id"]),
    },
)
PAGES = RecordFeed(
    "page",
    created_data=lambda v: {"title": v["title"], "parent_page_id": v["parent_page_id"]},
    deleted_data=lambda v: {"title": v["title"], "page_ids": _pages.descendant_ids(v["id"])},
    splits=(Split(frozenset({"parent_page_id", "sort_order"}), "page.moved", _page_place),),
)
PROJECTS = RecordFeed(
    "project",
    created_data=lambda v: {"name": v["name"], "url": v["url"]},
    deleted_data=lambda v: {"name": v["name"], **_project_initiatives(v)},
    initiative_column=None,
)
PHASE_DEPENDENCIES = DependencyFeed(_phases, "phase")
TASK_DEPENDENCIES = DependencyFeed(_tasks, "task")

#: The feeds of the plan's tables, by table name (change sets look them up so).
PLAN_FEEDS: dict[str, RecordFeed | DependencyFeed] = {
    Initiative._meta.db_table: INITIATIVES,
    Phase._meta.db_table: PHASES,
    Task._meta.db_table: TASKS,
    Page._meta.db_table: PAGES,
    Project._meta.db_table: PROJECTS,
    _phases.edge_model._meta.db_table: PHASE_DEPENDENCIES,
    _tasks.edge_model._meta.db_table: TASK_DEPENDENCIES,
}
