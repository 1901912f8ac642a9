"""The reviews' record pages in the admin (``reviews/admin.py``): a proposal is accepted or
dismissed from its own page, which previews the change against the current records; a
review comment is resolved and reopened from its page; a change set is reverted from
its page. Refusals are messages in words; the pages cost the same queries for 10 rows
as for 100; labels say what a record is."""

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Task, TaskPriority
from core.tiptap import markdown_to_tiptap_json
from reviews.models import (
    ChangeSet,
    ChangeSetStatus,
    ChatTargetType,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
)
from tests import factories as f
from tests.admin_actions import run_admin_action

pytestmark = pytest.mark.django_db


def change_url(record) -> str:
    return reverse(f"admin:reviews_{record._meta.model_name}_change", args=[record.pk])


def button_url(record, slug: str) -> str:
    return reverse(f"admin:reviews_{record._meta.model_name}_do", args=[record.pk, slug])


def press(client, record, slug: str) -> list[str]:
    """Press the button ``slug`` on the record's page (answering yes when it asks
    first); the messages shown after."""
    response = client.post(button_url(record, slug), {"confirmed": "yes"}, follow=True)
    assert response.status_code == HTTPStatus.OK
    assert response.redirect_chain[-1][0] == change_url(record)
    return [str(m) for m in response.context["messages"]]


def task_update_proposal(task: Task, **fields) -> Proposal:
    return f.ProposalFactory(
        initiative=task.initiative,
        target_type=ProposalTargetType.TASK,
        target_id=task.pk,
        **{"metadata": None, **fields},
    )


# --- accepting and dismissing from the proposal's page -------------------------------------


def test_a_pending_proposal_is_accepted_from_its_page_and_links_its_change_set(admin_client):
    proposal = f.ProposalFactory(title="Write the docs", metadata=None)
    page = admin_client.get(change_url(proposal)).content.decode()
    assert button_url(proposal, "accept") in page
    assert button_url(proposal, "dismiss") in page

    shown = press(admin_client, proposal, "accept")

    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED
    change_set = ChangeSet.objects.get(proposal=proposal)
    assert shown == [
        f'Accepted “Write the docs”: what it changed is <a href="{change_url(change_set)}">'
        f"Change set from proposal &#x27;Write the docs&#x27; (applied)</a>, which can be "
        "reverted."
    ]
    page = admin_client.get(change_url(proposal)).content.decode()
    assert change_url(change_set) in page
    assert button_url(proposal, "accept") not in page


def test_a_pending_proposal_is_dismissed_from_its_page(admin_client):
    proposal = f.ProposalFactory(title="Not now")

    assert press(admin_client, proposal, "dismiss") == ["Dismissed “Not now”."]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.DISMISSED
    assert not ChangeSet.objects.exists()


def test_dismissing_a_proposal_asks_first(admin_client):
    proposal = f.ProposalFactory(title="Not now")

    response = admin_client.post(button_url(proposal, "dismiss"))

    assert response.status_code == HTTPStatus.OK
    assert "Dismiss the proposal &#x27;Not now&#x27;?" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_a_proposal_accept_would_refuse_is_offered_disabled_with_the_reason(admin_client):
    task = f.TaskFactory(name="Old")
    proposal = task_update_proposal(task)
    task.delete()

    page = admin_client.get(change_url(proposal)).content.decode()

    assert button_url(proposal, "accept") not in page
    assert 'data-slug="accept"' in page and "cw-refusal-reason" in page
    assert button_url(proposal, "dismiss") in page


@pytest.mark.parametrize("slug", ["accept", "dismiss"])
def test_deciding_on_a_proposal_decided_since_shows_why_it_is_refused(admin_client, slug):
    proposal = f.ProposalFactory(status=ProposalStatus.ACCEPTED, title="Done")

    shown = press(admin_client, proposal, slug)

    assert shown == ["Proposal 'Done' is already accepted."]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED


def test_accepting_a_proposal_whose_target_was_deleted_is_a_message_not_an_error(admin_client):
    task = f.TaskFactory(name="Old")
    proposal = task_update_proposal(task)
    task_id = task.pk
    task.delete()

    page = admin_client.get(change_url(proposal))
    assert page.status_code == HTTPStatus.OK
    assert "Accepting is refused as things stand" in page.content.decode()
    assert press(admin_client, proposal, "accept") == [
        f"The task this proposal changes ('{task_id}') no longer exists."
    ]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert not ChangeSet.objects.exists()


