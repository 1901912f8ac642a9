"""Proposals (accept, dismiss, revert) and phase review, through the services only."""

import json

import pytest

from core.errors import Conflict, InvalidInput, NotFound, TransitionNotAllowed
from core.models import (
    Initiative,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Task,
    TaskCategory,
    TaskDependency,
    TaskPriority,
    TaskStatus,
)
from reviews import services
from reviews.models import ChangeSet, ChangeSetStatus, Proposal, ProposalStatus, ReviewComment
from tests import factories as f

pytestmark = pytest.mark.django_db

PLANNING_MODELS = (Initiative, Phase, PhaseDependency, Task, TaskDependency, Page, Proposal)


def database_state():
    """Every planning row and every proposal, as plain values, for before/after comparisons."""
    return {
        model._meta.db_table: sorted(
            (services.snapshot(row) for row in model.objects.all()), key=lambda r: r["id"]
        )
        for model in PLANNING_MODELS
    }


@pytest.fixture
def initiative():
    return f.InitiativeFactory()


@pytest.fixture
def agent():
    return f.AgentFactory()


def propose(agent, initiative, **fields):
    fields.setdefault("target_type", "task")
    fields.setdefault("title", "Proposed")
    return services.proposal_create(agent_id=agent.id, initiative_id=initiative.id, **fields)


# --- create ---------------------------------------------------------------------------


def test_proposal_create_validates_its_references(agent, initiative):
    with pytest.raises(NotFound) as error:
        services.proposal_create(
            agent_id="missing", initiative_id=initiative.id, target_type="task", title="x"
        )
    assert error.value.code == "agent_not_found"
    with pytest.raises(InvalidInput) as error:
        propose(agent, initiative, target_type="widget")
    assert error.value.code == "invalid_target_type"
    with pytest.raises(InvalidInput) as error:
        propose(agent, initiative, title="  ")
    assert error.value.code == "empty_title"
    with pytest.raises(NotFound) as error:
        propose(agent, initiative, target_id="missing")
    assert error.value.code == "proposal_target_missing"
    with pytest.raises(InvalidInput) as error:
        propose(agent, initiative, target_id=f.TaskFactory().id)
    assert error.value.code == "proposal_target_elsewhere"
    assert Proposal.objects.count() == 0


# --- accept, per target type and action ------------------------------------------------


def test_accept_page_create_converts_markdown_and_files_it_under_the_root(agent, initiative):
    proposal = propose(
        agent, initiative, target_type="page", title="Auth design", content="# Auth\n\n**JWT**"
    )

    change_set = services.proposal_accept(proposal_id=proposal.id)

    root = Page.objects.get(initiative=initiative, parent_page=None)
    page = Page.objects.get(initiative=initiative, parent_page=root)
    assert page.title == "Auth design"
    doc = json.loads(page.content)
    assert doc["type"] == "doc"
    assert doc["content"][0] == {
        "type": "heading",
        "attrs": {"level": 1},
        "content": [{"type": "text", "text": "Auth"}],
    }
    assert doc["content"][1]["content"][0]["marks"] == [{"type": "bold"}]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED
    actions = [(e.entity_type, e.action) for e in change_set.entries.all()]
    assert actions == [("pages", "create"), ("pages", "create"), ("proposals", "update")]


def test_accept_page_update_and_explicit_parent(agent, initiative):
    root = f.PageFactory(initiative=initiative)
    child = f.PageFactory(initiative=initiative, parent_page=root, title="Old")
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="page", target_id=child.id, title="New", content="b"
        ).id
    )
    child.refresh_from_db()
    assert child.title == "New"
    assert json.loads(child.content)["content"][0]["content"][0]["text"] == "b"

    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="page", title="Grandchild",
            metadata={"parent_page_id": child.id},
        ).id
    )  # fmt: skip
    assert Page.objects.get(title="Grandchild").parent_page_id == child.id


