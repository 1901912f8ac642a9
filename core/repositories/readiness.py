"""The ready queue, kept current as the plan changes (issue 21).

Which tasks may be taken now depends on the task (pending, its priority and type), its
dependencies (all completed), its phase (approved or in progress, every phase it depends
on completed) and its initiative (not archived). Computing that for every pending task
on every claim costs as much as the plan is large, so the answer is stored instead: the
``ready_tasks`` table (``core.models.ReadyTask``) holds one row per ready task, ordered
by an index in queue order, and a claim reads the head of that index.

The repositories keep it current. Every write that may change a task's readiness —
a task inserted, changed in a field readiness reads, deleted or restored; a phase's or
an initiative's status; a dependency edge added or removed — recomputes it, inside the
same transaction, for exactly the tasks the write can affect (``Scope``): the task and
the tasks that depend on it, a phase's tasks and those of the phases depending on it,
an initiative's tasks. A refresh is three statements whatever the scope: the ids of the
scope's tasks, a ``DELETE`` of their rows and one ``INSERT … SELECT … ON CONFLICT`` of
the rule below, evaluated by the database for those ids only.

``computed_ready`` is the rule itself; ``drift`` compares the table with it (the test
suite does after every test) and ``rebuild`` recomputes the whole table.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from django.db import connection, models, transaction
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Value, When

from core.models import (
    InitiativeStatus,
    PhaseDependency,
    PhaseStatus,
    ReadyTask,
    Task,
    TaskDependency,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from core.repositories.base import Repository

M = TypeVar("M", bound=models.Model)

#: A task's place in the queue by priority: high first, then medium, then low.
PRIORITY_RANK = Case(
    When(priority=TaskPriority.HIGH, then=Value(0)),
    When(priority=TaskPriority.MEDIUM, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


#: The most ids one refresh names (a large restore is refreshed in parts).
CHUNK = 5_000


@dataclass(frozen=True)
class Scope:
    """The tasks whose readiness a write may have changed."""

    task_ids: frozenset[str] = frozenset()
    phase_ids: frozenset[str] = frozenset()
    initiative_ids: frozenset[str] = frozenset()
    #: The tasks that depend on these tasks.
    dependents_of_tasks: frozenset[str] = frozenset()
    #: The tasks of the phases that depend on these phases.
    dependents_of_phases: frozenset[str] = frozenset()

    def size(self) -> int:
        """How many ids the scope names."""
        return sum(len(getattr(self, name)) for name in _SCOPE_FIELDS)

    def chunks(self) -> Iterator["Scope"]:
        """The scope cut in parts of at most ``CHUNK`` ids each (a statement's parameters
        are bounded: SQLite takes at most 32,766); refreshing each part refreshes the
        whole, the rule being the same for every task."""
        for name in _SCOPE_FIELDS:
            ids = sorted(getattr(self, name))
            for start in range(0, len(ids), CHUNK):
                yield Scope(**{name: frozenset(ids[start : start + CHUNK])})

    def condition(self) -> Q | None:
        """The scope as a filter on tasks (None when it names nothing)."""
        parts: list[Q] = []
        if self.task_ids:
            parts.append(Q(pk__in=sorted(self.task_ids)))
        if self.phase_ids:
            parts.append(Q(phase_id__in=sorted(self.phase_ids)))
        if self.initiative_ids:
            parts.append(Q(initiative_id__in=sorted(self.initiative_ids)))
        if self.dependents_of_tasks:
            edges = TaskDependency.objects.filter(
                depends_on_task_id__in=sorted(self.dependents_of_tasks)
            )
            parts.append(Q(pk__in=edges.values("task_id")))
        if self.dependents_of_phases:
            edges_ = PhaseDependency.objects.filter(
                depends_on_phase_id__in=sorted(self.dependents_of_phases)
            )
            parts.append(Q(phase_id__in=edges_.values("phase_id")))
        if not parts:
            return None
        condition = parts[0]
        for part in parts[1:]:
            condition |= part
        return condition


_SCOPE_FIELDS = tuple(f.name for f in fields(Scope))
EVERYTHING = Q()


def computed_ready() -> models.QuerySet[Task]:
    """The rule, evaluated: pending tasks every dependency of which is completed, whose
    phase (if any) is approved or in progress with every phase it depends on completed,
    and whose initiative is not archived; checkpoints and ``auto`` tasks alike,
    unordered."""
    unfinished_task_dependency = TaskDependency.objects.filter(task_id=OuterRef("pk")).exclude(
        depends_on_task__status=TaskStatus.COMPLETED
    )
    unfinished_phase_dependency = PhaseDependency.objects.filter(
        phase_id=OuterRef("phase_id")
    ).exclude(depends_on_phase__status=PhaseStatus.COMPLETED)
    return (
        Task.objects.filter(status=TaskStatus.PENDING)
        .filter(
            Q(phase__isnull=True)
            | Q(phase__status__in=[PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS])
        )
        .exclude(initiative__status=InitiativeStatus.ARCHIVED)
        .exclude(Exists(unfinished_task_dependency))
        .exclude(Exists(unfinished_phase_dependency))
        .order_by()
    )


def _entries(condition: Q) -> models.QuerySet[Any, tuple[str, bool, int, Any]]:
    """The queue's rows the rule gives for the tasks of ``condition``, as the four
    columns of ``ready_tasks`` in its order."""
    return (
        computed_ready()
        .filter(condition)
        .annotate(
            entry_task=models.F("pk"),
            entry_checkpoint=Case(
                When(type=TaskType.AUTO, then=Value(False)),
                default=Value(True),
                output_field=models.BooleanField(),
            ),
            entry_rank=PRIORITY_RANK,
            entry_created_at=models.F("created_at"),
        )
        .values_list("entry_task", "entry_checkpoint", "entry_rank", "entry_created_at")
    )


def refresh(scope: Scope | Q) -> None:
    """Recompute the queue's rows of the tasks in ``scope`` (a ``Scope``, or a filter on
    tasks: ``EVERYTHING`` for all); the caller's transaction holds them with the write
    that made them necessary.

    Three statements for a scope: the ids of its tasks (read by their own indexes), a
    ``DELETE`` of their rows, and one ``INSERT … SELECT`` of the rule for those ids. The
    rule is given the ids, not the scope's filter: given both, a planner may read every
    pending task by status and filter by scope after, a cost that grows with the plan.
    """
    if isinstance(scope, Scope) and scope.size() > CHUNK:
        for part in scope.chunks():
            refresh(part)
        return
    condition = scope.condition() if isinstance(scope, Scope) else scope
    if condition is None:
        return
    with transaction.atomic():
        if condition == EVERYTHING:
            ReadyTask.objects.all().delete()
            _insert_entries(EVERYTHING)
            return
        ids = sorted(Task.objects.filter(condition).order_by().values_list("pk", flat=True))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            ReadyTask.objects.filter(task_id__in=chunk).delete()
            _insert_entries(Q(pk__in=chunk))


def _insert_entries(condition: Q) -> None:
    select, params = _entries(condition).query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ("task_id", "checkpoint", "rank", "created_at")
    names = ", ".join(quote(column) for column in columns)
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers are the model's; values are the query's parameters. A
            # concurrent refresh may have put a row back since the delete
            # (READ COMMITTED on PostgreSQL): this one, later, has the last word.
            f"INSERT INTO {quote(ReadyTask._meta.db_table)} ({names}) {select} "
            f"ON CONFLICT ({quote('task_id')}) DO UPDATE SET {updates}",
            params,
        )


def rebuild() -> None:
    """Recompute the whole queue from the tasks."""
    refresh(EVERYTHING)


def drift() -> list[tuple[str, Any, Any]]:
    """Where the queue disagrees with the rule: ``(task_id, stored, computed)`` per task,
    each side ``(checkpoint, rank, created_at)`` or None; empty when they agree."""
    stored = {
        pk: (checkpoint, rank, created_at)
        for pk, checkpoint, rank, created_at in ReadyTask.objects.values_list(
            "task_id", "checkpoint", "rank", "created_at"
        )
    }
    computed = {
        pk: (checkpoint, rank, created_at)
        for pk, checkpoint, rank, created_at in _entries(EVERYTHING)
    }
    return sorted(
        (pk, stored.get(pk), computed.get(pk))
        for pk in stored.keys() | computed.keys()
        if stored.get(pk) != computed.get(pk)
    )


class KeepsReadyQueue(Repository[M]):
    """Mixed into the repositories of the records readiness reads (tasks, phases,
    initiatives): each protected write refreshes the queue for the tasks it may have
    changed, in the same transaction. A subclass says which fields matter
    (``ready_fields``) and which tasks a write or a delete of its records reaches."""

    #: The fields whose change may change which tasks are ready.
    ready_fields: ClassVar[frozenset[str]]

    def _ready_scope(self, ids: Sequence[Any]) -> Scope:
        """The tasks a write of the records ``ids`` may have made ready or not."""
        raise NotImplementedError

    def _ready_scope_of_delete(self, ids: Sequence[Any]) -> Scope:
        """The tasks that stay after the records ``ids`` are deleted but may change with
        them (read before the delete, while the edges still say who depends on what)."""
        raise NotImplementedError

    def _edges_scope(self, ids: Sequence[Any]) -> Scope:
        """The tasks whose readiness a dependency edge from the records ``ids`` reads."""
        raise NotImplementedError

    def _touches_ready(self, fields: Iterable[str]) -> bool:
        names = set(self.ready_fields)
        names |= {f.attname for name in self.ready_fields if (f := self._field(name))}
        return any(name in names for name in fields)

    def _insert(self, obj: M) -> M:
        with transaction.atomic():
            inserted = super()._insert(obj)
            refresh(self._ready_scope([inserted.pk]))
        return inserted

    def _write(self, target: M | Any, fields: dict[str, Any]) -> M:
        if not self._touches_ready(fields):
            return super()._write(target, fields)
        with transaction.atomic():
            written = super()._write(target, fields)
            refresh(self._ready_scope([written.pk]))
        return written

    def _update_many(self, qs: models.QuerySet, **fields: Any) -> int:
        if not self._touches_ready(fields):
            return super()._update_many(qs, **fields)
        with transaction.atomic():
            ids = list(qs.values_list("pk", flat=True))
            updated = super()._update_many(qs, **fields)
            refresh(self._ready_scope(ids))
        return updated

    def _delete(self, id: Any) -> bool:
        with transaction.atomic():
            reached = self._ready_scope_of_delete([id])
            deleted = super()._delete(id)
            refresh(reached)
        return deleted

    def restore(self, rows: Sequence[dict[str, Any]]) -> int:
        with transaction.atomic():
            count = super().restore(rows)
            refresh(self._ready_scope([row["id"] for row in rows if "id" in row]))
        return count

    def _dependencies_changed(self, node_ids: Iterable[str]) -> None:
        refresh(self._edges_scope(list(node_ids)))
