"""Chat sessions on a phase or task, at most one active per target, and their messages."""

from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from typing_extensions import Unpack

from agents.models import Agent
from agents.repositories import AgentRepository
from core.errors import Conflict, DomainError, InvalidInput
from core.repositories import (
    KeysetPage,
    Repository,
    byte_capped_page,
    check_choice,
    check_keyset_page,
    invalid_cursor,
    relation_id,
    require_text,
)
from core.repositories.base import seed_only
from reviews.models import ChatMessage, ChatRole, ChatSession, ChatSessionStatus, ChatTargetType
from reviews.repositories.base import InitiativeOwnedRepository, target_initiative_id
from reviews.repositories.change_sets import ChangeSetRepository


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


class ChatSessionRepository(InitiativeOwnedRepository[ChatSession]):
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
    read_only_fields = InitiativeOwnedRepository.read_only_fields | {
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
        target of another initiative (InvalidInput ``chat_target_other_initiative``) and a
        target that already has an active session (Conflict ``chat_session_already_active``).
        """
        check_choice(ChatTargetType, target_type, "target_type")
        if target_initiative_id(target_type, target_id) != initiative_id:
            raise InvalidInput(
                f"{target_type.capitalize()} '{target_id}' does not belong to initiative "
                f"'{initiative_id}'.",
                code="chat_target_other_initiative",
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
        ``chat_change_set_other_initiative``) and a closed session (Conflict
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
                    code="chat_change_set_other_initiative",
                    details={"change_set_id": str(change_set_id)},
                )
            return self._messages._create(
                chat_session_id=chat_session_id,
                role=role,
                content=content,
                change_set_id=change_set_id,
            )

    def delete_session(self, id: str) -> bool:
        """Delete a session with its messages (a change set it made stays, unlinked);
        False when there was none."""
        return self._delete(id)

    def get_message(self, id: str) -> ChatMessage:
        """A message of any session (``chat_message_not_found`` when there is none)."""
        return self._messages.get(id)

    def count_messages(self, session_id: str) -> int:
        """How many messages a session holds."""
        return self._messages.queryset().filter(chat_session_id=session_id).count()

    def delete_message(self, id: str) -> bool:
        """Delete one message of a transcript; False when there was none."""
        return self._messages._delete(id)

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

    @seed_only
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

    @seed_only
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
        qs = self._messages_after(session_id, after)
        return list(qs if limit is None else qs[:limit])

    def find_message_page_by_session_id(
        self, session_id: str, *, after: str | None = None, limit: int, max_bytes: int
    ) -> KeysetPage[ChatMessage]:
        """``find_messages_by_session_id``'s keyset page, capped in bytes as well: it stops
        before the message whose content would take the page past ``max_bytes`` (one
        message at least), and ``more`` says whether there may be messages after it."""
        check_keyset_page(limit, after)
        return byte_capped_page(
            self._messages_after(session_id, after),
            limit=limit,
            text_fields=["content"],
            max_bytes=max_bytes,
        )

    def _messages_after(self, session_id: str, after: str | None) -> QuerySet[ChatMessage]:
        qs = self._messages.queryset().filter(chat_session_id=session_id)
        if after is not None:
            created_at = qs.filter(pk=after).values_list("created_at", flat=True).first()
            if created_at is None:
                raise invalid_cursor(after)
            qs = qs.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=after))
        return qs.order_by("created_at", "id")

    def _integrity_refusal(self, obj: ChatSession, error: IntegrityError) -> DomainError:
        refusal = super()._integrity_refusal(obj, error)
        if refusal.code != "chat_session_already_active":
            return refusal
        return Conflict(
            f"{obj.target_type.capitalize()} '{obj.target_id}' already has an active chat session.",
            code="chat_session_already_active",
            details={"target_type": obj.target_type, "target_id": obj.target_id},
        )
