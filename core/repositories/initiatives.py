"""Initiatives: found by status, created with a unique ``cw/<slug>`` branch."""

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from django.utils.text import slugify
from typing_extensions import Unpack

from core.errors import Conflict
from core.models import ExecutionMode, Initiative, InitiativeStatus
from core.repositories.base import seed_only
from core.repositories.pagination import DEFAULT_PAGE_SIZE, OffsetPage, offset_page
from core.repositories.readiness import KeepsReadyQueue, Scope
from core.repositories.validation import check_choice


class InitiativeFields(TypedDict):
    name: str
    branch: NotRequired[str | None]
    execution_mode: NotRequired[str]
    status: NotRequired[str]


class InitiativeChanges(TypedDict, total=False):
    name: str
    branch: str
    execution_mode: str


class InitiativeRepository(KeepsReadyQueue[Initiative]):
    """Initiatives; creating one gives it a unique ``cw/<slug>`` branch when none is given."""

    model = Initiative
    slug = "initiative"
    label = "Initiative"
    lifecycle_fields = frozenset({"status"})
    branch_prefix = "cw/"
    #: An archived initiative's tasks are never ready.
    ready_fields = frozenset({"status"})

    def _ready_scope(self, ids: Sequence[Any]) -> Scope:
        return Scope(initiative_ids=frozenset(str(pk) for pk in ids))

    def _ready_scope_of_delete(self, ids: Sequence[Any]) -> Scope:
        # Nothing outside an initiative depends on what it holds.
        return Scope()

    @seed_only
    def find_by_status(self, status: str) -> list[Initiative]:
        check_choice(InitiativeStatus, status, "status")
        return list(self.queryset().filter(status=status))

    def find_page(
        self,
        *,
        status: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Initiative]:
        """One offset page of the initiatives (of ``status`` when given), oldest first,
        with the total: two queries."""
        qs = self.queryset().order_by("created_at", "id")
        if status is not None:
            qs = qs.filter(status=check_choice(InitiativeStatus, status, "status"))
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def name_of(self, id: str) -> str:
        """The initiative's name (``initiative_not_found`` when there is none)."""
        name = self.model._default_manager.filter(pk=id).values_list("name", flat=True).first()
        if name is None:
            raise self.not_found(id)
        return name

    def names_by_name(self) -> list[tuple[str, str]]:
        """Every initiative's ``(id, name)``, by name (one query)."""
        return list(self.model._default_manager.order_by("name").values_list("pk", "name"))

    def names_of(self, ids: list[str]) -> dict[str, str]:
        """The names of the initiatives of ``ids`` that exist, by id (one query)."""
        return dict(
            self.model._default_manager.filter(pk__in=ids).values_list("pk", "name").order_by()
        )

    def create(self, **fields: Unpack[InitiativeFields]) -> Initiative:
        """Create an initiative; without a ``branch`` one is made from its name
        (``cw/user-auth``, then ``cw/user-auth-2``, … when taken)."""
        given = fields.pop("branch", None)
        if given:
            return self._create(**fields, branch=given)
        branch_length = Initiative._meta.get_field("branch").max_length or 255
        # Room for "-<n>" so a suffixed branch still fits the column.
        slug = slugify(fields.get("name") or "")[: branch_length - len(self.branch_prefix) - 8]
        base = self.branch_prefix + (slug.strip("-") or "initiative")
        # A racing creator may take the same branch between our check and our insert: the
        # unique index refuses it and we move on to the next free suffix.
        taken = set(
            self.model._default_manager.filter(branch__startswith=base).values_list(
                "branch", flat=True
            )
        )
        suffix = 1
        while True:
            branch = base if suffix == 1 else f"{base}-{suffix}"
            suffix += 1
            if branch in taken:
                continue
            try:
                return self._create(**fields, branch=branch)
            except Conflict:
                taken.add(branch)
                if len(taken) > 10_000:  # pathological: never seen, but never loop forever
                    raise

    def update(
        self, initiative: Initiative | str, /, **changes: Unpack[InitiativeChanges]
    ) -> Initiative:
        """Change an initiative's name, branch or execution mode (status moves only
        through the lifecycle services)."""
        if "execution_mode" in changes:
            check_choice(ExecutionMode, changes["execution_mode"], "execution_mode")
        return self._update(initiative, **changes)

    def set_status(self, initiative: Initiative, status: str) -> Initiative:
        """Record a lifecycle transition the services decided (``core.services``)."""
        return self._transition(initiative, status=check_choice(InitiativeStatus, status, "status"))

    def delete(self, id: str) -> bool:
        """Delete an initiative with everything it owns (phases, tasks, pages, links)."""
        return self._delete(id)
