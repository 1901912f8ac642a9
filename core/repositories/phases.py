"""Phases of an initiative, with their dependency graph."""

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from typing_extensions import Unpack

from core.models import Initiative, Phase, PhaseDependency, PhaseStatus, TaskDependency
from core.repositories.base import RevertibleRecords
from core.repositories.dependencies import DependencyRepository
from core.repositories.pagination import DEFAULT_PAGE_SIZE, OffsetPage, offset_page
from core.repositories.readiness import KeepsReadyQueue, Scope
from core.repositories.validation import check_choice


class PhaseFields(TypedDict):
    initiative: NotRequired[Initiative]
    initiative_id: NotRequired[str]
    name: str
    content: NotRequired[str | None]
    status: NotRequired[str]


class PhaseChanges(TypedDict, total=False):
    name: str
    content: str | None


class PhaseRepository(
    KeepsReadyQueue[Phase], RevertibleRecords[Phase], DependencyRepository[Phase]
):
    model = Phase
    slug = "phase"
    label = "Phase"
    #: A phase stays in its initiative (its dependency edges are the initiative's).
    read_only_fields = DependencyRepository.read_only_fields | {"initiative"}
    lifecycle_fields = frozenset({"status", "blocked_from_status"})
    edge_model = PhaseDependency
    edge_from = "phase"
    edge_to = "depends_on_phase"
    #: A phase's status decides for its tasks and for the tasks of the phases after it.
    ready_fields = frozenset({"status"})

    def _ready_scope(self, ids: Sequence[Any]) -> Scope:
        found = frozenset(str(pk) for pk in ids)
        return Scope(phase_ids=found, dependents_of_phases=found)

    def _ready_scope_of_delete(self, ids: Sequence[Any]) -> Scope:
        # Its tasks go with it; the phases after it and the tasks (of other phases)
        # depending on its tasks each lose an edge. Read now, while the edges exist.
        later = PhaseDependency.objects.filter(depends_on_phase_id__in=list(ids))
        waiting = TaskDependency.objects.filter(depends_on_task__phase_id__in=list(ids))
        return Scope(
            phase_ids=frozenset(later.values_list("phase_id", flat=True)),
            task_ids=frozenset(waiting.values_list("task_id", flat=True)),
        )

    def _edges_scope(self, ids: Sequence[Any]) -> Scope:
        return Scope(phase_ids=frozenset(str(pk) for pk in ids))

    def find_by_initiative_id(self, initiative_id: str) -> list[Phase]:
        return list(self.queryset().filter(initiative_id=initiative_id))

    def find_page(
        self,
        *,
        initiative_id: str | None = None,
        status: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Phase]:
        """One offset page of the phases (of an initiative, in a status), oldest first,
        with the total: two queries."""
        qs = self.queryset().order_by("created_at", "id")
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        if status is not None:
            qs = qs.filter(status=check_choice(PhaseStatus, status, "status"))
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def initiative_id_of(self, phase_id: str) -> str:
        """The id of the phase's initiative (``phase_not_found`` when there is none)."""
        found = (
            self.model._default_manager.filter(pk=phase_id)
            .values_list("initiative_id", flat=True)
            .first()
        )
        if found is None:
            raise self.not_found(phase_id)
        return found

    def names_in_initiative(self, initiative_id: str) -> list[tuple[str, str]]:
        """The ``(id, name)`` of each of the initiative's phases, oldest first."""
        return list(
            self.model._default_manager.filter(initiative_id=initiative_id)
            .order_by("created_at", "id")
            .values_list("pk", "name")
        )

    def find_by_ids(self, ids: list[str]) -> list[Phase]:
        """The phases of ``ids`` that exist, oldest first."""
        return list(self.queryset().filter(pk__in=ids).order_by("created_at", "id"))

    def find_in_initiative(self, phase_id: str, initiative_id: str) -> Phase | None:
        """The phase, when it belongs to ``initiative_id``; else None."""
        return self.queryset().filter(pk=phase_id, initiative_id=initiative_id).first()

    def count_open(self, initiative_id: str) -> int:
        """How many of the initiative's phases are not completed."""
        return (
            self.model._default_manager.filter(initiative_id=initiative_id)
            .exclude(status=PhaseStatus.COMPLETED)
            .count()
        )

    def create(self, **fields: Unpack[PhaseFields]) -> Phase:
        """Add a phase to an initiative (pending unless a status is given)."""
        if "status" in fields:
            check_choice(PhaseStatus, fields["status"], "status")
        return self._create(**fields)

    def update(self, phase: Phase | str, /, **changes: Unpack[PhaseChanges]) -> Phase:
        """Change a phase's name or content (its status moves through the services)."""
        return self._update(phase, **changes)

    def set_status(
        self, phase: Phase, status: str, *, blocked_from_status: str | None = None
    ) -> Phase:
        """Record a lifecycle transition the services decided (``core.services``)."""
        return self._transition(
            phase,
            status=check_choice(PhaseStatus, status, "status"),
            blocked_from_status=blocked_from_status,
        )

    def delete(self, id: str) -> bool:
        """Delete a phase with its tasks and dependency edges."""
        return self._delete(id)