def test_accept_phase_create_with_dependencies_and_update(agent, initiative):
    design = f.PhaseFactory(initiative=initiative)
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="phase", title="Build", content="- a\n- b",
            metadata={"dependencies": [design.id]},
        ).id
    )  # fmt: skip
    build = Phase.objects.get(name="Build")
    assert build.status == PhaseStatus.PENDING
    assert json.loads(build.content)["content"][0]["type"] == "bulletList"
    assert list(PhaseDependency.objects.values_list("phase_id", "depends_on_phase_id")) == [
        (build.id, design.id)
    ]

    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="phase", target_id=build.id, title="Build it"
        ).id
    )
    build.refresh_from_db()
    assert build.name == "Build it"


def test_accept_task_create_uses_metadata(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    first = f.TaskFactory(phase=phase)
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, title="Write tests", content="Cover the edge cases.",
            metadata={
                "phase_id": phase.id, "category": "verify", "type": "checkpoint:human-verify",
                "priority": "high", "dependencies": [first.id],
            },
        ).id
    )  # fmt: skip
    task = Task.objects.get(name="Write tests")
    assert (task.phase_id, task.initiative_id) == (phase.id, initiative.id)
    assert (task.category, task.type, task.priority) == (
        "verify",
        "checkpoint:human-verify",
        "high",
    )
    assert task.description == "Cover the edge cases."
    assert TaskDependency.objects.filter(task=task, depends_on_task=first).exists()


def test_accept_task_update_changes_only_what_it_names(agent, initiative):
    task = f.TaskFactory(
        phase=f.PhaseFactory(initiative=initiative), priority=TaskPriority.LOW, name="Old"
    )
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_id=task.id, title="New", content="Details",
            metadata={"priority": "high"},
        ).id
    )  # fmt: skip
    task.refresh_from_db()
    assert (task.name, task.description, task.priority, task.category) == (
        "New",
        "Details",
        "high",
        TaskCategory.EXECUTE,
    )


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"dependencies": "abc"}, "dependencies"),
        ({"phase_id": 5}, "phase_id"),
        ({"order": "first"}, "order"),
        ({"category": "chores"}, "category"),
    ],
)
def test_bad_metadata_is_refused_when_proposed(agent, initiative, metadata, key):
    with pytest.raises(InvalidInput) as error:
        propose(agent, initiative, metadata=metadata)
    assert error.value.code == "proposal_metadata_invalid"
    assert error.value.details["key"] == key
    assert not Proposal.objects.exists()


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"dependencies": "abc"}, "dependencies"),
        ({"phase_id": "missing"}, "phase_id"),
        ({"order": "first"}, "order"),
    ],
)
def test_accept_refuses_bad_metadata_without_writing(agent, initiative, metadata, key):
    # Stored by another way than proposal_create (which would refuse most of these).
    proposal = f.ProposalFactory(agent=agent, initiative=initiative, metadata=metadata)
    before = database_state()
    with pytest.raises(InvalidInput) as error:
        services.proposal_accept(proposal_id=proposal.id)
    assert error.value.code == "proposal_metadata_invalid"
    assert error.value.details["key"] == key
    assert database_state() == before


def test_accept_refuses_a_proposal_that_is_not_pending_or_whose_target_is_gone(agent, initiative):
    proposal = propose(agent, initiative)
    services.proposal_accept(proposal_id=proposal.id)
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id)
    assert error.value.code == "proposal_not_pending"

    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    doomed = propose(agent, initiative, target_id=task.id)
    task.delete()
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=doomed.id)
    assert error.value.code == "proposal_target_deleted"
    doomed.refresh_from_db()
    assert doomed.status == ProposalStatus.PENDING
    with pytest.raises(NotFound):
        services.proposal_accept(proposal_id="missing")


def test_dependency_that_would_close_a_cycle_is_refused_on_accept(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    a = f.TaskFactory(phase=phase)
    b = f.TaskFactory(phase=phase)
    TaskDependency.objects.create(task=b, depends_on_task=a)
    proposal = propose(agent, initiative, target_id=a.id, metadata={"dependencies": [b.id]})
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id)
    assert error.value.code == "dependency_cycle"
    assert TaskDependency.objects.count() == 1


