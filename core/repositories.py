"""How planning records are found and stored: the seed's Initiative, Phase, Task, Page and
Project repositories, and the ``Repository`` base every cw repository builds on."""

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, not_found

M = TypeVar("M", bound=models.Model)


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

    def update(self, id: Any, **fields: Any) -> M:
        obj = self.get(id)
        return self.apply(obj, **fields)

    def apply(self, obj: M, **fields: Any) -> M:
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
