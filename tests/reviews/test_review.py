"""Phase review (``reviews.services.review``): requesting changes on a phase in review."""

import pytest

from core import services as core_services
from core.errors import InvalidInput, TransitionNotAllowed
from core.models import (
    Event,
    PhaseStatus,
    Task,
    TaskStatus,
)
from reviews import services
from reviews.models import ReviewComment
from tests import factories as f
from tests.reviews.helpers import a_person

pytestmark = pytest.mark.django_db


def test_request_changes_turns_comments_into_one_review_task(phase_in_review):
    f.ReviewCommentFactory(phase=phase_in_review, body="Rename x")
    f.ReviewCommentFactory(phase=phase_in_review, body="Add a test")

    task = services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())

    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.IN_PROGRESS
    assert (task.category, task.priority, task.status) == ("review", "high", "pending")
    assert "Rename x" in task.description
    assert "Add a test" in task.description
    # The comments stay open, handed to the rework task.
    assert list(ReviewComment.objects.values_list("resolved", "addressed_by_id")) == [
        (False, task.id),
        (False, task.id),
    ]


def test_completing_the_rework_resolves_the_comments_handed_to_it(phase_in_review):
    handed = f.ReviewCommentFactory(phase=phase_in_review, body="Rename x")
    resolved_by_hand = f.ReviewCommentFactory(phase=phase_in_review, body="Add a test")
    task = services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())
    services.review_comment_resolve(comment_id=resolved_by_hand.id)
    later = f.ReviewCommentFactory(phase=phase_in_review, body="Written after the request")

    core_services.task_start(task_id=task.id)
    core_services.task_complete(task_id=task.id, summary="Renamed x, added the test")

    states = dict(ReviewComment.objects.values_list("id", "resolved"))
    assert states == {handed.id: True, resolved_by_hand.id: True, later.id: False}
    resolved_events = Event.objects.filter(kind="review_comment.resolved").order_by("id")
    assert [(e.subject_id, e.data.get("task_id")) for e in resolved_events] == [
        (resolved_by_hand.id, None),
        (handed.id, task.id),
    ]


def test_a_task_that_is_no_rework_resolves_nothing(phase_in_review):
    comment = f.ReviewCommentFactory(phase=phase_in_review)
    other = f.TaskFactory(phase=phase_in_review, status=TaskStatus.IN_PROGRESS)
    core_services.task_complete(task_id=other.id)
    comment.refresh_from_db()
    assert comment.resolved is False


def test_the_brief_quotes_each_comments_hunk(phase_in_review):
    f.ReviewCommentFactory(
        phase=phase_in_review,
        file_path="app.py",
        line_number=2,
        body="Name it total",
        hunk="@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+t = 2",
    )
    task = services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())
    assert "  ```diff\n  @@ -1,2 +1,2 @@\n   a = 1\n  -b = 2\n  +t = 2\n  ```" in task.description


def test_request_changes_refusals(phase_in_review):
    with pytest.raises(InvalidInput) as error:
        services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())
    assert error.value.code == "review_no_comments"
    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.PENDING_REVIEW
    open_phase = f.PhaseFactory(status=PhaseStatus.IN_PROGRESS)
    f.ReviewCommentFactory(phase=open_phase)
    with pytest.raises(TransitionNotAllowed):
        services.phase_request_changes(phase_id=open_phase.id, actor=a_person())
    assert Task.objects.count() == 0


def test_no_trace_of_task_approval_in_the_code():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    words = ("requires_approval", "pending_approval", "approve_task", "find_pending_approval")
    for app in ("core", "agents", "reviews", "operations", "cw_project"):
        for path in (root / app).rglob("*.py"):
            text = path.read_text()
            assert not any(word in text for word in words), path
    assert not TaskStatus.__members__.get("PENDING_APPROVAL")
