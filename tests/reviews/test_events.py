"""The events the reviews services record, in their own transaction, and none on refusal."""

import pytest

from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import Event, Page, Task
from reviews import services
from reviews.services.change_sets import change_set_events
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


def test_accepting_records_what_it_created_then_proposal_accepted(agent, initiative):
    proposal = propose(agent, initiative)
    Event.objects.all().delete()

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())

    task = Task.objects.get()
    assert recorded() == [
        (
            "task.created",
            "task",
            task.id,
            initiative.id,
            {
                "name": "Proposed",
                "phase_id": None,
                "parent_task_id": None,
                "category": "execute",
                "change_set_id": change_set.id,
            },
        ),
        (
            "proposal.accepted",
            "proposal",
            proposal.id,
            initiative.id,
            {"change_set_id": change_set.id},
        ),
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
    accepted = [event for event in recorded() if event[0] == "proposal.accepted"]
    assert [(kind, subject) for kind, _t, subject, _i, _d in accepted] == [
        ("proposal.accepted", first.id),
        ("proposal.accepted", second.id),
    ]
    assert [data["change_set_id"] for *_rest, data in accepted] == [c.id for c in applied]
    assert [kind for kind, *_rest in recorded()] == [
        "task.created",
        "proposal.accepted",
        "task.created",
        "proposal.accepted",
    ]

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


def test_revert_records_the_reverse_of_each_entry_then_change_set_reverted(agent, initiative):
    proposal = propose(agent, initiative)
    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    task = Task.objects.get()
    Event.objects.all().delete()

    services.change_set_revert(change_set_id=change_set.id)
    with pytest.raises(Conflict):
        services.change_set_revert(change_set_id=change_set.id)

    assert recorded() == [
        (
            "proposal.reopened",
            "proposal",
            proposal.id,
            initiative.id,
            {"change_set_id": change_set.id, "reverted": True},
        ),
        (
            "task.deleted",
            "task",
            task.id,
            initiative.id,
            {
                "phase_id": None,
                "subtask_ids": [],
                "change_set_id": change_set.id,
                "reverted": True,
            },
        ),
        (
            "change_set.reverted",
            "change_set",
            change_set.id,
            initiative.id,
            {"proposal_id": change_set.proposal_id, "chat_session_id": None},
        ),
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


def test_request_changes_records_the_review_task_and_each_handed_comment(phase_in_review):
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
            {
                "name": f"Address review comments on '{phase_in_review.name}'",
                "phase_id": phase_in_review.id,
                "parent_task_id": None,
                "category": "review",
            },
        ),
        *(
            (
                "review_comment.handed_over",
                "review_comment",
                c.id,
                initiative_id,
                {"phase_id": c.phase_id, "task_id": task.id},
            )
            for c in comments
        ),
    ]


def test_request_changes_without_comments_records_nothing(phase_in_review):
    with pytest.raises(InvalidInput):
        services.phase_request_changes(phase_id=phase_in_review.id, actor=a_person())
    assert recorded() == []


# --- what an accept and a revert record for each record they touch ---------------------------


def test_accepting_a_task_with_dependencies_records_the_task_and_each_edge(agent, initiative):
    phase = f.PhaseFactory(initiative=initiative)
    first, second = f.TaskFactory(phase=phase), f.TaskFactory(phase=phase)
    proposal = propose(
        agent,
        initiative,
        title="Wire it",
        metadata={"phase_id": phase.id, "dependencies": [first.id, second.id]},
    )
    Event.objects.all().delete()

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())

    task = Task.objects.get(name="Wire it")
    in_change_set = {"change_set_id": change_set.id}
    assert [(kind, subject, data) for kind, _t, subject, _i, data in recorded()] == [
        (
            "task.created",
            task.id,
            {
                "name": "Wire it",
                "phase_id": phase.id,
                "parent_task_id": None,
                "category": "execute",
                **in_change_set,
            },
        ),
        ("dependency.added", task.id, {"depends_on_id": first.id, **in_change_set}),
        ("dependency.added", task.id, {"depends_on_id": second.id, **in_change_set}),
        ("proposal.accepted", proposal.id, in_change_set),
    ]
    assert {initiative_id for *_r, initiative_id, _d in recorded()} == {initiative.id}

    Event.objects.all().delete()
    services.change_set_revert(change_set_id=change_set.id)

    undone = {**in_change_set, "reverted": True}
    assert [(kind, subject, data) for kind, _t, subject, _i, data in recorded()] == [
        ("proposal.reopened", proposal.id, undone),
        ("dependency.removed", task.id, {"depends_on_id": second.id, **undone}),
        ("dependency.removed", task.id, {"depends_on_id": first.id, **undone}),
        ("task.deleted", task.id, {"phase_id": phase.id, "subtask_ids": [], **undone}),
        (
            "change_set.reverted",
            change_set.id,
            {"proposal_id": proposal.id, "chat_session_id": None},
        ),
    ]


