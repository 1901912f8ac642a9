"""Change sets (``reviews.services.change_sets``): an accepted proposal reverts exactly, and
a revert never destroys later work nor touches a table outside the registry."""

import pytest

from agents.models import Agent
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    Page,
    Phase,
    Task,
    TaskDependency,
)
from reviews import services
from reviews.models import ChangeSetStatus, ProposalStatus
from reviews.repositories import ChangeSetRepository
from reviews.services import snapshot
from tests import factories as f
from tests.reviews.helpers import a_person, database_state, propose

pytestmark = pytest.mark.django_db


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

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert database_state() != before
    services.change_set_revert(change_set_id=change_set.id)

    assert database_state() == before
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.REVERTED
    assert change_set.reverted_at is not None


def test_page_update_reverts_to_exactly_what_it_was(agent, initiative):
    root = f.PageFactory(initiative=initiative)
    page = f.PageFactory(initiative=initiative, parent_page=root, title="Old", content='{"a":1}')
    proposal = propose(agent, initiative, target_type="page", target_id=page.id, title="New")
    before = database_state()

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    services.change_set_revert(change_set_id=change_set.id)

    assert database_state() == before


def test_revert_is_refused_when_a_touched_record_changed_since(agent, initiative):
    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_id=task.id, title="By agent").id,
        actor=a_person(),
    )
    Task.objects.filter(pk=task.id).update(name="By a person")

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)

    assert error.value.code == "change_set_stale"
    assert error.value.details["changed"] == [{"table": "tasks", "id": task.id}]
    task.refresh_from_db()
    assert task.name == "By a person"


def test_revert_is_refused_when_a_created_record_was_deleted_and_twice(agent, initiative):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative).id, actor=a_person()
    )
    Task.objects.all().delete()
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"

    other = services.proposal_accept(proposal_id=propose(agent, initiative).id, actor=a_person())
    services.change_set_revert(change_set_id=other.id)
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=other.id)
    assert error.value.code == "change_set_already_reverted"
    with pytest.raises(NotFound):
        services.change_set_revert(change_set_id="missing")


def test_a_reverted_proposal_is_pending_again_and_can_be_accepted(agent, initiative):
    proposal = propose(agent, initiative)
    services.change_set_revert(
        change_set_id=services.proposal_accept(proposal_id=proposal.id, actor=a_person()).id
    )
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    assert Task.objects.count() == 1


def test_revert_still_works_after_the_proposing_agent_was_deleted(agent, initiative):
    before = database_state()
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative).id, actor=a_person()
    )
    agent.delete()  # its proposals go with it

    services.change_set_revert(change_set_id=change_set.id)

    after = database_state()
    assert after["tasks"] == before["tasks"]
    assert after["proposals"] == []


# --- what the audit found: revert never destroys later work, closed work stays closed ---


def test_revert_refuses_to_delete_work_added_under_what_it_created(agent, initiative):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="phase", title="New phase").id,
        actor=a_person(),
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
        proposal_id=propose(agent, initiative, title="Created", metadata={"phase_id": phase.id}).id,
        actor=a_person(),
    )
    created = Task.objects.get(name="Created")
    later = f.TaskFactory(phase=phase)
    f.TaskDependencyFactory(task=later, depends_on_task=created)

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"


def test_two_pages_then_reverting_the_first_cannot_take_the_second_with_it(agent, initiative):
    first = services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="page", title="One").id, actor=a_person()
    )
    services.proposal_accept(
        proposal_id=propose(agent, initiative, target_type="page", title="Two").id, actor=a_person()
    )
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=first.id)
    assert error.value.code == "change_set_stale"
    assert Page.objects.filter(title="Two").exists()


def test_revert_refuses_to_unlink_conversations_or_orphan_chat_sessions(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Created", metadata={"phase_id": phase.id}).id,
        actor=a_person(),
    )
    created = Task.objects.get(name="Created")
    f.ConversationFactory(task=created)

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_stale"

    other = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Chatted", metadata={"phase_id": phase.id}).id,
        actor=a_person(),
    )
    chatted = Task.objects.get(name="Chatted")
    f.ChatSessionFactory(initiative=initiative, target_type="task", target_id=chatted.id)
    with pytest.raises(Conflict):
        services.change_set_revert(change_set_id=other.id)
    assert Task.objects.filter(pk=chatted.pk).exists()


