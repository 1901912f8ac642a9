"""The reviews' admin (``reviews/admin.py``): forms save through the same services and
repositories as the API and refuse what it refuses, on the form and without writing;
statuses move only through actions; change sets are read-only history."""

from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews.models import (
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
    ChatSessionStatus,
    Proposal,
    ProposalStatus,
    ReviewComment,
)
from tests import factories as f
from tests.admin_actions import run_admin_action

pytestmark = pytest.mark.django_db


def form_errors(response) -> str:
    """Every error shown on the admin form of ``response`` (which must show the form)."""
    assert response.status_code == HTTPStatus.OK, response.status_code
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def run_action(client, model: str, action: str, *records):
    return client.post(
        reverse(f"admin:reviews_{model}_changelist"),
        {"action": action, "_selected_action": [r.pk for r in records]},
        follow=True,
    )


# --- proposals ---------------------------------------------------------------------------


def proposal_form(**overrides):
    data = {
        "agent": f.AgentFactory().pk,
        "initiative": f.InitiativeFactory().pk,
        "target_type": "page",
        "target_id": "",
        "title": "  Docs  ",
        "summary": "",
        "content": "# Docs",
        "metadata": "null",
        "sort_order": "0",
    }
    return {**data, **overrides}


def test_a_proposal_added_in_the_admin_is_saved_through_proposal_create(admin_client):
    response = admin_client.post(reverse("admin:reviews_proposal_add"), proposal_form())
    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    proposal = Proposal.objects.get()
    assert (proposal.title, proposal.status) == ("Docs", ProposalStatus.PENDING)


def test_a_proposal_for_another_initiatives_target_is_refused_on_the_form(admin_client):
    foreign_task = f.TaskFactory()  # of another initiative than the form's
    response = admin_client.post(
        reverse("admin:reviews_proposal_add"),
        proposal_form(target_type="task", target_id=foreign_task.pk),
    )
    assert "belongs to another initiative" in form_errors(response)
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("metadata", ["[1, 2]", '"text"', '{"priority": "urgent"}'])
def test_proposal_metadata_that_is_not_an_object_of_the_right_shape_is_refused(
    admin_client, metadata
):
    response = admin_client.post(
        reverse("admin:reviews_proposal_add"),
        proposal_form(target_type="task", metadata=metadata),
    )
    assert "metadata" in form_errors(response)
    assert not Proposal.objects.exists()


def test_a_pending_proposal_is_edited_through_proposal_update_but_not_its_status(admin_client):
    proposal = f.ProposalFactory(metadata=None)
    url = reverse("admin:reviews_proposal_change", args=[proposal.pk])
    page = admin_client.get(url).content.decode()
    for fixed in ("status", "agent", "initiative", "target_type", "target_id"):
        assert f'name="{fixed}"' not in page

    data = {"title": "Sharper", "content": "x", "metadata": "null", "sort_order": "3"}
    response = admin_client.post(url, {**data, "status": "accepted"})

    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    proposal.refresh_from_db()
    assert (proposal.title, proposal.sort_order, proposal.status) == ("Sharper", 3, "pending")
    bad = admin_client.post(url, {**data, "metadata": '{"priority": "urgent"}'})
    assert "metadata.priority must be one of" in form_errors(bad)
    proposal.refresh_from_db()
    assert proposal.title == "Sharper"


def test_an_accepted_proposal_is_history_in_the_admin(admin_client):
    proposal = f.ProposalFactory(status=ProposalStatus.ACCEPTED, title="Done")
    url = reverse("admin:reviews_proposal_change", args=[proposal.pk])
    response = admin_client.post(url, {"title": "Rewritten", "metadata": "null", "sort_order": 0})
    assert response.status_code == HTTPStatus.FORBIDDEN
    proposal.refresh_from_db()
    assert proposal.title == "Done"


def test_accepting_twice_from_the_admin_says_why_the_second_is_refused(admin_client):
    proposal = f.ProposalFactory(metadata=None)
    run_action(admin_client, "proposal", "proposal_accept", proposal)
    response = run_action(admin_client, "proposal", "proposal_accept", proposal)
    assert "is already accepted" in response.content.decode()
    assert ChangeSet.objects.count() == 1


# --- review comments ---------------------------------------------------------------------


def comment_form(**overrides):
    data = {
        "phase": f.PhaseFactory().pk,
        "file_path": "src/app.py",
        "line_number": "3",
        "line_type": "added",
        "body": "Rename this.",
        "author": "you",
    }
    return {**data, **overrides}


def test_a_review_comment_whose_file_path_spans_two_lines_is_refused_on_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:reviews_reviewcomment_add"),
        comment_form(file_path="src/a.py\n## injected"),
    )
    assert "A file path is one line" in form_errors(response)
    assert not ReviewComment.objects.exists()

    response = admin_client.post(reverse("admin:reviews_reviewcomment_add"), comment_form())
    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    assert ReviewComment.objects.get().resolved is False


