"""Phase review: a person's comments on a phase in review become the agent's next task."""

from django.db import transaction

from core.errors import InvalidInput
from core.models import PhaseStatus, Task, TaskCategory, TaskPriority, TaskType
from core.repositories import TaskRepository
from core.services import lock_phase_with_initiative, phase_reopen_for_changes
from reviews.repositories import ReviewCommentRepository
from reviews.services.brief import render_brief

tasks = TaskRepository()
review_comments = ReviewCommentRepository()


@transaction.atomic
def phase_request_changes(*, phase_id: str) -> Task:
    """Turn a phase's unresolved review comments into one ``review`` task and reopen it.

    The phase (pending review) goes back to in progress with a new high-priority
    ``review`` task whose description is the review brief; the comments it carries are
    marked resolved, so the next review starts from what is new. Refused when there is
    no unresolved comment: a person writes what to change first.
    """
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
    return task
