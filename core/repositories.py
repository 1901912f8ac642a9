"""How planning records are found and stored: the seed's Initiative, Phase, Task, Page and
Project repositories, and the ``Repository`` base every cw repository builds on."""

from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from typing import Any, ClassVar, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Value, When
from django.utils import timezone
from django.utils.text import slugify

from core.errors import Conflict, DependencyCycle, InvalidInput, NotFound, not_found
from core.models import (
    Initiative,
    InitiativeProject,
    InitiativeStatus,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Project,
    Task,
    TaskDependency,
    TaskPriority,
    TaskStatus,
    TaskType,
)

M = TypeVar("M", bound=models.Model)


def check_choice(choices: type[models.TextChoices], value: Any, field: str) -> str:
    """Return ``value`` when it is one of ``choices``; else InvalidInput ``invalid_<field>``."""
    if value not in choices.values:
        raise InvalidInput(
            f"Unknown {field.replace('_', ' ')} {value!r}; expected one of "
            f"{', '.join(choices.values)}.",
            code=f"invalid_{field}",
            details={"field": field, "value": str(value), "allowed": list(choices.values)},
        )
    return value


def validation_error_details(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            field: [str(m) for e in errs for m in e.messages]
            for field, errs in error.error_dict.items()
        }
    return {"__all__": [str(m) for m in error.messages]}


