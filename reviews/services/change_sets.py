"""Change sets: recording what an operation changed, and reverting it exactly.

A change set holds, for every record an operation created, updated or deleted, its
column values before and after (``snapshot``). ``change_set_revert`` puts those values
back, refusing when anything it would touch changed since.

The feed hears of each record a change set touches, applied or reverted, from one
function, ``change_set_events``: each entry's table and action give the event (a
created task is ``task.created``, an added edge ``dependency.added``, …; undone, the
reverse: ``task.deleted``, ``dependency.removed``, …) with the data the plan services
give the same kind (``core.services.feed``), plus the change set's id.

The tables a change set may name are listed in ``REGISTRY``, each with the repository
that writes it and how a revert undoes each action on it. A change set naming any other
table, or an action its table does not undo, is refused (``invalid_change_set``) before
anything is written: the revert can never touch a table that is not registered.
"""

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

from django.db import models, router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils.dateparse import parse_datetime

from core.errors import Conflict, InvalidInput
from core.events import CHANGE_SET_ID, REVERTED, event_record
from core.models import Page, Phase, ReadyTask, Task
from core.repositories import (
    DependencyRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    TaskRepository,
)
from core.services.feed import (
    PLAN_FEEDS,
    DependencyFeed,
    PendingEvent,
    RecordFeed,
    Split,
    Values,
    record_all,
    snapshot,
)
from reviews.models import (
    ChangeAction,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetStatus,
    ChatSession,
    ChatTargetType,
    Proposal,
    ProposalStatus,
)
from reviews.repositories import ChangeSetRepository, ChatSessionRepository, ProposalRepository

change_sets = ChangeSetRepository()
chat_sessions = ChatSessionRepository()
initiatives = InitiativeRepository()

#: A row of the database, as (table, id).
Row = tuple[str, str]


# --- snapshots: a record's column values, JSON-safe (``snapshot``), and back --------------


