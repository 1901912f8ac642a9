"""How planning records are found and stored: the seed's Initiative, Phase, Task, Page and
Project repositories, and the ``Repository`` base every cw repository builds on."""

import datetime as dt
from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from typing import Any, ClassVar, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, models, transaction
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Value, When
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.text import slugify

from core.errors import (
    Conflict,
    DependencyCycle,
    DomainError,
    InvalidInput,
    NotFound,
    not_found,
)
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


INT32 = (-(2**31), 2**31 - 1)


def require_text(value: Any, field: str) -> str:
    """Refuse a missing or blank text value with InvalidInput ``empty_<field>`` (the one
    code for "required text left blank", whatever the record)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"The {field.replace('_', ' ')} must not be empty.",
            code=f"empty_{field}",
            details={"field": field},
        )
    return value


def check_page_bounds(
    limit: Any, offset: Any = 0, *, max_limit: int | None = None, limit_required: bool = False
) -> None:
    """Refuse a ``limit`` (None means "all" unless required) or ``offset`` that is not a
    whole number in range, with ``InvalidInput`` ``invalid_limit`` / ``invalid_offset``."""
    for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if value is None and name == "limit" and not limit_required:
            continue
        high = max_limit if name == "limit" and max_limit else INT32[1]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(
                f"{name} must be a whole number from {low} to {high}.",
                code=f"invalid_{name}",
                details={name: str(value)},
            )


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored alike in every database, or None when it can.

    PostgreSQL refuses NUL in text and jsonb while SQLite keeps it; a lone surrogate
    (which JSON's ``\\u`` escapes can spell) cannot be encoded as UTF-8 at all. The
    reason never quotes the text (it may be a secret).
    """
    if "\x00" in text:
        return "must not contain NUL (\\x00) characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "must be valid Unicode: it contains a lone surrogate (\\ud800-\\udfff) "
            "that cannot be encoded as UTF-8"
        )
    return None