def test_accepting_an_update_records_the_fields_it_changed_and_the_revert_changes_them_back(
    agent, initiative
):
    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative), name="Old")
    proposal = propose(
        agent, initiative, target_id=task.id, title="New", metadata={"priority": "high"}
    )
    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    services.change_set_revert(change_set_id=change_set.id)

    updates = [(kind, data) for kind, _t, _s, _i, data in recorded() if kind == "task.updated"]
    assert updates == [
        ("task.updated", {"fields": ["name", "priority"], "change_set_id": change_set.id}),
        (
            "task.updated",
            {"fields": ["name", "priority"], "change_set_id": change_set.id, "reverted": True},
        ),
    ]
    task.refresh_from_db()
    assert (task.name, task.priority) == ("Old", "medium")


def test_accepting_a_page_records_the_root_it_creates_then_the_page(agent, initiative):
    proposal = propose(agent, initiative, target_type="page", title="Notes")
    Event.objects.all().delete()

    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())

    root = Page.objects.get(parent_page=None)
    page = Page.objects.get(title="Notes")
    assert [(kind, subject, data) for kind, _t, subject, _i, data in recorded()] == [
        (
            "page.created",
            root.id,
            {"title": initiative.name, "parent_page_id": None, "change_set_id": change_set.id},
        ),
        (
            "page.created",
            page.id,
            {"title": "Notes", "parent_page_id": root.id, "change_set_id": change_set.id},
        ),
        ("proposal.accepted", proposal.id, {"change_set_id": change_set.id}),
    ]


def test_a_refused_revert_records_nothing(agent, initiative):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative).id, actor=a_person()
    )
    Task.objects.update(name="Changed since")
    Event.objects.all().delete()

    with pytest.raises(Conflict):
        services.change_set_revert(change_set_id=change_set.id)

    assert recorded() == []


def test_the_events_of_a_change_set_come_from_its_entries_alike_for_any_source(initiative):
    """A chat edit's change set (no service writes one yet) is put on the feed, and
    reverted, by the same function as an accept's."""
    phase = f.PhaseFactory(initiative=initiative, name="Old")
    session = f.ChatSessionFactory(target_type="phase", target_id=phase.id, initiative=initiative)
    before = services.snapshot(phase)
    phase.name = "Renamed in chat"
    phase.save()
    entry = {
        "entity_type": "phases",
        "entity_id": phase.id,
        "action": "update",
        "before": before,
        "after": services.snapshot(phase),
    }
    change_set = f.ChangeSetFactory(source="chat", chat_session=session, initiative=initiative)
    f.ChangeSetEntryFactory(change_set=change_set, **entry)

    applied = change_set_events(change_set.id, [entry])
    assert [(e.kind, e.subject_id, e.data) for e in applied] == [
        ("phase.updated", phase.id, {"fields": ["name"], "change_set_id": change_set.id})
    ]

    services.change_set_revert(change_set_id=change_set.id)
    assert recorded()[-2:] == [
        (
            "phase.updated",
            "phase",
            phase.id,
            initiative.id,
            {"fields": ["name"], "change_set_id": change_set.id, "reverted": True},
        ),
        (
            "change_set.reverted",
            "change_set",
            change_set.id,
            initiative.id,
            {"proposal_id": None, "chat_session_id": session.id},
        ),
    ]


# --- proposals, review comments and chat sessions edited -------------------------------------


def test_proposal_update_records_its_changed_fields_and_nothing_otherwise(agent, initiative):
    proposal = propose(agent, initiative, title="Old")
    Event.objects.all().delete()

    services.proposal_update(proposal_id=proposal.id, title="Old")
    services.proposal_update(proposal_id=proposal.id, title="New", summary="Why")
    with pytest.raises(InvalidInput):
        services.proposal_update(proposal_id=proposal.id, metadata={"priority": "urgent"})

    assert recorded() == [
        (
            "proposal.updated",
            "proposal",
            proposal.id,
            initiative.id,
            {"fields": ["title", "summary"]},
        )
    ]


