"""How review records are found and stored: the seed's Proposal, ReviewComment and
ChatSession repositories, and the ChangeSet repository the accept/revert flows need.

As in ``core.repositories``: the base's generic writes are protected, and each repository
offers explicit, typed methods for what its table allows. Statuses are lifecycle fields:
a proposal is accepted or dismissed, a chat session closed, a change set reverted, each
exactly once, never by a plain update. Other tables are read only through their own
repositories' named accessors.
"""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NotRequired, TypedDict, TypeVar

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import Agent
from agents.repositories import AgentRepository
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import Initiative, Phase
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    PageRepository,
    PhaseRepository,
    Repository,
    RevertibleRecords,
    TaskRepository,
    check_choice,
    check_keyset_page,
    check_offset_page,
    hot,
    invalid_cursor,
    offset_page,
    offset_slice,
    record_store,
    relation_id,
    require_text,
    validation_error_details,
)
from reviews.models import (
    ChangeAction,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetSource,
    ChangeSetStatus,
    ChatMessage,
    ChatRole,
    ChatSession,
    ChatSessionStatus,
    ChatTargetType,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
    ReviewLineType,
)

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


class _ReviewRepository(Repository[M]):
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


class _InitiativeOwnedRepository(_ReviewRepository[M]):
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


# --- proposals ---------------------------------------------------------------------------


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