def restorable(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """``snapshot`` values turned back into attribute values for ``model``."""
    by_column = {field.column: field for field in model._meta.concrete_fields}
    restored = {}
    for column, value in values.items():
        field = by_column[column]
        if isinstance(field, models.DateTimeField) and isinstance(value, str):
            value = parse_datetime(value)
        restored[field.attname] = value
    return restored


def same_state(current: dict[str, Any] | None, recorded: dict[str, Any] | None) -> bool:
    """Equal but for ``updated_at`` (a save that changed nothing is not a change)."""
    if current is None or recorded is None:
        return False
    ignore = {"updated_at"}
    return {k: v for k, v in current.items() if k not in ignore} == {
        k: v for k, v in recorded.items() if k not in ignore
    }


# --- the registry of the tables a change set may touch -----------------------------------


class _RecordRepository(Protocol):
    """What a registered record table's repository offers the revert: reads and locks,
    and the revert writes of ``core.repositories.base.RevertibleRecords``."""

    def lock_many(self, ids: list[str]) -> None: ...
    def find_by_ids(self, ids: list[str]) -> list[Any]: ...
    def find_by_id(self, id: str) -> Any: ...
    def revert_create(self, id: str) -> bool: ...
    def revert_update(self, id: str, values: dict[str, Any]) -> int: ...
    def revert_delete(self, values: dict[str, Any]) -> Any: ...


class RevertibleTable(ABC):
    """A table a change set may name, and how a revert undoes each action on it."""

    model: type[models.Model]
    #: The entry actions a revert of this table knows how to undo.
    actions: ClassVar[frozenset[str]]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @abstractmethod
    def states(self, entries: list[ChangeSetEntry]) -> dict[str, dict[str, Any] | None]:
        """The current ``snapshot`` of each record the entries name (None when it no
        longer exists), read under lock so nothing changes before the revert ends."""

    def dependents(self, entity_id: str) -> list[Row]:
        """The rows that would be lost with the record (deleted or unlinked) if the revert
        deleted it; none unless a table says otherwise."""
        return []

    @abstractmethod
    def undo(self, entry: ChangeSetEntry) -> None:
        """Put the record back as it was before ``entry``."""


class RecordTable(RevertibleTable):
    """A table of records with their own repository: pages, phases, tasks, proposals.

    The revert writes exact column values (``updated_at`` included), which no edit
    does, through the repository's ``RevertibleRecords`` methods.
    """

    actions = frozenset({ChangeAction.CREATE, ChangeAction.UPDATE, ChangeAction.DELETE})

    def __init__(
        self,
        model: type[models.Model],
        repository: _RecordRepository,
        *,
        chat_target_type: str | None = None,
        may_vanish: bool = False,
    ) -> None:
        self.model = model
        self.repository = repository
        #: Chat sessions name their phase or task by id, not by a foreign key.
        self.chat_target_type = chat_target_type
        #: Whether a record gone since is skipped rather than a reason to refuse (a
        #: proposal goes with its agent; the planning changes it made still revert).
        self.may_vanish = may_vanish

    def states(self, entries: list[ChangeSetEntry]) -> dict[str, dict[str, Any] | None]:
        ids = [entry.entity_id for entry in entries]
        self.repository.lock_many(ids)
        found = {str(record.pk): snapshot(record) for record in self.repository.find_by_ids(ids)}
        return {pk: found.get(pk) for pk in ids}

    def dependents(self, entity_id: str) -> list[Row]:
        record = self.repository.find_by_id(entity_id)
        rows = [] if record is None else rows_a_delete_takes_along(record)
        if self.chat_target_type is not None:
            sessions = chat_sessions.find_ids_by_target(self.chat_target_type, entity_id)
            rows += [(ChatSession._meta.db_table, pk) for pk in sessions]
        return rows

    def undo(self, entry: ChangeSetEntry) -> None:
        if entry.action == ChangeAction.CREATE:
            self.repository.revert_create(entry.entity_id)
            return
        values = restorable(self.model, entry.before or {})
        if entry.action == ChangeAction.DELETE:
            self.repository.revert_delete(values)
        else:
            self.repository.revert_update(entry.entity_id, values)


class DependencyTable(RevertibleTable):
    """A dependency edge table (phase or task dependencies), written by the repository
    of the records it links. An edge is nothing but its two ends: it is never updated,
    so a revert removes an edge that was added or adds back one that was removed."""

    actions = frozenset({ChangeAction.CREATE, ChangeAction.DELETE})

    def __init__(self, repository: DependencyRepository[Any]) -> None:
        self.model = repository.edge_model
        self.repository = repository
        self._from = self._column(repository.edge_from)
        self._to = self._column(repository.edge_to)

    def states(self, entries: list[ChangeSetEntry]) -> dict[str, dict[str, Any] | None]:
        recorded = {entry.entity_id: self._recorded(entry) for entry in entries}
        existing = self.repository.get_dependency_ids(
            {values[self._from] for values in recorded.values()}
        )
        return {
            pk: values if values[self._to] in existing[values[self._from]] else None
            for pk, values in recorded.items()
        }

    def undo(self, entry: ChangeSetEntry) -> None:
        values = self._recorded(entry)
        if entry.action == ChangeAction.CREATE:
            self.repository.remove_dependency(values[self._from], values[self._to])
        else:
            self.repository.create_dependency(values[self._from], values[self._to])

    def _column(self, name: str) -> str:
        field = self.model._meta.get_field(name)
        assert isinstance(field, models.ForeignKey)  # an edge's ends are foreign keys
        return field.column

    def _recorded(self, entry: ChangeSetEntry) -> dict[str, Any]:
        """The edge's columns as the entry recorded them (after a create, before a delete)."""
        values = entry.after if entry.action == ChangeAction.CREATE else entry.before
        if not isinstance(values, dict) or not {self._from, self._to} <= set(values):
            raise InvalidInput(
                f"A change set entry of '{self.table}' does not record the edge's two ends.",
                code="invalid_change_set",
                details={"table": self.table, "entity_id": entry.entity_id},
            )
        return values


_pages, _phases, _tasks = PageRepository(), PhaseRepository(), TaskRepository()

#: Every table a change set may name, by table name.
REGISTRY: dict[str, RevertibleTable] = {
    table.table: table
    for table in (
        RecordTable(Page, _pages),
        RecordTable(Phase, _phases, chat_target_type=ChatTargetType.PHASE),
        RecordTable(Task, _tasks, chat_target_type=ChatTargetType.TASK),
        DependencyTable(_phases),
        DependencyTable(_tasks),
        RecordTable(Proposal, ProposalRepository(), may_vanish=True),
    )
}


def _proposal_status_kind(before: Values, after: Values) -> str:
    if after["status"] == ProposalStatus.ACCEPTED:
        return "proposal.accepted"
    if before["status"] == ProposalStatus.ACCEPTED and after["status"] == ProposalStatus.PENDING:
        return "proposal.reopened"
    raise ValueError(f"No event says a proposal went from {before['status']} to {after['status']}.")


#: The proposals' events: accepted (its change set's entry, when accepting) and pending
#: again (that entry undone); an edit names the fields it changed.
PROPOSALS = RecordFeed(
    "proposal",
    created_data=lambda v: {"target_type": v["target_type"], "target_id": v["target_id"]},
    deleted_data=lambda v: {"target_type": v["target_type"], "target_id": v["target_id"]},
    splits=(Split(frozenset({"status"}), _proposal_status_kind, lambda before, after: {}),),
)

#: What the feed says of each table a change set may name (``change_set_events``).
FEEDS: dict[str, RecordFeed | DependencyFeed] = {
    **{table: PLAN_FEEDS[table] for table in REGISTRY if table in PLAN_FEEDS},
    Proposal._meta.db_table: PROPOSALS,
}
assert set(FEEDS) == set(REGISTRY), "every table a change set may name has its feed"

#: What undoing each action does: a create is undone by a delete, and so on.
_UNDONE_BY = {
    ChangeAction.CREATE: ChangeAction.DELETE,
    ChangeAction.DELETE: ChangeAction.CREATE,
    ChangeAction.UPDATE: ChangeAction.UPDATE,
}


def change_set_events(
    change_set_id: str,
    entries: Iterable[Mapping[str, Any] | ChangeSetEntry],
    *,
    undoing: bool = False,
) -> list[PendingEvent]:
    """The events of a change set's entries, in their order: what each did, or with
    ``undoing`` what undoing it does (a create undone is a delete, a delete undone a
    create, an update undone the update back), each with ``change_set_id`` in its data
    (and ``reverted: true`` when undoing).

    Work them out before a revert's writes (a delete's event names what goes with the
    record, read now) and record them after (``record_all``). One function for every
    source of change sets: an accepted proposal, a chat edit, a revert of either.
    """
    extra: dict[str, Any] = {CHANGE_SET_ID: change_set_id}
    if undoing:
        extra[REVERTED] = True
    events: list[PendingEvent] = []
    for entry in entries:
        if isinstance(entry, ChangeSetEntry):
            table, action, before, after = (
                entry.entity_type,
                entry.action,
                entry.before,
                entry.after,
            )
        else:
            table, action = entry["entity_type"], entry["action"]
            before, after = entry["before"], entry["after"]
        if undoing:
            action, before, after = _UNDONE_BY[ChangeAction(action)], after, before
        feed = FEEDS[revertible_table(table, change_set_id=change_set_id).table]
        events += feed.events(action, before, after, **extra)
    return events


def revertible_table(table: str, *, change_set_id: str | None = None) -> RevertibleTable:
    """The registered table called ``table``; InvalidInput ``invalid_change_set`` when a
    change set names one that is not registered."""
    registered = REGISTRY.get(table)
    if registered is None:
        raise InvalidInput(
            f"A change set names the table '{table}', which change sets do not touch.",
            code="invalid_change_set",
            details={"id": change_set_id, "table": table},
        )
    return registered


def rows_a_delete_takes_along(record: models.Model) -> list[Row]:
    """Every other row that deleting ``record`` would delete or unlink, as Django's delete
    would find them (cascades, ``SET_NULL`` links, protected rows), without deleting."""
    collector = Collector(using=router.db_for_write(type(record)), origin=record)
    try:
        collector.collect([record])
    except ProtectedError as error:
        return [(obj._meta.db_table, str(obj.pk)) for obj in error.protected_objects]
    except RestrictedError as error:
        return [(obj._meta.db_table, str(obj.pk)) for obj in error.restricted_objects]
    rows: list[Row] = []
    for model, instances in collector.data.items():
        rows += [(model._meta.db_table, str(obj.pk)) for obj in instances]
    for qs in collector.fast_deletes:
        rows += [(qs.model._meta.db_table, str(pk)) for pk in qs.values_list("pk", flat=True)]
    for (field, _value), batches in collector.field_updates.items():
        batch: Any
        for batch in batches:
            pks = (
                batch.values_list("pk", flat=True)
                if isinstance(batch, models.QuerySet)
                else [obj.pk for obj in batch]
            )
            rows += [(field.model._meta.db_table, str(pk)) for pk in pks]
    own = (record._meta.db_table, str(record.pk))
    # The ready queue's rows are derived: the repositories put them back with the task.
    derived = ReadyTask._meta.db_table
    return [row for row in dict.fromkeys(rows) if row != own and row[0] != derived]


# --- recording -------------------------------------------------------------------------


class ChangeRecorder:
    """Collects the change-set entries of one operation, in the order they happened.

    Records only registered tables, so whatever is recorded can be reverted.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def created(self, record: models.Model) -> None:
        self.entries.append(self._entry(record, ChangeAction.CREATE, None, snapshot(record)))

    def updated(self, record: models.Model, before: dict[str, Any]) -> None:
        self.entries.append(self._entry(record, ChangeAction.UPDATE, before, snapshot(record)))

    @staticmethod
    def _entry(
        record: models.Model,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "entity_type": revertible_table(record._meta.db_table).table,
            "entity_id": str(record.pk),
            "action": action,
            "before": before,
            "after": after,
        }


# --- reverting -------------------------------------------------------------------------


@transaction.atomic
def change_set_revert(*, change_set_id: str) -> ChangeSet:
    """Restore exactly the values before a change set (deleting what it created);
    records what undoing each entry did (``change_set_events``), then
    ``change_set.reverted``.

    Refused, with nothing written, when the change set is already reverted, names a
    table or an action the registry does not undo (``invalid_change_set``), or when a
    record it touched was changed (or deleted) since, or deleting what it created would
    take other rows with it (``change_set_stale``). A proposal it accepted goes back to
    pending.
    """
    # Initiative first, then the change set, then the records: the order every flow uses.
    initiatives.lock_many([change_sets.initiative_id_of(change_set_id)])
    change_set = change_sets.get_for_update(change_set_id)
    if change_set.status != ChangeSetStatus.APPLIED:
        raise change_sets.already_reverted(change_set)
    entries = change_sets.find_entries(change_set_id, newest_first=True)
    by_table: dict[str, list[ChangeSetEntry]] = defaultdict(list)
    for entry in entries:
        table = revertible_table(entry.entity_type, change_set_id=change_set_id)
        if entry.action not in table.actions:
            raise InvalidInput(
                f"A change set entry {entry.action}s a row of '{table.table}', which a "
                "revert does not undo.",
                code="invalid_change_set",
                details={"id": change_set_id, "table": table.table, "action": entry.action},
            )
        by_table[table.table].append(entry)
    current: dict[Row, dict[str, Any] | None] = {}
    for table_name, table_entries in by_table.items():
        states = REGISTRY[table_name].states(table_entries)
        current.update({(table_name, pk): state for pk, state in states.items()})

    _refuse_if_stale(change_set_id, entries, current)
    undone = [
        entry
        for entry in entries
        if not (
            current[(entry.entity_type, entry.entity_id)] is None
            and _vanished_ok(REGISTRY[entry.entity_type])
        )
    ]
    events = change_set_events(change_set_id, undone, undoing=True)
    for entry in undone:
        REGISTRY[entry.entity_type].undo(entry)
    reverted = change_sets.mark_reverted(change_set_id)
    record_all(events)
    event_record(
        "change_set.reverted",
        subject_type="change_set",
        subject_id=reverted.pk,
        initiative_id=reverted.initiative_id,
        data={"proposal_id": reverted.proposal_id, "chat_session_id": reverted.chat_session_id},
    )
    return reverted


def _vanished_ok(table: RevertibleTable) -> bool:
    return isinstance(table, RecordTable) and table.may_vanish


def _refuse_if_stale(
    change_set_id: str,
    entries: list[ChangeSetEntry],
    current: dict[Row, dict[str, Any] | None],
) -> None:
    """Refuse (``change_set_stale``) when a record the change set touched is not as it
    left it, or when deleting what it created would take other rows along: work added
    since under a created record (a task in a created phase, a page under a created
    page, an edge to a created task, a chat session on it) would be lost."""
    changed: list[Row] = []
    for entry in entries:
        key = (entry.entity_type, entry.entity_id)
        state = current[key]
        if state is None and _vanished_ok(REGISTRY[entry.entity_type]):
            continue
        if entry.action == ChangeAction.DELETE:
            if state is not None:
                changed.append(key)
        elif not same_state(state, entry.after):
            changed.append(key)
    touched = set(current)
    for entry in entries:
        key = (entry.entity_type, entry.entity_id)
        if entry.action == ChangeAction.CREATE and current[key] is not None:
            dependents = REGISTRY[entry.entity_type].dependents(entry.entity_id)
            changed += [row for row in dependents if row not in touched and row not in changed]
    if changed:
        names = ", ".join(f"{table} '{pk}'" for table, pk in changed)
        raise Conflict(
            f"Cannot revert: {names} changed since this change set was applied.",
            code="change_set_stale",
            details={
                "id": change_set_id,
                "changed": [{"table": table, "id": pk} for table, pk in changed],
            },
        )
