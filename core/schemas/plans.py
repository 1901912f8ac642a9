"""The ``core`` app's API schemas: planning records and the caller's identity.

Enumerated fields are typed with the model's ``TextChoices``, so the OpenAPI document's
enums are the database's, and cannot drift.
"""

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from core.models import PhaseStatus, TaskCategory, TaskPriority, TaskStatus, TaskType


class WhoamiOut(Schema):
    """Who the API thinks is calling."""

    kind: Literal["token", "user"] = Field(description="A bearer token, or a staff session.")
    name: str = Field(description="The token's name, or the user's username.")


class PhaseOut(Schema):
    """A phase of an initiative's plan."""

    id: str
    initiative_id: str
    name: str
    content: str | None = Field(description="Tiptap (ProseMirror) JSON, as text.")
    status: PhaseStatus
    created_at: datetime
    updated_at: datetime


class TaskOut(Schema):
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