class ProposalRepository(RevertibleRecords[Proposal], _InitiativeOwnedRepository[Proposal]):
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
    read_only_fields = _InitiativeOwnedRepository.read_only_fields | {
        "agent",
        "initiative",
        "target_type",
        "target_id",
    }
    lifecycle_fields = frozenset({"status"})

    def create(self, **fields: Unpack[ProposalFields]) -> Proposal:
        """Store a pending proposal.

        Refuses metadata that is not a JSON object (``proposal_metadata_invalid``), a
        target that does not exist (NotFound ``proposal_target_missing``) or belongs to
        another initiative (``proposal_target_elsewhere``), and what the model's
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
                code="proposal_metadata_invalid",
                details={"key": "metadata"},
            )

    @staticmethod
    def check_target(target_type: str, target_id: str, initiative_id: str | None) -> None:
        """Refuse a target that does not exist (NotFound ``proposal_target_missing``) or
        belongs to another initiative than ``initiative_id`` (``proposal_target_elsewhere``)."""
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
                code="proposal_target_elsewhere",
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

    def find(
        self,
        *,
        agent_id: str | None = None,
        initiative_id: str | None = None,
        status: str | None = None,
        target_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Proposal]:
        """One page of proposals matching every filter given.

        Page either by ``offset`` or by ``after`` (the id of the last proposal of the
        previous page: a keyset cursor, stable while rows are added); not both. An
        unknown cursor is ``invalid_cursor``. One query, two with a cursor.
        """
        if after is not None and offset:
            raise InvalidInput(
                "Page by offset or by cursor, not both.",
                code="invalid_pagination",
                details={"offset": offset, "after": after},
            )
        qs = self._filtered(
            agent_id=agent_id, initiative_id=initiative_id, status=status, target_type=target_type
        )
        if after is not None:
            cursor = (
                self.model._default_manager.filter(pk=after)
                .values_list("sort_order", "created_at")
                .first()
            )
            if cursor is None:
                raise invalid_cursor(after)
            sort_order, created_at = cursor
            qs = qs.filter(
                Q(sort_order__gt=sort_order)
                | Q(sort_order=sort_order, created_at__gt=created_at)
                | Q(sort_order=sort_order, created_at=created_at, id__gt=after)
            )
        return list(offset_slice(qs, limit=limit, offset=offset))

    def find_page_rows(
        self,
        *,
        agent_id: str | None = None,
        initiative_id: str | None = None,
        status: str | None = None,
        target_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> OffsetPage[dict[str, Any]]:
        """The page ``find`` answers (by offset), as plain rows (every column, foreign
        keys by their ``_id`` names), with how many match in all: two prepared
        statements (one when the page is the last), never a model instance, for lists
        that are only serialized."""
        check_offset_page(limit, offset)
        filters = {
            "agent_id": agent_id,
            "initiative_id": initiative_id,
            "status": status,
            "target_type": target_type,
        }
        items, total = _PROPOSAL_LISTING.page(
            connections[DEFAULT_DB_ALIAS], filters, limit=limit, offset=offset
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


# --- review comments -----------------------------------------------------------------------


class ReviewCommentFields(TypedDict):
    file_path: str
    line_number: int
    line_type: str
    body: str
    phase: NotRequired[Phase]
    phase_id: NotRequired[str]
    author: NotRequired[str]


class ReviewCommentChanges(TypedDict, total=False):
    file_path: str
    line_number: int
    line_type: str
    body: str
    author: str


_COMMENT_LISTING = hot.Listing(ReviewComment)


class ReviewCommentRepository(_ReviewRepository[ReviewComment]):
    """Inline comments on a phase's diff.

    A comment stays on its phase; its file path is one line without tabs, its line
    number at least 1. ``resolve``/``unresolve`` are idempotent: asking for the state a
    comment is already in returns it unchanged, without a write (so ``updated_at`` does
    not move).
    """

    model = ReviewComment
    slug = "review_comment"
    label = "Review comment"
    read_only_fields = _ReviewRepository.read_only_fields | {"phase"}
    lifecycle_fields = frozenset({"resolved"})

    def create(self, **fields: Unpack[ReviewCommentFields]) -> ReviewComment:
        """Add a comment to a phase's diff.

        Refuses a blank body, author or file path, a file path over several lines, a
        line number below 1, an unknown line type (InvalidInput) and a phase that does
        not exist (NotFound ``phase_not_found``).
        """
        values: dict[str, Any] = {"author": "you", **fields}
        self._check_field_names(values, action="create")
        self._check_values(values)
        has_phase, phase_id = relation_id(values, "phase")
        if has_phase:
            PhaseRepository().require(phase_id)
        return self._create(**values)

    def update(
        self, comment: ReviewComment | str, /, **changes: Unpack[ReviewCommentChanges]
    ) -> ReviewComment:
        """Change a comment's text, author or place in the diff, with the checks of
        ``create``; it stays on its phase and is resolved through ``resolve``."""
        values: dict[str, Any] = dict(changes)
        self._check_field_names(values, action="update")
        self._check_values(values)
        return self._update(comment, **values)

    def update_body(self, id: str, body: str) -> ReviewComment:
        """Replace a comment's text (a blank body is ``empty_body``); returns the comment."""
        return self.update(id, body=body)

    def delete(self, id: str) -> bool:
        """Delete a comment; False when there was none."""
        return self._delete(id)

    def resolve(self, id: str) -> ReviewComment:
        """Mark a comment resolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, True)

    def unresolve(self, id: str) -> ReviewComment:
        """Mark a comment unresolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, False)

    def resolve_many(self, ids: list[str]) -> int:
        """Mark the comments of ``ids`` resolved in one statement; returns how many changed."""
        return self._update_many(
            self.model._default_manager.filter(pk__in=ids, resolved=False), resolved=True
        )

    def _set_resolved(self, id: str, resolved: bool) -> ReviewComment:
        comment = self.get(id)
        if comment.resolved == resolved:
            return comment
        return self._transition(comment, resolved=resolved)

    @staticmethod
    def _check_values(values: dict[str, Any]) -> None:
        """The checks every write of the given fields shares, in one order."""
        for name in ("file_path", "body", "author"):
            if name in values:
                require_text(values[name], name)
        if "line_number" in values:
            line_number = values["line_number"]
            # bool is an int: True would otherwise be stored as line 1.
            if isinstance(line_number, bool) or not isinstance(line_number, int) or line_number < 1:
                raise InvalidInput(
                    "The line number must be a whole number of at least 1.",
                    code="invalid_line_number",
                    details={"line_number": str(line_number)},
                )
        if "line_type" in values:
            check_choice(ReviewLineType, values["line_type"], "line_type")
        if "file_path" in values and any(c in values["file_path"] for c in "\r\n\t"):
            raise InvalidInput(
                "A file path is one line, without tabs.",
                code="invalid_file_path",
                details={"field": "file_path"},
            )

    # --- reads ---------------------------------------------------------------------

    def find_by_phase_id(
        self, phase_id: str, *, unresolved_only: bool = False
    ) -> list[ReviewComment]:
        """A phase's comments ordered by file, line, then creation time."""
        qs = self.queryset().filter(phase_id=phase_id)
        if unresolved_only:
            qs = qs.filter(resolved=False)
        return list(qs)

    def find_page(
        self,
        phase_id: str,
        *,
        resolved: bool | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> OffsetPage[ReviewComment]:
        """One offset page of a phase's comments (optionally only resolved or only open
        ones) with how many there are in all; two queries whatever the page size."""
        qs = self.queryset().filter(phase_id=phase_id)
        if resolved is not None:
            qs = qs.filter(resolved=resolved)
        return offset_page(qs, limit=limit, offset=offset)

    def find_page_rows(
        self,
        phase_id: str,
        *,
        resolved: bool | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> OffsetPage[dict[str, Any]]:
        """The page ``find_page`` answers, as plain rows (``values()``): for lists that are
        only serialized."""
        check_offset_page(limit, offset)
        items, total = _COMMENT_LISTING.page(
            connections[DEFAULT_DB_ALIAS],
            {"phase_id": phase_id, "resolved": resolved},
            limit=limit,
            offset=offset,
        )
        return OffsetPage(items=items, total=total, limit=limit, offset=offset)


# --- chat sessions and their messages --------------------------------------------------------


class ChatSessionChanges(TypedDict, total=False):
    status: str
    agent: Agent | None
    agent_id: str | None


class _ChatMessageStore(Repository[ChatMessage]):
    """Validation, saving and reading of chat messages, on behalf of ChatSessionRepository
    (a message is only ever written through ``ChatSessionRepository.create_message``)."""

    model = ChatMessage
    slug = "chat_message"
    label = "Chat message"


class ChatSessionRepository(_InitiativeOwnedRepository[ChatSession]):
    """Chat sessions on a phase or task, and their messages.

    A session is opened only by ``create_session``, which checks its target; it stays on
    that target and initiative. A target has at most one ``active`` session: the partial
    unique constraint ``chat_sessions_one_active_per_target`` decides, so two racing
    callers cannot both win; the loser gets Conflict ``chat_session_already_active``.
    Messages are added only to an active session.
    """

    model = ChatSession
    slug = "chat_session"
    label = "Chat session"
    read_only_fields = _InitiativeOwnedRepository.read_only_fields | {
        "target_type",
        "target_id",
        "initiative",
    }
    lifecycle_fields = frozenset({"status"})
    #: What ``update_session`` may change.
    session_fields: ClassVar[frozenset[str]] = frozenset({"status", "agent", "agent_id"})

    def __init__(self) -> None:
        self._messages = _ChatMessageStore()

    def create_session(
        self,
        *,
        target_type: str,
        target_id: str,
        initiative_id: str,
        agent_id: str | None = None,
    ) -> ChatSession:
        """Open an active session on a phase or task of ``initiative_id``.

        Refuses an unknown target type (InvalidInput), a missing target or agent
        (NotFound ``phase_not_found`` / ``task_not_found`` / ``agent_not_found``), a
        target of another initiative (InvalidInput ``target_not_in_initiative``) and a
        target that already has an active session (Conflict ``chat_session_already_active``).
        """
        check_choice(ChatTargetType, target_type, "target_type")
        if target_initiative_id(target_type, target_id) != initiative_id:
            raise InvalidInput(
                f"{target_type.capitalize()} '{target_id}' does not belong to initiative "
                f"'{initiative_id}'.",
                code="target_not_in_initiative",
                details={"target_id": str(target_id), "initiative_id": str(initiative_id)},
            )
        if agent_id is not None:
            AgentRepository().require(agent_id)
        return self._create(
            target_type=target_type,
            target_id=target_id,
            initiative_id=initiative_id,
            agent_id=agent_id,
            status=ChatSessionStatus.ACTIVE,
        )

    def update_session(
        self, session: ChatSession | str, /, **changes: Unpack[ChatSessionChanges]
    ) -> ChatSession:
        """Change a session's status or agent (nothing else: its target and initiative
        are fixed).

        An unknown status is ``invalid_status``, another field ``invalid_field``, a
        missing agent NotFound ``agent_not_found``; reopening a session whose target has
        another active one is Conflict ``chat_session_already_active``.
        """
        values: dict[str, Any] = dict(changes)
        refused = sorted(set(values) - self.session_fields)
        if refused:
            raise InvalidInput(
                f"Cannot update {', '.join(refused)} of a chat session.",
                code="invalid_field",
                details={"fields": refused},
            )
        if "status" in values:
            check_choice(ChatSessionStatus, values["status"], "status")
        has_agent, agent_id = relation_id(values, "agent")
        if has_agent and agent_id is not None:
            AgentRepository().require(agent_id)
        return self._transition(
            session if isinstance(session, ChatSession) else self.get(session), **values
        )

    def close_session(self, id: str) -> ChatSession:
        """Close an active session and return it; exactly once (Conflict
        ``chat_session_closed`` when it is already closed)."""
        return self._update_once(
            id,
            when={"status": ChatSessionStatus.ACTIVE},
            refusal=lambda session: self.closed(session.pk),
            status=ChatSessionStatus.CLOSED,
        )

    def restore_messages(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert chat messages as an export recorded them (see ``restore``)."""
        return self._messages.restore(rows)

    def create_message(
        self,
        *,
        chat_session_id: str,
        role: str,
        content: str,
        change_set_id: str | None = None,
    ) -> ChatMessage:
        """Append a message to an active session.

        Refuses an unknown role or blank content (InvalidInput), a missing session or
        change set (NotFound), a change set of another initiative (InvalidInput
        ``change_set_not_in_initiative``) and a closed session (Conflict
        ``chat_session_closed``). The session row is locked while the message is
        written, so a concurrent close cannot slip in between check and insert.
        """
        check_choice(ChatRole, role, "role")
        require_text(content, "content")
        with transaction.atomic():
            session = self.get_for_update(chat_session_id)
            if session.status != ChatSessionStatus.ACTIVE:
                raise self.closed(chat_session_id)
            if (
                change_set_id is not None
                and ChangeSetRepository().initiative_id_of(change_set_id) != session.initiative_id
            ):
                raise InvalidInput(
                    f"Change set '{change_set_id}' belongs to another initiative.",
                    code="change_set_not_in_initiative",
                    details={"change_set_id": str(change_set_id)},
                )
            return self._messages._create(
                chat_session_id=chat_session_id,
                role=role,
                content=content,
                change_set_id=change_set_id,
            )

    @staticmethod
    def closed(id: str) -> Conflict:
        """The refusal of a write that needs an active session."""
        return Conflict(
            f"Chat session '{id}' is closed.",
            code="chat_session_closed",
            details={"id": str(id)},
        )

    # --- reads ---------------------------------------------------------------------

    def find_active_session(self, target_type: str, target_id: str) -> ChatSession | None:
        """The active session on a target, or None."""
        check_choice(ChatTargetType, target_type, "target_type")
        return (
            self.queryset()
            .filter(target_type=target_type, target_id=target_id, status=ChatSessionStatus.ACTIVE)
            .first()
        )

    def find_active_session_by_agent_id(self, agent_id: str) -> ChatSession | None:
        """The agent's active session, or None; the most recent one should an agent hold
        several (the schema does not forbid it)."""
        return (
            self.queryset()
            .filter(agent_id=agent_id, status=ChatSessionStatus.ACTIVE)
            .order_by("-created_at", "-id")
            .first()
        )

    def find_ids_by_target(self, target_type: str, target_id: str) -> list[str]:
        """The ids of every session, active or closed, on a phase or task."""
        check_choice(ChatTargetType, target_type, "target_type")
        return list(
            self.model._default_manager.filter(
                target_type=target_type, target_id=target_id
            ).values_list("pk", flat=True)
        )

    def find_messages_by_session_id(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[ChatMessage]:
        """A session's messages, oldest first: all of them, or one keyset page of
        ``limit`` (the pagination contract's bounds, never clamped).

        ``after`` is the id of a message of this session: only later messages are
        returned (a polling cursor); an id that is not one is ``invalid_cursor``.
        """
        if limit is not None:
            check_keyset_page(limit, after)
        qs = self._messages.queryset().filter(chat_session_id=session_id)
        if after is not None:
            created_at = qs.filter(pk=after).values_list("created_at", flat=True).first()
            if created_at is None:
                raise invalid_cursor(after)
            qs = qs.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=after))
        qs = qs.order_by("created_at", "id")
        return list(qs if limit is None else qs[:limit])

    def _integrity_refusal(self, obj: ChatSession, error: IntegrityError) -> DomainError:
        refusal = super()._integrity_refusal(obj, error)
        if refusal.code != "chat_session_already_active":
            return refusal
        return Conflict(
            f"{obj.target_type.capitalize()} '{obj.target_id}' already has an active chat session.",
            code="chat_session_already_active",
            details={"target_type": obj.target_type, "target_id": obj.target_id},
        )


# --- change sets ---------------------------------------------------------------------------


class ChangeSetRepository(_InitiativeOwnedRepository[ChangeSet]):
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
                code="missing_source_reference",
                details={"field": "proposal_id"},
            )
        if source == ChangeSetSource.CHAT and chat_session_id is None:
            raise InvalidInput(
                "A change set from a chat must name the chat session.",
                code="missing_source_reference",
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
