"""Proposals (``reviews.services.proposals``): proposing, accepting into each kind of target,
and dismissing, through the services only."""

import json

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Task,
    TaskCategory,
    TaskDependency,
    TaskPriority,
)
from reviews import services
from reviews.models import ChangeSet, Proposal, ProposalStatus
from tests import factories as f
from tests.reviews.helpers import a_person, database_state, propose

pytestmark = pytest.mark.django_db


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
    assert error.value.code == "proposal_target_other_initiative"
    assert Proposal.objects.count() == 0


def test_proposal_update_edits_a_pending_proposal_with_the_checks_of_create(agent, initiative):
    proposal = propose(agent, initiative, title="Draft")

    updated = services.proposal_update(
        proposal_id=proposal.id, title="  Final  ", metadata={"priority": "high"}, sort_order=2
    )

    assert (updated.title, updated.metadata, updated.sort_order) == (
        "Final",
        {"priority": "high"},
        2,
    )
    for changes, code in [
        ({"title": " "}, "empty_title"),
        ({"metadata": {"priority": "urgent"}}, "invalid_metadata"),
        ({"metadata": [1]}, "invalid_metadata"),
    ]:
        with pytest.raises(InvalidInput) as error:
            services.proposal_update(proposal_id=proposal.id, **changes)
        assert error.value.code == code
    assert Proposal.objects.get(pk=proposal.id).title == "Final"


def test_an_accepted_or_dismissed_proposal_is_not_edited(agent, initiative):
    proposal = propose(agent, initiative)
    services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())
    with pytest.raises(Conflict) as error:
        services.proposal_update(proposal_id=proposal.id, title="Too late")
    assert error.value.code == "proposal_not_pending"
    with pytest.raises(NotFound):
        services.proposal_update(proposal_id="missing", title="x")


# --- accept, per target type and action ------------------------------------------------


def test_accept_page_create_converts_markdown_and_files_it_under_the_root(agent, initiative):
    proposal = propose(
        agent, initiative, target_type="page", title="Auth design", content="# Auth\n\n**JWT**"
    )

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())

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
        ).id,
        actor=a_person(),
    )
    child.refresh_from_db()
    assert child.title == "New"
    assert json.loads(child.content)["content"][0]["content"][0]["text"] == "b"

    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="page", title="Grandchild",
            metadata={"parent_page_id": child.id},
        ).id, actor=a_person()
    )  # fmt: skip
    assert Page.objects.get(title="Grandchild").parent_page_id == child.id


def test_accept_phase_create_with_dependencies_and_update(agent, initiative):
    design = f.PhaseFactory(initiative=initiative)
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type="phase", title="Build", content="- a\n- b",
            metadata={"dependencies": [design.id]},
        ).id, actor=a_person()
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
        ).id,
        actor=a_person(),
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
        ).id, actor=a_person()
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
        ).id, actor=a_person()
    )  # fmt: skip
    task.refresh_from_db()
    assert (task.name, task.description, task.priority, task.category) == (
        "New",
        "Details",
        "high",
        TaskCategory.EXECUTE,
    )


@pytest.mark.parametrize("target_type", ["page", "phase"])
def test_an_update_without_content_keeps_the_content(agent, initiative, target_type):
    record = (f.PageFactory if target_type == "page" else f.PhaseFactory)(
        initiative=initiative, content='{"type": "doc", "content": [{"type": "paragraph"}]}'
    )
    services.proposal_accept(
        proposal_id=propose(
            agent, initiative, target_type=target_type, target_id=record.id, title="Renamed"
        ).id,
        actor=a_person(),
    )
    record.refresh_from_db()
    assert record.content == '{"type": "doc", "content": [{"type": "paragraph"}]}'


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
    assert error.value.code == "invalid_metadata"
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
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert error.value.code == "invalid_metadata"
    assert error.value.details["key"] == key
    assert database_state() == before


def test_accept_refuses_a_proposal_that_is_not_pending_or_whose_target_is_gone(agent, initiative):
    proposal = propose(agent, initiative)
    services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert error.value.code == "proposal_not_pending"

    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    doomed = propose(agent, initiative, target_id=task.id)
    task.delete()
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=doomed.id, actor=a_person())
    assert error.value.code == "proposal_target_deleted"
    doomed.refresh_from_db()
    assert doomed.status == ProposalStatus.PENDING
    with pytest.raises(NotFound):
        services.proposal_accept(proposal_id="missing", actor=a_person())


def test_dependency_that_would_close_a_cycle_is_refused_on_accept(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    a = f.TaskFactory(phase=phase)
    b = f.TaskFactory(phase=phase)
    f.TaskDependencyFactory(task=b, depends_on_task=a)
    proposal = propose(agent, initiative, target_id=a.id, metadata={"dependencies": [b.id]})
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert error.value.code == "dependency_cycle"
    assert TaskDependency.objects.count() == 1


@pytest.mark.parametrize("status", [PhaseStatus.PENDING_REVIEW, PhaseStatus.COMPLETED])
def test_a_task_cannot_be_proposed_into_a_closed_phase(agent, initiative, status):
    phase = f.PhaseFactory(initiative=initiative, status=status)
    proposal = propose(agent, initiative, metadata={"phase_id": phase.id})
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert error.value.code == "phase_closed"
    assert not Task.objects.exists()


@pytest.mark.parametrize("status", ["pending_review", "completed", "archived"])
def test_a_phase_cannot_be_proposed_into_a_closed_initiative(agent, status):
    initiative = f.InitiativeFactory(status=status)
    proposal = f.ProposalFactory(agent=agent, initiative=initiative, target_type="phase")
    with pytest.raises(Conflict) as error:
        services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert error.value.code == "initiative_closed"
    assert not Phase.objects.exists()


# --- dismiss, accept-all, dismiss-all -------------------------------------------------


def test_dismiss_changes_nothing_else(agent, initiative):
    proposal = propose(agent, initiative, target_type="page", title="Nope")
    services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.DISMISSED
    assert not Page.objects.exists()
    assert not ChangeSet.objects.exists()
    with pytest.raises(Conflict):
        services.proposal_dismiss(proposal_id=proposal.id, actor=a_person())


def test_accept_all_applies_every_pending_proposal_of_the_agent(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    for name in ("one", "two", "three"):
        propose(agent, initiative, title=name, metadata={"phase_id": phase.id})
    other_agent = f.AgentFactory()
    propose(other_agent, initiative, title="not mine")

    applied = services.proposal_accept_all(agent_id=agent.id, actor=a_person())

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
        services.proposal_accept_all(agent_id=agent.id, actor=a_person())

    assert error.value.details["proposal_id"] == bad.id
    assert "'bad'" in error.value.message
    assert database_state() == before
    assert not ChangeSet.objects.exists()


def test_dismiss_all_dismisses_only_pending_proposals_of_the_agent(agent, initiative):
    accepted = propose(agent, initiative)
    services.proposal_accept(proposal_id=accepted.id, actor=a_person())
    propose(agent, initiative)
    propose(agent, initiative)
    assert services.proposal_dismiss_all(agent_id=agent.id, actor=a_person()) == 2
    accepted.refresh_from_db()
    assert accepted.status == ProposalStatus.ACCEPTED
    with pytest.raises(NotFound):
        services.proposal_dismiss_all(agent_id="missing", actor=a_person())