# --- dismiss, accept-all, dismiss-all -------------------------------------------------


def test_dismiss_changes_nothing_else(agent, initiative):
    proposal = propose(agent, initiative, target_type="page", title="Nope")
    services.proposal_dismiss(proposal_id=proposal.id)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.DISMISSED
    assert not Page.objects.exists()
    assert not ChangeSet.objects.exists()
    with pytest.raises(Conflict):
        services.proposal_dismiss(proposal_id=proposal.id)


def test_accept_all_applies_every_pending_proposal_of_the_agent(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    for name in ("one", "two", "three"):
        propose(agent, initiative, title=name, metadata={"phase_id": phase.id})
    other_agent = f.AgentFactory()
    propose(other_agent, initiative, title="not mine")

    applied = services.proposal_accept_all(agent_id=agent.id)

    assert len(applied) == 3
    assert sorted(Task.objects.values_list("name", flat=True)) == ["one", "three", "two"]
    assert Proposal.objects.get(title="not mine").status == ProposalStatus.PENDING


def test_accept_all_is_all_or_nothing(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    propose(agent, initiative, title="good", metadata={"phase_id": phase.id}, sort_order=1)
    bad = f.ProposalFactory(
        agent=agent, initiative=initiative, title="bad", metadata={"priority": "??"}, sort_order=2
    )
    propose(agent, initiative, title="also good", sort_order=3)
    before = database_state()

    with pytest.raises(InvalidInput) as error:
        services.proposal_accept_all(agent_id=agent.id)

    assert error.value.details["proposal_id"] == bad.id
    assert "'bad'" in error.value.message
    assert database_state() == before
    assert not ChangeSet.objects.exists()


def test_dismiss_all_dismisses_only_pending_proposals_of_the_agent(agent, initiative):
    accepted = propose(agent, initiative)
    services.proposal_accept(proposal_id=accepted.id)
    propose(agent, initiative)
    propose(agent, initiative)
    assert services.proposal_dismiss_all(agent_id=agent.id) == 2
    accepted.refresh_from_db()
    assert accepted.status == ProposalStatus.ACCEPTED
    with pytest.raises(NotFound):
        services.proposal_dismiss_all(agent_id="missing")


# --- revert ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda p, t: {"target_type": "page", "title": "P", "content": "# x"},
        lambda p, t: {"target_type": "phase", "title": "Ph", "metadata": {"dependencies": [p]}},
        lambda p, t: {"target_type": "phase", "target_id": p, "title": "Renamed", "content": "y"},
        lambda p, t: {
            "title": "T",
            "metadata": {"phase_id": p, "dependencies": [t], "priority": "high"},
        },
        lambda p, t: {"target_id": t, "title": "Renamed", "metadata": {"category": "merge"}},
    ],
    ids=["page-create", "phase-create", "phase-update", "task-create", "task-update"],
)
def test_accept_then_revert_leaves_the_database_as_it_was(agent, initiative, build):
    phase = f.PhaseFactory(initiative=initiative)
    task = f.TaskFactory(phase=phase)
    proposal = propose(agent, initiative, **build(phase.id, task.id))
    before = database_state()

    change_set = services.proposal_accept(proposal_id=proposal.id)
    assert database_state() != before
    services.change_set_revert(change_set_id=change_set.id)

    assert database_state() == before
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.REVERTED
    assert change_set.reverted_at is not None


def test_revert_is_refused_when_a_touched_record_changed_since(agent, initiative):
    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_id=task.id, title="By agent").id
    )
    Task.objects.filter(pk=task.id).update(name="By a person")

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)

    assert error.value.code == "change_set_stale"
    assert error.value.details["changed"] == [{"table": "tasks", "id": task.id}]
    task.refresh_from_db()
    assert task.name == "By a person"


