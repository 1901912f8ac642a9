"""The events the reviews services record, in their own transaction, and none on refusal."""

import pytest

from core.errors import Conflict, DomainError, InvalidInput
from core.models import Event
from reviews import services
from tests import factories as f
from tests.reviews.helpers import a_person, propose

pytestmark = pytest.mark.django_db


def recorded() -> list[tuple[str, str, str, str | None, dict]]:
    return [
        (e.kind, e.subject_type, e.subject_id, e.initiative_id, e.data)
        for e in Event.objects.order_by("id")
    ]


def test_proposing_records_proposal_created(agent, initiative):
    proposal = propose(agent, initiative, target_type="task")

    assert recorded() == [
        (
            "proposal.created",
            "proposal",
            proposal.id,
            initiative.id,
            {"target_type": "task", "target_id": None},
        )
    ]


def test_accepting_records_proposal_accepted_with_its_change_set(agent, initiative):
    proposal = propose(agent, initiative)
    Event.objects.all().delete()

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())

    assert recorded() == [
        (
            "proposal.accepted",
            "proposal",
            proposal.id,
            initiative.id,
            {"change_set_id": change_set.id},
        )
    ]


def test_dismissing_records_proposal_dismissed(agent, initiative):
    proposal = propose(agent, initiative)
    Event.objects.all().delete()

    services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())

    assert recorded() == [("proposal.dismissed", "proposal", proposal.id, initiative.id, {})]


def test_accept_all_and_dismiss_all_record_one_event_per_proposal(agent, initiative):
    first, second = propose(agent, initiative), propose(agent, initiative)
    Event.objects.all().delete()
    applied = services.proposal_accept_all(agent_id=agent.id, actor=a_person())
    assert [(kind, subject) for kind, _t, subject, _i, _d in recorded()] == [
        ("proposal.accepted", first.id),
        ("proposal.accepted", second.id),
    ]
    assert [data["change_set_id"] for *_rest, data in recorded()] == [c.id for c in applied]

    third, fourth = propose(agent, initiative), propose(agent, initiative)
    Event.objects.all().delete()
    services.proposal_dismiss_all(agent_id=agent.id, actor=a_person())
    assert sorted(subject for _k, _t, subject, _i, _d in recorded()) == sorted(
        [third.id, fourth.id]
    )
    assert {kind for kind, *_rest in recorded()} == {"proposal.dismissed"}


def test_a_refused_accept_records_nothing(agent, initiative):
    proposal = propose(agent, initiative)
    services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())
    Event.objects.all().delete()

    with pytest.raises(Conflict):
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    with pytest.raises(Conflict):
        services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())

    assert recorded() == []


def test_a_refused_accept_all_records_nothing(agent, initiative):
    propose(agent, initiative)
    propose(agent, initiative, metadata={"phase_id": "missing"})
    Event.objects.all().delete()

    with pytest.raises(DomainError):  # the second proposal's phase does not exist
        services.proposal_accept_all(agent_id=agent.id, actor=a_person())

    assert recorded() == []


def test_revert_records_change_set_reverted(agent, initiative):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative).id, actor=a_person()
    )
    Event.objects.all().delete()

    services.change_set_revert(change_set_id=change_set.id)
    with pytest.raises(Conflict):
        services.change_set_revert(change_set_id=change_set.id)

    assert recorded() == [
        (
            "change_set.reverted",
            "change_set",
            change_set.id,
            initiative.id,
            {"proposal_id": change_set.proposal_id, "chat_session_id": None},
        )
    ]


def test_review_comments_record_created_and_resolved_once():
    phase = f.PhaseFactory()

    comment = services.review_comment_create(
        phase_id=phase.id, file_path="a.py", line_number=1, line_type="added", body="Rename"
    )
    services.review_comment_resolve(comment_id=comment.id)
    services.review_comment_resolve(comment_id=comment.id)  # idempotent: no second event

    expected = ("review_comment", comment.id, phase.initiative_id, {"phase_id": phase.id})
    assert recorded() == [
        ("review_comment.created", *expected),
        ("review_comment.resolved", *expected),
    ]


def test_a_refused_review_comment_records_nothing():
    phase = f.PhaseFactory()

    with pytest.raises(InvalidInput):
        services.review_comment_create(
            phase_id=phase.id, file_path="a.py", line_number=0, line_type="added", body="x"
        )

    assert recorded() == []


def test_request_changes_records_the_review_task_and_each_resolved_comment(phase_in_review):
    comments = [f.ReviewCommentFactory(phase=phase_in_review) for _ in range(2)]

    task = services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())

    ours = [event for event in recorded() if event[0] != "phase.status_changed"]
    initiative_id = phase_in_review.initiative_id
    assert ours == [
        (
            "task.created",
            "task",
            task.id,
            initiative_id,
            {"phase_id": phase_in_review.id, "category": "review"},
        ),
        *(
            (
                "review_comment.resolved",
                "review_comment",
                c.id,
                initiative_id,
                {"phase_id": c.phase_id},
            )
            for c in comments
        ),
    ]


def test_request_changes_without_comments_records_nothing(phase_in_review):
    with pytest.raises(InvalidInput):
        services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())
    assert recorded() == []