def test_accepting_a_proposal_whose_target_changed_applies_it_to_the_current_record(
    admin_client,
):
    task = f.TaskFactory(name="Old", description="old")
    proposal = task_update_proposal(task, title="New", content="new")
    Task.objects.filter(pk=task.pk).update(name="Renamed meanwhile")

    page = admin_client.get(change_url(proposal))
    assert [row[1] for row in page.context["proposal_preview"].changes] == [
        "Renamed meanwhile",
        "old",
    ]
    press(admin_client, proposal, "accept")
    task.refresh_from_db()
    assert (task.name, task.description) == ("New", "new")


def test_a_missing_proposal_sends_back_to_the_list_with_a_message(admin_client):
    proposal = f.ProposalFactory()
    url, proposal_id = button_url(proposal, "accept"), proposal.pk
    proposal.delete()

    response = admin_client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:reviews_proposal_changelist")
    assert [str(m) for m in response.context["messages"]] == [
        f"There is no proposal '{proposal_id}' any more."
    ]


def test_the_buttons_refuse_a_post_without_csrf_token_and_a_get(admin_user):
    proposal = f.ProposalFactory(metadata=None)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    assert browser.post(button_url(proposal, "accept")).status_code == HTTPStatus.FORBIDDEN
    assert browser.get(button_url(proposal, "accept")).status_code == (
        HTTPStatus.METHOD_NOT_ALLOWED
    )
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_the_buttons_need_the_permission_to_change_such_records(client):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_proposal"))
    client.force_login(viewer)
    proposal = f.ProposalFactory(metadata=None)

    page = client.get(change_url(proposal)).content.decode()
    assert button_url(proposal, "accept") not in page
    assert client.post(button_url(proposal, "accept")).status_code == HTTPStatus.FORBIDDEN
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_anyone_logged_out_is_sent_to_the_login_page(client):
    proposal = f.ProposalFactory(metadata=None)
    response = client.post(button_url(proposal, "accept"))
    assert response.status_code == HTTPStatus.FOUND
    assert reverse("admin:login") in response["Location"]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


# --- the preview ---------------------------------------------------------------------------


def test_an_update_proposal_of_a_task_previews_each_changing_field_before_and_after(
    admin_client,
):
    task = f.TaskFactory(name="Login", description="Add login.", priority=TaskPriority.LOW)
    proposal = task_update_proposal(
        task,
        title="Login with magic links",
        content="Add login with magic links.",
        metadata={"priority": "high", "type": "auto"},  # auto: what the task has already
    )

    response = admin_client.get(change_url(proposal))

    preview = response.context["proposal_preview"]
    assert preview.changes == [
        ("Name", "Login", "Login with magic links"),
        ("Description", "Add login.", "Add login with magic links."),
        ("Priority", "Low", "High"),
    ]
    page = response.content.decode()
    assert "After accepting" in page
    assert "Login with magic links" in page
    task.refresh_from_db()
    assert task.name == "Login"  # a preview writes nothing


def test_an_update_proposal_of_a_page_previews_its_content_as_markdown(admin_client):
    page = f.PageFactory(title="Emails", content=markdown_to_tiptap_json("# Emails\n\nSays hi."))
    proposal = f.ProposalFactory(
        initiative=page.initiative,
        target_type=ProposalTargetType.PAGE,
        target_id=page.pk,
        title="Emails",
        content="# Emails\n\nSays hello, **never** the IP address.",
        metadata=None,
    )

    response = admin_client.get(change_url(proposal))

    assert response.context["proposal_preview"].changes == [
        (
            "Content",
            "# Emails\n\nSays hi.",
            "# Emails\n\nSays hello, **never** the IP address.",
        )
    ]
    assert '"type": "doc"' not in response.content.decode()


def test_an_update_proposal_changing_nothing_says_so(admin_client):
    task = f.TaskFactory(name="Same", description="Same.")
    proposal = task_update_proposal(task, title="Same", content="Same.")
    page = admin_client.get(change_url(proposal)).content.decode()
    assert "No field changes: the task already reads as proposed." in page


