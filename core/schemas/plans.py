"""The ``core`` app's API schemas: planning records and the caller's identity.

Enumerated fields are typed with the model's ``TextChoices``, so the OpenAPI document's
enums are the database's, and cannot drift.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from core.models import (
    ExecutionMode,
    InitiativeStatus,
    PhaseStatus,
    TaskCategory,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from core.schemas.base import (
    DEFAULT_LIMIT,
    JSON_RULES,
    MAX_LIMIT,
    Documented,
    FromRecord,
    Id,
    InputSchema,
    NameText,
    NonBlankText,
    OrderInt32,
    PageParams,
    Text,
)
from core.schemas.base import TiptapDocument as TiptapDocumentBase
from core.tiptap import markdown_to_tiptap_json
from core.validators import NAME_MAX_LENGTH, TEXT_MAX_LENGTH


class ActorOut(Schema):
    """Who made a change: a person, a tool or the system, and the door they used."""

    type: Literal["person", "tool", "system"] = Field(
        description=(
            "`person`: a user (a staff session or a personal token); `tool`: an API token "
            "that is no person's; `system`: a command or a sweep."
        )
    )
    id: str | None = Field(
        description="The person's user id, or the tool's token id; null for the system."
    )
    name: str = Field(
        description=(
            "The person's username, the token's name, or the command's name (with the "
            "operator's in parentheses when given)."
        )
    )
    via: Literal["admin", "api", "command", "system"] = Field(description="The door used.")


class WhoamiOut(Schema):
    """Who the API thinks is calling, and whom its changes are recorded as."""

    kind: Literal["token", "user"] = Field(description="A bearer token, or a staff session.")
    name: str = Field(description="The token's name, or the user's username.")
    actor: ActorOut = Field(
        description=(
            "Whom the events of this caller's changes name: the person a personal token or "
            "a session acts for, or the tool."
        )
    )


class PhaseOut(FromRecord):
    """A phase of an initiative's plan."""

    id: str
    initiative_id: str
    name: str
    content: str | None = Field(description="Tiptap (ProseMirror) JSON, as text.")
    status: PhaseStatus
    created_at: datetime
    updated_at: datetime


class TaskOut(FromRecord):
    """A task of an initiative's plan (``checkpoint:*`` types are done by people)."""

    id: str
    phase_id: str | None
    initiative_id: str | None
    parent_task_id: str | None
    name: str
    description: str | None
    type: TaskType
    category: TaskCategory
    priority: TaskPriority
    status: TaskStatus
    order: int
    summary: str | None
    created_at: datetime
    updated_at: datetime


# --- inputs and outputs of the plans operations -----------------------------------------

#: The default of a patch field that may be left out but never sent as ``null``: the field
#: stays required-when-sent, and a patch applies only the fields set.
NOT_SENT: Any = None

Name = Annotated[NameText, Field(max_length=NAME_MAX_LENGTH)]
LongText = Annotated[Text, Field(max_length=TEXT_MAX_LENGTH)]
Markdown = Annotated[
    Text, Field(max_length=TEXT_MAX_LENGTH, description="Markdown, converted to a Tiptap document.")
]
TiptapDocument = Annotated[
    TiptapDocumentBase,
    Field(description=f'A Tiptap (ProseMirror) document: {{"type": "doc", …}}. {JSON_RULES}'),
]
Branch = Annotated[NonBlankText, Field(max_length=255)]


class InitiativeOut(FromRecord):
    """An initiative: a plan of phases and tasks on one branch."""

    id: str
    name: str
    status: InitiativeStatus
    branch: str | None
    execution_mode: ExecutionMode
    created_at: datetime
    updated_at: datetime


class InitiativeIn(InputSchema):
    name: Name
    branch: Branch | None = Field(None, description="Default: cw/<slug of the name>.")
    execution_mode: ExecutionMode | None = Field(None, description="Default: review_per_phase.")


class InitiativePatch(InputSchema):
    """Only the fields sent change."""

    name: Name = NOT_SENT
    branch: Branch = NOT_SENT


class ExecutionModeIn(InputSchema):
    execution_mode: ExecutionMode


class InitiativeFilters(PageParams):
    status: InitiativeStatus | None = None


class _WithContent(InputSchema):
    """A body that may give a phase's or page's content as Tiptap JSON or as markdown."""

    # The document states the one-or-the-other rule the validator below enforces.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"not": {"required": ["content", "content_markdown"]}},
    )

    content: TiptapDocument | None = None
    content_markdown: Markdown | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        if {"content", "content_markdown"} <= self.model_fields_set:
            raise ValueError("Give content or content_markdown, not both.")
        return self

    def content_changes(self) -> dict[str, Any]:
        """``{"content": <Tiptap JSON text or None>}`` when the body gives content, else
        ``{}``."""
        if "content_markdown" in self.model_fields_set:
            markdown = self.content_markdown
            return {"content": None if markdown is None else markdown_to_tiptap_json(markdown)}
        if "content" in self.model_fields_set:
            document = self.content
            return {"content": None if document is None else json.dumps(document)}
        return {}


