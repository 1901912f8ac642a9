"""Input, output and patch schemas of the reviews API (proposals, review comments, chat).

Enumerated fields are ``Literal``s made from the models' ``TextChoices``, so the OpenAPI
document's enums are the database's (inline, in the choices' order) and cannot drift.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from django.db import models
from ninja import Field, Schema
from pydantic import ConfigDict

from core.repositories import DEFAULT_KEYSET_PAGE_SIZE, MAX_KEYSET_PAGE_SIZE
from core.schemas import (
    PAGE_BYTES,
    FromRecord,
    Id,
    InputSchema,
    JsonObject,
    NameText,
    NonBlankText,
    OrderInt32,
    PageParams,
    Text,
)
from core.schemas.base import (
    JSON_RULES,
    TEXT_NOT_BLANK_PATTERN,
    Documented,
    OneLineText,
    PositiveInt32,
)
from core.validators import NAME_MAX_LENGTH, TEXT_MAX_LENGTH
from reviews.models import (
    ChangeAction,
    ChangeSetSource,
    ChangeSetStatus,
    ChatRole,
    ChatSessionStatus,
    ChatTargetType,
    ProposalStatus,
    ProposalTargetType,
    ReviewLineType,
)


def choices_literal(choices: type[models.TextChoices]) -> Any:
    """``Literal[...]`` of the values of ``choices``, in their order."""
    return Literal[tuple(choices.values)]


if TYPE_CHECKING:  # a Literal built at run time is not a static type: str for mypy
    ProposalTargetTypeLiteral: TypeAlias = str
    ProposalStatusLiteral: TypeAlias = str
    LineTypeLiteral: TypeAlias = str
    ChangeActionLiteral: TypeAlias = str
    ChangeSetSourceLiteral: TypeAlias = str
    ChangeSetStatusLiteral: TypeAlias = str
    ChatTargetTypeLiteral: TypeAlias = str
    ChatSessionStatusLiteral: TypeAlias = str
    ChatRoleLiteral: TypeAlias = str
else:
    ProposalTargetTypeLiteral = choices_literal(ProposalTargetType)
    ProposalStatusLiteral = choices_literal(ProposalStatus)
    LineTypeLiteral = choices_literal(ReviewLineType)
    ChangeActionLiteral = choices_literal(ChangeAction)
    ChangeSetSourceLiteral = choices_literal(ChangeSetSource)
    ChangeSetStatusLiteral = choices_literal(ChangeSetStatus)
    ChatTargetTypeLiteral = choices_literal(ChatTargetType)
    ChatSessionStatusLiteral = choices_literal(ChatSessionStatus)
    ChatRoleLiteral = choices_literal(ChatRole)


class ProposalIn(InputSchema):
    """An agent's proposal: a new (no ``target_id``) or changed page, phase or task."""

    agent_id: NonBlankText = Field(description="The proposing agent.")
    initiative_id: NonBlankText
    target_type: ProposalTargetTypeLiteral
    target_id: NonBlankText | None = Field(
        None, description="The record to change; null to create."
    )
    title: NameText = Field(max_length=NAME_MAX_LENGTH)
    summary: Text | None = None
    content: Text | None = Field(None, description="Markdown body.")
    metadata: JsonObject | None = Field(
        None,
        description=(
            "What the target needs. task: phase_id, category, type, priority, order, "
            "dependencies (task ids), parent_task_id. page: parent_page_id, sort_order. "
            f"phase: dependencies (phase ids). {JSON_RULES}"
        ),
    )
    sort_order: OrderInt32 = 0


class ProposalOut(FromRecord):
    id: str
    agent_id: str
    initiative_id: str
    target_type: ProposalTargetTypeLiteral
    target_id: str | None
    title: str
    summary: str | None
    content: str | None
    # Any JSON value: the API only accepts objects, but the admin and the ORM may store
    # any JSON, and one such row must not break every list that includes it.
    metadata: Any = Field(description="JSON; an object when created through the API.")
    status: ProposalStatusLiteral
    sort_order: int
    created_at: datetime
    updated_at: datetime


class ProposalFilters(PageParams):
    """``GET /proposals`` query: filters plus ``limit``/``offset``."""

    agent_id: Id | None = None
    initiative_id: Id | None = None
    status: ProposalStatusLiteral | None = None
    target_type: ProposalTargetTypeLiteral | None = None


class ProposalCountsOut(Schema):
    pending: int
    accepted: int
    dismissed: int


class ChangeSetEntryOut(Schema):
    entity_type: str = Field(description="The table of the record, e.g. tasks.")
    entity_id: str
    action: ChangeActionLiteral
    before: Any = Field(description="The row's column values before (null for a create).")
    after: Any = Field(description="The row's column values after (null for a delete).")


