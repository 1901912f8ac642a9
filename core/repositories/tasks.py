"""Tasks: placement in phases and initiatives, subtasks, dependencies, the ready queue."""

from collections.abc import Iterable, Sequence
from typing import Any, NotRequired, TypedDict

from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import RowNumber
from typing_extensions import Unpack

from core.errors import InvalidInput
from core.models import (
    Initiative,
    Phase,
    ReadyTask,
    Task,
    TaskDependency,
    TaskStatus,
    TaskType,
)
from core.repositories.base import RevertibleRecords, relation_id, seed_only
from core.repositories.dependencies import DependencyRepository
from core.repositories.pagination import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    bytes_of,
    fitting_count,
    offset_page,
    text_columns,
)
from core.repositories.phases import PhaseRepository
from core.repositories.readiness import KeepsReadyQueue, Scope
from core.repositories.validation import check_choice


class TaskFields(TypedDict):
    name: str
    phase: NotRequired[Phase | None]
    phase_id: NotRequired[str | None]
    initiative: NotRequired[Initiative | None]
    initiative_id: NotRequired[str | None]
    parent_task: NotRequired[Task | None]
    parent_task_id: NotRequired[str | None]
    description: NotRequired[str | None]
    type: NotRequired[str]
    category: NotRequired[str]
    priority: NotRequired[str]
    status: NotRequired[str]
    order: NotRequired[int]
    summary: NotRequired[str | None]


class TaskChanges(TypedDict, total=False):
    name: str
    phase: Phase | None
    phase_id: str | None
    parent_task: Task | None
    parent_task_id: str | None
    description: str | None
    type: str
    category: str
    priority: str
    order: int
    summary: str | None


