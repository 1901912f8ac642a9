"""Phase review: a person's comments on a phase's diff, and requesting changes, which
turns them into the agent's next task.

Every write records its ``review_comment.*`` event; asking for the state a comment is
already in (resolving a resolved one, an edit that changes nothing) records none.
"""

from typing import Any

from django.db import transaction
from django.dispatch import receiver
from typing_extensions import Unpack

from core.actors import Actor, require_person
from core.errors import InvalidInput
from core.events import event_record
from core.models import PhaseStatus, Task, TaskCategory, TaskPriority, TaskType
from core.repositories import PhaseRepository, TaskRepository
from core.services import lock_phase_with_initiative, phase_reopen_for_changes
from core.services.feed import TASKS, changed_columns, record_all, snapshot, unchanged
from core.signals import task_completed
from reviews.models import ReviewComment
from reviews.repositories import (
    ReviewCommentChanges,
    ReviewCommentFields,
    ReviewCommentRepository,
)
from reviews.services.brief import render_brief

tasks = TaskRepository()
phases = PhaseRepository()
review_comments = ReviewCommentRepository()


@transaction.atomic
def review_comment_create(**fields: Unpack[ReviewCommentFields]) -> ReviewComment:
    """Add a comment to a phase's diff (the repository's checks: a one-line file path,
    a line number of at least 1, a phase that exists) and record
    ``review_comment.created``."""
    comment = review_comments.create(**fields)
    _record_comment("review_comment.created", comment)
    return comment


@transaction.atomic
def review_comment_update(
    *, comment_id: str, **changes: Unpack[ReviewCommentChanges]
) -> ReviewComment:
    """Change a comment's text, author or place in the diff (the checks of
    ``review_comment_create``; it stays on its phase) and record
    ``review_comment.updated`` with the fields that changed (nothing when none did)."""
    comment = review_comments.get_for_update(comment_id)
    review_comments.check_update_fields(changes)
    if unchanged(comment, changes):
        return comment
    before = snapshot(comment)
    review_comments.update(comment, **changes)
    fields = changed_columns(before, snapshot(comment))
    if fields:
        _record_comment("review_comment.updated", comment, fields=fields)
    return comment


@transaction.atomic
def review_comment_resolve(*, comment_id: str) -> ReviewComment:
    """Mark a comment resolved and return it (NotFound when missing). Idempotent: a
    comment already resolved is returned unchanged, and no event is recorded again."""
    return _set_resolved(comment_id, True)


@transaction.atomic
def review_comment_unresolve(*, comment_id: str) -> ReviewComment:
    """Reopen a resolved comment and record ``review_comment.unresolved`` (NotFound when
    missing). Idempotent: a comment already unresolved is returned unchanged, and no
    event is recorded."""
    return _set_resolved(comment_id, False)


def _set_resolved(comment_id: str, resolved: bool) -> ReviewComment:
    was_resolved = review_comments.get_for_update(comment_id).resolved
    if resolved:
        comment = review_comments.resolve(comment_id)
    else:
        comment = review_comments.unresolve(comment_id)
    if was_resolved != resolved:
        kind = "review_comment.resolved" if resolved else "review_comment.unresolved"
        _record_comment(kind, comment)
    return comment


@transaction.atomic
def review_comment_delete(*, comment_id: str) -> None:
    """Delete a comment (NotFound ``review_comment_not_found`` when there is none) and
    record ``review_comment.deleted``."""
    comment = review_comments.get_for_update(comment_id)
    initiative_id = phases.initiative_id_of(comment.phase_id)
    review_comments.delete(comment.pk)
    _record_comment("review_comment.deleted", comment, initiative_id=initiative_id)


@transaction.atomic
def phase_request_changes(*, phase_id: str, actor: Actor | None = None) -> Task:
    """A person hands a phase's unresolved review comments to one ``review`` task and
    reopens the phase.

    The phase (pending review) goes back to in progress with a new high-priority
    ``review`` task whose description is the review brief (each comment with the lines
    of the diff it was written on). The comments stay open, handed to that task
    (``addressed_by``): completing the task resolves them, and a person may resolve or
    reopen any of them meanwhile. Refused when there is no unresolved comment (a person
    writes what to change first), and for any ``actor`` but a person (403
    ``person_required``).
    """
    require_person(actor, "request changes on a phase")
    phase, _initiative = lock_phase_with_initiative(phase_id)
    comments = review_comments.find_by_phase_id(phase_id, unresolved_only=True)
    if not comments and phase.status == PhaseStatus.PENDING_REVIEW:
        raise InvalidInput(
            f"Phase '{phase}' has no unresolved review comments: add the changes you want "
            "as comments first, or approve the phase.",
            code="review_no_comments",
            details={"id": phase.pk},
        )
    phase_reopen_for_changes(phase=phase)
    task = tasks.create(
        phase_id=phase.pk,
        name=f"Address review comments on '{phase.name}'",
        description=render_brief(phase, comments),
        category=TaskCategory.REVIEW,
        type=TaskType.AUTO,
        priority=TaskPriority.HIGH,
    )
    review_comments.hand_to([comment.pk for comment in comments], task.pk)
    record_all(TASKS.created(snapshot(task)))
    for comment in comments:
        _record_comment(
            "review_comment.handed_over",
            comment,
            initiative_id=phase.initiative_id,
            task_id=task.pk,
        )
    return task


@receiver(task_completed, dispatch_uid="reviews.resolve_addressed_comments")
def resolve_addressed_comments(sender: Any, *, task: Task, **_: Any) -> None:
    """A rework task completed: the comments handed to it are resolved (in the task's
    transaction, each with its ``review_comment.resolved`` event by whoever completed it)."""
    if task.category != TaskCategory.REVIEW:
        return
    comments = review_comments.find_addressed_by(task.pk)
    if not comments:
        return
    review_comments.resolve_many([comment.pk for comment in comments])
    initiative_id = phases.initiative_id_of(task.phase_id) if task.phase_id else None
    for comment in comments:
        _record_comment(
            "review_comment.resolved", comment, initiative_id=initiative_id, task_id=task.pk
        )


def _record_comment(
    kind: str, comment: ReviewComment, *, initiative_id: str | None = None, **data: Any
) -> None:
    event_record(
        kind,
        subject_type="review_comment",
        subject_id=comment.pk,
        initiative_id=initiative_id or phases.initiative_id_of(comment.phase_id),
        data={"phase_id": comment.phase_id, **data},
    )
