"""Messages between agents and people, threaded, and who still waits for an answer."""

from typing import Any, NotRequired, TypedDict

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from typing_extensions import Unpack

from agents.models import Agent, Message, MessageStatus, ParticipantType
from core.errors import InvalidInput
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    Repository,
    check_choice,
    offset_page,
    relation_id,
    require_text,
)
from core.repositories.base import seed_only


class MessageFields(TypedDict):
    sender_type: str
    recipient_type: str
    content: str
    sender_id: NotRequired[str | None]
    recipient_id: NotRequired[str | None]
    type: NotRequired[str]
    requires_response: NotRequired[bool]
    status: NotRequired[str]
    parent_message: NotRequired[Message | None]
    parent_message_id: NotRequired[str | None]


class MessageChanges(TypedDict, total=False):
    sender_type: str
    sender_id: str | None
    recipient_type: str
    recipient_id: str | None
    type: str
    content: str
    requires_response: bool
    parent_message: Message | None
    parent_message_id: str | None


class MessageRepository(Repository[Message]):
    """Messages between agents and people, threaded through ``parent_message``.

    A message's ``status`` (pending, read, responded) is its lifecycle: ``update``
    refuses it; ``mark_read``, ``mark_responded`` and ``set_status`` change it.
    """

    model = Message
    slug = "message"
    label = "Message"
    lifecycle_fields = frozenset({"status"})

    def unanswered(self) -> QuerySet[Message]:
        """Messages nobody has answered: not ``responded`` and without a reply.

        The one rule both "pending for a person" and "requiring a response" use, so an
        answered message is in neither list however it was answered (``message_reply``
        marks it responded; a reply written elsewhere still counts).
        """
        replies = Message.objects.filter(parent_message=OuterRef("pk"))
        return self.queryset().exclude(status=MessageStatus.RESPONDED).filter(~Exists(replies))

    def agent_awaits_person(self, agent_id: str) -> bool:
        """Whether the agent still has a message to people waiting for an answer
        (``awaiting_person``)."""
        return (
            self.awaiting_person()
            .filter(sender_type=ParticipantType.AGENT, sender_id=agent_id)
            .exists()
        )

    def pending_for_user(self) -> QuerySet[Message]:
        """Messages addressed to people, not yet read and not answered, oldest first."""
        return self.unanswered().filter(
            recipient_type=ParticipantType.USER, status=MessageStatus.PENDING
        )

    def requiring_response(self) -> QuerySet[Message]:
        """Messages that require a response and are not answered, oldest first."""
        return self.unanswered().filter(requires_response=True)

    def awaiting_person(self, *, initiative_id: str | None = None) -> QuerySet[Message]:
        """Unanswered messages to people that still wait for one: unread, or read but
        requiring a response; oldest first, each annotated with ``sender_name`` (the
        sending agent's name, None for a person). With ``initiative_id``, only those
        sent by that initiative's agents."""
        qs = (
            self.unanswered()
            .filter(recipient_type=ParticipantType.USER)
            .filter(Q(status=MessageStatus.PENDING) | Q(requires_response=True))
            .annotate(
                sender_name=Subquery(
                    Agent.objects.filter(pk=OuterRef("sender_id")).order_by().values("name")[:1]
                )
            )
        )
        if initiative_id is not None:
            qs = qs.filter(
                sender_type=ParticipantType.AGENT,
                sender_id__in=Agent.objects.filter(initiative_id=initiative_id)
                .order_by()
                .values("pk"),
            )
        return qs

    @seed_only
    def find_pending_for_user(self) -> list[Message]:
        """Messages addressed to people that are still pending (unread and unanswered),
        oldest first (one query)."""
        return list(self.pending_for_user())

    @seed_only
    def find_requiring_response(self) -> list[Message]:
        """Messages that require a response and are not answered, oldest first (one query)."""
        return list(self.requiring_response())

    def find_page(
        self,
        qs: QuerySet[Message],
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Message]:
        """One offset page of ``qs`` (one of this repository's lists) with the total."""
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def find_replies(self, message_id: str) -> list[Message]:
        """The direct replies to ``message_id``, oldest first."""
        return list(self.queryset().filter(parent_message_id=message_id))

    def create(self, **fields: Unpack[MessageFields]) -> Message:
        """Send a message (pending unless a status is given); blank content is
        ``empty_content``."""
        require_text(fields.get("content"), "content")
        return self._create(**fields)

    def update(self, message: Message | str, /, **changes: Unpack[MessageChanges]) -> Message:
        """Change a message's participants, content or thread; a message never replies to
        itself or to one of its own replies (``message_parent_cycle``). Its status moves
        only through the transitions."""
        values: dict[str, Any] = dict(changes)
        self._check_field_names(values, action="update")
        obj = message if isinstance(message, Message) else self.get(message)
        if "content" in values:
            require_text(values["content"], "content")
        has_parent, parent_id = relation_id(values, "parent_message")
        if (
            has_parent
            and parent_id is not None
            and obj.pk in self._ancestor_ids("parent_message_id", parent_id)
        ):
            raise InvalidInput(
                "A message cannot reply to itself or to one of its own replies.",
                code="message_parent_cycle",
                details={"id": str(obj.pk), "parent_message_id": str(parent_id)},
            )
        return self._update(obj, **values)

    def set_status(self, message: Message | str, status: str) -> Message:
        """Record a status the services decided; an unknown one is ``invalid_status``."""
        obj = message if isinstance(message, Message) else self.get(message)
        return self._transition(obj, status=check_choice(MessageStatus, status, "status"))

    def mark_read(self, id: str) -> Message:
        """Mark a pending message read. A message already read or responded to stays as it
        is, even against a concurrent response (one conditional UPDATE)."""
        return self._move(id, (MessageStatus.PENDING,), MessageStatus.READ)

    def mark_responded(self, id: str) -> Message:
        """Mark a pending or read message responded to (one conditional UPDATE; a message
        already responded to stays as it is)."""
        return self._move(id, (MessageStatus.PENDING, MessageStatus.READ), MessageStatus.RESPONDED)

    def delete(self, id: str) -> bool:
        """Delete a message with its replies."""
        return self._delete(id)

    def _move(self, id: str, sources: tuple[str, ...], target: str) -> Message:
        """Move message ``id`` to ``target`` only from one of ``sources``: a conditional
        UPDATE, so a concurrent transition is never undone (``message_not_found`` when
        there is no such message)."""
        qs = self.model._default_manager.filter(pk=id, status__in=sources)
        self._update_many(qs, status=target)
        return self.get(id)