def unstorable_text(value: Any) -> bool:
    """Whether a string, or any key or string inside JSON, has a ``text_problem``."""
    if isinstance(value, str):
        return text_problem(value) is not None
    if isinstance(value, dict):
        return any(unstorable_text(k) or unstorable_text(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unstorable_text(v) for v in value)
    return False


def _outside_int32(field: models.Field, value: Any) -> bool:
    """Whether an integer column's value is a bool or beyond 32 bits (PostgreSQL's
    ``integer``), so both databases accept exactly the same values."""
    if not isinstance(field, models.IntegerField) or isinstance(
        field, models.AutoField | models.BigIntegerField
    ):
        return False
    return isinstance(value, bool) or (isinstance(value, int) and not INT32[0] <= value <= INT32[1])


def _unstorable_datetime(value: Any) -> bool:
    """Whether an aware datetime falls outside what both databases store once in UTC (a
    far-future time with a negative offset would land in the year 10000)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return False
    try:
        return not 1 <= value.astimezone(dt.UTC).year <= 9998
    except OverflowError:
        return True


def integrity_error_kind(error: IntegrityError) -> str:
    """``unique``, ``check``, ``not_null``, ``foreign_key`` or ``other``, on either database."""
    cause = type(error.__cause__).__name__  # psycopg's errors name the SQLSTATE class
    text = str(error)
    if cause == "UniqueViolation" or "UNIQUE constraint failed" in text:
        return "unique"
    if cause == "CheckViolation" or "CHECK constraint failed" in text:
        return "check"
    if cause == "NotNullViolation" or "NOT NULL constraint failed" in text:
        return "not_null"
    if cause == "ForeignKeyViolation" or "FOREIGN KEY constraint failed" in text:
        return "foreign_key"
    return "other"


def validation_error_details(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            field: [str(m) for e in errs for m in e.messages]
            for field, errs in error.error_dict.items()
        }
    return {"__all__": [str(m) for m in error.messages]}


class Repository(Generic[M]):
    """Standard CRUD for one model.

    Writes validate field values (choices, lengths, required, storable text) before
    touching the database and turn a refusal by the database into a domain error (a
    unique violation into ``Conflict``, any other into ``InvalidInput``); each write runs in its
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

    @property
    def slug(self) -> str:
        """The model's name in error codes (``review_comment`` in ``review_comment_not_found``)."""
        return str(self.model._meta.verbose_name).lower().replace(" ", "_")

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
        database's write lock. Call it inside ``transaction.atomic()``: outside one a
        lock would end at once, so that is refused as a programming error.
        """
        if not transaction.get_connection().in_atomic_block:
            raise TransactionManagementError(
                f"{type(self).__name__}.get_for_update() needs an atomic block."
            )
        obj = self.model._default_manager.select_for_update().filter(pk=id).first()
        if obj is None:
            raise not_found(self.label, id)
        return obj

    def find_all(self, *, limit: int | None = None, offset: int = 0) -> list[M]:
        check_page_bounds(limit, offset)
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
        self._check_field_names(fields, action="create")
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
        self._check_field_names(fields, action="update")
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

    def _field(self, name: str) -> models.Field | None:
        """The concrete field called ``name`` (by name or column attribute, e.g. phase_id)."""
        try:
            field = self.model._meta.get_field(name)
        except Exception:
            return None
        return field if getattr(field, "concrete", False) and not field.many_to_many else None

    def _check_field_names(self, fields: dict[str, Any], *, action: str) -> None:
        read_only = {f.name for name in self.read_only_fields if (f := self._field(name))}
        refused = sorted(
            name
            for name in fields
            if (field := self._field(name)) is None
            or (action == "update" and field.name in read_only)
        )
        if refused:
            raise InvalidInput(
                f"Cannot {action} {', '.join(refused)} of a {self.label.lower()}.",
                code="invalid_field",
                details={"fields": refused},
            )

    def _validate(self, obj: M, exclude_unchanged: Iterable[str] | None = None) -> None:
        fields = self.model._meta.concrete_fields
        if exclude_unchanged is not None:
            changed = {self._field(name).name for name in exclude_unchanged}
            fields = [f for f in fields if f.name in changed]
        errors: dict[str, list[str]] = {}
        for field in fields:
            value = getattr(obj, field.attname)
            if unstorable_text(value):
                errors[field.name] = ["contains a NUL character or invalid Unicode"]
            elif _outside_int32(field, value):
                errors[field.name] = ["must be a whole number within 32 bits"]
            elif _unstorable_datetime(value):
                errors[field.name] = ["must be a date and time between the years 1 and 9998"]
        if errors:
            raise InvalidInput(
                f"Invalid {self.label.lower()}: {', '.join(sorted(errors))}.",
                code="invalid_value",
                details={"fields": errors},
            )
        exclude = [f.name for f in self.model._meta.concrete_fields if f not in fields]
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
        """Save in a savepoint; a refusal by the database becomes a coded domain error."""
        try:
            with transaction.atomic():
                obj.save(**kwargs)
        except IntegrityError as error:
            raise self._integrity_refusal(obj, error) from error
        except DataError as error:
            raise InvalidInput(
                f"A value of this {self.label.lower()} cannot be stored (too long or out "
                "of range).",
                code="invalid_value",
            ) from error

    def _integrity_refusal(self, obj: M, error: IntegrityError) -> DomainError:
        """The domain error for a write the database refused; subclasses name their
        own unique violations (e.g. ``agent_name_taken``) and defer to this otherwise."""
        kind = integrity_error_kind(error)
        if kind == "unique":
            return Conflict(
                f"This {self.label.lower()} conflicts with an existing one.",
                code=f"{self.slug}_conflict",
            )
        if kind == "foreign_key":
            return InvalidInput(
                f"This {self.label.lower()} refers to a record that does not exist.",
                code="invalid_reference",
            )
        return InvalidInput(
            f"This {self.label.lower()} breaks a rule of the schema ({kind}).",
            code="invalid_value",
            details={"rule": kind},
        )


# --- initiatives ---------------------------------------------------------------------------


class InitiativeRepository(Repository[Initiative]):
    """Initiatives; creating one gives it a unique ``cw/<slug>`` branch when none is given."""

    model = Initiative
    branch_prefix = "cw/"

    def find_by_status(self, status: str) -> list[Initiative]:
        check_choice(InitiativeStatus, status, "status")
        return list(self.queryset().filter(status=status))

    def create(self, **fields: Any) -> Initiative:
        given = fields.pop("branch", None)
        if given:
            return super().create(**fields, branch=given)
        branch_field = self.model._meta.get_field("branch")
        # Room for "-<n>" so a suffixed branch still fits the column.
        slug = slugify(fields.get("name") or "")[
            : branch_field.max_length - len(self.branch_prefix) - 8
        ]
        base = self.branch_prefix + (slug.strip("-") or "initiative")
        # A racing creator may take the same branch between our check and our insert: the
        # unique index refuses it and we move on to the next free suffix.
        taken = set(
            self.model.objects.filter(branch__startswith=base).values_list("branch", flat=True)
        )
        suffix = 1
        while True:
            branch = base if suffix == 1 else f"{base}-{suffix}"
            suffix += 1
            if branch in taken:
                continue
            try:
                return super().create(**fields, branch=branch)
            except Conflict:
                taken.add(branch)
                if len(taken) > 10_000:  # pathological: never seen, but never loop forever
                    raise


def _id_of(fields: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Whether ``fields`` sets relation ``name`` (as ``name`` or ``name_id``), and its id."""
    if f"{name}_id" in fields:
        return True, fields[f"{name}_id"]
    if name in fields:
        value = fields[name]
        return True, getattr(value, "pk", value)
    return False, None


def _ancestor_ids(model: type[models.Model], parent_attname: str, start_id: Any) -> set[Any]:
    """``start_id`` and every record above it along ``parent_attname`` (one query a level)."""
    seen: set[Any] = set()
    current = start_id
    while current is not None and current not in seen:
        seen.add(current)
        current = model.objects.filter(pk=current).values_list(parent_attname, flat=True).first()
    return seen


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
        if not (isinstance(node_id, str) and isinstance(depends_on_id, str)):
            raise InvalidInput(
                f"A {label} dependency is given as two ids.",
                code="invalid_id",
                details={"id": str(node_id), "depends_on_id": str(depends_on_id)},
            )
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
    #: A phase stays in its initiative (its dependency edges are the initiative's).
    read_only_fields = Repository.read_only_fields | {"initiative"}
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

    #: A task stays in its initiative; it may move between that initiative's phases.
    read_only_fields = Repository.read_only_fields | {"initiative"}

    def create(self, **fields: Any) -> Task:
        """Create a task, keeping phase, initiative and parent consistent.

        A task with a phase takes the phase's initiative; a subtask given neither takes
        its parent's phase and initiative; a parent must share the task's initiative.
        """
        self._check_field_names(fields, action="create")
        phase_id = _id_of(fields, "phase")[1]
        initiative_id = _id_of(fields, "initiative")[1]
        parent_id = _id_of(fields, "parent_task")[1]
        if parent_id is not None and phase_id is None and initiative_id is None:
            parent = Task.objects.filter(pk=parent_id).values("phase_id", "initiative_id").first()
            if parent is None:
                raise not_found("Task", parent_id)
            phase_id, initiative_id = parent["phase_id"], parent["initiative_id"]
        if phase_id is not None:
            phase_initiative = self._initiative_of_phase(phase_id)
            if initiative_id is not None and initiative_id != phase_initiative:
                raise InvalidInput(
                    "A task's initiative must be its phase's initiative.",
                    code="task_initiative_mismatch",
                )
            initiative_id = phase_initiative
        for name in ("phase", "initiative", "parent_task"):
            fields.pop(name, None)
        fields.update(phase_id=phase_id, initiative_id=initiative_id, parent_task_id=parent_id)
        self._check_parent(None, parent_id, initiative_id)
        return super().create(**fields)

    def apply(self, obj: Task, /, **fields: Any) -> Task:
        """Update a task; a new phase must be of its initiative, a new parent too (and
        not the task itself or one of its subtasks)."""
        self._check_field_names(fields, action="update")
        has_phase, phase_id = _id_of(fields, "phase")
        if (
            has_phase
            and phase_id is not None
            and self._initiative_of_phase(phase_id) != obj.initiative_id
        ):
            raise InvalidInput(
                "A task can move only to a phase of its own initiative.",
                code="task_initiative_mismatch",
            )
        has_parent, parent_id = _id_of(fields, "parent_task")
        if has_parent:
            self._check_parent(obj.pk, parent_id, obj.initiative_id)
        return super().apply(obj, **fields)

    @staticmethod
    def _initiative_of_phase(phase_id: Any) -> Any:
        row = Phase.objects.filter(pk=phase_id).values_list("initiative_id", flat=True)
        found = list(row[:1])
        if not found:
            raise not_found("Phase", phase_id)
        return found[0]

    @staticmethod
    def _check_parent(task_id: Any, parent_id: Any, initiative_id: Any) -> None:
        if parent_id is None:
            return
        parent = Task.objects.filter(pk=parent_id).values_list("initiative_id", flat=True)
        found = list(parent[:1])
        if not found:
            raise not_found("Task", parent_id)
        if found[0] != initiative_id:
            raise InvalidInput(
                "A subtask must belong to its parent task's initiative.",
                code="task_parent_mismatch",
            )
        if task_id is not None and task_id in _ancestor_ids(Task, "parent_task_id", parent_id):
            raise InvalidInput(
                "A task cannot be the subtask of itself or of one of its own subtasks.",
                code="task_parent_cycle",
            )

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

    read_only_fields = Repository.read_only_fields | {"initiative"}

    def apply(self, obj: Page, /, **fields: Any) -> Page:
        """Update a page; a new parent must be a page of its initiative that is not the
        page itself or below it, and the root stays the root."""
        has_parent, parent_id = _id_of(fields, "parent_page")
        if has_parent and parent_id != obj.parent_page_id:
            if obj.parent_page_id is None or parent_id is None:
                raise InvalidInput(
                    "The root page stays the root, and every other page has a parent.",
                    code="page_root_fixed",
                )
            parent_initiative = (
                Page.objects.filter(pk=parent_id).values_list("initiative_id", flat=True).first()
            )
            if parent_initiative is None:
                raise not_found("Page", parent_id)
            if parent_initiative != obj.initiative_id:
                raise InvalidInput(
                    "A page's parent must belong to the same initiative.",
                    code="page_parent_mismatch",
                )
            if obj.pk in _ancestor_ids(Page, "parent_page_id", parent_id):
                raise InvalidInput(
                    "A page cannot be placed under itself or one of its own pages.",
                    code="page_parent_cycle",
                )
        return super().apply(obj, **fields)

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
        try:
            ids = None if isinstance(project_ids, str | None) else list(project_ids)
        except TypeError:
            ids = None
        if ids is None or not all(isinstance(pk, str) for pk in ids):
            raise InvalidInput(
                "project_ids must be a list of project ids.", code="invalid_project_ids"
            )
        wanted = list(dict.fromkeys(ids))
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
