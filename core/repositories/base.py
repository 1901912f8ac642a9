"""The ``Repository`` base every cw repository builds on.

A repository is the only way to write to its table. The base gives each one protected
helpers (``_create``, ``_insert``, ``_update``, ``_delete``, ``_update_many``) and public
reads (``find_by_id``, ``get``, ``get_for_update``, ``find_all``, ``count``); each
repository then offers explicit, typed methods for what its table allows, named as in
the seed (``create``, ``update``, ``delete``, ``mark_exhausted``, ``answer``, …).

Writes validate field values (choices, lengths, validators, required, storable text,
32-bit integers) before touching the database and turn a refusal by the database into
a domain error with the constraint's own code and message; each write runs in its own
savepoint so a refusal never poisons the caller's transaction.
"""

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
    models,
    transaction,
)
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.repositories import hot
from core.repositories.pagination import MAX_PAGE_SIZE, check_offset_page
from core.repositories.validation import (
    check_json_depth,
    outside_int32,
    unstorable_datetime,
    unstorable_text,
)

M = TypeVar("M", bound=models.Model)

#: Rows a ``restore`` inserts (and puts ``updated_at`` back on) per statement.
RESTORE_BATCH = 250


F = TypeVar("F", bound=Callable[..., Any])


def seed_only(method: F) -> F:
    """Marks a method the seed's repository names that no cw code calls yet: kept (and
    tested) so the repository offers the seed's whole interface. A test keeps the mark
    honest: a marked method that production code calls, or an unmarked one it never
    calls, fails ``tests/core/test_seed_methods.py``."""
    method.seed_only = True  # type: ignore[attr-defined]
    return method


def planned(issue: int) -> Callable[[F], F]:
    """Marks a method built, with its records, for services of ``issue`` that are not
    written yet (an issue delivered in slices: records and repositories first). The same
    test as ``seed_only`` keeps it honest: once production code calls the method, the
    mark must go."""

    def mark(method: F) -> F:
        method.planned_for = issue  # type: ignore[attr-defined]
        return method

    return mark


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


