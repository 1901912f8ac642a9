"""Review comments on a phase's diff, resolved and reopened."""

from typing import Any, NotRequired, TypedDict

from django.db import DEFAULT_DB_ALIAS, connections
from typing_extensions import Unpack

from core.errors import InvalidInput
from core.models import Phase
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    PhaseRepository,
    ProjectRepository,
    check_choice,
    check_offset_page,
    hot,
    offset_page,
    relation_id,
    require_text,
)
from reviews.models import ReviewComment, ReviewLineType
from reviews.repositories.base import ReviewRepository


class ReviewCommentFields(TypedDict):
    file_path: str
    line_number: int
    line_type: str
    body: str
    phase: NotRequired[Phase]
    phase_id: NotRequired[str]
    author: NotRequired[str]
    project_id: NotRequired[str | None]
    line_text: NotRequired[str | None]
    hunk: NotRequired[str | None]


class ReviewCommentChanges(TypedDict, total=False):
    file_path: str
    line_number: int
    line_type: str
    body: str
    author: str


_COMMENT_LISTING = hot.Listing(ReviewComment)


class ReviewCommentRepository(ReviewRepository[ReviewComment]):
    """Inline comments on a phase's diff.

    A comment stays on its phase; its file path is one line without tabs, its line
    number at least 1. ``resolve``/``unresolve`` are idempotent: asking for the state a
    comment is already in returns it unchanged, without a write (so ``updated_at`` does
    not move).
    """

    model = ReviewComment
    slug = "review_comment"
    label = "Review comment"
    read_only_fields = ReviewRepository.read_only_fields | {"phase"}
    lifecycle_fields = frozenset({"resolved"})

    def create(self, **fields: Unpack[ReviewCommentFields]) -> ReviewComment:
        """Add a comment to a phase's diff.

        Refuses a blank body, author or file path, a file path over several lines, a
        line number below 1, an unknown line type (InvalidInput) and a phase that does
        not exist (NotFound ``phase_not_found``).
        """
        values: dict[str, Any] = {"author": "you", **fields}
        self._check_field_names(values, action="create")
        self._check_values(values)
        has_phase, phase_id = relation_id(values, "phase")
        if has_phase:
            PhaseRepository().require(phase_id)
        if values.get("project_id") is not None:
            ProjectRepository().require(values["project_id"])
        return self._create(**values)

    def update(
        self, comment: ReviewComment | str, /, **changes: Unpack[ReviewCommentChanges]
    ) -> ReviewComment:
        """Change a comment's text, author or place in the diff, with the checks of
        ``create``; it stays on its phase and is resolved through ``resolve``."""
        values: dict[str, Any] = dict(changes)
        self._check_field_names(values, action="update")
        self._check_values(values)
        return self._update(comment, **values)

    def delete(self, id: str) -> bool:
        """Delete a comment; False when there was none."""
        return self._delete(id)

    def resolve(self, id: str) -> ReviewComment:
        """Mark a comment resolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, True)

    def unresolve(self, id: str) -> ReviewComment:
        """Mark a comment unresolved and return it (NotFound when missing; idempotent)."""
        return self._set_resolved(id, False)

    def resolve_many(self, ids: list[str]) -> int:
        """Mark the comments of ``ids`` resolved in one statement; returns how many changed."""
        return self._update_many(
            self.model._default_manager.filter(pk__in=ids, resolved=False), resolved=True
        )

    def hand_to(self, ids: list[str], task_id: str) -> int:
        """Record that the comments of ``ids`` were handed to the rework task
        ``task_id`` (one statement); how many changed."""
        return self._update_many(
            self.model._default_manager.filter(pk__in=ids), addressed_by_id=task_id
        )

    def find_addressed_by(self, task_id: str) -> list[ReviewComment]:
        """The unresolved comments handed to the rework task ``task_id``."""
        return list(self.queryset().filter(addressed_by_id=task_id, resolved=False))

    def _set_resolved(self, id: str, resolved: bool) -> ReviewComment:
        comment = self.get(id)
        if comment.resolved == resolved:
            return comment
        return self._transition(comment, resolved=resolved)

    @staticmethod
    def _check_values(values: dict[str, Any]) -> None:
        """The checks every write of the given fields shares, in one order."""
        for name in ("file_path", "body", "author"):
            if name in values:
                require_text(values[name], name)
        if "line_number" in values:
            line_number = values["line_number"]
            # bool is an int: True would otherwise be stored as line 1.
            if isinstance(line_number, bool) or not isinstance(line_number, int) or line_number < 1:
                raise InvalidInput(
                    "The line number must be a whole number of at least 1.",
                    code="invalid_line_number",
                    details={"line_number": str(line_number)},
                )
        if "line_type" in values:
            check_choice(ReviewLineType, values["line_type"], "line_type")
        if "file_path" in values and any(c in values["file_path"] for c in "\r\n\t"):
            raise InvalidInput(
                "A file path is one line, without tabs.",
                code="invalid_file_path",
                details={"field": "file_path"},
            )

    # --- reads ---------------------------------------------------------------------

    def find_by_phase_id(
        self, phase_id: str, *, unresolved_only: bool = False
    ) -> list[ReviewComment]:
        """A phase's comments ordered by file, line, then creation time."""
        qs = self.queryset().filter(phase_id=phase_id)
        if unresolved_only:
            qs = qs.filter(resolved=False)
        return list(qs)

    def count_unresolved(self, phase_id: str) -> int:
        """How many of the phase's comments are open (one query)."""
        return self.queryset().filter(phase_id=phase_id, resolved=False).count()

    def find_page(
        self,
        phase_id: str,
        *,
        resolved: bool | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[ReviewComment]:
        """One offset page of a phase's comments (optionally only resolved or only open
        ones) with how many there are in all; two queries whatever the page size."""
        qs = self.queryset().filter(phase_id=phase_id)
        if resolved is not None:
            qs = qs.filter(resolved=resolved)
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def find_page_rows(
        self,
        phase_id: str,
        *,
        resolved: bool | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[dict[str, Any]]:
        """The page ``find_page`` answers, as plain rows (``values()``): for lists that are
        only serialized."""
        check_offset_page(limit, offset)
        items, total = _COMMENT_LISTING.page(
            connections[DEFAULT_DB_ALIAS],
            {"phase_id": phase_id, "resolved": resolved},
            limit=limit,
            offset=offset,
            max_bytes=max_bytes,
        )
        return OffsetPage(items=items, total=total, limit=limit, offset=offset)
