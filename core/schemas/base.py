"""Schemas every router shares: the one error shape, pagination, and the kinds of input.

Lists take ``PageParams`` as query parameters and answer ``Page[ItemOut]``::

    @router.get("/accounts", response={200: Page[AccountOut], **AUTH_ERRORS})
    def list_accounts(request, page: Query[PageParams]):
        return paginate(AccountRepository().queryset(), page)

A ``limit`` above ``MAX_LIMIT`` is refused with 422 (``validation_error``), not clamped,
so a caller never mistakes a short page for the end of the list; so is an ``offset``
above ``MAX_OFFSET`` (which would overflow the database driver).
"""

import math
from typing import Annotated, Any, Generic, TypeVar

from django.db.models import QuerySet
from ninja import Field, Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from core.repositories import DEFAULT_PAGE_SIZE as DEFAULT_LIMIT
from core.repositories import MAX_OFFSET, offset_page, text_problem
from core.repositories import MAX_PAGE_SIZE as MAX_LIMIT

ItemT = TypeVar("ItemT")


def _refuse_unstorable(value: str) -> str:
    """``value``, unless a database could not store it as text (``text_problem``): a 422
    here rather than a refusal by one database only."""
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def _refuse_unstorable_json(value: Any) -> Any:
    """``value`` (parsed JSON), unless a key or string anywhere in it is unstorable text
    (see ``_refuse_unstorable``) or a number is not finite (``NaN``, ``Infinity``: Python's
    parser reads them, JSON and PostgreSQL's jsonb do not).

    The message names where the bad part is (``tasks[1].name``), never what it is.
    """
    # An explicit stack rather than recursion: depth is bounded by the JSON parser already,
    # but a walk of its own must not be the thing that overflows.
    # Children are pushed in reverse so the first bad part in document order is reported.
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            _refuse_unstorable_at(item, where, "a string")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{_at(where)}a number must be finite (not NaN or Infinity)")
        elif isinstance(item, dict):
            for key in item:
                _refuse_unstorable_at(key, where, "a key")
            stack.extend(
                (child, f"{where}.{_short(key)}" if where else _short(key))
                for key, child in reversed(item.items())
            )
        elif isinstance(item, list):
            stack.extend((item[i], f"{where}[{i}]") for i in reversed(range(len(item))))
    return value


def _refuse_unstorable_at(text: str, where: str, what: str) -> None:
    try:
        _refuse_unstorable(text)
    except ValueError as error:
        raise ValueError(f"{_at(where)}{what} {error}") from None


def _at(where: str) -> str:
    return f"at {where}: " if where else ""


def _short(key: str) -> str:
    # Keys name the place in a message; a huge key must not make a huge message.
    return key if len(key) <= 40 else key[:37] + "..."


#: An id or a filter value from a path or query string (no NUL, valid Unicode), so both
#: databases answer a lookup of a malformed id alike (422) instead of one refusing it.
Id = Annotated[str, StringConstraints(max_length=64), AfterValidator(_refuse_unstorable)]
#: Text from a client: any string a database can store (no NUL, valid Unicode).
Text = Annotated[str, AfterValidator(_refuse_unstorable)]
#: A required name-like string: trimmed, at least one character, storable like ``Text``.
NonBlankText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_refuse_unstorable)
]
#: A JSON object from a client whose keys and strings, at any depth, are storable like
#: ``Text`` and whose numbers are finite, so a JSON column holds it alike on both databases.
JsonObject = Annotated[dict[str, Any], AfterValidator(_refuse_unstorable_json)]
#: An integer the databases store (32-bit), given as a JSON number (not true or "12").
Int32 = Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]


class InputSchema(Schema):
    """Base of request bodies: an unknown field is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class FromRecord(BaseModel):
    """Base of output schemas read straight from a model's attributes.

    Plain pydantic, validated from attributes in its core: several times faster per item
    than a Ninja ``Schema`` (which wraps every object in a getter for resolvers), which
    matters for lists of hundreds. Schemas that need ``resolve_*`` stay ``Schema``.
    """

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(Schema):
    """The body of every error the API answers, whatever its status."""

    code: str = Field(description="Stable snake_case code; tools branch on it.")
    message: str = Field(description="Human-readable explanation; may change between versions.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured context, e.g. field errors or ids."
    )


#: Statuses any authenticated operation may answer; spread into ``response=``.
AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut}
#: Every status an operation on a resource may refuse with, besides its success.
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
    **AUTH_ERRORS,
}


class PageParams(Schema):
    """Query parameters of every list: ``?limit=&offset=``."""

    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT})."
    )
    offset: int = Field(
        0,
        ge=0,
        le=MAX_OFFSET,
        description=f"Items to skip before the page starts (at most {MAX_OFFSET}).",
    )


class Page(Schema, Generic[ItemT]):
    """One page of a list, with the total number of items across all pages."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int


def paginate(queryset: QuerySet, params: PageParams) -> dict[str, Any]:
    """One page of ``queryset`` as a ``Page`` body: the repositories' ``offset_page`` (two
    queries whatever the page size; pk order when unordered). Related rows the item
    schema reads must be prefetched by the caller."""
    page = offset_page(queryset, limit=params.limit, offset=params.offset)
    return page_of(page.items, total=page.total, params=params)


def page_of(items: list[Any], *, total: int, params: PageParams) -> dict[str, Any]:
    """A ``Page`` body from items already fetched (e.g. by a repository) and their total."""
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset}
