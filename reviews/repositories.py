"""How review records are found and stored: the seed's Proposal, ReviewComment and
ChatSession repositories, and the ChangeSet repository the accept/revert flows need."""

from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Agent
from core.errors import Conflict, DomainError, InvalidInput, not_found
from core.models import Phase, Task
from core.repositories import (
    Repository,
    check_choice,
    check_offset_page,
    integrity_error_kind,
    invalid_cursor,
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


def _page(qs: models.QuerySet, *, limit: int | None, offset: int = 0) -> models.QuerySet:
    """``qs`` cut to one offset page (the pagination contract), or whole when ``limit``
    is None (internal callers that need every row)."""
    if limit is None:
        return qs
    check_offset_page(limit, offset)
    return qs[offset : offset + limit]


# --- proposals ---------------------------------------------------------------------------


class ProposalRepository(Repository[Proposal]):
    """Proposals by agent, status and initiative; bulk accept/dismiss; counts by status.

    Lists are ordered ``sort_order, created_at, id`` (the model's ordering), which is
    also the keyset the ``after`` cursor of ``find()`` pages through.
    """

    model = Proposal
    slug = "proposal"
    label = "Proposal"

    def create(self, **fields: Any) -> Proposal:
        return self._create(**fields)

    def update(self, proposal: Proposal | str, /, **changes: Any) -> Proposal:
        return self._update(proposal, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def find_by_agent_id_and_status(
        self, agent_id: str, status: str | None = None
    ) -> list[Proposal]:
        """Every proposal of an agent, optionally only those in ``status`` (validated)."""
        qs = self.queryset().filter(agent_id=agent_id)
        if status is not None:
            qs = qs.filter(status=check_choice(ProposalStatus, status, "status"))
        return list(qs)

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
        limit: int = 50,
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
        return list(_page(qs, limit=limit, offset=offset))

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

    def _filtered(
        self,
        *,
        agent_id: str | None,
        initiative_id: str | None,
        status: str | None,
        target_type: str | None,
    ) -> models.QuerySet:
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


class ReviewCommentRepository(Repository[ReviewComment]):
    """Inline comments on a phase's diff.

    ``resolve``/``unresolve`` are idempotent: asking for the state a comment is already
    in returns it unchanged, without a write (so ``updated_at`` does not move).
    """

    model = ReviewComment
    slug = "review_comment"
    label = "Review comment"

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def create(
        self,
        *,
        phase_id: str,
        file_path: str,
        line_number: int,
        line_type: str,
        body: str,
        author: str = "you",
    ) -> ReviewComment:
        """Add a comment to a phase's diff.

        Refuses a blank body or file path, a line number below 1, an unknown line type
        (InvalidInput) and a phase that does not exist (NotFound ``phase_not_found``).
        """
        require_text(file_path, "file_path")
        require_text(body, "body")
        require_text(author, "author")
        # bool is an int: True would otherwise be stored as line 1.
        if isinstance(line_number, bool) or not isinstance(line_number, int) or line_number < 1:
            raise InvalidInput(
                "The line number must be a whole number of at least 1.",
                code="invalid_line_number",
                details={"line_number": str(line_number)},
            )
        check_choice(ReviewLineType, line_type, "line_type")
        if isinstance(file_path, str) and any(c in file_path for c in "\r\n\t"):
            raise InvalidInput(
                "A file path is one line, without tabs.",
                code="invalid_file_path",
                details={"field": "file_path"},
            )
        if not Phase.objects.filter(pk=phase_id).exists():
            raise not_found("Phase", phase_id)
        return self._create(
            phase_id=phase_id,
            file_path=file_path,
            line_number=line_number,
            line_type=line_type,
            body=body,
            author=author,
        )

    def find_by_phase_id(
        self, phase_id: str, *, unresolved_only: bool = False
    ) -> list[ReviewComment]:
        """A phase's comments ordered by file, line, then creation time."""
        qs = self.queryset().filter(phase_id=phase_id)
        if unresolved_only:
            qs = qs.filter(resolved=False)
        return list(qs)

    def find_page(
        self, phase_id: str, *, resolved: bool | None = None, limit: int, offset: int = 0
    ) -> tuple[list[ReviewComment], int]:
        """One page of a phase's comments (optionally only resolved or only open ones)
        and how many there are in all; two queries whatever the page size."""
        qs = self.queryset().filter(phase_id=phase_id)
        if resolved is not None:
            qs = qs.filter(resolved=resolved)
        return list(_page(qs, limit=limit, offset=offset)), qs.count()

    def resolve(self, id: str) -> ReviewComment:
        """Mark a comment resolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, True)

    def unresolve(self, id: str) -> ReviewComment:
        """Mark a comment unresolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, False)

    def update_body(self, id: str, body: str) -> ReviewComment:
        """Replace a comment's text (a blank body is ``empty_body``); returns the comment."""
        require_text(body, "body")
        return self._update(id, body=body)

    def _set_resolved(self, id: str, resolved: bool) -> ReviewComment:
        comment = self.get(id)
        if comment.resolved == resolved:
            return comment
        return self._update(comment, resolved=resolved)


# --- chat sessions and their messages --------------------------------------------------------


class _ChatMessageStore(Repository[ChatMessage]):
    """Validation and saving of chat messages, on behalf of ChatSessionRepository."""

    model = ChatMessage
    slug = "chat_message"
    label = "Chat message"


class ChatSessionRepository(Repository[ChatSession]):
    """Chat sessions on a phase or task, and their messages.

    A target has at most one ``active`` session: the partial unique constraint
    ``chat_sessions_one_active_per_target`` decides, so two racing callers cannot both
    win; the loser gets Conflict ``chat_session_already_active``. Messages can only be
    added to an active session.
    """

    model = ChatSession
    slug = "chat_session"
    label = "Chat session"
    #: A session stays on its target and initiative; only status and agent change.
    read_only_fields: ClassVar[frozenset[str]] = Repository.read_only_fields | {
        "target_type",
        "target_id",
        "initiative",
        "initiative_id",
    }
    _target_models: ClassVar[dict[str, type[models.Model]]] = {
        ChatTargetType.PHASE: Phase,
        ChatTargetType.TASK: Task,
    }

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
        self._check_target(target_type, target_id, initiative_id)
        if agent_id is not None and not Agent.objects.filter(pk=agent_id).exists():
            raise not_found("Agent", agent_id)
        return self._create(
            target_type=target_type,
            target_id=target_id,
            initiative_id=initiative_id,
            agent_id=agent_id,
            status=ChatSessionStatus.ACTIVE,
        )

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

    def update_session(self, id: str, **fields: Any) -> ChatSession:
        """Change a session's status or agent (its target and initiative are fixed).

        A missing agent is NotFound ``agent_not_found``; reopening a session whose
        target has another active one is Conflict ``chat_session_already_active``.
        """
        if "status" in fields:
            check_choice(ChatSessionStatus, fields["status"], "status")
        agent_id = fields.get("agent_id", getattr(fields.get("agent"), "pk", None))
        if agent_id is not None and not Agent.objects.filter(pk=agent_id).exists():
            raise not_found("Agent", agent_id)
        return self._update(id, **fields)

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
            session = (
                ChatSession.objects.select_for_update()
                .filter(pk=chat_session_id)
                .values_list("status", "initiative_id")
                .first()
            )
            if session is None:
                raise not_found("Chat session", chat_session_id)
            status, initiative_id = session
            if status != ChatSessionStatus.ACTIVE:
                raise Conflict(
                    f"Chat session '{chat_session_id}' is closed.",
                    code="chat_session_closed",
                    details={"id": str(chat_session_id)},
                )
            if change_set_id is not None:
                change_set_initiative = (
                    ChangeSet.objects.filter(pk=change_set_id)
                    .values_list("initiative_id", flat=True)
                    .first()
                )
                if change_set_initiative is None:
                    raise not_found("Change set", change_set_id)
                if change_set_initiative != initiative_id:
                    raise InvalidInput(
                        f"Change set '{change_set_id}' belongs to another initiative.",
                        code="change_set_not_in_initiative",
                        details={"change_set_id": str(change_set_id)},
                    )
            return _ChatMessageStore()._insert(
                ChatMessage(
                    chat_session_id=chat_session_id,
                    role=role,
                    content=content,
                    change_set_id=change_set_id,
                )
            )

    def find_messages_by_session_id(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[ChatMessage]:
        """A session's messages, oldest first.

        ``after`` is the id of a message of this session: only later messages are
        returned (a polling cursor); an id that is not one is ``invalid_cursor``.
        """
        qs = ChatMessage.objects.filter(chat_session_id=session_id)
        if after is not None:
            created_at = (
                ChatMessage.objects.filter(pk=after, chat_session_id=session_id)
                .values_list("created_at", flat=True)
                .first()
            )
            if created_at is None:
                raise invalid_cursor(after)
            qs = qs.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=after))
        return list(_page(qs.order_by("created_at", "id"), limit=limit))

    def _check_target(self, target_type: str, target_id: str, initiative_id: str) -> None:
        target_model = self._target_models[target_type]
        lookup = ["initiative_id"]
        if target_model is Task:
            # A task's own initiative may be empty; its phase's initiative then counts.
            lookup.append("phase__initiative_id")
        row = target_model._default_manager.filter(pk=target_id).values_list(*lookup).first()
        if row is None:
            raise not_found(target_type.capitalize(), target_id)
        if initiative_id not in row:
            raise InvalidInput(
                f"{target_type.capitalize()} '{target_id}' does not belong to initiative "
                f"'{initiative_id}'.",
                code="target_not_in_initiative",
                details={"target_id": str(target_id), "initiative_id": str(initiative_id)},
            )

    def _integrity_refusal(self, obj: ChatSession, error: IntegrityError) -> DomainError:
        if (
            integrity_error_kind(error) == "unique"
            and obj.status == ChatSessionStatus.ACTIVE
            and self._other_active_exists(obj)
        ):
            return Conflict(
                f"{obj.target_type.capitalize()} '{obj.target_id}' already has an active "
                "chat session.",
                code="chat_session_already_active",
                details={"target_type": obj.target_type, "target_id": obj.target_id},
            )
        return super()._integrity_refusal(obj, error)

    def _other_active_exists(self, obj: ChatSession) -> bool:
        return (
            ChatSession.objects.filter(
                target_type=obj.target_type,
                target_id=obj.target_id,
                status=ChatSessionStatus.ACTIVE,
            )
            .exclude(pk=obj.pk)
            .exists()
        )


