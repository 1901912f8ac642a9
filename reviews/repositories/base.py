"""What the reviews' repositories share: exactly-once conditional updates, the records
that belong to one initiative, and the targets of proposals and chat sessions."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models

from core.errors import DomainError
from core.repositories import PageRepository, PhaseRepository, Repository, TaskRepository
from reviews.models import ProposalTargetType

M = TypeVar("M", bound=models.Model)

#: The repository of each kind of record a proposal or a chat session targets.
TARGET_REPOSITORIES: dict[str, PageRepository | PhaseRepository | TaskRepository] = {
    ProposalTargetType.PAGE: PageRepository(),
    ProposalTargetType.PHASE: PhaseRepository(),
    ProposalTargetType.TASK: TaskRepository(),
}


def target_initiative_id(target_type: str, target_id: str) -> str | None:
    """The initiative the page, phase or task ``target_id`` belongs to (None for a task
    in no initiative); NotFound ``<target_type>_not_found`` when there is no such record.

    The one answer to "which initiative owns this target" for proposals and chat sessions.
    """
    return TARGET_REPOSITORIES[target_type].initiative_id_of(target_id)


class ReviewRepository(Repository[M]):
    """What the reviews' repositories share: exactly-once conditional updates."""

    def _update_once(
        self,
        id: str,
        /,
        *,
        when: dict[str, Any],
        refusal: Callable[[M], DomainError],
        **fields: Any,
    ) -> M:
        """Set ``fields`` on the record only while it still matches ``when``, in one
        conditional UPDATE (which also moves ``updated_at``), and return it as stored.

        Of two callers racing for the same change exactly one wins; the other, like any
        caller finding the record no longer matching, gets ``refusal(record)``. A missing
        record is ``<slug>_not_found``.
        """
        changed = self._update_many(
            self.model._default_manager.filter(pk=id, **when),
            **fields,
        )
        record = self.get(id)
        if not changed:
            raise refusal(record)
        return record


class InitiativeOwnedRepository(ReviewRepository[M]):
    """Records that belong to one initiative (proposals, chat sessions, change sets)."""

    def initiative_id_of(self, id: str) -> str:
        """The id of the record's initiative (``<slug>_not_found`` when there is none)."""
        found = (
            self.model._default_manager.filter(pk=id)
            .values_list("initiative_id", flat=True)
            .first()
        )
        if found is None:
            raise self.not_found(id)
        return found