def test_a_review_comment_changed_in_the_admin_keeps_the_rules_and_its_phase(admin_client):
    comment = f.ReviewCommentFactory(file_path="a.py", line_number=1)
    url = reverse("admin:reviews_reviewcomment_change", args=[comment.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="phase"' not in page
    assert 'name="resolved"' not in page
    data = {
        "file_path": "a.py",
        "line_number": "1",
        "line_type": "added",
        "body": "b",
        "author": "you",
    }

    response = admin_client.post(url, {**data, "file_path": "a.py\tb.py"})
    assert "one line" in form_errors(response)
    response = admin_client.post(url, {**data, "line_number": "7"})

    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    comment.refresh_from_db()
    assert (comment.file_path, comment.line_number, comment.body) == ("a.py", 7, "b")


# --- chat sessions and messages ------------------------------------------------------------


def test_a_message_into_a_closed_session_is_refused_on_the_form(admin_client):
    closed = f.ChatSessionFactory(status=ChatSessionStatus.CLOSED)
    url = reverse("admin:reviews_chatmessage_add")
    data = {"role": "user", "content": "Still there?"}

    response = admin_client.post(url, {**data, "chat_session": closed.pk})

    assert f"Chat session '{closed.pk}' is closed." in form_errors(response)
    assert not ChatMessage.objects.exists()
    active = f.ChatSessionFactory()
    response = admin_client.post(url, {**data, "chat_session": active.pk})
    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    assert ChatMessage.objects.get().chat_session_id == active.pk


def test_a_message_of_another_initiatives_change_set_is_refused_on_the_form(admin_client):
    session = f.ChatSessionFactory()
    foreign = f.ChangeSetFactory()
    response = admin_client.post(
        reverse("admin:reviews_chatmessage_add"),
        {"chat_session": session.pk, "role": "assistant", "content": "x", "change_set": foreign.pk},
    )
    assert "belongs to another initiative" in form_errors(response)
    assert not ChatMessage.objects.exists()


def test_a_chat_message_is_never_edited_in_the_admin(admin_client):
    message = f.ChatMessageFactory(content="Original")
    url = reverse("admin:reviews_chatmessage_change", args=[message.pk])
    response = admin_client.post(
        url, {"chat_session": message.chat_session_id, "role": "user", "content": "Rewritten"}
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    message.refresh_from_db()
    assert message.content == "Original"


def test_a_chat_session_is_closed_by_the_action_not_by_its_form(admin_client):
    session = f.ChatSessionFactory()
    agent = f.AgentFactory()
    url = reverse("admin:reviews_chatsession_change", args=[session.pk])
    assert 'name="status"' not in admin_client.get(url).content.decode()

    response = admin_client.post(url, {"agent": agent.pk, "status": "closed"})
    assert response.status_code == HTTPStatus.FOUND, form_errors(response)
    session.refresh_from_db()
    assert (session.agent_id, session.status) == (agent.pk, ChatSessionStatus.ACTIVE)

    run_action(admin_client, "chatsession", "chat_session_close", session)
    session.refresh_from_db()
    assert session.status == ChatSessionStatus.CLOSED
    response = run_action(admin_client, "chatsession", "chat_session_close", session)
    assert "is closed" in response.content.decode()


# --- change sets: history -------------------------------------------------------------------


def test_change_sets_and_entries_cannot_be_added_in_the_admin(admin_client):
    for model in ("changeset", "changesetentry"):
        response = admin_client.get(reverse(f"admin:reviews_{model}_add"))
        assert response.status_code == HTTPStatus.FORBIDDEN


def test_a_change_set_cannot_be_moved_to_another_initiative_in_the_admin(admin_client):
    change_set = f.ChangeSetFactory(description="Accepted page proposal")
    entry = f.ChangeSetEntryFactory(change_set=change_set)
    other = f.InitiativeFactory()
    url = reverse("admin:reviews_changeset_change", args=[change_set.pk])

    assert 'name="initiative"' not in admin_client.get(url).content.decode()
    response = admin_client.post(
        url, {"initiative": other.pk, "source": "chat", "description": "moved"}
    )

    assert response.status_code == HTTPStatus.FORBIDDEN
    change_set.refresh_from_db()
    assert (change_set.initiative_id, change_set.description) != (other.pk, "moved")
    entry_url = reverse("admin:reviews_changesetentry_change", args=[entry.pk])
    response = admin_client.post(entry_url, {"entity_type": "phases", "action": "delete"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert ChangeSetEntry.objects.get(pk=entry.pk).entity_type == "tasks"


def test_the_admin_lists_of_the_reviews_cost_the_same_queries_for_more_rows(admin_client):
    def count(model: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert (
                admin_client.get(reverse(f"admin:reviews_{model}_changelist")).status_code
                == HTTPStatus.OK
            )
        return len(captured.captured_queries)

    factories = {
        "chatmessage": f.ChatMessageFactory,
        "changeset": f.ChangeSetFactory,
        "changesetentry": f.ChangeSetEntryFactory,
        "chatsession": f.ChatSessionFactory,
    }
    for model, factory in factories.items():
        factory()
        one = count(model)
        factory.create_batch(5)
        assert count(model) == one, model


def test_accepting_and_reverting_a_proposal_from_the_admin(admin_client):
    proposal = f.ProposalFactory(metadata=None)

    run_admin_action(admin_client, "reviews_proposal", "proposal_accept", proposal)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED

    run_admin_action(
        admin_client, "reviews_changeset", "change_set_revert", ChangeSet.objects.get()
    )
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_a_second_active_chat_session_is_refused_on_the_admin_form(admin_client):
    from reviews.models import ChatSession

    session = f.ChatSessionFactory()
    response = admin_client.post(
        reverse("admin:reviews_chatsession_add"),
        {
            "target_type": session.target_type,
            "target_id": session.target_id,
            "initiative": session.initiative_id,
            "status": "active",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors  # refused, with a reason on the form
    assert ChatSession.objects.count() == 1


def test_a_chat_session_on_a_missing_or_foreign_target_is_refused_on_the_admin_form(admin_client):
    from reviews.models import ChatSession

    phase = f.PhaseFactory()
    for target_id, initiative in (
        ("nonexistent", phase.initiative),
        (phase.pk, f.InitiativeFactory()),
    ):
        response = admin_client.post(
            reverse("admin:reviews_chatsession_add"),
            {
                "target_type": "phase",
                "target_id": target_id,
                "initiative": initiative.pk,
                "status": "active",
            },
        )
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
    assert not ChatSession.objects.exists()