def test_a_create_proposal_previews_what_it_creates_and_where(admin_client):
    phase = f.PhaseFactory(name="Backend")
    depends_on = f.TaskFactory(phase=phase, name="Schema")
    proposal = f.ProposalFactory(
        initiative=phase.initiative,
        title="Migrations",
        content="Write them.",
        metadata={"phase_id": phase.pk, "category": "verify", "dependencies": [depends_on.pk]},
    )

    response = admin_client.get(change_url(proposal))

    preview = response.context["proposal_preview"]
    assert [(label, str(value)) for label, value in preview.created] == [
        ("Phase", f'<a href="/admin/core/phase/{phase.pk}/change/">{phase}</a>'),
        ("Name", "Migrations"),
        ("Description", "Write them."),
        ("Category", "Verify"),
    ]
    assert [str(link) for link in preview.dependencies] == [
        f'<a href="/admin/core/task/{depends_on.pk}/change/">Schema</a>'
    ]
    assert f"Creates a new task in the initiative {phase.initiative}" in response.content.decode()
    assert Task.objects.count() == 1  # a preview writes nothing


def test_a_create_proposal_naming_a_foreign_phase_previews_the_refusal(admin_client):
    proposal = f.ProposalFactory(title="Tests", metadata={"phase_id": f.PhaseFactory().pk})
    refusal = "Proposal 'Tests': metadata.phase_id must name a phase of this initiative."
    page = admin_client.get(change_url(proposal)).content.decode()
    assert refusal.replace("'", "&#x27;") in page
    assert press(admin_client, proposal, "accept") == [refusal]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


# --- change sets ---------------------------------------------------------------------------


def test_a_change_set_is_reverted_from_its_page_once(admin_client):
    proposal = f.ProposalFactory(title="Docs", metadata=None)
    press(admin_client, proposal, "accept")
    change_set = ChangeSet.objects.get()
    assert (
        button_url(change_set, "revert")
        in admin_client.get(change_url(change_set)).content.decode()
    )

    assert press(admin_client, change_set, "revert") == [
        "Reverted: Change set from proposal 'Docs' (reverted)."
    ]
    change_set.refresh_from_db()
    proposal.refresh_from_db()
    assert (change_set.status, proposal.status) == (ChangeSetStatus.REVERTED, "pending")
    page = admin_client.get(change_url(change_set)).content.decode()
    assert button_url(change_set, "revert") not in page
    assert press(admin_client, change_set, "revert") == [
        f"Change set '{change_set.pk}' is already reverted."
    ]


def test_reverting_a_change_set_asks_first(admin_client):
    proposal = f.ProposalFactory(title="Docs", metadata=None)
    press(admin_client, proposal, "accept")
    change_set = ChangeSet.objects.get()

    response = admin_client.post(button_url(change_set, "revert"))

    assert response.status_code == HTTPStatus.OK
    assert (
        "Revert this change set (Change set from proposal &#x27;Docs&#x27;"
        in response.content.decode()
    )
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.APPLIED


def test_a_stale_change_set_offers_its_revert_disabled_with_the_reason(admin_client):
    task = f.TaskFactory(name="Old")
    proposal = task_update_proposal(task, title="New")
    press(admin_client, proposal, "accept")
    change_set = ChangeSet.objects.get()
    Task.objects.filter(pk=task.pk).update(name="Changed by hand")

    page = admin_client.get(change_url(change_set)).content.decode()

    assert button_url(change_set, "revert") not in page
    assert "changed since this change set was applied" in page
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.APPLIED


def test_a_stale_change_set_refuses_its_revert_in_words(admin_client):
    task = f.TaskFactory(name="Old")
    proposal = task_update_proposal(task, title="New")
    press(admin_client, proposal, "accept")
    Task.objects.filter(pk=task.pk).update(name="Changed by hand")

    [shown] = press(admin_client, ChangeSet.objects.get(), "revert")

    assert shown.startswith("Cannot revert: tasks")
    assert "changed since this change set was applied" in shown
    assert Task.objects.get(pk=task.pk).name == "Changed by hand"


# --- review comments -----------------------------------------------------------------------


def test_a_review_comment_is_resolved_and_reopened_from_its_page(admin_client):
    comment = f.ReviewCommentFactory(file_path="src/auth.py", line_number=42, body="Rename this")
    page = admin_client.get(change_url(comment)).content.decode()
    assert "src/auth.py:42" in page
    assert "an added line (new side)" in page
    assert button_url(comment, "unresolve") not in page

    assert press(admin_client, comment, "resolve") == ["Resolved “src/auth.py:42 — Rename this”."]
    comment.refresh_from_db()
    assert comment.resolved
    page = admin_client.get(change_url(comment)).content.decode()
    assert button_url(comment, "resolve") not in page

    assert press(admin_client, comment, "unresolve") == [
        "Reopened “src/auth.py:42 — Rename this”: it is unresolved again."
    ]
    comment.refresh_from_db()
    assert not comment.resolved