def test_revert_is_refused_when_a_created_record_was_deleted_and_twice(agent, initiative):
    change_set = services.proposal_accept(proposal_id=propose(agent, initiative).id)
    Task.objects.all().delete()
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"

    other = services.proposal_accept(proposal_id=propose(agent, initiative).id)
    services.change_set_revert(change_set_id=other.id)
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=other.id)
    assert error.value.code == "change_set_already_reverted"
    with pytest.raises(NotFound):
        services.change_set_revert(change_set_id="missing")


def test_a_reverted_proposal_is_pending_again_and_can_be_accepted(agent, initiative):
    proposal = propose(agent, initiative)
    services.change_set_revert(change_set_id=services.proposal_accept(proposal_id=proposal.id).id)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    services.proposal_accept(proposal_id=proposal.id)
    assert Task.objects.count() == 1


# --- review ----------------------------------------------------------------------------


@pytest.fixture
def phase_in_review():
    return f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW, name="API")


def test_review_brief_groups_unresolved_comments_by_file_and_line(phase_in_review):
    make = f.ReviewCommentFactory
    make(phase=phase_in_review, file_path="b.py", line_number=30, body="Third")
    make(phase=phase_in_review, file_path="a.py", line_number=9, body="Second",
         line_type="removed")  # fmt: skip
    make(phase=phase_in_review, file_path="a.py", line_number=2, body="First\nmore")
    make(phase=phase_in_review, file_path="a.py", line_number=1, body="Done", resolved=True)

    brief = services.phase_review_brief(phase_id=phase_in_review.id).markdown

    assert brief == (
        '# Review of phase "API"\n\n'
        "3 unresolved comments in 2 files. Address each one, then complete this task with "
        "a summary of what you changed.\n\n"
        "## `a.py`\n\n"
        "- **Line 2** (added line, you): First\n  more\n"
        "- **Line 9** (removed line (old side), you): Second\n\n"
        "## `b.py`\n\n"
        "- **Line 30** (added line, you): Third\n"
    )


def test_request_changes_turns_comments_into_one_review_task(phase_in_review):
    f.ReviewCommentFactory(phase=phase_in_review, body="Rename x")
    f.ReviewCommentFactory(phase=phase_in_review, body="Add a test")

    task = services.phase_request_changes(phase_id=phase_in_review.id)

    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.IN_PROGRESS
    assert (task.category, task.priority, task.status) == ("review", "high", "pending")
    assert "Rename x" in task.description
    assert "Add a test" in task.description
    assert not ReviewComment.objects.filter(resolved=False).exists()


def test_request_changes_refusals(phase_in_review):
    with pytest.raises(InvalidInput) as error:
        services.phase_request_changes(phase_id=phase_in_review.id)
    assert error.value.code == "review_no_comments"
    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.PENDING_REVIEW
    open_phase = f.PhaseFactory(status=PhaseStatus.IN_PROGRESS)
    f.ReviewCommentFactory(phase=open_phase)
    with pytest.raises(TransitionNotAllowed):
        services.phase_request_changes(phase_id=open_phase.id)
    assert Task.objects.count() == 0


def test_no_trace_of_task_approval_in_the_code():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    words = ("requires_approval", "pending_approval", "approve_task", "find_pending_approval")
    for app in ("core", "agents", "reviews", "cw_project"):
        for path in (root / app).rglob("*.py"):
            text = path.read_text()
            assert not any(word in text for word in words), path
    assert not TaskStatus.__members__.get("PENDING_APPROVAL")


# --- what the audit found: revert never destroys later work, closed work stays closed ---


def test_page_update_reverts_to_exactly_what_it_was(agent, initiative):
    root = f.PageFactory(initiative=initiative)
    page = f.PageFactory(initiative=initiative, parent_page=root, title="Old", content='{"a":1}')
    proposal = propose(agent, initiative, target_type="page", target_id=page.id, title="New")
    before = database_state()

    change_set = services.proposal_accept(proposal_id=proposal.id)
    services.change_set_revert(change_set_id=change_set.id)

    assert database_state() == before