class ChangeSetOut(Schema):
    id: str
    initiative_id: str
    source: ChangeSetSourceLiteral
    proposal_id: str | None
    description: str
    status: ChangeSetStatusLiteral
    created_at: datetime
    reverted_at: datetime | None
    entries: list[ChangeSetEntryOut]

    @staticmethod
    def resolve_entries(obj: Any) -> list[Any]:
        return list(obj.entries.all())


class AcceptAllOut(Schema):
    accepted: int
    change_sets: list[ChangeSetOut]


class DismissAllOut(Schema):
    dismissed: int


class ReviewCommentIn(InputSchema):
    file_path: OneLineText = Field(
        max_length=4096,
        description="One line: a line break or tab inside it is 400 `invalid_file_path`.",
    )
    line_number: PositiveInt32 = Field(description="New-side line; old-side for removed lines.")
    line_type: LineTypeLiteral
    body: NonBlankText
    author: NonBlankText = Field("you", max_length=255)
    project_id: Id | None = Field(
        None,
        description="The project whose diff the line is in (one of the initiative's; 404 "
        "`project_not_found` when none has this id). When cw's mirror holds the phase's "
        "diff, the line's text and the hunk around it are kept with the comment: the "
        "hunk is quoted in the review brief, and the comment is outdated once its line "
        "reads otherwise.",
    )


class ReviewCommentPatch(InputSchema):
    body: NonBlankText


class ReviewCommentOut(FromRecord):
    id: str
    phase_id: str
    file_path: str
    line_number: int
    line_type: LineTypeLiteral
    body: str
    author: str
    resolved: bool
    project_id: str | None = Field(description="The project whose diff the line is in.")
    line_text: str | None = Field(description="The line as it read when commented on.")
    hunk: str | None = Field(description="The diff around the line when commented on.")
    addressed_by_id: str | None = Field(
        description="The rework task 'Request changes' handed it to; completing that task "
        "resolves it."
    )
    created_at: datetime
    updated_at: datetime


class ReviewCommentFilters(PageParams):
    resolved: bool | None = Field(None, description="true: only resolved; false: only open.")


class ReviewBriefOut(Schema):
    phase_id: str
    unresolved: int
    markdown: str


class ChatSessionIn(InputSchema):
    """Open (or get) the active chat session on a phase or task."""

    target_type: ChatTargetTypeLiteral
    target_id: Id = Field(description="The phase or task.")
    agent_id: Id | None = Field(
        None, description="The agent to chat with; ignored when a session is already active."
    )


class ChatSessionOut(FromRecord):
    id: str
    target_type: ChatTargetTypeLiteral
    target_id: str
    initiative_id: str
    agent_id: str | None
    status: ChatSessionStatusLiteral
    created_at: datetime
    updated_at: datetime


class ChatMessageIn(InputSchema):
    # Only an assistant message names a change set (400 chat_change_set_not_assistant).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"role": {"not": {"const": "assistant"}}}},
            "then": {"properties": {"change_set_id": {"type": "null"}}},
        },
    )

    role: ChatRoleLiteral
    content: Annotated[Text, Documented(pattern=TEXT_NOT_BLANK_PATTERN)] = Field(
        max_length=TEXT_MAX_LENGTH, description="Not blank; at most 1,000,000 characters."
    )
    change_set_id: Id | None = Field(
        None,
        description=(
            "The change set an assistant message applied (of the session's initiative); "
            "null for any other role. Revert it with POST /change-sets/{id}/revert."
        ),
    )


class ChatMessageOut(FromRecord):
    id: str
    chat_session_id: str
    role: ChatRoleLiteral
    content: str
    change_set_id: str | None
    created_at: datetime


class ChatMessageFilters(Schema):
    """``GET /chat-sessions/{id}/messages`` query: a keyset page after a message."""

    after: Id | None = Field(
        None, description="The id of the last message seen (none: from the first)."
    )
    limit: int = Field(
        DEFAULT_KEYSET_PAGE_SIZE,
        ge=1,
        le=MAX_KEYSET_PAGE_SIZE,
        description=(
            f"Messages per answer (at most {MAX_KEYSET_PAGE_SIZE}). A page also holds at "
            f"most {PAGE_BYTES} of content, so it may hold fewer: `more` says so."
        ),
    )


class ChatMessagePageOut(Schema):
    """The next messages of a session, oldest first, and the cursor to send next."""

    items: list[ChatMessageOut] = Field(
        description=(
            f"At most `limit` messages and {PAGE_BYTES} of content (the page stops before "
            "the message that would pass it; it holds one message at least)."
        )
    )
    next_after: str | None = Field(
        description="The last item's id, or the ``after`` given when there is none."
    )
    more: bool = Field(
        description=(
            "True when there may be messages after this page (it holds `limit` messages, "
            "or stopped at the byte cap): read on with `next_after`."
        )
    )