def test_review_comments_are_resolved_and_reopened_from_the_list(admin_client):
    first, second = f.ReviewCommentFactory.create_batch(2)
    run_admin_action(admin_client, "reviews_reviewcomment", "review_comment_resolve", first, second)
    assert ReviewComment.objects.filter(resolved=True).count() == 2
    shown = run_admin_action(
        admin_client, "reviews_reviewcomment", "review_comment_unresolve", first
    )
    assert shown == ["Unresolve: done for 1 record(s)."]
    assert list(ReviewComment.objects.filter(resolved=False)) == [first]


# --- changelists -----------------------------------------------------------------------------


def listed(client, model: str, **params) -> set[str]:
    response = client.get(reverse(f"admin:reviews_{model}_changelist"), params)
    assert response.status_code == HTTPStatus.OK  # an unknown filter would redirect
    return {record.pk for record in response.context["cl"].result_list}


def test_proposals_are_filtered_by_agent_status_target_type_and_initiative(admin_client):
    agent, initiative = f.AgentFactory(), f.InitiativeFactory()
    mine = f.ProposalFactory(agent=agent, target_type=ProposalTargetType.PAGE)
    theirs = f.ProposalFactory(initiative=initiative, status=ProposalStatus.DISMISSED)

    assert listed(admin_client, "proposal", agent__id__exact=agent.pk) == {mine.pk}
    assert listed(admin_client, "proposal", status__exact="dismissed") == {theirs.pk}
    assert listed(admin_client, "proposal", target_type__exact="page") == {mine.pk}
    assert listed(admin_client, "proposal", initiative__id__exact=initiative.pk) == {theirs.pk}


def test_review_comments_are_filtered_by_phase_and_resolved(admin_client):
    phase = f.PhaseFactory()
    open_here = f.ReviewCommentFactory(phase=phase)
    resolved_here = f.ReviewCommentFactory(phase=phase, resolved=True)
    f.ReviewCommentFactory()

    assert listed(admin_client, "reviewcomment", phase__id__exact=phase.pk) == {
        open_here.pk,
        resolved_here.pk,
    }
    assert listed(admin_client, "reviewcomment", phase__id__exact=phase.pk, resolved__exact=1) == {
        resolved_here.pk
    }


def test_long_titles_are_cut_in_the_proposal_list(admin_client):
    f.ProposalFactory(title="A" * 200)
    page = admin_client.get(reverse("admin:reviews_proposal_changelist")).content.decode()
    assert "A" * 59 + "…" in page
    assert "A" * 61 not in page


# --- what each page costs ------------------------------------------------------------------


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == HTTPStatus.OK
    return len(captured.captured_queries)


def grow_chat(count: int) -> None:
    for _ in range(count):
        task = f.TaskFactory()
        session = f.ChatSessionFactory(
            initiative=task.initiative, target_type=ChatTargetType.TASK, target_id=task.pk
        )
        change_set = f.ChangeSetFactory(
            initiative=task.initiative, proposal=f.ProposalFactory(initiative=task.initiative)
        )
        f.ChatMessageFactory(chat_session=session, change_set=change_set)
        f.ChangeSetEntryFactory(change_set=change_set)
        f.ReviewCommentFactory(phase=task.phase)


def test_the_lists_cost_the_same_queries_at_10_rows_and_at_100(admin_client):
    models = ("proposal", "reviewcomment", "chatsession", "chatmessage", "changeset")
    grow_chat(10)
    at_10 = {m: queries(admin_client, reverse(f"admin:reviews_{m}_changelist")) for m in models}
    grow_chat(90)
    at_100 = {m: queries(admin_client, reverse(f"admin:reviews_{m}_changelist")) for m in models}
    assert at_100 == at_10