class PhaseIn(_WithContent):
    name: Name


class PhasePatch(_WithContent):
    """Only the fields sent change."""

    name: Name = NOT_SENT


class PhaseFilters(PageParams):
    initiative_id: Id | None = None
    status: PhaseStatus | None = None


class DependencyIn(InputSchema):
    depends_on_id: Id


class DependencyOut(Schema):
    id: str = Field(description="The phase or task that waits.")
    depends_on_id: str = Field(description="What it waits for.")


class TaskIn(InputSchema):
    name: Name
    description: LongText | None = None
    type: TaskType | None = Field(None, description="Default: auto.")
    category: TaskCategory | None = Field(None, description="Default: execute.")
    priority: TaskPriority | None = Field(None, description="Default: medium.")
    order: OrderInt32 | None = None


class TaskPatch(InputSchema):
    """Only the fields sent change; a task may move between its initiative's phases."""

    name: Name = NOT_SENT
    description: LongText | None = None
    type: TaskType = NOT_SENT
    category: TaskCategory = NOT_SENT
    priority: TaskPriority = NOT_SENT
    order: OrderInt32 = NOT_SENT
    phase_id: Id | None = None
    parent_task_id: Id | None = None


class TaskFilters(PageParams):
    initiative_id: Id | None = None
    phase_id: Id | None = None
    status: TaskStatus | None = None
    type: TaskType | None = None
    parent_task_id: Id | None = None


class TaskCompleteIn(InputSchema):
    summary: LongText | None = Field(None, description="What was done, for dependent tasks.")


class TaskContextEntryOut(Schema):
    """A task the task depends on (directly or not), with its completion summary."""

    task_id: str
    name: str
    summary: str | None


class ReadyTaskFilters(Schema):
    initiative_id: Id | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many.")


class CheckpointFilters(Schema):
    initiative_id: Id | None = None


class PageOut(FromRecord):
    """A page of an initiative's tree (the root has no parent)."""

    id: str
    initiative_id: str
    parent_page_id: str | None
    title: str
    content: str | None = Field(description="Tiptap (ProseMirror) JSON, as text.")
    sort_order: int
    created_at: datetime
    updated_at: datetime


class PageIn(_WithContent):
    title: Name
    parent_page_id: Id | None = Field(None, description="Default: the root page.")
    sort_order: OrderInt32 | None = None


class PagePatch(_WithContent):
    """Only the fields sent change (move a page with ``POST /pages/{id}/move``)."""

    title: Name = NOT_SENT
    sort_order: OrderInt32 = NOT_SENT


class PageMoveIn(InputSchema):
    parent_page_id: Id
    sort_order: OrderInt32 | None = None


class ProjectOut(FromRecord):
    """A git repository an initiative works on."""

    id: str
    name: str
    url: str
    default_branch: str
    last_fetched_at: datetime | None
    created_at: datetime
    updated_at: datetime


ProjectName = Annotated[NameText, Field(max_length=255)]

#: What the document says a git URL is: a part of what ``validate_git_url`` accepts
#: (printable ASCII; the schemes spelt in lower case; a port of at most 4 digits), so a
#: URL the document allows is never refused.
_URL_HOST = r"(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,4})?"
#: A path with something besides slashes before any query or fragment.
_URL_PATH = r"/+[!-\"$-.0->@-~][!-~]*"
GIT_URL_PATTERN = (
    r"^(?:"
    rf"(?:https?|ssh|git|git\+ssh|ssh\+git)://{_URL_HOST}{_URL_PATH}"
    rf"|file://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)?{_URL_PATH}"
    r"|(?:[A-Za-z0-9._~+-]+@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?!//)(?:(?!://)[!-~])+"
    r")$"
)
GitUrl = Annotated[
    NonBlankText,
    Field(
        max_length=1024,
        description=(
            "A URL git clones from: https://, http://, ssh://, git:// or file:// with a "
            "path, or the scp-like user@host:path."
        ),
    ),
    Documented(pattern=GIT_URL_PATTERN),
]


class ProjectIn(InputSchema):
    name: ProjectName
    url: GitUrl
    default_branch: Branch | None = Field(None, description="Default: main.")


class ProjectPatch(InputSchema):
    """Only the fields sent change."""

    name: ProjectName = NOT_SENT
    url: GitUrl = NOT_SENT
    default_branch: Branch = NOT_SENT


class InitiativeProjectsIn(InputSchema):
    project_ids: list[Id] = Field(max_length=1000)
