"""Phase review: a person's comments on a phase's diff, and requesting changes, which
turns them into the agent's next task."""

from django.db import transaction
from typing_extensions import Unpack

from core.actors import Actor, require_person
from core.errors import InvalidInput
from core.events import event_record
from core.models import PhaseStatus, Task, TaskCategory, TaskPriority, TaskType
from core.repositories import PhaseRepository, TaskRepository
from core.services import lock_phase_with_initiative, phase_reopen_for_changes
from reviews.models import ReviewComment
from reviews.repositories import ReviewCommentFields, ReviewCommentRepository
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
def review_comment_resolve(*, comment_id: str) -> ReviewComment:
    """Mark a comment resolved and return it (NotFound when missing). Idempotent: a
    comment already resolved is returned unchanged, and no event is recorded again."""
    before = review_comments.get(comment_id)
    comment = review_comments.resolve(comment_id)
    if not before.resolved:
        _record_comment("review_comment.resolved", comment)
    return comment


@transaction.atomic
def phase_request_changes(*, phase_id: str, actor: Actor | None = None) -> Task:
    """A person turns a phase's unresolved review comments into one ``review`` task and
    reopens the phase.

    The phase (pending review) goes back to in progress with a new high-priority
    ``review`` task whose description is the review brief; the comments it carries are
    marked resolved, so the next review starts from what is new. Refused when there is
    no unresolved comment (a person writes what to change first), and for any ``actor``
    but a person (403 ``person_required``).
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
    review_comments.resolve_many([comment.pk for comment in comments])
    event_record(
        "task.created",
        subject_type="task",
        subject_id=task.pk,
        initiative_id=phase.initiative_id,
        data={"phase_id": phase.pk, "category": task.category},
    )
    for comment in comments:
        _record_comment("review_comment.resolved", comment, initiative_id=phase.initiative_id)
    return task


def _record_comment(kind: str, comment: ReviewComment, *, initiative_id: str | None = None) -> None:
    event_record(
        kind,
        subject_type="review_comment",
        subject_id=comment.pk,
        initiative_id=initiative_id or phases.initiative_id_of(comment.phase_id),
        data={"phase_id": comment.phase_id},
    )