class TaskRepository(KeepsReadyQueue[Task], RevertibleRecords[Task], DependencyRepository[Task]):
    """Tasks; a task's initiative is its phase's when it has a phase (kept consistent)."""

    model = Task
    slug = "task"
    label = "Task"
    edge_model = TaskDependency
    edge_from = "task"
    edge_to = "depends_on_task"
    #: A task stays in its initiative; it may move between that initiative's phases.
    read_only_fields = DependencyRepository.read_only_fields | {"initiative"}
    lifecycle_fields = frozenset({"status", "blocked_from_status"})
    #: What readiness reads of a task (its dependencies are edges, see below).
    ready_fields = frozenset({"status", "type", "priority", "phase", "initiative", "created_at"})

    def _ready_scope(self, ids: Sequence[Any]) -> Scope:
        # The task itself, and the tasks waiting for it to complete.
        found = frozenset(str(pk) for pk in ids)
        return Scope(task_ids=found, dependents_of_tasks=found)

    def _ready_scope_of_delete(self, ids: Sequence[Any]) -> Scope:
        # A delete takes the task's subtasks along; whoever depends on any of them
        # loses an edge (and the queue's rows of the deleted go with their tasks).
        gone = {pk for id in ids for pk in self.descendant_ids(id)} | set(ids)
        dependents = TaskDependency.objects.filter(depends_on_task_id__in=sorted(gone))
        return Scope(task_ids=frozenset(dependents.values_list("task_id", flat=True)) - gone)

    def _edges_scope(self, ids: Sequence[Any]) -> Scope:
        return Scope(task_ids=frozenset(str(pk) for pk in ids))

    def create(self, **fields: Unpack[TaskFields]) -> Task:
        """Create a task, keeping phase, initiative and parent consistent.

        A task with a phase takes the phase's initiative; a subtask given neither takes
        its parent's phase and initiative; a parent must share the task's initiative. A
        task in no initiative at all is ``task_place_required``.
        """
        values: dict[str, Any] = dict(fields)
        self._check_field_names(values, action="create")
        phase_id = relation_id(values, "phase")[1]
        initiative_id = relation_id(values, "initiative")[1]
        parent_id = relation_id(values, "parent_task")[1]
        if parent_id is not None and phase_id is None and initiative_id is None:
            parent = (
                self.model._default_manager.filter(pk=parent_id)
                .values("phase_id", "initiative_id")
                .first()
            )
            if parent is None:
                raise self.not_found(parent_id)
            phase_id, initiative_id = parent["phase_id"], parent["initiative_id"]
        if phase_id is not None:
            phase_initiative = PhaseRepository().initiative_id_of(phase_id)
            if initiative_id is not None and initiative_id != phase_initiative:
                raise InvalidInput(
                    "A task's initiative must be its phase's initiative.",
                    code="task_phase_other_initiative",
                )
            initiative_id = phase_initiative
        if initiative_id is None:
            # A task in no initiative is in no plan: nobody approves its phase, yet the
            # ready queue would serve it.
            raise InvalidInput(
                "A task needs a phase or an initiative: choose one (a subtask takes its parent's).",
                code="task_place_required",
                details={"fields": ["phase", "initiative"]},
            )
        for name in ("phase", "initiative", "parent_task"):
            values.pop(name, None)
        values.update(phase_id=phase_id, initiative_id=initiative_id, parent_task_id=parent_id)
        self._check_parent(None, parent_id, initiative_id)
        return self._create(**values)

    def update(self, task: Task | str, /, **changes: Unpack[TaskChanges]) -> Task:
        """Update a task; a new phase must be of its initiative, a new parent too (and
        not the task itself or one of its subtasks). Its status moves through the
        lifecycle services."""
        values: dict[str, Any] = dict(changes)
        self._check_field_names(values, action="update")
        obj = task if isinstance(task, Task) else self.get(task)
        has_phase, phase_id = relation_id(values, "phase")
        if (
            has_phase
            and phase_id is not None
            and PhaseRepository().initiative_id_of(phase_id) != obj.initiative_id
        ):
            raise InvalidInput(
                "A task can move only to a phase of its own initiative.",
                code="task_phase_other_initiative",
            )
        has_parent, parent_id = relation_id(values, "parent_task")
        if has_parent:
            self._check_parent(obj.pk, parent_id, obj.initiative_id)
        return self._update(obj, **values)

    def set_status(
        self,
        task: Task,
        status: str,
        *,
        blocked_from_status: str | None = None,
        summary: str | None = None,
    ) -> Task:
        """Record a lifecycle transition the services decided (``core.services``);
        ``summary`` is written only when given (a completion's)."""
        fields: dict[str, Any] = {
            "status": check_choice(TaskStatus, status, "status"),
            "blocked_from_status": blocked_from_status,
        }
        if summary is not None:
            fields["summary"] = summary
        return self._transition(task, **fields)

    def delete(self, id: str) -> bool:
        """Delete a task with its subtasks and dependency edges."""
        return self._delete(id)

    def _check_parent(self, task_id: Any, parent_id: Any, initiative_id: Any) -> None:
        if parent_id is None:
            return
        found = list(
            self.model._default_manager.filter(pk=parent_id).values_list(
                "initiative_id", flat=True
            )[:1]
        )
        if not found:
            raise self.not_found(parent_id)
        if found[0] != initiative_id:
            raise InvalidInput(
                "A subtask must belong to its parent task's initiative.",
                code="task_parent_other_initiative",
            )
        if task_id is not None and task_id in self._ancestor_ids("parent_task_id", parent_id):
            raise InvalidInput(
                "A task cannot be the subtask of itself or of one of its own subtasks.",
                code="task_parent_cycle",
            )

    # --- reads ---------------------------------------------------------------------

    def find_page(
        self,
        *,
        initiative_id: str | None = None,
        phase_id: str | None = None,
        status: str | None = None,
        type: str | None = None,
        parent_task_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Task]:
        """One offset page of the tasks matching every filter given, in their phase's
        ``order`` then oldest first, with the total: two queries."""
        qs = self.queryset().order_by("order", "created_at", "id")
        if status is not None:
            qs = qs.filter(status=check_choice(TaskStatus, status, "status"))
        if type is not None:
            qs = qs.filter(type=check_choice(TaskType, type, "type"))
        criteria = {
            "initiative_id": initiative_id,
            "phase_id": phase_id,
            "parent_task_id": parent_task_id,
        }
        qs = qs.filter(**{name: value for name, value in criteria.items() if value is not None})
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def ids_in_phase(self, phase_id: str) -> list[str]:
        """The ids of the phase's tasks, oldest first."""
        return list(
            self.model._default_manager.filter(phase_id=phase_id)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
        )

    def descendant_ids(self, task_id: str) -> list[str]:
        """The ids of the task's subtasks at every depth (one query per level)."""
        found: list[str] = []
        level = [task_id]
        while level:
            level = list(
                self.model._default_manager.filter(parent_task_id__in=level)
                .exclude(pk__in=[task_id, *found])
                .order_by("created_at", "id")
                .values_list("pk", flat=True)
            )
            found.extend(level)
        return found

    def find_by_phase_id(self, phase_id: str) -> list[Task]:
        return list(self.queryset().filter(phase_id=phase_id))

    def find_by_parent_task_id(self, parent_task_id: str) -> list[Task]:
        return list(self.queryset().filter(parent_task_id=parent_task_id))

    def find_by_initiative_id(self, initiative_id: str) -> list[Task]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def initiative_id_of(self, task_id: str) -> str | None:
        """The id of the task's initiative, or of its phase's when it has none of its own;
        None for a task in no initiative (``task_not_found`` when there is no task)."""
        found = (
            self.model._default_manager.filter(pk=task_id)
            .values_list("initiative_id", "phase__initiative_id")
            .first()
        )
        if found is None:
            raise self.not_found(task_id)
        return found[0] or found[1]

    def find_by_ids(self, ids: list[str]) -> list[Task]:
        """The tasks of ``ids`` that exist, oldest first."""
        return list(self.queryset().filter(pk__in=ids).order_by("created_at", "id"))

    @seed_only
    def find_by_status(self, status: str) -> list[Task]:
        check_choice(TaskStatus, status, "status")
        return list(self.queryset().filter(status=status))

    def count_in_phase(self, phase_id: str) -> tuple[int, int]:
        """``(all, open)``: how many tasks the phase has, and how many are not completed."""
        counts = self.model._default_manager.filter(phase_id=phase_id).aggregate(
            total=models.Count("pk"),
            open=models.Count("pk", filter=~Q(status=TaskStatus.COMPLETED)),
        )
        return counts["total"], counts["open"]

    def count_open(self, phase_id: str) -> int:
        """How many of the phase's tasks are not completed."""
        return self.count_in_phase(phase_id)[1]

    def ready_queryset(self, *, checkpoints: bool = False) -> models.QuerySet[Task]:
        """The tasks that may be taken now, in queue order (high priority first, then
        oldest), read from the ready queue (``core.repositories.readiness``): pending,
        every dependency completed, the phase (if any) approved or in progress with every
        phase it depends on completed, the initiative not archived. ``checkpoints``
        selects the tasks waiting for a person instead of the ``auto`` tasks agents take.
        The queue's index holds this order, so the head of it costs the same whatever
        the size of the plan."""
        return Task.objects.filter(ready_entry__checkpoint=checkpoints).order_by(
            "ready_entry__rank", "ready_entry__created_at", "ready_entry__task_id"
        )

    def with_ready(self, queryset: models.QuerySet[Task]) -> models.QuerySet[Task]:
        """``queryset`` with ``is_ready`` on every row: whether the task is in the ready
        queue (for agents, or for a person when a checkpoint), in the same query."""
        entry = ReadyTask.objects.filter(task_id=OuterRef("pk"))
        return queryset.annotate(is_ready=Exists(entry))

    def is_ready(self, task: Task) -> bool:
        """Whether ``task`` may be taken now (see ``ready_queryset``)."""
        return ReadyTask.objects.filter(task_id=task.pk).exists()

    def find_ready(
        self,
        *,
        initiative_id: str | None = None,
        checkpoints: bool = False,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[Task]:
        """The ready tasks in ready order (``ready_queryset``), at most ``limit``; with
        ``max_bytes`` (and a limit), cut before the task whose texts would take the
        list's past it (at least one; ``pagination.offset_page``'s rule): the ready
        query answers ids and sizes, then only the tasks that fit are loaded, by id."""
        qs = self.ready_queryset(checkpoints=checkpoints)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        if limit is None:
            return list(qs)
        if max_bytes is None:
            return list(qs[:limit])
        sized = list(
            qs.annotate(page_item_bytes=bytes_of(Task, text_columns(Task))).values_list(
                "pk", "page_item_bytes"
            )[:limit]
        )
        fitting = [
            pk for pk, _size in sized[: fitting_count([size for _pk, size in sized], max_bytes)]
        ]
        found = self.queryset().in_bulk(fitting)
        return [found[pk] for pk in fitting if pk in found]

    def find_ready_to_take(
        self, *, exclude_initiative_ids: Iterable[str] = (), offset: int = 0, limit: int
    ) -> list[Task]:
        """One batch of the ``auto`` tasks agents may take (``ready_queryset``), in ready
        order, from ``offset``, at most ``limit``, leaving out those of
        ``exclude_initiative_ids``; each with its initiative (its retry policy) loaded."""
        qs = self.ready_queryset().select_related("initiative")
        excluded = sorted(set(exclude_initiative_ids))
        if excluded:
            qs = qs.exclude(initiative_id__in=excluded)
        return list(qs[offset : offset + limit])

    def count_ready(self, *, initiative_id: str | None = None, checkpoints: bool = False) -> int:
        """How many tasks ``find_ready`` would list without a limit (one query)."""
        qs = self.ready_queryset(checkpoints=checkpoints)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        return qs.count()

    def find_ready_per_initiative(
        self, initiative_ids: list[str], *, limit: int, checkpoints: bool = False
    ) -> tuple[dict[str, int], dict[str, list[Task]]]:
        """For each of ``initiative_ids``: how many tasks are ready (see
        ``ready_queryset``), and the first ``limit`` of them in ready order.

        Two queries whatever the number of initiatives: one grouped count, and one read
        that keeps each initiative's first ``limit`` rows with a window function.
        Initiatives without a ready task are absent from both mappings.
        """
        ready = self.ready_queryset(checkpoints=checkpoints).filter(
            initiative_id__in=initiative_ids
        )
        counts = dict(
            ready.order_by()
            .values("initiative_id")
            .annotate(ready=models.Count("pk"))
            .values_list("initiative_id", "ready")
        )
        if not counts:
            return {}, {}
        ranked = ready.annotate(
            position=models.Window(
                RowNumber(),
                partition_by=[F("initiative_id")],
                order_by=[
                    F("ready_entry__rank").asc(),
                    F("ready_entry__created_at").asc(),
                    F("id").asc(),
                ],
            )
        ).filter(position__lte=limit)
        found: dict[str, list[Task]] = {}
        for task in ranked:
            found.setdefault(str(task.initiative_id), []).append(task)
        return counts, found

    def count_by_status_per_initiative(
        self, initiative_ids: list[str]
    ) -> dict[str, dict[str, int]]:
        """For each of ``initiative_ids``, its tasks counted by status (every status,
        zeros included), in one grouped query."""
        counts: dict[str, dict[str, int]] = {
            id: dict.fromkeys(TaskStatus.values, 0) for id in initiative_ids
        }
        rows = (
            self.model._default_manager.filter(initiative_id__in=initiative_ids)
            .order_by()
            .values("initiative_id", "status")
            .annotate(n=models.Count("pk"))
            .values_list("initiative_id", "status", "n")
        )
        for initiative_id, status, n in rows:
            counts[initiative_id][status] = n
        return counts
