"""Phase review (``reviews.services.review``): requesting changes on a phase in review."""

import pytest

from core.errors import InvalidInput, TransitionNotAllowed
from core.models import (
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
    assert not ReviewComment.objects.filter(resolved=False).exists()


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
