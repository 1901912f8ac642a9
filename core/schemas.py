"""Schemas every router shares: the one error shape, pagination, and the caller's identity.

Lists take ``PageParams`` as query parameters and answer ``Page[ItemOut]``::

    @router.get("/initiatives", response={200: Page[InitiativeOut], **AUTH_ERRORS})
    def list_initiatives(request, page: Query[PageParams]):
        return paginate(InitiativeRepository().queryset(), page)

A ``limit`` above ``MAX_LIMIT`` is refused with 422 (``validation_error``), not clamped,
so a caller never mistakes a short page for the end of the list.
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from django.db.models import QuerySet
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, StringConstraints

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

ItemT = TypeVar("ItemT")


def _refuse_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it here keeps both databases alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


#: Text from a client: any string without NUL characters.
Text = Annotated[str, AfterValidator(_refuse_nul)]
#: A required name-like string: trimmed, at least one character, no NUL.
NonBlankText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_refuse_nul)
]
#: An integer the databases store (32-bit), given as a JSON number (not true or "12").
Int32 = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]


class InputSchema(Schema):
    """Base of request bodies: an unknown field is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Schema):
    """The body of every error the API answers, whatever its status."""

    code: str = Field(description="Stable snake_case code; tools branch on it.")
    message: str = Field(description="Human-readable explanation; may change between versions.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured context, e.g. field errors or ids."
    )


#: Statuses any authenticated operation may answer; spread into ``response=``.
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut}


class PageParams(Schema):
    """Query parameters of every list: ``?limit=&offset=``."""

    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT})."
    )
    offset: int = Field(0, ge=0, description="Items to skip before the page starts.")


class Page(Schema, Generic[ItemT]):
    """One page of a list, with the total number of items across all pages."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int


def paginate(queryset: QuerySet, params: PageParams) -> dict[str, Any]:
    """One page of ``queryset`` as a ``Page`` body, in two queries whatever the page size.

    An unordered queryset is ordered by primary key so pages never overlap or skip rows.
    Related rows the item schema reads must be prefetched by the caller.
    """
    if not queryset.ordered:
        queryset = queryset.order_by("pk")
    total = queryset.count()
    items = (
        list(queryset[params.offset : params.offset + params.limit])
        if total > params.offset
        else []
    )
    return page_of(items, total=total, params=params)


def page_of(items: list[Any], *, total: int, params: PageParams) -> dict[str, Any]:
    """A ``Page`` body from items already fetched (e.g. by a repository) and their total."""
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset}


class WhoamiOut(Schema):
    """Who the API thinks is calling."""

    kind: Literal["token", "user"] = Field(description="A bearer token, or a staff session.")
    name: str = Field(description="The token's name, or the user's username.")


class PhaseOut(Schema):
    id: str
    initiative_id: str
    name: str
    content: str | None = Field(description="Tiptap (ProseMirror) JSON, as text.")
    status: str
    created_at: datetime
    updated_at: datetime


class TaskOut(Schema):
    id: str
    phase_id: str | None
    initiative_id: str | None
    parent_task_id: str | None
    name: str
    description: str | None
    type: str
    category: str
    priority: str
    status: str
    order: int
    summary: str | None
    created_at: datetime
    updated_at: datetime