def violated_constraint(
    model: type[models.Model], error: IntegrityError
) -> models.BaseConstraint | None:
    """The model's constraint a database refusal names, when it can be told.

    PostgreSQL names the constraint in the error's diagnostics; SQLite names a CHECK
    constraint in its message and a unique one by its columns.
    """
    constraints = list(model._meta.constraints)
    diag = getattr(error.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    text = str(error)
    for constraint in constraints:
        if constraint.name == name or (
            name is None
            and (f": {constraint.name}" in text or f"index '{constraint.name}'" in text)
        ):
            return constraint
    if "UNIQUE constraint failed: " in text:
        columns = {part.split(".")[-1] for part in text.split(": ", 1)[1].split(", ")}
        for constraint in constraints:
            fields = getattr(constraint, "fields", ())
            if fields and {_column(model, f) for f in fields} == columns:
                return constraint
    return None


def _column(model: type[models.Model], name: str) -> str | None:
    field = model._meta.get_field(name)
    return field.column if isinstance(field, models.Field) else None


def validation_error_details(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            field: [str(m) for e in errs for m in e.messages]
            for field, errs in error.error_dict.items()
        }
    return {"__all__": [str(m) for m in error.messages]}


def relation_id(fields: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Whether ``fields`` sets relation ``name`` (as ``name`` or ``name_id``), and its id."""
    if f"{name}_id" in fields:
        return True, fields[f"{name}_id"]
    if name in fields:
        value = fields[name]
        return True, getattr(value, "pk", value)
    return False, None


class Repository(Generic[M]):
    """Reads and protected writes for one model (see the module docstring).

    Subclasses set ``model``, ``slug`` (the record's name in error codes, e.g.
    ``review_comment`` in ``review_comment_not_found``: declared, never derived from a
    label, so renaming a label cannot change the API) and ``label`` (its name in
    messages).
    """

    model: ClassVar[type[models.Model]]
    slug: ClassVar[str]
    label: ClassVar[str]
    select_related: ClassVar[tuple[str, ...]] = ()
    #: Fields ``_update()`` refuses to touch (ids and bookkeeping).
    read_only_fields: ClassVar[frozenset[str]] = frozenset({"id", "created_at", "updated_at"})
    #: Fields only the lifecycle services change (through ``_transition``), never an edit.
    lifecycle_fields: ClassVar[frozenset[str]] = frozenset()

    def queryset(self) -> models.QuerySet[M]:
        qs: models.QuerySet[M] = self.model._default_manager.all()  # type: ignore[assignment]
        return qs.select_related(*self.select_related) if self.select_related else qs

    def not_found(self, id: Any) -> NotFound:
        """The refusal of a missing record: ``<slug>_not_found`` with the id."""
        return NotFound(
            f"{self.label} '{id}' does not exist.",
            code=f"{self.slug}_not_found",
            details={"id": str(id)},
        )

    # --- reads ---------------------------------------------------------------------

    def find_by_id(self, id: Any) -> M | None:
        return self.queryset().filter(pk=id).first()

    def get(self, id: Any) -> M:
        """Like ``find_by_id`` but raises ``NotFound`` (code ``<slug>_not_found``)."""
        obj = self.find_by_id(id)
        if obj is None:
            raise self.not_found(id)
        return obj

    def find_by_ids(self, ids: list[Any]) -> list[M]:
        """The records with these ids that exist (in no particular order)."""
        return list(self.queryset().filter(pk__in=ids))

    def exists(self, id: Any) -> bool:
        """Whether a record has this id. Every door checks ids with it (``require``), so
        a text id is looked up with one prepared statement, not a compiled queryset."""
        pk = self.model._meta.pk
        if isinstance(id, str) and isinstance(pk, models.CharField):
            db = connections[DEFAULT_DB_ALIAS]
            return bool(hot.fetch_all(db, _exists_sql(db.vendor, self.model), [id]))
        return self.model._default_manager.filter(pk=id).exists()

    def existing_ids(self, ids: Iterable[Any]) -> set[Any]:
        """Which of ``ids`` name a record (one query per ``RESTORE_BATCH`` ids)."""
        wanted = list(dict.fromkeys(ids))
        manager = self.model._default_manager
        return {
            id
            for start in range(0, len(wanted), RESTORE_BATCH)
            for id in manager.filter(pk__in=wanted[start : start + RESTORE_BATCH]).values_list(
                "pk", flat=True
            )
        }

    def require(self, id: Any) -> None:
        """Refuse an id that names no record (``<slug>_not_found``); reads nothing else."""
        if not self.exists(id):
            raise self.not_found(id)

    def get_for_update(self, id: Any, /) -> M:
        """``get`` that also locks the row until the transaction ends.

        A row lock on PostgreSQL; on SQLite the immediate transaction already holds the
        database's write lock. Call it inside ``transaction.atomic()``: outside one a
        lock would end at once, so that is refused as a programming error.
        """
        self._require_atomic("get_for_update")
        obj = self.model._default_manager.select_for_update().filter(pk=id).first()
        if obj is None:
            raise self.not_found(id)
        return obj  # type: ignore[return-value]

    def lock_many(self, ids: Iterable[Any]) -> None:
        """Lock the rows of ``ids`` in id order (one order everywhere: no deadlock)."""
        self._require_atomic("lock_many")
        list(
            self.model._default_manager.select_for_update()
            .filter(pk__in=list(ids))
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    @seed_only
    def find_all(self, *, limit: int | None = None, offset: int = 0) -> list[M]:
        """Every record (the seed's ``findAll``), or one offset page of them when
        ``limit`` is given (the pagination contract's bounds; never clamped)."""
        if limit is None:
            check_offset_page(MAX_PAGE_SIZE, offset)
            return list(self.queryset()[offset:] if offset else self.queryset())
        check_offset_page(limit, offset)
        return list(self.queryset()[offset : offset + limit])

    def count(self) -> int:
        return self.model._default_manager.count()

    def count_per(self, field: str, **filters: Any) -> Coalesce:
        """How many of this table's rows (matching ``filters``) have ``field`` equal to
        the outer row's id: a subquery expression (0 when none) to annotate another
        table's rows with, e.g. each phase's tasks with ``count_per("phase_id")``."""
        found = (
            self.model._default_manager.filter(**{field: OuterRef("pk")}, **filters)
            .order_by()
            .values(field)
            .annotate(n=models.Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(found, output_field=models.IntegerField()), Value(0))

    def _ancestor_ids(self, parent_attname: str, start_id: Any) -> set[Any]:
        """``start_id`` and every record above it along ``parent_attname`` (one query a
        level), for the trees of tasks and pages."""
        seen: set[Any] = set()
        current = start_id
        manager = self.model._default_manager
        while current is not None and current not in seen:
            seen.add(current)
            current = manager.filter(pk=current).values_list(parent_attname, flat=True).first()
        return seen

    def check_update_fields(self, fields: Iterable[str]) -> None:
        """Refuse the names an update may not set (``invalid_field``): unknown ones,
        ids and bookkeeping, and the fields only the lifecycle services change. A
        service that finds an update would change nothing checks this before skipping
        the write, so a forbidden field is refused either way."""
        self._check_field_names(dict.fromkeys(fields), action="update")

    # --- protected writes ------------------------------------------------------------

    def _create(self, **fields: Any) -> M:
        """Validate and insert a record built from ``fields`` (names checked)."""
        self._check_field_names(fields, action="create")
        return self._insert(self.model(**fields))  # type: ignore[arg-type]

    def _insert(self, obj: M) -> M:
        """Validate and insert a record already built."""
        self._validate(obj)
        self._save(obj, force_insert=True)
        return obj

    def _update(self, target: M | Any, /, **fields: Any) -> M:
        """Set ``fields`` on a record (an instance already loaded, or an id) and save only
        those columns, moving ``updated_at``."""
        self._check_field_names(fields, action="update")
        return self._write(target, fields)

    def _transition(self, target: M, /, **fields: Any) -> M:
        """Like ``_update`` but may set ``lifecycle_fields``: for the lifecycle
        services' status changes only."""
        self._check_field_names(fields, action="update", lifecycle=True)
        return self._write(target, fields)

    def _write(self, target: M | Any, fields: dict[str, Any]) -> M:
        obj = target if isinstance(target, self.model) else self.get(target)
        for name, value in fields.items():
            setattr(obj, name, value)
        update_fields = [field.attname for name in fields if (field := self._field(name))]
        if self._has_updated_at():
            obj.updated_at = timezone.now()  # type: ignore[attr-defined]
            update_fields.append("updated_at")
        self._validate(obj, only=fields.keys())  # type: ignore[arg-type]
        self._save(obj, update_fields=update_fields)  # type: ignore[arg-type]
        return obj  # type: ignore[return-value]

    def _delete(self, id: Any) -> bool:
        """Delete by id; True when a record was deleted, False when there was none."""
        deleted, _ = self.model._default_manager.filter(pk=id).delete()
        return deleted > 0

    def restore(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert records exactly as an export recorded them: ids, timestamps and
        lifecycle states included, which no other write may set. For ``cw_import``
        only (``operations.transfer``), which checks the rules that span records.

        ``rows`` map column attribute names (``phase_id``, not ``phase``) to values the
        fields accept. Each row is validated as any insert is (``_validate``; a refusal
        carries its position in ``details["index"]``), except that the records its
        foreign keys name are not looked up one by one: the caller checks them in bulk,
        and the database's foreign keys refuse the rest when the transaction commits.
        The rows are then inserted in batches in one savepoint, so a refusal by the
        database (a taken id or name) writes nothing. Returns the count.
        """
        model = self.model
        objs: list[M] = []
        for index, values in enumerate(rows):
            unknown = sorted(set(values) - _attnames(model))
            try:
                if unknown:
                    raise InvalidInput(
                        f"A {self.label.lower()} has no {', '.join(unknown)}.",
                        code="invalid_field",
                        details={"fields": unknown},
                    )
                obj = model(**values)
                self._validate(obj, references=False)  # type: ignore[arg-type]
            except DomainError as error:
                error.details = {**error.details, "index": index, "id": values.get("id")}
                raise
            objs.append(obj)  # type: ignore[arg-type]
        if not objs:
            return 0
        try:
            with transaction.atomic():
                model._default_manager.bulk_create(objs, batch_size=RESTORE_BATCH)
                if self._has_updated_at():
                    # ``auto_now`` stamped every row with now: put the recorded times back.
                    self._put_back_updated_at(rows)
        except IntegrityError as error:
            raise self._integrity_refusal(objs[0], error) from error
        except DataError as error:
            raise InvalidInput(
                f"A value of a {self.label.lower()} cannot be stored (too long or out of range).",
                code="invalid_value",
            ) from error
        return len(objs)

    def _put_back_updated_at(self, rows: Sequence[dict[str, Any]]) -> None:
        field = self.model._meta.get_field("updated_at")
        recorded = [
            (values["id"], field.to_python(values["updated_at"]))  # type: ignore[union-attr]
            for values in rows
            if values.get("updated_at") is not None
        ]
        manager = self.model._default_manager
        for start in range(0, len(recorded), RESTORE_BATCH):
            batch = recorded[start : start + RESTORE_BATCH]
            manager.filter(pk__in=[id for id, _ in batch]).update(
                updated_at=models.Case(
                    *(models.When(pk=id, then=models.Value(at)) for id, at in batch),
                    output_field=models.DateTimeField(),
                )
            )

    def _update_many(self, qs: models.QuerySet, **fields: Any) -> int:
        """``QuerySet.update()`` that also moves ``updated_at`` (which ``update()`` skips)."""
        if self._has_updated_at():
            fields.setdefault("updated_at", timezone.now())
        return qs.update(**fields)

    # --- helpers -------------------------------------------------------------------

    @staticmethod
    def _require_atomic(method: str) -> None:
        if not transaction.get_connection().in_atomic_block:
            raise TransactionManagementError(f"{method}() needs an atomic block.")

    def _has_updated_at(self) -> bool:
        return any(f.name == "updated_at" for f in self.model._meta.concrete_fields)

    def _field(self, name: str) -> models.Field | None:
        """The concrete field called ``name`` (by name or column attribute, e.g. phase_id)."""
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return next((f for f in self.model._meta.concrete_fields if f.attname == name), None)
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
            return None
        return field

    def _check_field_names(
        self, fields: dict[str, Any], *, action: str, lifecycle: bool = False
    ) -> None:
        fixed = (
            self.read_only_fields if lifecycle else self.read_only_fields | self.lifecycle_fields
        )
        read_only = {f.name for name in fixed if (f := self._field(name))}
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

    def _validate(
        self, obj: M, only: Iterable[str] | None = None, *, references: bool = True
    ) -> None:
        """Refuse values no database stores alike, then run the model's own validation
        (field validators, choices, lengths, required) on the checked fields.
        ``references=False`` leaves out looking up the records foreign keys name (a
        query each), for a caller that checked them in bulk."""
        fields = list(type(obj)._meta.concrete_fields)
        if only is not None:
            changed = {field.name for name in only if (field := self._field(name))}
            fields = [f for f in fields if f.name in changed]
        errors: dict[str, list[str]] = {}
        for field in fields:
            value = getattr(obj, field.attname)
            # First, so the walks below (and ``full_clean``'s ``json.dumps``) only ever
            # see a bounded depth.
            check_json_depth(value, field.name)
            if unstorable_text(value):
                errors[field.name] = ["contains a NUL character or invalid Unicode"]
            elif outside_int32(field, value):
                errors[field.name] = ["must be a whole number within 32 bits"]
            elif unstorable_datetime(value):
                errors[field.name] = ["must be a date and time between the years 1 and 9998"]
        # An empty id names no record, yet ``full_clean`` skips a blank foreign key's
        # lookup: left to the database, the (deferred) foreign key would fail the commit.
        empty_references = {
            field.name: ["names no record (an empty id)"]
            for field in fields
            if field.is_relation and getattr(obj, field.attname) == ""
        }
        if empty_references:
            raise InvalidInput(
                f"Invalid {self.label.lower()}: "
                + "; ".join(f"{name} names no record" for name in sorted(empty_references))
                + ".",
                code="invalid_reference",
                details={"fields": empty_references},
            )
        if errors:
            raise InvalidInput(
                f"Invalid {self.label.lower()}: "
                + "; ".join(f"{name} {errors[name][0]}" for name in sorted(errors))
                + ".",
                code="invalid_value",
                details={"fields": errors},
            )
        exclude = [
            f.name
            for f in type(obj)._meta.concrete_fields
            if f not in fields or (not references and f.is_relation)
        ]
        try:
            obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            details = validation_error_details(error)
            message = f"Invalid {self.label.lower()}: " + "; ".join(
                f"{name}: {' '.join(msgs)}" for name, msgs in sorted(details.items())
            )
            if _only_missing_references(obj, error):
                # A foreign key naming no record: the code the database's refusal of the
                # same write gets.
                raise InvalidInput(
                    message, code="invalid_reference", details={"fields": details}
                ) from error
            raise InvalidInput(
                message, code="validation_failed", details={"fields": details}
            ) from error

    def _save(self, obj: M, **kwargs: Any) -> None:
        """Save in a savepoint; a refusal by the database becomes a coded domain error,
        and an update of a row deleted since it was read ``<slug>_not_found``."""
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
        except DatabaseError as error:
            if kwargs.get("update_fields") is not None and _updated_no_row(error):
                # Deleted between the read and this write (a caller that did not lock
                # the row, or a DELETE that committed first): gone, as for any reader.
                raise self.not_found(obj.pk) from error
            raise

    def _integrity_refusal(self, obj: M, error: IntegrityError) -> DomainError:
        """The domain error for a write the database refused: the violated constraint's
        own code and message when it can be told, else one by the kind of refusal.
        Subclasses may name their own cases first and defer to this otherwise."""
        kind = integrity_error_kind(error)
        # The record's own model: a dependency repository also saves its edge rows.
        constraint = violated_constraint(type(obj), error)
        if constraint is not None and constraint.violation_error_code:
            cls = Conflict if kind == "unique" else InvalidInput
            return cls(
                str(constraint.violation_error_message),
                code=constraint.violation_error_code,
                details={"constraint": constraint.name},
            )
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


def _updated_no_row(error: DatabaseError) -> bool:
    """Whether ``error`` is Django's own "Save with update_fields did not affect any
    rows": a plain ``DatabaseError`` raised by the model's save, not one of the driver's
    (those are subclasses, or carry the driver's error as their cause)."""
    return type(error) is DatabaseError and error.__cause__ is None


def _only_missing_references(obj: models.Model, error: ValidationError) -> bool:
    """Every message of ``error`` is a foreign key's "not a valid choice" (no such record)."""
    by_field = getattr(error, "error_dict", None)
    if not by_field:
        return False
    relations = {f.name for f in obj._meta.concrete_fields if f.is_relation}
    return all(
        name in relations and all(e.code == "invalid" for e in errors)
        for name, errors in by_field.items()
    )


class RevertibleRecords(Repository[M]):
    """What a change-set revert may do to a repository's table (``reviews.services.
    change_sets``), and nothing else may: put recorded column values back exactly,
    ``updated_at`` included, which no edit does. Mixed into the repositories of the
    tables a change set may touch, so the revert never reaches the generic helpers."""

    def revert_create(self, id: Any) -> bool:
        """Remove a record the change set created (True when there was one)."""
        return self._delete(id)

    def revert_update(self, id: Any, values: dict[str, Any]) -> int:
        """Put back the column values (by attribute name) a record had before."""
        return self._update_many(self.model._default_manager.filter(pk=id), **values)

    def revert_delete(self, values: dict[str, Any]) -> M:
        """Insert again a record the change set deleted, validated, with its recorded
        values (``updated_at`` included)."""
        record = self._insert(self.model(**values))  # type: ignore[arg-type]
        self._update_many(self.model._default_manager.filter(pk=record.pk), **values)
        return record


@functools.cache
def record_store(model: type[M], slug: str, label: str) -> Repository[M]:
    """A repository for a table written only on behalf of another repository (the edges
    of a dependency graph, a change set's entries, a chat session's messages): its
    owner validates, saves and restores those rows through it. One per model (cached):
    its ``slug`` names its codes (``<slug>_not_found``), declared in the catalogue."""
    store = type(
        f"_{model.__name__}Store", (Repository,), {"model": model, "slug": slug, "label": label}
    )
    return store()


@functools.cache
def _attnames(model: type[models.Model]) -> frozenset[str]:
    return frozenset(field.attname for field in model._meta.concrete_fields)


@functools.cache
def _exists_sql(vendor: str, model: type[models.Model]) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return (
        f"SELECT 1 FROM {quote(model._meta.db_table)} "  # noqa: S608 - identifiers only
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
