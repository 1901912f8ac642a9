"""The one pagination contract of cw, for repositories, the API and the admin.

- **Offset pages** (``limit``/``offset``, with the total): every list of records people
  and tools browse. ``limit`` is 1..``MAX_PAGE_SIZE`` (default ``DEFAULT_PAGE_SIZE``),
  ``offset`` 0..``MAX_OFFSET``.
- **Keyset pages** (``after``/``limit``): append-only streams read forward, where an
  offset would cost more the deeper it goes (log chunks, events). ``after`` is the id of
  the last item read; ``limit`` is 1..``MAX_KEYSET_PAGE_SIZE``.

A value outside its range is refused with ``invalid_limit`` / ``invalid_offset`` /
``invalid_cursor`` (400, whether a repository or the API's schema meets it first): never
clamped, so a caller cannot mistake a short page for the end of a list.
"""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import models

from core.errors import InvalidInput
from core.repositories.validation import INT32

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: The largest offset: a 32-bit integer like every integer cw takes, far beyond any list
#: it holds and well inside what both databases' OFFSET accepts.
MAX_OFFSET = INT32[1]
DEFAULT_KEYSET_PAGE_SIZE = 500
MAX_KEYSET_PAGE_SIZE = 1000


def _check_whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{name} must be a whole number from {low} to {high}.",
            code=f"invalid_{name}",
            details={name: str(value), "min": low, "max": high},
        )


def check_offset_page(limit: Any, offset: Any = 0) -> None:
    """Refuse a ``limit`` outside 1..MAX_PAGE_SIZE or an ``offset`` outside 0..MAX_OFFSET."""
    _check_whole("limit", limit, 1, MAX_PAGE_SIZE)
    _check_whole("offset", offset, 0, MAX_OFFSET)


def check_keyset_page(limit: Any, after: Any = None, *, integer_cursor: bool = False) -> None:
    """Refuse a ``limit`` outside 1..MAX_KEYSET_PAGE_SIZE, or an ``after`` cursor of the
    wrong kind (a whole number for integer-keyed streams, else a string)."""
    _check_whole("limit", limit, 1, MAX_KEYSET_PAGE_SIZE)
    if after is None:
        return
    valid = (
        not isinstance(after, bool) and isinstance(after, int) and 0 <= after <= 2**63 - 1
        if integer_cursor
        else isinstance(after, str) and bool(after)
    )
    if not valid:
        raise invalid_cursor(after)


def invalid_cursor(after: Any) -> InvalidInput:
    """The refusal of an ``after`` cursor that names no item of the list."""
    return InvalidInput(
        f"The cursor '{after}' does not name an item of this list.",
        code="invalid_cursor",
        details={"after": str(after)},
    )


def offset_slice(
    qs: models.QuerySet, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
) -> models.QuerySet:
    """``qs`` cut to one offset page after checking the bounds."""
    check_offset_page(limit, offset)
    return qs[offset : offset + limit]


@dataclass(frozen=True)
class OffsetPage(Generic[T]):
    """One offset page: its items and how many there are across all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int


def offset_page(
    qs: models.QuerySet, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
) -> OffsetPage[Any]:
    """One page of ``qs`` with the total, in two queries whatever the page size (one when
    the offset is past the end). An unordered queryset is ordered by primary key so pages
    never overlap or skip rows."""
    check_offset_page(limit, offset)
    if not qs.ordered:
        qs = qs.order_by("pk")
    total = qs.count()
    items = list(qs[offset : offset + limit]) if total > offset else []
    return OffsetPage(items=items, total=total, limit=limit, offset=offset)