def test_the_record_pages_cost_the_same_queries_at_10_rows_and_at_100(admin_client):
    phase = f.PhaseFactory()
    depends_on = f.TaskFactory.create_batch(10, phase=phase)
    proposal = f.ProposalFactory(
        initiative=phase.initiative,
        metadata={"phase_id": phase.pk, "dependencies": [t.pk for t in depends_on]},
    )
    target = f.TaskFactory(phase=phase, name="Target")
    update = task_update_proposal(
        target, title="Renamed", metadata={"dependencies": [t.pk for t in depends_on]}
    )
    change_set = f.ChangeSetFactory(initiative=phase.initiative)
    f.ChangeSetEntryFactory.create_batch(10, change_set=change_set)
    comment = f.ReviewCommentFactory(phase=phase)
    f.ReviewCommentFactory.create_batch(9, phase=phase)
    pages = (proposal, update, change_set, comment)
    for record in pages:  # warm the per-process caches (content types) first
        queries(admin_client, change_url(record))
    at_10 = [queries(admin_client, change_url(record)) for record in pages]

    more = f.TaskFactory.create_batch(90, phase=phase)
    Proposal.objects.filter(pk=proposal.pk).update(
        metadata={"phase_id": phase.pk, "dependencies": [t.pk for t in depends_on + more]}
    )
    Proposal.objects.filter(pk=update.pk).update(
        metadata={"dependencies": [t.pk for t in depends_on + more]}
    )
    f.ChangeSetEntryFactory.create_batch(90, change_set=change_set)
    f.ReviewCommentFactory.create_batch(90, phase=phase)
    at_100 = [queries(admin_client, change_url(record)) for record in pages]
    assert at_100 == at_10


# --- labels in words -----------------------------------------------------------------------


def test_the_records_say_what_they_are_in_words():
    task = f.TaskFactory(name="Add login")
    proposal = f.ProposalFactory(
        title="Split the auth task", target_type="task", target_id=task.pk, metadata=None
    )
    assert str(proposal) == "Split the auth task (update task, pending)"
    assert str(f.ProposalFactory(title="Docs", target_type="page")) == "Docs (new page, pending)"
    comment = f.ReviewCommentFactory(file_path="src/auth.py", line_number=42, body="Rename this")
    assert str(comment) == "src/auth.py:42 — Rename this"
    long = f.ReviewCommentFactory(file_path="a.py", line_number=1, body="x" * 100)
    assert str(long) == "a.py:1 — " + "x" * 39 + "…"
    session = f.ChatSessionFactory(
        initiative=task.initiative, target_type="task", target_id=task.pk
    )
    assert str(session) == "Chat on task 'Add login'"
    change_set = f.ChangeSetFactory(proposal=proposal)
    assert str(change_set) == "Change set from proposal 'Split the auth task' (applied)"
    chat_edit = f.ChangeSetFactory(source="chat", chat_session=session, description="Split it")
    assert str(chat_edit) == "Change set from a chat edit: Split it (applied)"


def test_the_chat_session_dropdown_finds_sessions_by_their_targets_name(admin_client):
    task = f.TaskFactory(name="Add login")
    session = f.ChatSessionFactory(
        initiative=task.initiative, target_type="task", target_id=task.pk
    )
    f.ChatSessionFactory()
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "term": "login",
            "app_label": "reviews",
            "model_name": "chatmessage",
            "field_name": "chat_session",
        },
    )
    assert response.json()["results"] == [{"id": session.pk, "text": "Chat on task 'Add login'"}]


# --- a proposal's metadata in words ---------------------------------------------------------


def test_a_decided_proposals_metadata_shows_as_a_definition_list(admin_client):
    proposal = f.ProposalFactory(
        status=ProposalStatus.DISMISSED,
        metadata={"category": "execute", "depends_on": ["a1", "b2"], "requires_review": True},
    )
    page = admin_client.get(change_url(proposal)).content.decode()

    assert '<dl class="cw-json"><dt>Category</dt><dd>execute</dd>' in page
    assert '<dt>Depends on</dt><dd><ul class="cw-json"><li>a1</li><li>b2</li></ul></dd>' in page
    assert "<dt>Requires review</dt><dd>yes</dd>" in page
    assert "&quot;depends_on&quot;" not in page


def test_a_pending_proposal_keeps_its_metadata_editable_and_reads_it_too(admin_client):
    proposal = f.ProposalFactory(metadata={"priority": "high"})
    response = admin_client.get(change_url(proposal))
    assert "metadata" in response.context["adminform"].form.fields
    assert "<dt>Priority</dt><dd>high</dd>" in response.content.decode()
