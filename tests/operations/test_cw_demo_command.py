"""The ``cw_demo`` operator command: a realistic demo, loaded once, through the services.

The demo makes its git repositories and fetches them into cw's mirrors (both in this
test process's temporary folders, see tests/conftest.py): its tests start git.
"""

import io
import json
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.models import (
    Account,
    Agent,
    AgentLogChunk,
    AgentStatus,
    Conversation,
    ConversationStatus,
    MessageType,
    ParticipantType,
)
from agents.repositories import MessageRepository
from core import mirrors
from core import services as core
from core.actors import Actor
from core.models import (
    Event,
    ExecutionMode,
    Initiative,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Project,
    Task,
    TaskDependency,
    TaskStatus,
    TaskType,
)
from core.tiptap import tiptap_to_text
from core.validators import validate_tiptap_document
from operations.demo import DEMO_BRANCHES, git_repos
from operations.demo.codebases import CODEBASES
from reviews import services as reviews
from reviews.models import (
    ChangeSet,
    ChangeSetStatus,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
)

pytestmark = [pytest.mark.django_db, pytest.mark.processes]


def run(*args: str) -> str:
    """Run ``cw_demo`` with ``args``; its standard output."""
    out = io.StringIO()
    call_command("cw_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def demo() -> dict:
    """The demo, loaded; the summary ``--json`` printed."""
    return json.loads(run("--json"))


def initiative(mode: str) -> Initiative:
    return Initiative.objects.get(branch__in=DEMO_BRANCHES, execution_mode=mode)


def row_counts() -> dict[str, int]:
    """How many rows every model of the project has."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if not model._meta.proxy
    }


def a_person() -> Actor:
    user, _ = get_user_model().objects.get_or_create(username="reviewer")
    return Actor.person(user)


def log_records(agent: Agent) -> list[dict]:
    """Every JSON record of an agent's log, in order (each line of each chunk parses)."""
    chunks = AgentLogChunk.objects.filter(agent_id=agent.pk).order_by("id")
    return [json.loads(line) for chunk in chunks for line in chunk.content.splitlines() if line]


# --- the plan --------------------------------------------------------------------------------


def test_loads_one_initiative_per_execution_mode_with_the_fixed_branches(demo):
    found = {i.execution_mode: i for i in Initiative.objects.filter(branch__in=DEMO_BRANCHES)}

    assert set(found) == {ExecutionMode.YOLO, ExecutionMode.REVIEW_PER_PHASE}
    assert {i.branch for i in found.values()} == set(DEMO_BRANCHES)
    assert [i["id"] for i in demo["initiatives"]] == [
        found[ExecutionMode.YOLO].pk,
        found[ExecutionMode.REVIEW_PER_PHASE].pk,
    ]


def test_phases_and_tasks_depend_on_each_other(demo):
    for mode in ExecutionMode.values:
        phases = Phase.objects.filter(initiative=initiative(mode))
        assert PhaseDependency.objects.filter(phase__in=phases).exists()
        assert TaskDependency.objects.filter(task__phase__in=phases).exists()


def test_the_yolo_initiative_has_a_completed_phase_one_in_progress_and_one_pending(demo):
    statuses = set(
        Phase.objects.filter(initiative=initiative(ExecutionMode.YOLO)).values_list(
            "status", flat=True
        )
    )

    assert statuses == {PhaseStatus.COMPLETED, PhaseStatus.IN_PROGRESS, PhaseStatus.PENDING}


def test_some_tasks_are_ready_for_agents(demo):
    ready = core.task_list_ready()

    assert ready
    assert all(t.status == TaskStatus.PENDING and t.type == TaskType.AUTO for t in ready)
    assert demo["highlights"]["ready_task_id"] in {t.pk for t in ready}


def test_some_tasks_are_running_under_a_running_agent(demo):
    running = Task.objects.filter(status=TaskStatus.IN_PROGRESS, agents__status="running")

    assert running.exists()


def test_a_task_is_blocked_and_remembers_where_it_was(demo):
    blocked = Task.objects.get(status=TaskStatus.BLOCKED)

    assert blocked.blocked_from_status == TaskStatus.PENDING


def test_a_phase_waits_for_review_with_its_tasks_done(demo):
    phase = Phase.objects.get(pk=demo["highlights"]["phase_in_review_id"])

    assert phase.status == PhaseStatus.PENDING_REVIEW
    assert phase.initiative.execution_mode == ExecutionMode.REVIEW_PER_PHASE
    assert {t.status for t in phase.tasks.all()} == {TaskStatus.COMPLETED}


def test_completed_tasks_carry_summaries_their_dependents_read_as_context(demo):
    completed = Task.objects.filter(status=TaskStatus.COMPLETED)

    assert completed.count() >= 5
    assert all(t.summary and len(t.summary) > 80 for t in completed)
    dependent = TaskDependency.objects.filter(depends_on_task__status=TaskStatus.COMPLETED).first()
    assert dependent is not None
    context = core.task_context(task_id=dependent.task_id)
    assert context and all(entry.summary for entry in context)


def test_checkpoint_tasks_wait_for_a_person(demo):
    waiting = core.task_list_waiting_checkpoints()

    assert {t.type for t in waiting} == {
        TaskType.CHECKPOINT_DECISION,
        TaskType.CHECKPOINT_HUMAN_ACTION,
    }
    assert all(t.status == TaskStatus.PENDING for t in waiting)
    assert demo["highlights"]["waiting_checkpoint_id"] in {t.pk for t in waiting}


# --- pages and projects --------------------------------------------------------------------


def test_each_initiative_has_a_page_tree_of_tiptap_documents(demo):
    for mode in ExecutionMode.values:
        pages = list(Page.objects.filter(initiative=initiative(mode)))
        roots = [p for p in pages if p.parent_page_id is None]
        assert len(roots) == 1
        assert len(pages) >= 4
        for page in pages:
            assert page.content is not None
            validate_tiptap_document(page.content)
            assert tiptap_to_text(page.content).strip()
    # Three levels deep somewhere: a page under a page under the root.
    assert Page.objects.filter(parent_page__parent_page__isnull=False).exists()


def test_phases_describe_themselves_in_tiptap(demo):
    for phase in Phase.objects.filter(initiative__branch__in=DEMO_BRANCHES):
        assert phase.content is not None
        validate_tiptap_document(phase.content)


def test_projects_are_linked_to_the_initiatives(demo):
    assert Project.objects.count() == 3
    for mode in ExecutionMode.values:
        assert initiative(mode).projects.count() == 2
    assert Project.objects.filter(last_fetched_at__isnull=False).exists()


# --- agents and their logs -----------------------------------------------------------------


def test_agents_are_in_several_states(demo):
    statuses = set(Agent.objects.values_list("status", flat=True))

    assert len(statuses) >= 3
    assert {AgentStatus.RUNNING, AgentStatus.IDLE, AgentStatus.WAITING_FOR_INPUT} <= statuses
    assert {AgentStatus.CRASHED, AgentStatus.STOPPED} <= statuses


def test_every_agent_has_a_log_of_claude_code_stream_json_records(demo):
    for agent in Agent.objects.all():
        records = log_records(agent)
        assert records, agent.name
        assert records[0]["type"] == "system" and records[0]["subtype"] == "init"
        contents = [
            item["type"]
            for record in records
            if record["type"] in ("assistant", "user")
            for item in record["message"]["content"]
        ]
        assert {"text", "tool_use", "tool_result"} <= set(contents), agent.name
        assert {r["session_id"] for r in records} == {agent.session_id}
        if agent.status == AgentStatus.RUNNING:
            assert records[-1]["type"] != "result"
        else:
            assert records[-1]["type"] == "result"


def test_the_crashed_agent_ran_out_of_its_accounts_usage(demo):
    crashed = Agent.objects.get(status=AgentStatus.CRASHED)

    assert crashed.exit_code == 1
    assert log_records(crashed)[-1]["is_error"] is True
    assert crashed.account_id == demo["highlights"]["exhausted_account_id"]


def test_a_dismissed_agent_is_hidden_from_the_working_views(demo):
    assert Agent.objects.filter(user_dismissed_at__isnull=False, status="stopped").count() == 1


# --- accounts --------------------------------------------------------------------------------


def test_one_account_is_exhausted_until_about_tomorrow(demo):
    exhausted = Account.objects.get(is_exhausted=True)

    assert exhausted.pk == demo["highlights"]["exhausted_account_id"]
    assert exhausted.exhausted_until is not None
    expected = timezone.now() + timedelta(days=1)
    assert abs(exhausted.exhausted_until - expected) < timedelta(minutes=5)


def test_accounts_carry_obviously_fake_secrets(demo):
    for account in Account.objects.all():
        assert account.email.endswith("@example.com")
        assert account.credentials is not None and account.config_json is not None
        assert "demo-not-a-real" in json.loads(account.credentials)["claudeAiOauth"]["accessToken"]
        json.loads(account.config_json)


# --- proposals, review, messages, conversations, chat --------------------------------------


def test_proposals_of_every_target_type_wait_for_a_person(demo):
    pending = Proposal.objects.filter(status=ProposalStatus.PENDING)

    assert set(pending.values_list("target_type", flat=True)) == set(ProposalTargetType.values)
    # Creations and a change of an existing page alike.
    assert pending.filter(target_id__isnull=True).exists()
    assert pending.filter(target_id__isnull=False).exists()


def test_pending_proposals_can_be_accepted(demo):
    person = a_person()
    for proposal in Proposal.objects.filter(status=ProposalStatus.PENDING):
        reviews.proposal_accept(proposal_id=proposal.pk, actor=person)

    assert not Proposal.objects.filter(status=ProposalStatus.PENDING).exists()


def test_a_phase_in_review_has_comments_on_its_diff(demo):
    phase_id = demo["highlights"]["phase_in_review_id"]
    comments = ReviewComment.objects.filter(phase_id=phase_id)

    assert comments.filter(resolved=False).count() >= 2
    assert comments.filter(resolved=True).exists()
    assert {c.line_type for c in comments} == {"added", "removed", "context"}
    brief = reviews.phase_review_brief(phase_id=phase_id)
    assert brief.unresolved == comments.filter(resolved=False).count()
    assert "accounts/models.py" in brief.markdown
    # The brief quotes each comment's hunk, as read from the demo's repositories.
    for comment in comments.filter(resolved=False):
        assert comment.hunk and comment.hunk.startswith("@@ ")
        assert comment.line_text in brief.markdown


def test_the_phase_in_review_shows_a_real_diff_with_every_comment_at_its_line(demo):
    phase_id = demo["highlights"]["phase_in_review_id"]
    diff = reviews.phase_diff(phase_id=phase_id, highlight=False)

    assert [p.problem for p in diff.projects] == [None, None]
    assert {p.source for p in diff.projects} == {"branch"}
    assert all(p.files for p in diff.projects)
    comments = list(ReviewComment.objects.filter(phase_id=phase_id))
    assert len(comments) == 4
    for comment in comments:
        assert comment.project_id is not None
        assert comment.line_text is not None
        assert reviews.is_outdated(comment, diff) is False, comment.file_path
        found = diff.file(comment.project_id, comment.file_path)
        assert found is not None, comment.file_path
        line = found.line_at(comment.line_type, comment.line_number)
        assert line is not None and line.text == comment.line_text
    by_path = {(c.file_path, c.line_type): c.line_text for c in comments}
    assert "token_hash != digest" in by_path["accounts/models.py", "added"] or (
        "timedelta(minutes=15)" in by_path["accounts/models.py", "added"]
    )
    assert "Auto-Submitted" in by_path["notifications/mailer.py", "removed"]
    assert "logo.png" in by_path["notifications/templates/email/base.html", "context"]


def test_the_review_page_shows_the_demos_comments_on_the_diff(demo, admin_client):
    phase_id = demo["highlights"]["phase_in_review_id"]

    html = admin_client.get(f"/admin/core/phase/{phase_id}/review/").content.decode()

    assert "has not fetched" not in html
    assert 'id="cw-elsewhere"' not in html
    assert "Comments on lines no longer in this diff" not in html
    assert 'class="cw-badge cw-outdated"' not in html
    assert "accounts/models.py" in html and "notifications/mailer.py" in html
    for comment in ReviewComment.objects.filter(phase_id=phase_id):  # each under its line
        row = (
            r'<tr class="cw-comment-row"><td colspan="2"></td><td>\s*'
            rf'<div class="cw-comment[^"]*" id="comment-{comment.pk}"'
        )
        assert re.search(row, html), comment.file_path


def test_the_projects_are_local_repositories_with_the_initiatives_branches(demo, settings):
    for project in Project.objects.all():
        assert project.url.startswith(f"file://{settings.CW_DEMO_REPOS_DIR}/")
        assert project.last_fetched_at is not None
        assert mirrors.commit_of(project.pk, project.default_branch) is not None
        for made in project.initiatives.all():
            assert mirrors.commit_of(project.pk, made.branch) is not None, made.branch
    notifications = Project.objects.get(name="acme-notifications")
    assert notifications.default_branch == "develop"


def test_the_repositories_are_made_once_and_kept(demo):
    repository = git_repos.path_of(CODEBASES["payments"])
    marker = repository / "description"
    marker.write_text("kept\n")

    again = git_repos.ensure_repository(CODEBASES["payments"])

    assert again == repository
    assert marker.read_text() == "kept\n"
    assert not [p for p in repository.parent.iterdir() if p.name.startswith(".")]


def test_messages_wait_for_a_person(demo):
    pending = MessageRepository().find_pending_for_user()

    assert len(pending) >= 2
    assert all(m.recipient_type == ParticipantType.USER for m in pending)
    questions = [m for m in pending if m.type == MessageType.QUESTION]
    assert questions and all(m.requires_response for m in questions)
    # And one question was answered in a thread.
    assert MessageRepository().queryset().filter(parent_message__isnull=False).exists()


def test_agents_talk_to_each_other(demo):
    statuses = set(Conversation.objects.values_list("status", flat=True))

    assert statuses == {ConversationStatus.ANSWERED, ConversationStatus.PENDING}
    for conversation in Conversation.objects.all():
        assert conversation.from_agent_id != conversation.to_agent_id


def test_the_chat_sessions_change_set_can_be_reverted(demo):
    session = ChatSession.objects.get(pk=demo["highlights"]["chat_session_id"])
    assert session.status == ChatSessionStatus.ACTIVE
    applied = ChatMessage.objects.get(chat_session=session, change_set__isnull=False)
    change_set = applied.change_set
    assert change_set is not None
    assert change_set.pk == demo["highlights"]["revertible_change_set_id"]
    task = Task.objects.get(pk=session.target_id)
    before = change_set.entries.get(entity_id=task.pk).before
    assert before is not None
    assert task.priority == "high" and task.description != before["description"]

    reviews.change_set_revert(change_set_id=change_set.pk)

    task.refresh_from_db()
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.REVERTED
    assert (task.priority, task.description) == (before["priority"], before["description"])
    assert Proposal.objects.get(pk=change_set.proposal_id).status == ProposalStatus.PENDING


def test_the_event_feed_tells_the_story(demo):
    kinds = set(Event.objects.values_list("kind", flat=True))

    assert {
        "initiative.created",
        "phase.status_changed",
        "task.started",
        "task.completed",
        "task.blocked",
        "agent.registered",
        "agent.status_changed",
        "account.exhausted",
        "proposal.created",
        "proposal.accepted",
        "review_comment.created",
        "message.sent",
        "question.asked",
        "question.answered",
        "chat.opened",
    } <= kinds


# --- the command -----------------------------------------------------------------------------


def test_running_twice_changes_nothing_and_says_so(demo):
    before = row_counts()

    out = run()

    assert "already loaded" in out and "Nothing changed" in out
    assert row_counts() == before


def test_json_summarizes_what_was_created(demo):
    assert demo["already_loaded"] is False
    assert demo["created"]["initiatives"] == 2
    assert demo["created"]["tasks"] == Task.objects.count()
    assert demo["created"]["log_chunks"] == AgentLogChunk.objects.count()
    assert demo["created"]["change_sets"] == ChangeSet.objects.count()


def test_json_when_already_loaded(demo):
    again = json.loads(run("--json"))

    assert again["already_loaded"] is True
    assert again["created"] == {}
    assert {i["branch"] for i in again["initiatives"]} == set(DEMO_BRANCHES)


def test_the_text_report_names_the_initiatives_and_counts():
    out = run()

    assert "Loaded the demo" in out
    assert "cw/demo-billing-webhooks" in out and "review_per_phase" in out
    assert "8 agents" in out


def test_the_text_report_names_what_was_made_with_the_address_of_its_admin_page():
    out = run("--base-url", "http://cw.example:8000/")

    for made in Initiative.objects.filter(branch__in=DEMO_BRANCHES):
        assert f"  {made.name} ({made.execution_mode}, branch {made.branch}): " in out
        assert f"http://cw.example:8000/admin/core/initiative/{made.pk}/change/" in out
    in_review = Phase.objects.get(status=PhaseStatus.PENDING_REVIEW)
    assert (
        f"  Phase in review: {in_review}\n"
        f"    http://cw.example:8000/admin/core/phase/{in_review.pk}/change/\n"
    ) in out
    change_set = ChangeSet.objects.get(status=ChangeSetStatus.APPLIED)
    assert f"/admin/reviews/changeset/{change_set.pk}/change/" in out
    assert "Open the admin at http://cw.example:8000/admin/" in out
    assert "ready_task_id" not in out


def test_the_report_when_already_loaded_links_the_initiatives_too(demo):
    out = run()
    assert "already loaded. Nothing changed." in out
    assert out.count("http://127.0.0.1:8000/admin/core/initiative/") == 2


def test_as_acts_as_that_person():
    get_user_model().objects.create_user(username="alice")

    run("--as", "alice")

    assert set(ReviewComment.objects.values_list("author", flat=True)) == {"alice"}


def test_as_an_unknown_or_inactive_user_is_refused():
    get_user_model().objects.create_user(username="gone", is_active=False)

    for username in ("nobody", "gone"):
        with pytest.raises(CommandError, match=f"no active user '{username}'"):
            run("--as", username)
    assert not Initiative.objects.exists()


def test_a_repository_git_cannot_make_is_refused_in_one_line_and_leaves_nothing(settings, tmp_path):
    in_the_way = tmp_path / "not-a-folder"
    in_the_way.write_text("")
    settings.CW_DEMO_REPOS_DIR = in_the_way / "demo-repos"
    before = row_counts()

    with pytest.raises(CommandError, match=r"^Could not make the demo's git repositories: "):
        run()

    assert row_counts() == before


def test_a_refusal_half_way_leaves_nothing_and_names_its_code():
    # A project of the same name, made before: the demo's own is refused.
    core.project_create(name="acme-payments", url="https://example.com/other/payments.git")
    before = row_counts()

    with pytest.raises(CommandError, match=r"\(project_name_taken\)$"):
        run()

    assert row_counts() == before
