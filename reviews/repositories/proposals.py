"""Proposals: an agent's suggested change to a page, phase or task, accepted or dismissed
exactly once."""

from typing import Any, NotRequired, TypedDict

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Count, F, Min
from typing_extensions import Unpack

from agents.models import Agent
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Initiative
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    RevertibleRecords,
    check_choice,
    check_offset_page,
    hot,
    offset_page,
    relation_id,
)
from core.repositories.base import seed_only
from reviews.models import Proposal, ProposalStatus, ProposalTargetType
from reviews.repositories.base import InitiativeOwnedRepository, target_initiative_id


class ProposalFields(TypedDict):
    target_type: str
    title: str
    agent: NotRequired[Agent]
    agent_id: NotRequired[str]
    initiative: NotRequired[Initiative]
    initiative_id: NotRequired[str]
    target_id: NotRequired[str | None]
    summary: NotRequired[str | None]
    content: NotRequired[str | None]
    metadata: NotRequired[dict[str, Any] | None]
    sort_order: NotRequired[int]


class ProposalChanges(TypedDict, total=False):
    title: str
    summary: str | None
    content: str | None
    metadata: dict[str, Any] | None
    sort_order: int


_PROPOSAL_LISTING = hot.Listing(Proposal)


class ProposalRepository(RevertibleRecords[Proposal], InitiativeOwnedRepository[Proposal]):
    """Proposals by agent, status and initiative; accept/dismiss; counts by status.

    A proposal stays with its agent, initiative and target; its target, when it names
    one, is a record of its initiative; its metadata is a JSON object (or null). Its
    status moves only through ``accept``/``dismiss`` (exactly once, from pending) or
    ``set_status``. Lists are ordered ``sort_order, created_at, id`` (the model's
    ordering), which is also the keyset the ``after`` cursor of ``find()`` pages through.
    """

    model = Proposal
    slug = "proposal"
    label = "Proposal"
    read_only_fields = InitiativeOwnedRepository.read_only_fields | {
        "agent",
        "initiative",
        "target_type",
        "target_id",
    }
    lifecycle_fields = frozenset({"status"})

    def create(self, **fields: Unpack[ProposalFields]) -> Proposal:
        """Store a pending proposal.

        Refuses metadata that is not a JSON object (``invalid_metadata``), a
        target that does not exist (NotFound ``proposal_target_missing``) or belongs to
        another initiative (``proposal_target_other_initiative``), and what the model's
        validation refuses (``validation_failed``: an unknown target type, a blank title).
        """
        values: dict[str, Any] = dict(fields)
        self._check_field_names(values, action="create")
        self._check_metadata(values.get("metadata"))
        target_type, target_id = values.get("target_type"), values.get("target_id")
        if target_id is not None and target_type in ProposalTargetType.values:
            self.check_target(target_type, target_id, relation_id(values, "initiative")[1])
        return self._insert(Proposal(**values))

    def update(self, proposal: Proposal | str, /, **changes: Unpack[ProposalChanges]) -> Proposal:
        """Change a proposal's title, summary, content, metadata or sort order (its agent,
        initiative and target are fixed; its status moves through ``accept``/``dismiss``)."""
        if "metadata" in changes:
            self._check_metadata(changes["metadata"])
        return self._update(proposal, **changes)

    def delete(self, id: str) -> bool:
        """Delete a proposal; its change sets keep their history (their link is cleared)."""
        return self._delete(id)

    def set_status(self, proposal: Proposal, status: str) -> Proposal:
        """Record a status the services decided (``accept``/``dismiss`` are the exactly-once
        moves out of pending)."""
        return self._transition(proposal, status=check_choice(ProposalStatus, status, "status"))

    def accept(self, proposal: Proposal | str) -> Proposal:
        """Mark a pending proposal accepted and return it as stored; exactly once (Conflict
        ``proposal_not_pending`` when it is no longer pending)."""
        return self._leave_pending(proposal, ProposalStatus.ACCEPTED)

    def dismiss(self, proposal: Proposal | str) -> Proposal:
        """Mark a pending proposal dismissed and return it as stored; exactly once (Conflict
        ``proposal_not_pending`` when it is no longer pending)."""
        return self._leave_pending(proposal, ProposalStatus.DISMISSED)

    def dismiss_pending_of_agent(self, agent_id: str) -> int:
        """Dismiss every pending proposal of an agent in one statement; returns how many."""
        return self.update_many_by_agent_id(
            agent_id, status=ProposalStatus.DISMISSED, only_status=ProposalStatus.PENDING
        )

    def update_many_by_agent_id(
        self,
        agent_id: str,
        data: dict[str, Any] | None = None,
        /,
        *,
        only_status: str | None = None,
        **fields: Any,
    ) -> int:
        """Set ``data`` (or keyword ``fields``) on every proposal of an agent, or only on
        those now in ``only_status``; returns how many rows changed.

        The seed's ``updateManyByAgentId(agentId, data)``: one UPDATE that also moves
        ``updated_at``. Only ``status`` and ``sort_order`` may be set this way.
        """
        changes = {**(data or {}), **fields}
        unknown = sorted(set(changes) - {"status", "sort_order"})
        if unknown or not changes:
            raise InvalidInput(
                "Only status and sort_order can be set on all of an agent's proposals.",
                code="invalid_field",
                details={"fields": unknown},
            )
        if "status" in changes:
            check_choice(ProposalStatus, changes["status"], "status")
        qs = self.model._default_manager.filter(agent_id=agent_id)
        if only_status is not None:
            qs = qs.filter(status=check_choice(ProposalStatus, only_status, "status"))
        return self._update_many(qs, **changes)

    def _leave_pending(self, proposal: Proposal | str, status: str) -> Proposal:
        return self._update_once(
            proposal.pk if isinstance(proposal, Proposal) else proposal,
            when={"status": ProposalStatus.PENDING},
            refusal=self.not_pending,
            status=status,
        )

    @staticmethod
    def not_pending(proposal: Proposal) -> Conflict:
        """The refusal of a proposal that was already accepted or dismissed."""
        return Conflict(
            f"Proposal '{proposal.title}' is already {proposal.status}.",
            code="proposal_not_pending",
            details={"id": proposal.pk, "status": proposal.status},
        )

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInput(
                "A proposal's metadata must be a JSON object.",
                code="invalid_metadata",
                details={"key": "metadata"},
            )

    @staticmethod
    def check_target(target_type: str, target_id: str, initiative_id: str | None) -> None:
        """Refuse a target that does not exist (NotFound ``proposal_target_missing``) or
        belongs to another initiative than ``initiative_id``
        (``proposal_target_other_initiative``)."""
        try:
            owner = target_initiative_id(target_type, target_id)
        except NotFound:
            raise NotFound(
                f"There is no {target_type} '{target_id}' to change.",
                code="proposal_target_missing",
                details={"target_type": target_type, "target_id": target_id},
            ) from None
        if owner != initiative_id:
            raise InvalidInput(
                f"The {target_type} '{target_id}' belongs to another initiative.",
                code="proposal_target_other_initiative",
                details={"target_type": target_type, "target_id": target_id},
            )

    # --- reads ---------------------------------------------------------------------

    def find_by_ids(self, ids: list[str]) -> list[Proposal]:
        """The proposals of ``ids`` that exist, in the model's order."""
        return list(self.queryset().filter(pk__in=ids))

    def lock_pending_of_agent(self, agent_id: str) -> list[Proposal]:
        """An agent's pending proposals, locked, in the order they are applied (the
        model's: sort order, then age). Inside ``transaction.atomic()`` only."""
        self._require_atomic("lock_pending_of_agent")
        return list(
            self.queryset()
            .select_for_update()
            .filter(agent_id=agent_id, status=ProposalStatus.PENDING)
        )

    def find_by_agent_id_and_status(
        self, agent_id: str, status: str | None = None
    ) -> list[Proposal]:
        """Every proposal of an agent, optionally only those in ``status`` (validated)."""
        qs = self.queryset().filter(agent_id=agent_id)
        if status is not None:
            qs = qs.filter(status=check_choice(ProposalStatus, status, "status"))
        return list(qs)

    @seed_only
    def count_by_agent_id_and_status(self, agent_id: str, status: str) -> int:
        """How many proposals of an agent are in ``status`` (the seed's call shape)."""
        check_choice(ProposalStatus, status, "status")
        return self.model._default_manager.filter(agent_id=agent_id, status=status).count()

    def count_by_agent_id_per_status(self, agent_id: str) -> dict[str, int]:
        """How many proposals an agent has in each status; every status is a key (zero
        when none), counted in one grouped query."""
        rows = (
            self.model._default_manager.filter(agent_id=agent_id)
            .order_by()
            .values("status")
            .annotate(n=Count("id"))
        )
        counts = dict.fromkeys(ProposalStatus.values, 0)
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    def find_page_rows(
        self,
        *,
        agent_id: str | None = None,
        initiative_id: str | None = None,
        status: str | None = None,
        target_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[dict[str, Any]]:
        """One offset page of the proposals matching every filter given, as plain rows
        (every column, foreign keys by their ``_id`` names), with how many match in all:
        two prepared statements (one when the page is the last), never a model instance,
        for lists that are only serialized."""
        check_offset_page(limit, offset)
        filters = {
            "agent_id": agent_id,
            "initiative_id": initiative_id,
            "status": status,
            "target_type": target_type,
        }
        items, total = _PROPOSAL_LISTING.page(
            connections[DEFAULT_DB_ALIAS], filters, limit=limit, offset=offset, max_bytes=max_bytes
        )
        return OffsetPage(items=items, total=total, limit=limit, offset=offset)

    def count(
        self,
        *,
        agent_id: str | None = None,
        initiative_id: str | None = None,
        status: str | None = None,
        target_type: str | None = None,
    ) -> int:
        """How many proposals match the filters of ``find()`` (all of them when none)."""
        return self._filtered(
            agent_id=agent_id, initiative_id=initiative_id, status=status, target_type=target_type
        ).count()

    def pending_counts_by_agent(
        self, *, initiative_id: str | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> OffsetPage[dict[str, Any]]:
        """Pending proposals counted per agent (of an initiative when given): rows of
        ``agent_id``, ``agent_name``, ``pending`` and ``oldest_at``, most pending first
        (then the longest waiting); one page of ``limit`` with how many agents have
        any. Two queries whatever the number of proposals."""
        qs = self.model._default_manager.filter(status=ProposalStatus.PENDING)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        grouped = (
            qs.order_by()
            .values("agent_id", agent_name=F("agent__name"))
            .annotate(pending=Count("pk"), oldest_at=Min("created_at"))
            .order_by("-pending", "oldest_at", "agent_id")
        )
        return offset_page(grouped, limit=limit)

    def _filtered(
        self,
        *,
        agent_id: str | None,
        initiative_id: str | None,
        status: str | None,
        target_type: str | None,
    ) -> models.QuerySet[Proposal]:
        qs = self.queryset()
        if agent_id is not None:
            qs = qs.filter(agent_id=agent_id)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        if status is not None:
            qs = qs.filter(status=check_choice(ProposalStatus, status, "status"))
        if target_type is not None:
            qs = qs.filter(target_type=check_choice(ProposalTargetType, target_type, "target_type"))
        return qs
