"""reviews' models: constraints refuse in words with stable codes, and text columns share
the lengths every door enforces."""

import pytest
from django.core.exceptions import ValidationError

from core.errors import Conflict, InvalidInput
from core.validators import NAME_MAX_LENGTH, PATH_MAX_LENGTH, TEXT_MAX_LENGTH
from reviews.models import ChatSession, ChatTargetType
from reviews.repositories import (
    ChatSessionRepository,
    ProposalRepository,
    ReviewCommentRepository,
)
from tests import factories as f
from tests.model_checks import assert_validation_failed

pytestmark = pytest.mark.django_db

proposals = ProposalRepository()
comments = ReviewCommentRepository()
sessions = ChatSessionRepository()


def test_a_second_active_session_is_refused_with_one_code_by_every_door():
    phase = f.PhaseFactory()
    target = {"target_type": ChatTargetType.PHASE, "target_id": phase.id}
    sessions.create_session(**target, initiative_id=phase.initiative_id)

    with pytest.raises(Conflict) as error:
        sessions.create_session(**target, initiative_id=phase.initiative_id)
    assert error.value.code == "chat_session_already_active"

    twin = ChatSession(**target, initiative_id=phase.initiative_id)
    with pytest.raises(ValidationError) as form_refusal:
        twin.validate_constraints()
    (refusal,) = form_refusal.value.error_dict["__all__"]
    assert (refusal.code, refusal.messages) == (
        "chat_session_already_active",
        ["This phase or task already has an active chat session; close it first."],
    )


def test_a_line_number_below_one_is_refused_with_one_code_by_every_door():
    comment = f.ReviewCommentFactory.build(phase=f.PhaseFactory(), line_number=0)
    with pytest.raises(ValidationError) as form_refusal:
        comment.validate_constraints()
    assert [e.code for e in form_refusal.value.error_dict["__all__"]] == ["invalid_line_number"]
    with pytest.raises(InvalidInput) as error:
        comments.create(
            phase_id=comment.phase_id, file_path="a.py", line_number=0, line_type="added", body="b"
        )
    assert error.value.code == "invalid_line_number"


def test_an_enum_check_refuses_with_the_code_check_choice_gives():
    proposal = f.ProposalFactory.build(
        agent=f.AgentFactory(), initiative=f.InitiativeFactory(), target_type="chapter"
    )
    with pytest.raises(ValidationError) as error:
        proposal.validate_constraints()
    assert [e.code for e in error.value.error_dict["__all__"]] == ["invalid_target_type"]


# --- what each column holds ---------------------------------------------------------------


def test_a_proposal_title_one_character_too_long_is_refused():
    agent, initiative = f.AgentFactory(), f.InitiativeFactory()
    fields = {"agent": agent, "initiative": initiative, "target_type": "task"}
    with pytest.raises(InvalidInput) as error:
        proposals.create(**fields, title="x" * (NAME_MAX_LENGTH + 1))
    assert_validation_failed(error.value, "title")
    assert proposals.create(**fields, title="x" * NAME_MAX_LENGTH).title


@pytest.mark.parametrize("field", ["summary", "content"])
def test_a_proposals_text_past_the_shared_limit_is_refused(field):
    proposal = f.ProposalFactory()
    with pytest.raises(InvalidInput) as error:
        proposals.update(proposal.id, **{field: "x" * (TEXT_MAX_LENGTH + 1)})
    assert_validation_failed(error.value, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [("body", "x" * (TEXT_MAX_LENGTH + 1)), ("file_path", "a/" * (PATH_MAX_LENGTH // 2) + "b")],
)
def test_a_review_comment_past_its_limits_is_refused(field, value):
    valid = {"file_path": "a.py", "line_number": 1, "line_type": "added", "body": "b"}
    with pytest.raises(InvalidInput) as error:
        comments.create(phase_id=f.PhaseFactory().id, **{**valid, field: value})
    assert_validation_failed(error.value, field)


def test_a_chat_message_past_the_shared_limit_is_refused():
    session = f.ChatSessionFactory()
    with pytest.raises(InvalidInput) as error:
        sessions.create_message(
            chat_session_id=session.id, role="user", content="x" * (TEXT_MAX_LENGTH + 1)
        )
    assert_validation_failed(error.value, "content")