class Repository(Generic[M]):
    """Standard CRUD for one model.

    Writes validate field values (choices, lengths, required) before touching the
    database and turn a constraint violation into ``Conflict``; each write runs in its
    own savepoint so a refusal never poisons the caller's transaction. ``update()``
    always moves ``updated_at`` when the model has one.
    """

    model: ClassVar[type[models.Model]]
    select_related: ClassVar[tuple[str, ...]] = ()
    #: Fields ``update()`` refuses to touch (ids and bookkeeping).
    read_only_fields: ClassVar[frozenset[str]] = frozenset({"id", "created_at", "updated_at"})

    @property
    def label(self) -> str:
        return str(self.model._meta.verbose_name).capitalize()

    def queryset(self) -> models.QuerySet:
        qs = self.model._default_manager.all()
        return qs.select_related(*self.select_related) if self.select_related else qs

    # --- reads ---------------------------------------------------------------------

    def find_by_id(self, id: Any) -> M | None:
        return self.queryset().filter(pk=id).first()

    def get(self, id: Any) -> M:
        """Like ``find_by_id`` but raises ``NotFound`` (code ``<model>_not_found``)."""
        obj = self.find_by_id(id)
        if obj is None:
            raise not_found(self.label, id)
        return obj

    def get_for_update(self, id: Any, /) -> M:
        """``get`` that also locks the row until the transaction ends.

        A row lock on PostgreSQL; on SQLite the immediate transaction already holds the
        database's write lock. Call it inside ``transaction.atomic()``.
        """
        obj = self.model._default_manager.select_for_update().filter(pk=id).first()
        if obj is None:
            raise not_found(self.label, id)
        return obj

    def find_all(self, *, limit: int | None = None, offset: int = 0) -> list[M]:
        qs = self.queryset()
        if limit is not None:
            qs = qs[offset : offset + limit]
        elif offset:
            qs = qs[offset:]
        return list(qs)

    def count(self) -> int:
        return self.model._default_manager.count()

    # --- writes --------------------------------------------------------------------

    def create(self, **fields: Any) -> M:
        obj = self.model(**fields)
        self.save_new(obj)
        return obj

    def save_new(self, obj: M) -> M:
        self._validate(obj)
        self._save(obj, force_insert=True)
        return obj

    def update(self, id: Any, /, **fields: Any) -> M:
        obj = self.get(id)
        return self.apply(obj, **fields)

    def apply(self, obj: M, /, **fields: Any) -> M:
        """Set ``fields`` on an instance already loaded and save only those columns."""
        forbidden = sorted(set(fields) & self.read_only_fields)
        unknown = sorted(name for name in fields if not self._is_concrete(name))
        if forbidden or unknown:
            raise InvalidInput(
                f"Cannot update {', '.join(forbidden + unknown)} of a {self.label.lower()}.",
                code="invalid_field",
                details={"fields": forbidden + unknown},
            )
        for name, value in fields.items():
            setattr(obj, name, value)
        update_fields = [self.model._meta.get_field(name).attname for name in fields]
        if self._has_updated_at():
            obj.updated_at = timezone.now()
            update_fields.append("updated_at")
        self._validate(obj, exclude_unchanged=fields.keys())
        self._save(obj, update_fields=update_fields)
        return obj

    def delete(self, id: Any) -> bool:
        """Delete by id; True when a record was deleted, False when there was none."""
        deleted, _ = self.model._default_manager.filter(pk=id).delete()
        return deleted > 0

    def touch_many(self, qs: models.QuerySet, **fields: Any) -> int:
        """``QuerySet.update()`` that also moves ``updated_at`` (which ``update()`` skips)."""
        if self._has_updated_at():
            fields.setdefault("updated_at", timezone.now())
        return qs.update(**fields)

    # --- helpers -------------------------------------------------------------------

    def _has_updated_at(self) -> bool:
        return any(f.name == "updated_at" for f in self.model._meta.concrete_fields)

    def _is_concrete(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except Exception:
            return False
        return getattr(field, "concrete", False) and not field.many_to_many

    def _validate(self, obj: M, exclude_unchanged: Iterable[str] | None = None) -> None:
        exclude = None
        if exclude_unchanged is not None:
            changed = set(exclude_unchanged)
            exclude = [f.name for f in self.model._meta.concrete_fields if f.name not in changed]
        try:
            obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            details = validation_error_details(error)
            fields = ", ".join(sorted(details))
            raise InvalidInput(
                f"Invalid {self.label.lower()}: {fields}.",
                code="validation_failed",
                details={"fields": details},
            ) from error

    def _save(self, obj: M, **kwargs: Any) -> None:
        try:
            with transaction.atomic():
                obj.save(**kwargs)
        except IntegrityError as error:
            raise Conflict(
                f"This {self.label.lower()} conflicts with an existing record: {error}",
                code=f"{self.model._meta.model_name}_conflict",
            ) from error


# --- initiatives ---------------------------------------------------------------------------


class InitiativeRepository(Repository[Initiative]):
    """Initiatives; creating one gives it a unique ``cw/<slug>`` branch when none is given."""

    model = Initiative
    branch_prefix = "cw/"
    max_branch_attempts = 50

    def find_by_status(self, status: str) -> list[Initiative]:
        check_choice(InitiativeStatus, status, "status")
        return list(self.queryset().filter(status=status))

    def create(self, **fields: Any) -> Initiative:
        if fields.get("branch"):
            return super().create(**fields)
        base = self.branch_prefix + (slugify(fields.get("name") or "") or "initiative")
        # A racing creator may take the same branch between our check and our insert: the
        # unique index refuses it and we move on to the next suffix.
        taken = set(
            self.model.objects.filter(branch__startswith=base).values_list("branch", flat=True)
        )
        for attempt in range(1, self.max_branch_attempts + 1):
            branch = base if attempt == 1 else f"{base}-{attempt}"
            if branch in taken:
                continue
            try:
                return super().create(**fields, branch=branch)
            except Conflict:
                taken.add(branch)
        raise Conflict(
            f"Could not find a free branch name for '{fields.get('name')}'; give one explicitly.",
            code="initiative_branch_taken",
        )


# --- dependency graphs (phases and tasks) ------------------------------------------------


class DependencyRepository(Repository[M]):
    """Shared dependency-edge logic for phases and tasks.

    An edge ``node -> depends_on`` is refused when it is a self-edge, a duplicate, crosses
    initiatives, or would close a cycle (found with ``graphlib`` over the initiative's
    edges). Edge creation locks the initiative row first (on PostgreSQL; SQLite's
    immediate transactions already serialize writers), so two concurrent edges cannot
    together close a cycle that neither closes alone.
    """

    edge_model: ClassVar[type[models.Model]]
    edge_from: ClassVar[str]  # e.g. "phase"
    edge_to: ClassVar[str]  # e.g. "depends_on_phase"
    name_field: ClassVar[str] = "name"

    def _edges_in_scope(self, initiative_id: str | None) -> list[tuple[str, str]]:
        """Every edge among records of one initiative (or among records of none)."""
        key = f"{self.edge_from}__initiative_id"
        scope = {key: initiative_id} if initiative_id is not None else {f"{key}__isnull": True}
        return list(
            self.edge_model.objects.filter(**scope).values_list(
                f"{self.edge_from}_id", f"{self.edge_to}_id"
            )
        )

    def create_dependency(self, node_id: str, depends_on_id: str) -> models.Model:
        """Record that ``node_id`` cannot start before ``depends_on_id`` is completed."""
        label = self.label.lower()
        if node_id == depends_on_id:
            raise InvalidInput(
                f"A {label} cannot depend on itself.",
                code="dependency_self_edge",
                details={"id": node_id},
            )
        with transaction.atomic():
            nodes = {n.pk: n for n in self.queryset().filter(pk__in=[node_id, depends_on_id])}
            for missing in (node_id, depends_on_id):
                if missing not in nodes:
                    raise not_found(self.label, missing)
            node, target = nodes[node_id], nodes[depends_on_id]
            initiative_id = node.initiative_id
            if initiative_id != target.initiative_id:
                raise InvalidInput(
                    f"{self.label} '{node}' and '{target}' belong to different initiatives.",
                    code="dependency_cross_initiative",
                    details={"id": node_id, "depends_on_id": depends_on_id},
                )
            if initiative_id is not None:
                list(Initiative.objects.select_for_update().filter(pk=initiative_id))
            edges = self._edges_in_scope(initiative_id)
            if (node_id, depends_on_id) in edges:
                raise Conflict(
                    f"{self.label} '{node}' already depends on '{target}'.",
                    code="dependency_duplicate",
                    details={"id": node_id, "depends_on_id": depends_on_id},
                )
            cycle = find_cycle([*edges, (node_id, depends_on_id)])
            if cycle:
                names = dict(
                    self.queryset().filter(pk__in=cycle).values_list("pk", self.name_field)
                )
                path = " -> ".join(f"'{names.get(pk, pk)}'" for pk in cycle)
                raise DependencyCycle(
                    f"This dependency would close a cycle: {path}.",
                    details={"cycle": cycle},
                )
            edge = self.edge_model(
                **{f"{self.edge_from}_id": node_id, f"{self.edge_to}_id": depends_on_id}
            )
            self._save(edge, force_insert=True)
            return edge

    def remove_dependency(self, node_id: str, depends_on_id: str) -> bool:
        deleted, _ = self.edge_model.objects.filter(
            **{f"{self.edge_from}_id": node_id, f"{self.edge_to}_id": depends_on_id}
        ).delete()
        return deleted > 0

    def get_dependencies(self, node_id: str) -> list[M]:
        """The records ``node_id`` depends on (direct edges only)."""
        return list(
            self.queryset().filter(
                pk__in=self.edge_model.objects.filter(**{f"{self.edge_from}_id": node_id}).values(
                    f"{self.edge_to}_id"
                )
            )
        )

    def get_dependents(self, node_id: str) -> list[M]:
        """The records that depend on ``node_id`` (direct edges only)."""
        return list(
            self.queryset().filter(
                pk__in=self.edge_model.objects.filter(**{f"{self.edge_to}_id": node_id}).values(
                    f"{self.edge_from}_id"
                )
            )
        )

    def get_dependency_ids(self, node_ids: Iterable[str]) -> dict[str, list[str]]:
        """Direct dependency ids of several records, in one query."""
        result: dict[str, list[str]] = {pk: [] for pk in node_ids}
        rows = self.edge_model.objects.filter(**{f"{self.edge_from}_id__in": list(result)})
        for node_id, depends_on_id in rows.values_list(
            f"{self.edge_from}_id", f"{self.edge_to}_id"
        ):
            result[node_id].append(depends_on_id)
        return result


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle among ``node -> depends_on`` edges as a closed path, or None when acyclic."""
    graph: dict[str, set[str]] = {}
    for node, depends_on in edges:
        graph.setdefault(node, set()).add(depends_on)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        # graphlib reports the cycle as a closed path [a, b, ..., a] along the edges.
        return list(error.args[1])
    return None


def topological_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """``nodes`` ordered so each comes after everything it depends on (stable by input order)."""
    position = {node: index for index, node in enumerate(nodes)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in position:
        sorter.add(node)
    for node, depends_on in edges:
        if node in position and depends_on in position:
            sorter.add(node, depends_on)
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        ordered.extend(ready)
        sorter.done(*ready)
    return ordered


class PhaseRepository(DependencyRepository[Phase]):
    model = Phase
    edge_model = PhaseDependency
    edge_from = "phase"
    edge_to = "depends_on_phase"

    def find_by_initiative_id(self, initiative_id: str) -> list[Phase]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def create(self, **fields: Any) -> Phase:
        if "status" in fields:
            check_choice(PhaseStatus, fields["status"], "status")
        return super().create(**fields)


class TaskRepository(DependencyRepository[Task]):
    """Tasks; a task's initiative is its phase's when it has a phase (kept consistent)."""

    model = Task
    edge_model = TaskDependency
    edge_from = "task"
    edge_to = "depends_on_task"

    def create(self, **fields: Any) -> Task:
        phase = fields.get("phase")
        phase_id = fields.get("phase_id") or (phase.pk if phase is not None else None)
        if phase_id is not None:
            phase_initiative = (
                Phase.objects.filter(pk=phase_id).values_list("initiative_id", flat=True).first()
            )
            if phase_initiative is None:
                raise not_found("Phase", phase_id)
            given = fields.get("initiative_id") or getattr(fields.get("initiative"), "pk", None)
            if given is not None and given != phase_initiative:
                raise InvalidInput(
                    "A task's initiative must be its phase's initiative.",
                    code="task_initiative_mismatch",
                )
            fields.pop("initiative", None)
            fields["initiative_id"] = phase_initiative
        parent_id = fields.get("parent_task_id") or getattr(fields.get("parent_task"), "pk", None)
        if parent_id is not None:
            parents = Task.objects.filter(pk=parent_id).values_list("initiative_id", flat=True)
            if not parents:
                raise not_found("Task", parent_id)
            initiative_id = fields.get(
                "initiative_id", getattr(fields.get("initiative"), "pk", None)
            )
            if parents[0] != initiative_id:
                raise InvalidInput(
                    "A subtask must belong to its parent task's initiative.",
                    code="task_parent_mismatch",
                )
        return super().create(**fields)

    def find_by_phase_id(self, phase_id: str) -> list[Task]:
        return list(self.queryset().filter(phase_id=phase_id))

    def find_by_parent_task_id(self, parent_task_id: str) -> list[Task]:
        return list(self.queryset().filter(parent_task_id=parent_task_id))

    def find_by_initiative_id(self, initiative_id: str) -> list[Task]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def find_by_status(self, status: str) -> list[Task]:
        check_choice(TaskStatus, status, "status")
        return list(self.queryset().filter(status=status))

    def ready_queryset(self, *, checkpoints: bool = False) -> models.QuerySet:
        """Pending tasks whose dependencies and phase allow work now, as one query.

        A task is ready when it is pending, every task it depends on is completed, its
        phase (if any) is approved or in progress, and every phase that phase depends on
        is completed; tasks of archived initiatives never are. ``checkpoints`` selects
        the tasks waiting for a person instead of the ``auto`` tasks agents take.
        Ordered high priority first, then oldest.
        """
        unfinished_task_dependency = TaskDependency.objects.filter(task_id=OuterRef("pk")).exclude(
            depends_on_task__status=TaskStatus.COMPLETED
        )
        unfinished_phase_dependency = PhaseDependency.objects.filter(
            phase_id=OuterRef("phase_id")
        ).exclude(depends_on_phase__status=PhaseStatus.COMPLETED)
        type_filter = ~Q(type=TaskType.AUTO) if checkpoints else Q(type=TaskType.AUTO)
        rank = Case(
            When(priority=TaskPriority.HIGH, then=Value(0)),
            When(priority=TaskPriority.MEDIUM, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        return (
            Task.objects.filter(type_filter, status=TaskStatus.PENDING)
            .filter(
                Q(phase__isnull=True)
                | Q(phase__status__in=[PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS])
            )
            .exclude(initiative__status=InitiativeStatus.ARCHIVED)
            .exclude(Exists(unfinished_task_dependency))
            .exclude(Exists(unfinished_phase_dependency))
            .alias(priority_rank=rank)
            .order_by("priority_rank", "created_at", "id")
        )

    def find_ready(
        self,
        *,
        initiative_id: str | None = None,
        checkpoints: bool = False,
        limit: int | None = None,
    ) -> list[Task]:
        qs = self.ready_queryset(checkpoints=checkpoints)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        if limit is not None:
            qs = qs[:limit]
        return list(qs)

    def dependency_edges(self, initiative_id: str | None) -> list[tuple[str, str]]:
        """Every ``(task, depends_on)`` edge among tasks of one initiative, in one query."""
        return self._edges_in_scope(initiative_id)


# --- pages ---------------------------------------------------------------------------


class PageRepository(Repository[Page]):
    """Pages form one tree per initiative with exactly one root (a database constraint)."""

    model = Page

    def create(self, **fields: Any) -> Page:
        parent_id = fields.get("parent_page_id") or getattr(fields.get("parent_page"), "pk", None)
        if parent_id is not None:
            parent_initiative = (
                Page.objects.filter(pk=parent_id).values_list("initiative_id", flat=True).first()
            )
            if parent_initiative is None:
                raise not_found("Page", parent_id)
            initiative_id = fields.get("initiative_id") or getattr(
                fields.get("initiative"), "pk", None
            )
            if initiative_id is None:
                fields["initiative_id"] = parent_initiative
            elif initiative_id != parent_initiative:
                raise InvalidInput(
                    "A page's parent must belong to the same initiative.",
                    code="page_parent_mismatch",
                )
        try:
            return super().create(**fields)
        except Conflict as error:
            raise Conflict(
                "This initiative already has a root page; give the new page a parent.",
                code="page_root_exists",
            ) from error

    def find_by_initiative_id(self, initiative_id: str) -> list[Page]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def find_root_page(self, initiative_id: str) -> Page | None:
        return self.queryset().filter(initiative_id=initiative_id, parent_page__isnull=True).first()

    def get_or_create_root_page(self, initiative_id: str, *, title: str | None = None) -> Page:
        """The initiative's root page, created (titled after the initiative) if missing.

        Safe when two callers race: the partial unique index lets only one insert win and
        the loser reads the winner's page.
        """
        page = self.find_root_page(initiative_id)
        if page is not None:
            return page
        name = Initiative.objects.filter(pk=initiative_id).values_list("name", flat=True).first()
        if name is None:
            raise not_found("Initiative", initiative_id)
        try:
            return super().create(initiative_id=initiative_id, title=title or name)
        except Conflict:
            page = self.find_root_page(initiative_id)
            if page is None:
                raise
            return page

    def find_by_parent_page_id(self, parent_page_id: str) -> list[Page]:
        return list(self.queryset().filter(parent_page_id=parent_page_id))


# --- projects --------------------------------------------------------------------------


class ProjectRepository(Repository[Project]):
    model = Project

    def find_by_name(self, name: str) -> Project | None:
        return self.queryset().filter(name=name).first()

    def find_projects_by_initiative_id(self, initiative_id: str) -> list[Project]:
        return list(self.queryset().filter(initiative_links__initiative_id=initiative_id))

    def set_initiative_projects(
        self, initiative_id: str, project_ids: Iterable[str]
    ) -> list[Project]:
        """Make the initiative's projects exactly ``project_ids``, touching only the diff.

        Missing links are inserted and extra links deleted; links already there keep
        their rows (and ids). Unknown ids are refused before anything is written.
        """
        wanted = list(dict.fromkeys(project_ids))
        with transaction.atomic():
            if not list(Initiative.objects.select_for_update().filter(pk=initiative_id)):
                raise not_found("Initiative", initiative_id)
            known = set(Project.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            unknown = [pk for pk in wanted if pk not in known]
            if unknown:
                raise NotFound(
                    f"Unknown project(s): {', '.join(unknown)}.",
                    code="project_not_found",
                    details={"ids": unknown},
                )
            links = InitiativeProject.objects.filter(initiative_id=initiative_id)
            existing = set(links.values_list("project_id", flat=True))
            links.exclude(project_id__in=wanted).delete()
            InitiativeProject.objects.bulk_create(
                [
                    InitiativeProject(initiative_id=initiative_id, project_id=pk)
                    for pk in wanted
                    if pk not in existing
                ],
                ignore_conflicts=True,
            )
        return self.find_projects_by_initiative_id(initiative_id)