@pytest.mark.parametrize("target_type", ["page", "phase"])
def test_an_update_without_content_keeps_the_content(agent, initiative, target_type):
    record = (f.PageFactory if target_type == "page" else f.PhaseFactory)(
        initiative=initiative, content='{"type": "doc", "content": [{"type": "paragraph"}]}'
    )
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type=target_type, target_id=record.id, title="Renamed"
        ).id
    )
    record.refresh_from_db()
    assert record.content == '{"type": "doc", "content": [{"type": "paragraph"}]}'


def test_revert_refuses_to_delete_work_added_under_what_it_created(agent, initiative):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="phase", title="New phase").id
    )
    phase = Phase.objects.get(name="New phase")
    added = f.TaskFactory(phase=phase, name="Added by a person")

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)

    assert error.value.code == "change_set_stale"
    assert {"table": "tasks", "id": added.id} in error.value.details["changed"]
    assert Task.objects.filter(pk=added.pk).exists()


def test_revert_refuses_to_drop_a_dependency_added_on_what_it_created(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Created", metadata={"phase_id": phase.id}).id
    )
    created = Task.objects.get(name="Created")
    later = f.TaskFactory(phase=phase)
    TaskDependency.objects.create(task=later, depends_on_task=created)

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"


def test_two_pages_then_reverting_the_first_cannot_take_the_second_with_it(agent, initiative):
    first = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="page", title="One").id
    )
    services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="page", title="Two").id
    )
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=first.id)
    assert error.value.code == "change_set_stale"
    assert Page.objects.filter(title="Two").exists()


def test_revert_still_works_after_the_proposing_agent_was_deleted(agent, initiative):
    before = database_state()
    change_set = services.proposal_accept(proposal_id=propose(agent, initiative).id)
    agent.delete()  # its proposals go with it

    services.change_set_revert(change_set_id=change_set.id)

    after = database_state()
    assert after["tasks"] == before["tasks"]
    assert after["proposals"] == []


@pytest.mark.parametrize("status", [PhaseStatus.PENDING_REVIEW, PhaseStatus.COMPLETED])
def test_a_task_cannot_be_proposed_into_a_closed_phase(agent, initiative, status):
    phase = f.PhaseFactory(initiative=initiative, status=status)
    proposal = propose(agent, initiative, metadata={"phase_id": phase.id})
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id)
    assert error.value.code == "phase_closed"
    assert not Task.objects.exists()


@pytest.mark.parametrize("status", ["pending_review", "completed", "archived"])
def test_a_phase_cannot_be_proposed_into_a_closed_initiative(agent, status):
    initiative = f.InitiativeFactory(status=status)
    proposal = f.ProposalFactory(agent=agent, initiative=initiative, target_type="phase")
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id)
    assert error.value.code == "initiative_closed"
    assert not Phase.objects.exists()


def test_the_brief_fences_a_file_path_that_holds_backticks(phase_in_review):
    f.ReviewCommentFactory(phase=phase_in_review, file_path="docs/`odd`.md", body="Hm")
    brief = services.phase_review_brief(phase_id=phase_in_review.id).markdown
    assert "## ``docs/`odd`.md``" in brief


def test_revert_refuses_to_unlink_conversations_or_orphan_chat_sessions(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Created", metadata={"phase_id": phase.id}).id
    )
    created = Task.objects.get(name="Created")
    f.ConversationFactory(task=created)

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"

    other = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Chatted", metadata={"phase_id": phase.id}).id
    )
    chatted = Task.objects.get(name="Chatted")
    f.ChatSessionFactory(initiative=initiative, target_type="task", target_id=chatted.id)
    with pytest.raises(Conflict):
        services.change_set_revert(change_set_id=other.id)
    assert Task.objects.filter(pk=chatted.pk).exists()