def test_review_comment_update_unresolve_and_delete_record_their_events():
    phase = f.PhaseFactory()
    comment = f.ReviewCommentFactory(phase=phase, body="Rename", resolved=True)
    where = ("review_comment", comment.id, phase.initiative_id)

    services.review_comment_update(comment_id=comment.id, body="Rename")  # no change
    services.review_comment_update(comment_id=comment.id, body="Rename it", line_number=9)
    services.review_comment_unresolve(comment_id=comment.id)
    services.review_comment_unresolve(comment_id=comment.id)  # idempotent: no second event
    services.review_comment_delete(comment_id=comment.id)

    assert recorded() == [
        (
            "review_comment.updated",
            *where,
            {"phase_id": phase.id, "fields": ["line_number", "body"]},
        ),
        ("review_comment.unresolved", *where, {"phase_id": phase.id}),
        ("review_comment.deleted", *where, {"phase_id": phase.id}),
    ]


def test_refused_review_comment_writes_record_nothing():
    comment = f.ReviewCommentFactory()

    with pytest.raises(InvalidInput):
        services.review_comment_update(comment_id=comment.id, body="  ")
    with pytest.raises(InvalidInput):
        services.review_comment_update(comment_id=comment.id, line_number=0)
    for service in (services.review_comment_unresolve, services.review_comment_delete):
        with pytest.raises(NotFound):
            service(comment_id="missing")

    assert recorded() == []


def test_chat_session_update_records_a_change_of_agent_only():
    session = f.ChatSessionFactory()
    agent = f.AgentFactory()

    services.chat_session_update(session_id=session.id, agent_id=agent.id)
    services.chat_session_update(session_id=session.id, agent_id=agent.id)
    with pytest.raises(NotFound):
        services.chat_session_update(session_id=session.id, agent_id="missing")

    assert recorded() == [
        (
            "chat.updated",
            "chat_session",
            session.id,
            session.initiative_id,
            {"fields": ["agent_id"]},
        )
    ]


# --- what the admin's forms need: proposals and chats deleted, a session opened once ---------


def test_proposal_delete_records_proposal_deleted_and_its_change_set_still_reverts(
    agent, initiative
):
    proposal = propose(agent, initiative)
    change_set = services.proposal_accept(proposal_id=proposal.id, actor=a_person())
    Event.objects.all().delete()

    services.proposal_delete(proposal_id=proposal.id)
    with pytest.raises(NotFound):
        services.proposal_delete(proposal_id=proposal.id)
    services.change_set_revert(change_set_id=change_set.id)

    assert [(kind, subject) for kind, _t, subject, _i, _d in recorded()] == [
        ("proposal.deleted", proposal.id),
        ("task.deleted", Event.objects.get(kind="task.deleted").subject_id),
        ("change_set.reverted", change_set.id),
    ]
    assert recorded()[0][4] == {"target_type": "task", "target_id": None}


def test_chat_session_create_refuses_a_second_active_session_and_records_once():
    phase = f.PhaseFactory()

    session = services.chat_session_create(target_type="phase", target_id=phase.id)
    with pytest.raises(Conflict) as refused:
        services.chat_session_create(target_type="phase", target_id=phase.id)
    with pytest.raises(InvalidInput):
        services.chat_session_create(
            target_type="phase", target_id=phase.id, initiative_id=f.InitiativeFactory().id
        )

    assert refused.value.code == "chat_session_already_active"
    assert recorded() == [
        (
            "chat.opened",
            "chat_session",
            session.id,
            phase.initiative_id,
            {"target_type": "phase", "target_id": phase.id, "agent_id": None},
        )
    ]


def test_chat_message_and_session_deletes_record_their_events():
    session = f.ChatSessionFactory()
    first, second = (f.ChatMessageFactory(chat_session=session) for _ in range(2))

    services.chat_message_delete(message_id=first.id)
    with pytest.raises(NotFound):
        services.chat_message_delete(message_id=first.id)
    services.chat_session_delete(session_id=session.id)
    with pytest.raises(NotFound):
        services.chat_session_delete(session_id=session.id)

    assert recorded() == [
        (
            "chat.message_deleted",
            "chat_message",
            first.id,
            session.initiative_id,
            {"chat_session_id": session.id},
        ),
        (
            "chat.deleted",
            "chat_session",
            session.id,
            session.initiative_id,
            {"target_type": session.target_type, "target_id": session.target_id, "messages": 1},
        ),
    ]
    assert second.id not in {e.subject_id for e in Event.objects.all()}