# --- change sets ---------------------------------------------------------------------------


class ChangeSetRepository(Repository[ChangeSet]):
    """Change sets (what an accepted proposal or a chat edit changed) and their entries.

    Entries are written once, with the change set, and never edited: a revert marks
    the change set ``reverted`` rather than deleting history.
    """

    model = ChangeSet
    slug = "change_set"
    label = "Change set"
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
            ChangeSetEntry.objects.bulk_create(rows)
        return change_set

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

    def find_by_initiative_id(
        self, initiative_id: str, *, with_entries: bool = False, limit: int | None = None
    ) -> list[ChangeSet]:
        """An initiative's change sets, newest first (entries prefetched on request)."""
        qs = self.queryset().filter(initiative_id=initiative_id)
        if with_entries:
            qs = self._with_entries(qs)
        return list(_page(qs, limit=limit))

    def find_by_proposal_id(
        self, proposal_id: str, *, with_entries: bool = False
    ) -> list[ChangeSet]:
        """The change sets an accepted proposal produced, newest first."""
        qs = self.queryset().filter(proposal_id=proposal_id)
        if with_entries:
            qs = self._with_entries(qs)
        return list(qs)

    def mark_reverted(self, id: str) -> ChangeSet:
        """Mark an applied change set reverted (stamping ``reverted_at``) and return it.

        A conditional UPDATE, so of two concurrent reverts exactly one wins; the other,
        like any revert of a reverted set, is Conflict ``change_set_already_reverted``.
        """
        changed = self._update_many(
            self.model._default_manager.filter(pk=id, status=ChangeSetStatus.APPLIED),
            status=ChangeSetStatus.REVERTED,
            reverted_at=timezone.now(),
        )
        change_set = self.get(id)
        if not changed:
            raise Conflict(
                f"Change set '{id}' is already reverted.",
                code="change_set_already_reverted",
                details={"id": str(id), "status": change_set.status},
            )
        return change_set

    @staticmethod
    def _with_entries(qs: models.QuerySet) -> models.QuerySet:
        return qs.prefetch_related(
            models.Prefetch("entries", queryset=ChangeSetEntry.objects.order_by("sort_order"))
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
        row = ChangeSetEntry(change_set=change_set, sort_order=index, **entry)
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