def test_revert_refuses_to_unlink_an_agent_working_on_what_it_created(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative, title="Created", metadata={"phase_id": phase.id}).id,
        actor=a_person(),
    )
    worker = f.AgentFactory(task=Task.objects.get(name="Created"))

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)

    assert {"table": "agents", "id": worker.id} in error.value.details["changed"]
    worker.refresh_from_db()
    assert worker.task_id is not None


# --- the registry: the only tables a revert touches ------------------------------------------


def record_change_set(initiative, *entries):
    """A change set of ``entries`` as another flow (a chat edit) would have recorded it."""
    return ChangeSetRepository().create(
        initiative_id=initiative.id,
        source="chat",
        chat_session_id=f.ChatSessionFactory(initiative=initiative).id,
        entries=list(entries),
    )


def test_the_registry_names_every_table_a_change_set_may_touch():
    assert sorted(services.REGISTRY) == [
        "pages",
        "phase_dependencies",
        "phases",
        "proposals",
        "task_dependencies",
        "tasks",
    ]


def test_a_change_set_naming_an_unregistered_table_is_refused_before_anything_is_written(
    initiative,
):
    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    worker = f.AgentFactory(name="original")
    change_set = record_change_set(
        initiative,
        # Reverted last (newest first), so refusing it only then would be too late.
        {
            "entity_type": Agent._meta.db_table,
            "entity_id": worker.id,
            "action": "update",
            "before": {"id": worker.id, "name": "hijacked"},
            "after": {"id": worker.id, "name": "original"},
        },
        {"entity_type": "tasks", "entity_id": task.id, "action": "create", "after": snapshot(task)},
    )

    with pytest.raises(InvalidInput) as error:
        services.change_set_revert(change_set_id=change_set.id)

    assert error.value.code == "invalid_change_set"
    assert error.value.details["table"] == Agent._meta.db_table
    assert Task.objects.filter(pk=task.id).exists()
    worker.refresh_from_db()
    assert worker.name == "original"
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.APPLIED


def test_an_update_of_a_dependency_edge_is_refused_as_nothing_a_revert_undoes(initiative):
    phase = f.PhaseFactory(initiative=initiative)
    edge = f.TaskDependencyFactory(task=f.TaskFactory(phase=phase))
    values = snapshot(edge)
    change_set = record_change_set(
        initiative,
        {
            "entity_type": "task_dependencies",
            "entity_id": edge.id,
            "action": "update",
            "before": values,
            "after": values,
        },
    )
    with pytest.raises(InvalidInput) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert (error.value.code, error.value.details["action"]) == ("invalid_change_set", "update")
    assert TaskDependency.objects.filter(pk=edge.pk).exists()


def test_only_registered_tables_can_be_recorded():
    with pytest.raises(InvalidInput) as error:
        services.ChangeRecorder().created(f.AgentFactory())
    assert error.value.code == "invalid_change_set"


def test_reverting_a_deletion_puts_the_record_back_exactly(initiative):
    root = f.PageFactory(initiative=initiative)
    page = f.PageFactory(initiative=initiative, parent_page=root, title="Gone", sort_order=4)
    f.ChatSessionFactory(initiative=initiative)  # the session record_change_set reuses
    values = snapshot(page)
    page.delete()
    change_set = record_change_set(
        initiative,
        {"entity_type": "pages", "entity_id": values["id"], "action": "delete", "before": values},
    )

    services.change_set_revert(change_set_id=change_set.id)

    assert snapshot(Page.objects.get(pk=values["id"])) == values
    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=change_set.id)
    assert error.value.code == "change_set_already_reverted"


def test_reverting_a_removed_dependency_adds_it_back_unless_it_is_there_again(initiative):
    phase = f.PhaseFactory(initiative=initiative)
    edge = f.TaskDependencyFactory(task=f.TaskFactory(phase=phase))
    ends = {"task_id": edge.task_id, "depends_on_task_id": edge.depends_on_task_id}
    values = snapshot(edge)
    edge.delete()
    removal = {
        "entity_type": "task_dependencies",
        "entity_id": values["id"],
        "action": "delete",
        "before": values,
    }
    services.change_set_revert(change_set_id=record_change_set(initiative, removal).id)
    assert TaskDependency.objects.filter(**ends).count() == 1

    with pytest.raises(Conflict) as error:
        services.change_set_revert(change_set_id=record_change_set(initiative, removal).id)
    assert error.value.code == "change_set_stale"
    assert TaskDependency.objects.filter(**ends).count() == 1
