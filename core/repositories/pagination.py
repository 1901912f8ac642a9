"""The one pagination contract of cw, for repositories, the API and the admin.

- **Offset pages** (``limit``/``offset``, with the total): every list of records people
  and tools browse. ``limit`` is 1..``MAX_PAGE_SIZE`` (default ``DEFAULT_PAGE_SIZE``),
  ``offset`` 0..``MAX_OFFSET``.
- **Keyset pages** (``after``/``limit``): append-only streams read forward, where an
  offset would cost more the deeper it goes (log chunks, events). ``after`` is the id of
  the last item read; ``limit`` is 1..``MAX_KEYSET_PAGE_SIZE``.

Every page the API answers is capped in bytes as well as in items (``page_max_bytes``,
the setting ``CW_API_PAGE_MAX_BYTES``): it stops before the item whose long texts (its
text and JSON columns, ``text_columns``) would take the page's past the cap, always
holding one item so a reader moves on. A page of 200 records with 1 MB descriptions, or
of 1,000 log chunks of 1 MB, would otherwise be hundreds of megabytes in one answer. The
texts' sizes are computed by the database and only the items that fit are loaded. A
keyset page says ``more`` (``KeysetPage``) and an offset page keeps its ``total``, so a
short page is never taken for the end: the next offset is ``offset + len(items)`` (the
API's ``next_offset``), not ``offset + limit``. People's screens and commands page
without the cap.

A value outside its range is refused with ``invalid_limit`` / ``invalid_offset`` /
``invalid_cursor`` (400, whether a repository or the API's schema meets it first): never
clamped, so a caller cannot mistake a short page for the end of a list.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Cast, Coalesce
from django.db.models.query import ModelIterable

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
#: The default of ``CW_API_PAGE_MAX_BYTES``: the most bytes of long texts one page holds
#: (a page of 1,000 chunks of 1 MB would otherwise be 1 GB).
DEFAULT_PAGE_MAX_BYTES = 4_000_000


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
    qs: models.QuerySet,
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
    max_bytes: int | None = None,
) -> OffsetPage[Any]:
    """One page of ``qs`` with the total; with ``max_bytes`` (the API's pages, at
    ``page_max_bytes()``), cut before the record whose long texts (``text_columns``)
    would take the page's past it. Two queries (the total, the items; just the total
    when the offset is past the end); with a cap on records with long texts, three
    whatever the page size (the texts' sizes, the items that fit, the total). An
    unordered queryset is ordered by primary key so pages never overlap or skip rows."""
    check_offset_page(limit, offset)
    if not qs.ordered:
        qs = qs.order_by("pk")
    texts = text_columns(qs.model) if qs._iterable_class is ModelIterable else []
    if max_bytes is None or not texts:
        total = qs.count()
        items = list(qs[offset : offset + limit]) if total > offset else []
        return OffsetPage(items=items, total=total, limit=limit, offset=offset)
    sizes = list(
        qs.annotate(page_item_bytes=bytes_of(qs.model, texts)).values_list(
            "page_item_bytes", flat=True
        )[offset : offset + limit]
    )
    fitting = fitting_count(sizes, max_bytes)
    items = list(qs[offset : offset + fitting]) if fitting else []
    return OffsetPage(items=items, total=qs.count(), limit=limit, offset=offset)


def page_max_bytes() -> int:
    """The byte cap of a page's long texts (``CW_API_PAGE_MAX_BYTES``)."""
    return int(getattr(settings, "CW_API_PAGE_MAX_BYTES", DEFAULT_PAGE_MAX_BYTES))


def text_columns(model: type[models.Model]) -> list[str]:
    """The names of ``model``'s columns of unbounded length (text and JSON): what a page
    of its records is capped on. Other columns are bounded by the schema (names, ids,
    numbers, times), so a page of them is bounded by its number of items."""
    return [
        field.name
        for field in model._meta.concrete_fields
        if isinstance(field, models.TextField | models.JSONField)
    ]


def bytes_of(model: type[models.Model], names: Iterable[str]) -> Any:
    """An expression for the bytes (UTF-8) of the columns ``names`` of a row of
    ``model`` together (a JSON column as its text; a null as 0)."""
    zero = models.Value(0, output_field=models.BigIntegerField())
    parts = []
    for name in names:
        field = model._meta.get_field(name)
        column = Cast(name, models.TextField()) if isinstance(field, models.JSONField) else F(name)
        parts.append(Coalesce(ByteLength(column), zero))
    return sum(parts[1:], start=parts[0])


class KeysetPage(NamedTuple, Generic[T]):
    """One keyset page capped in bytes: its items, oldest first, and whether there may be
    more after the last (the page holds ``limit`` items, or stopped at the byte cap)."""

    items: list[T]
    more: bool


def fitting_count(sizes: Sequence[int], max_bytes: int) -> int:
    """How many of the items of ``sizes`` bytes, taken in order, fit in ``max_bytes``
    (at least one when there is any: a reader always moves on)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > max_bytes:
            return max(count, 1)
    return len(sizes)


class ByteLength(models.Func):
    """The length in bytes (UTF-8) of a text column: ``octet_length`` on PostgreSQL,
    which reads a long value's stored size, not the value; the length of the text as a
    blob on SQLite (whose ``octet_length`` is newer than the SQLite cw supports)."""

    function = "OCTET_LENGTH"
    output_field = models.BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))")


def byte_capped_page(
    qs: models.QuerySet, *, limit: int, text_fields: Iterable[str], max_bytes: int
) -> KeysetPage[Any]:
    """The first ``limit`` items of the ordered ``qs``, cut before the one that would take
    the bytes of their ``text_fields`` past ``max_bytes`` (at least one item).

    Two queries: the sizes of the ``limit`` candidates (numbers, computed by the
    database), then only the items that fit, so a page of long texts never loads the
    texts it leaves out.
    """
    sizes = list(
        qs.annotate(page_item_bytes=bytes_of(qs.model, text_fields)).values_list(
            "page_item_bytes", flat=True
        )[:limit]
    )
    count = fitting_count(sizes, max_bytes)
    items = list(qs[:count]) if count else []
    return KeysetPage(items, count < len(sizes) or len(sizes) == limit)
