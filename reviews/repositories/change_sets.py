"""Change sets: what an accepted proposal or a chat edit changed, with their entries,
reverted exactly once."""

from collections.abc import Sequence
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput
from core.repositories import (
    Repository,
    check_choice,
    offset_slice,
    record_store,
    validation_error_details,
)
from reviews.models import ChangeAction, ChangeSet, ChangeSetEntry, ChangeSetSource, ChangeSetStatus
from reviews.repositories.base import InitiativeOwnedRepository


class ChangeSetRepository(InitiativeOwnedRepository[ChangeSet]):
    """Change sets (what an accepted proposal or a chat edit changed) and their entries.

    History: a change set and its entries are written once, together, and never edited;
    the one later write is ``mark_reverted`` (exactly once), which keeps the history
    rather than deleting it.
    """

    model = ChangeSet
    slug = "change_set"
    label = "Change set"
    entry_model: ClassVar[type[ChangeSetEntry]] = ChangeSetEntry
    entry_fields: ClassVar[frozenset[str]] = frozenset(
        {"entity_type", "entity_id", "action", "before", "after"}
    )

    def create(
        self,
        *,
        initiative_id: str,
        source: str,
        proposal_id: str | None = None,
        chat_session_id: str | None = None,
        description: str = "",
        entries: list[dict[str, Any]],
    ) -> ChangeSet:
        """Record a change set and its entries (sort_order = position) atomically.

        A ``proposal`` change set names its proposal and a ``chat`` one its session;
        there is at least one entry; each entry has ``entity_type``, ``entity_id``,
        ``action`` and the ``before`` a revert needs (none for a create, and no
        ``after`` for a delete). The entries go in with one bulk insert.
        """
        check_choice(ChangeSetSource, source, "source")
        if source == ChangeSetSource.PROPOSAL and proposal_id is None:
            raise InvalidInput(
                "A change set from a proposal must name the proposal.",
                code="change_set_source_missing",
                details={"field": "proposal_id"},
            )
        if source == ChangeSetSource.CHAT and chat_session_id is None:
            raise InvalidInput(
                "A change set from a chat must name the chat session.",
                code="change_set_source_missing",
                details={"field": "chat_session_id"},
            )
        if not entries:
            raise InvalidInput(
                "A change set needs at least one entry.", code="empty_change_set", details={}
            )
        change_set = ChangeSet(
            initiative_id=initiative_id,
            source=source,
            proposal_id=proposal_id,
            chat_session_id=chat_session_id,
            description=description,
        )
        rows = [self._build_entry(change_set, index, entry) for index, entry in enumerate(entries)]
        with transaction.atomic():
            self._insert(change_set)
            self.entry_model._default_manager.bulk_create(rows)
        return change_set

    def restore_entries(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert change-set entries as an export recorded them (see ``restore``)."""
        return self._entries.restore(rows)

    #: Its entries' store (created with the class, so its codes are always found).
    _entries: ClassVar[Repository[ChangeSetEntry]] = record_store(
        ChangeSetEntry, "change_set_entry", "Change set entry"
    )

    def mark_reverted(self, id: str) -> ChangeSet:
        """Mark an applied change set reverted (stamping ``reverted_at``) and return it.

        Exactly once: of two concurrent reverts one wins; the other, like any revert of
        a reverted set, is Conflict ``change_set_already_reverted``.
        """
        return self._update_once(
            id,
            when={"status": ChangeSetStatus.APPLIED},
            refusal=self.already_reverted,
            status=ChangeSetStatus.REVERTED,
            reverted_at=timezone.now(),
        )

    @staticmethod
    def already_reverted(change_set: ChangeSet) -> Conflict:
        """The refusal of a second revert."""
        return Conflict(
            f"Change set '{change_set.pk}' is already reverted.",
            code="change_set_already_reverted",
            details={"id": str(change_set.pk), "status": change_set.status},
        )

    # --- reads ---------------------------------------------------------------------

    def find_with_entries(self, id: str) -> ChangeSet | None:
        """A change set with its entries prefetched (in order), or None."""
        return self._with_entries(self.queryset().filter(pk=id)).first()

    def get_with_entries(self, id: str) -> ChangeSet:
        """Like ``find_with_entries`` but raises NotFound ``change_set_not_found``."""
        change_set = self.find_with_entries(id)
        if change_set is None:
            raise self.not_found(id)
        return change_set

    def find_with_entries_by_ids(self, ids: list[str]) -> list[ChangeSet]:
        """Several change sets with their entries, in the order of ``ids`` (two queries)."""
        found = {cs.pk: cs for cs in self._with_entries(self.queryset().filter(pk__in=ids))}
        return [found[pk] for pk in ids if pk in found]

    def find_entries(self, id: str, *, newest_first: bool = False) -> list[ChangeSetEntry]:
        """A change set's entries in the order they were recorded (or the reverse)."""
        order = "-sort_order" if newest_first else "sort_order"
        return list(self.entry_model._default_manager.filter(change_set_id=id).order_by(order))

    def find_by_initiative_id(
        self, initiative_id: str, *, with_entries: bool = False, limit: int | None = None
    ) -> list[ChangeSet]:
        """An initiative's change sets, newest first: all of them, or the first offset
        page of ``limit`` (entries prefetched on request)."""
        qs = self.queryset().filter(initiative_id=initiative_id)
        if with_entries:
            qs = self._with_entries(qs)
        return list(qs if limit is None else offset_slice(qs, limit=limit))

    def find_by_proposal_id(
        self, proposal_id: str, *, with_entries: bool = False
    ) -> list[ChangeSet]:
        """The change sets an accepted proposal produced, newest first."""
        qs = self.queryset().filter(proposal_id=proposal_id)
        if with_entries:
            qs = self._with_entries(qs)
        return list(qs)

    def _with_entries(self, qs: models.QuerySet[ChangeSet]) -> models.QuerySet[ChangeSet]:
        return qs.prefetch_related(
            models.Prefetch(
                "entries", queryset=self.entry_model._default_manager.order_by("sort_order")
            )
        )

    def _build_entry(
        self, change_set: ChangeSet, index: int, entry: dict[str, Any]
    ) -> ChangeSetEntry:
        def refuse(message: str, **details: Any) -> InvalidInput:
            return InvalidInput(message, code="invalid_entry", details={"index": index, **details})

        if not isinstance(entry, dict):
            raise refuse(f"Entry {index} is not a mapping.")
        unknown = sorted(set(entry) - self.entry_fields)
        missing = sorted({"entity_type", "entity_id", "action"} - set(entry))
        if unknown or missing:
            raise refuse(
                f"Entry {index} has unknown or missing fields.", unknown=unknown, missing=missing
            )
        action = entry["action"]
        if action == ChangeAction.CREATE and entry.get("before") is not None:
            raise refuse(f"Entry {index} creates a record, so it has no 'before'.")
        if action in (ChangeAction.UPDATE, ChangeAction.DELETE) and entry.get("before") is None:
            raise refuse(f"Entry {index} needs the 'before' values a revert restores.")
        if action == ChangeAction.DELETE and entry.get("after") is not None:
            raise refuse(f"Entry {index} deletes a record, so it has no 'after'.")
        row = self.entry_model(change_set=change_set, sort_order=index, **entry)
        try:
            # The change set is not saved yet; its foreign key is checked by the insert.
            row.full_clean(
                exclude=["change_set"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            raise refuse(
                f"Entry {index} is invalid.", fields=validation_error_details(error)
            ) from error
        return row
