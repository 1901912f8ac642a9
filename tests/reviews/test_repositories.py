"""The reviews repositories: proposals, review comments, chat sessions and change sets."""

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.repositories import MAX_PAGE_SIZE
from reviews.models import (
    ChangeAction,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetSource,
    ChangeSetStatus,
    ChatMessage,
    ChatRole,
    ChatSession,
    ChatSessionStatus,
    ChatTargetType,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
    ReviewLineType,
)
from reviews.repositories import (
    ChangeSetRepository,
    ChatSessionRepository,
    ProposalRepository,
    ReviewCommentRepository,
)
from tests import factories as f

pytestmark = pytest.mark.django_db

ROW_COUNTS = [10, 1_000]


@contextmanager
def refused(error_class: type[DomainError], code: str):
    """Assert the block raises ``error_class`` with the stable ``code``."""
    with pytest.raises(error_class) as caught:
        yield caught
    assert caught.value.code == code, caught.value.message


@pytest.fixture
def initiative():
    return f.InitiativeFactory()


@pytest.fixture
def phase(initiative):
    return f.PhaseFactory(initiative=initiative)


@pytest.fixture
def agent():
    return f.AgentFactory()


def _at(minutes: int):
    """A fixed, distinct creation time, so ordering assertions never hinge on a tie."""
    return timezone.now() - timedelta(days=1) + timedelta(minutes=minutes)


# --- proposals ---------------------------------------------------------------------------


@pytest.fixture
def proposals():
    return ProposalRepository()


def bulk_proposals(agent, initiative, n, **fields):
    return Proposal.objects.bulk_create(
        Proposal(
            agent=agent,
            initiative=initiative,
            target_type=ProposalTargetType.TASK,
            title=f"Proposal {i}",
            sort_order=i,
            **fields,
        )
        for i in range(n)
    )


def test_proposal_crud_round_trip_moves_updated_at(proposals, agent, initiative):
    created = proposals.create(
        agent=agent, initiative=initiative, target_type=ProposalTargetType.PAGE, title="Docs"
    )
    assert proposals.find_by_id(created.id).title == "Docs"
    assert created.status == ProposalStatus.PENDING

    before = created.updated_at
    updated = proposals.update(created.id, title="Docs v2")
    assert updated.title == "Docs v2"
    assert updated.updated_at > before
    assert Proposal.objects.get(pk=created.id).title == "Docs v2"

    assert proposals.delete(created.id) is True
    assert proposals.delete(created.id) is False
    assert proposals.find_by_id(created.id) is None
    with refused(NotFound, "proposal_not_found"):
        proposals.get(created.id)


def test_proposal_create_refuses_an_unknown_target_type(proposals, agent, initiative):
    with refused(InvalidInput, "validation_failed") as caught:
        proposals.create(agent=agent, initiative=initiative, target_type="epic", title="x")
    assert "target_type" in caught.value.details["fields"]
    assert Proposal.objects.count() == 0


def test_find_by_agent_id_and_status_filters_and_orders(proposals, agent, initiative):
    late = f.ProposalFactory(agent=agent, initiative=initiative, sort_order=0, created_at=_at(2))
    early = f.ProposalFactory(agent=agent, initiative=initiative, sort_order=0, created_at=_at(1))
    first = f.ProposalFactory(agent=agent, initiative=initiative, sort_order=-1, created_at=_at(3))
    dismissed = f.ProposalFactory(
        agent=agent, initiative=initiative, status=ProposalStatus.DISMISSED
    )
    f.ProposalFactory(initiative=initiative)  # another agent's

    assert proposals.find_by_agent_id_and_status(agent.id) == [first, early, late, dismissed]
    assert proposals.find_by_agent_id_and_status(agent.id, ProposalStatus.PENDING) == [
        first,
        early,
        late,
    ]
    assert proposals.find_by_agent_id_and_status(agent.id, "dismissed") == [dismissed]
    assert proposals.find_by_agent_id_and_status(f.AgentFactory().id) == []


def test_find_by_agent_id_and_status_refuses_an_unknown_status(proposals, agent):
    with refused(InvalidInput, "invalid_status") as caught:
        proposals.find_by_agent_id_and_status(agent.id, "approved")
    assert caught.value.details["allowed"] == ProposalStatus.values


def test_update_many_by_agent_id_sets_status_and_bumps_updated_at(proposals, agent, initiative):
    mine = bulk_proposals(agent, initiative, 3)
    other = f.ProposalFactory(initiative=initiative)
    stale = timezone.now() - timedelta(hours=1)
    Proposal.objects.update(updated_at=stale)

    changed = proposals.update_many_by_agent_id(agent.id, status=ProposalStatus.ACCEPTED)

    assert changed == 3
    for row in Proposal.objects.filter(pk__in=[p.id for p in mine]):
        assert row.status == ProposalStatus.ACCEPTED
        assert row.updated_at > stale
    other.refresh_from_db()
    assert other.status == ProposalStatus.PENDING
    assert other.updated_at == stale


def test_update_many_by_agent_id_only_touches_rows_in_only_status(proposals, agent, initiative):
    pending = f.ProposalFactory(agent=agent, initiative=initiative)
    accepted = f.ProposalFactory(agent=agent, initiative=initiative, status=ProposalStatus.ACCEPTED)
    stale = timezone.now() - timedelta(hours=1)
    Proposal.objects.update(updated_at=stale)

    changed = proposals.update_many_by_agent_id(
        agent.id, status=ProposalStatus.DISMISSED, only_status=ProposalStatus.PENDING
    )

    assert changed == 1
    pending.refresh_from_db()
    accepted.refresh_from_db()
    assert pending.status == ProposalStatus.DISMISSED
    assert pending.updated_at > stale
    assert accepted.status == ProposalStatus.ACCEPTED
    assert accepted.updated_at == stale


def test_update_many_by_agent_id_takes_the_seeds_data_mapping(proposals, agent, initiative):
    f.ProposalFactory(agent=agent, initiative=initiative)
    assert proposals.update_many_by_agent_id(agent.id, {"status": "dismissed"}) == 1
    assert Proposal.objects.get().status == "dismissed"
    with refused(InvalidInput, "invalid_field"):
        proposals.update_many_by_agent_id(agent.id, {"title": "everything"})


def test_update_many_by_agent_id_returns_zero_for_an_agent_without_proposals(proposals):
    assert proposals.update_many_by_agent_id("x" * 22, status=ProposalStatus.ACCEPTED) == 0


@pytest.mark.parametrize(
    "kwargs", [{"status": "approved"}, {"status": "accepted", "only_status": "open"}]
)
def test_update_many_by_agent_id_refuses_an_unknown_status(proposals, agent, initiative, kwargs):
    f.ProposalFactory(agent=agent, initiative=initiative)
    with refused(InvalidInput, "invalid_status"):
        proposals.update_many_by_agent_id(agent.id, **kwargs)
    assert Proposal.objects.get().status == ProposalStatus.PENDING


def test_count_by_agent_id_and_status_includes_every_status(proposals, agent, initiative):
    bulk_proposals(agent, initiative, 3)
    bulk_proposals(agent, initiative, 2, status=ProposalStatus.DISMISSED)
    f.ProposalFactory(initiative=initiative, status=ProposalStatus.ACCEPTED)  # another agent

    assert proposals.count_by_agent_id_per_status(agent.id) == {
        "pending": 3,
        "accepted": 0,
        "dismissed": 2,
    }
    assert proposals.count_by_agent_id_and_status(agent.id, "dismissed") == 2
    assert proposals.count_by_agent_id_and_status(agent.id, "accepted") == 0
    assert proposals.count_by_agent_id_per_status("x" * 22) == {
        "pending": 0,
        "accepted": 0,
        "dismissed": 0,
    }


def test_count_refuses_an_unknown_status(proposals):
    with refused(InvalidInput, "invalid_status"):
        proposals.count(status="open")


@pytest.mark.parametrize("n", ROW_COUNTS)
def test_proposal_lists_run_a_fixed_number_of_queries(
    proposals, agent, initiative, n, django_assert_max_num_queries
):
    bulk_proposals(agent, initiative, n)
    with django_assert_max_num_queries(1):
        assert len(proposals.find_by_agent_id_and_status(agent.id, "pending")) == n
    with django_assert_max_num_queries(2):
        page = proposals.find_page_rows(agent_id=agent.id, limit=MAX_PAGE_SIZE)
        assert len(page.items) == min(n, MAX_PAGE_SIZE) and page.total == n
    with django_assert_max_num_queries(2):
        assert len(proposals.find_page_rows(agent_id=agent.id, offset=4, limit=5).items) == 5
    with django_assert_max_num_queries(1):
        assert proposals.count(agent_id=agent.id, status="pending") == n
    with django_assert_max_num_queries(1):
        assert proposals.count_by_agent_id_per_status(agent.id)["pending"] == n
    with django_assert_max_num_queries(1):
        assert proposals.count_by_agent_id_and_status(agent.id, "pending") == n
    with django_assert_max_num_queries(1):
        assert proposals.update_many_by_agent_id(agent.id, status="accepted") == n


def test_a_proposals_status_moves_only_through_its_lifecycle_methods(proposals, agent, initiative):
    proposal = f.ProposalFactory(agent=agent, initiative=initiative)
    with refused(InvalidInput, "invalid_field"):
        proposals.update(proposal.id, status=ProposalStatus.ACCEPTED)

    accepted = proposals.accept(proposal)

    assert accepted.status == Proposal.objects.get(pk=proposal.id).status == "accepted"
    for move in (proposals.accept, proposals.dismiss):
        with refused(Conflict, "proposal_not_pending") as caught:
            move(proposal.id)
        assert caught.value.details == {"id": proposal.id, "status": "accepted"}
    assert proposals.set_status(accepted, ProposalStatus.PENDING).status == "pending"
    assert proposals.dismiss(proposal.id).status == "dismissed"
    with refused(NotFound, "proposal_not_found"):
        proposals.dismiss("x" * 22)


def test_a_proposal_stays_with_its_agent_initiative_and_target(proposals, agent, initiative):
    proposal = f.ProposalFactory(agent=agent, initiative=initiative)
    for field, value in [
        ("initiative_id", f.InitiativeFactory().id),
        ("agent", f.AgentFactory()),
        ("target_id", f.TaskFactory().id),
        ("target_type", "page"),
    ]:
        with refused(InvalidInput, "invalid_field"):
            proposals.update(proposal, **{field: value})
    assert Proposal.objects.get(pk=proposal.id).initiative_id == initiative.id


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"target_id": "x" * 22}, NotFound, "proposal_target_missing"),
        (
            {"target_type": "page", "target_id": "elsewhere"},
            InvalidInput,
            "proposal_target_other_initiative",
        ),
        ({"metadata": [1, 2]}, InvalidInput, "invalid_metadata"),
        ({"metadata": "text"}, InvalidInput, "invalid_metadata"),
    ],
)
def test_proposal_create_refuses_what_the_api_refuses(
    proposals, agent, initiative, overrides, error, code
):
    if overrides.get("target_id") == "elsewhere":
        overrides = {**overrides, "target_id": f.PageFactory().id}  # another initiative's
    fields = {"agent": agent, "initiative": initiative, "target_type": "task", "title": "T"}
    with refused(error, code):
        proposals.create(**{**fields, **overrides})
    assert not Proposal.objects.exists()


def test_proposal_create_accepts_a_target_of_its_initiative(proposals, agent, initiative):
    task = f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    proposal = proposals.create(
        agent=agent, initiative=initiative, target_type="task", target_id=task.id, title="T"
    )
    assert (proposal.target_id, proposal.status) == (task.id, "pending")
    with refused(InvalidInput, "invalid_metadata"):
        proposals.update(proposal, metadata=["not", "an", "object"])


# --- review comments -------------------------------------------------------------------------


@pytest.fixture
def comments():
    return ReviewCommentRepository()


def new_comment(comments, phase, **overrides):
    fields = {
        "phase_id": phase.id,
        "file_path": "src/app.py",
        "line_number": 12,
        "line_type": ReviewLineType.ADDED,
        "body": "Name this better.",
    }
    return comments.create(**{**fields, **overrides})


def test_review_comment_create_stores_the_comment_with_defaults(comments, phase):
    comment = new_comment(comments, phase)
    stored = ReviewComment.objects.get(pk=comment.id)
    assert (stored.phase_id, stored.file_path, stored.line_number) == (phase.id, "src/app.py", 12)
    assert stored.line_type == ReviewLineType.ADDED
    assert stored.author == "you"
    assert stored.resolved is False
    assert new_comment(comments, phase, author="lead").author == "lead"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"body": ""}, "empty_body"),
        ({"body": "   \n"}, "empty_body"),
        ({"file_path": ""}, "empty_file_path"),
        ({"author": ""}, "empty_author"),
        ({"line_number": 0}, "invalid_line_number"),
        ({"line_number": -3}, "invalid_line_number"),
        ({"line_number": True}, "invalid_line_number"),
        ({"line_number": "7"}, "invalid_line_number"),
        ({"line_type": "modified"}, "invalid_line_type"),
    ],
)
def test_review_comment_create_refuses_invalid_input(comments, phase, overrides, code):
    with refused(InvalidInput, code):
        new_comment(comments, phase, **overrides)
    assert ReviewComment.objects.count() == 0


def test_review_comment_create_refuses_a_missing_phase(comments):
    with refused(NotFound, "phase_not_found") as caught:
        comments.create(
            phase_id="x" * 22, file_path="a.py", line_number=1, line_type="context", body="?"
        )
    assert caught.value.details == {"id": "x" * 22}


def test_find_by_phase_id_orders_by_file_line_and_time(comments, phase):
    b_5 = f.ReviewCommentFactory(phase=phase, file_path="b.py", line_number=5)
    a_9 = f.ReviewCommentFactory(phase=phase, file_path="a.py", line_number=9)
    a_2_late = f.ReviewCommentFactory(
        phase=phase, file_path="a.py", line_number=2, created_at=_at(2), resolved=True
    )
    a_2_early = f.ReviewCommentFactory(
        phase=phase, file_path="a.py", line_number=2, created_at=_at(1)
    )
    f.ReviewCommentFactory()  # another phase's

    assert comments.find_by_phase_id(phase.id) == [a_2_early, a_2_late, a_9, b_5]
    assert comments.find_by_phase_id(phase.id, unresolved_only=True) == [a_2_early, a_9, b_5]
    assert comments.find_by_phase_id("x" * 22) == []


def test_resolve_and_unresolve_flip_the_flag(comments, phase):
    comment = f.ReviewCommentFactory(phase=phase)

    resolved = comments.resolve(comment.id)
    assert resolved.resolved is True
    assert ReviewComment.objects.get(pk=comment.id).resolved is True

    unresolved = comments.unresolve(comment.id)
    assert unresolved.resolved is False
    assert ReviewComment.objects.get(pk=comment.id).resolved is False


def test_resolving_twice_is_idempotent_and_does_not_write(
    comments, phase, django_assert_num_queries
):
    comment = f.ReviewCommentFactory(phase=phase, resolved=True)
    stamped = ReviewComment.objects.get(pk=comment.id).updated_at
    with django_assert_num_queries(1):  # the read; no UPDATE
        again = comments.resolve(comment.id)
    assert again.resolved is True
    assert ReviewComment.objects.get(pk=comment.id).updated_at == stamped
    assert comments.unresolve(comments.unresolve(comment.id).id).resolved is False


@pytest.mark.parametrize("method", ["resolve", "unresolve"])
def test_resolve_and_unresolve_refuse_a_missing_comment(comments, method):
    with refused(NotFound, "review_comment_not_found"):
        getattr(comments, method)("x" * 22)


def test_review_comment_delete_says_whether_it_deleted(comments, phase):
    comment = f.ReviewCommentFactory(phase=phase)
    assert comments.delete(comment.id) is True
    assert comments.delete(comment.id) is False
    assert not ReviewComment.objects.exists()


@pytest.mark.parametrize("n", ROW_COUNTS)
def test_find_by_phase_id_runs_one_query(comments, phase, n, django_assert_max_num_queries):
    ReviewComment.objects.bulk_create(
        ReviewComment(
            phase=phase,
            file_path=f"f{i % 7}.py",
            line_number=i + 1,
            line_type=ReviewLineType.CONTEXT,
            body="b",
            resolved=i % 2 == 0,
        )
        for i in range(n)
    )
    with django_assert_max_num_queries(1):
        assert len(comments.find_by_phase_id(phase.id)) == n
    with django_assert_max_num_queries(1):
        assert len(comments.find_by_phase_id(phase.id, unresolved_only=True)) == n // 2


def test_review_comment_update_applies_the_checks_of_create(comments, phase):
    comment = new_comment(comments, phase)
    for changes, code in [
        ({"file_path": "a.py\nb.py"}, "invalid_file_path"),
        ({"line_number": 0}, "invalid_line_number"),
        ({"line_type": "moved"}, "invalid_line_type"),
        ({"author": " "}, "empty_author"),
        ({"phase_id": f.PhaseFactory().id}, "invalid_field"),
        ({"resolved": True}, "invalid_field"),
    ]:
        with refused(InvalidInput, code):
            comments.update(comment.id, **changes)
    updated = comments.update(comment, file_path="b.py", line_number=9)
    stored = ReviewComment.objects.get(pk=comment.id)
    assert (stored.file_path, stored.line_number, stored.phase_id) == ("b.py", 9, phase.id)
    assert updated.updated_at == stored.updated_at


def test_resolve_many_resolves_only_the_open_comments_named(comments, phase):
    first, second, _open = (new_comment(comments, phase, line_number=n) for n in (1, 2, 3))
    comments.resolve(first.id)
    assert comments.resolve_many([first.id, second.id]) == 1
    assert set(ReviewComment.objects.filter(resolved=True).values_list("pk", flat=True)) == {
        first.id,
        second.id,
    }
    assert comments.resolve_many([]) == 0


# --- chat sessions ---------------------------------------------------------------------------


@pytest.fixture
def chats():
    return ChatSessionRepository()


def open_session(chats, phase, **overrides):
    fields = {
        "target_type": ChatTargetType.PHASE,
        "target_id": phase.id,
        "initiative_id": phase.initiative_id,
    }
    return chats.create_session(**{**fields, **overrides})


def test_create_session_opens_an_active_session_on_a_phase(chats, phase, agent):
    session = open_session(chats, phase, agent_id=agent.id)
    stored = ChatSession.objects.get(pk=session.id)
    assert stored.status == ChatSessionStatus.ACTIVE
    assert (stored.target_type, stored.target_id) == ("phase", phase.id)
    assert stored.initiative_id == phase.initiative_id
    assert stored.agent_id == agent.id


def test_create_session_accepts_a_task_whose_initiative_comes_from_its_phase(chats, phase):
    task = f.TaskFactory(phase=phase, initiative=None)
    session = chats.create_session(
        target_type=ChatTargetType.TASK, target_id=task.id, initiative_id=phase.initiative_id
    )
    assert session.target_type == ChatTargetType.TASK
    assert session.agent_id is None


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"target_type": "page"}, InvalidInput, "invalid_target_type"),
        ({"target_id": "x" * 22}, NotFound, "phase_not_found"),
        ({"target_type": "task", "target_id": "x" * 22}, NotFound, "task_not_found"),
        ({"initiative_id": "y" * 22}, InvalidInput, "chat_target_other_initiative"),
        ({"agent_id": "z" * 22}, NotFound, "agent_not_found"),
    ],
)
def test_create_session_refuses_bad_targets_and_agents(chats, phase, overrides, error, code):
    with refused(error, code):
        open_session(chats, phase, **overrides)
    assert not ChatSession.objects.exists()


def test_create_session_refuses_a_target_of_another_initiative(chats, phase):
    task_elsewhere = f.TaskFactory()
    with refused(InvalidInput, "chat_target_other_initiative"):
        chats.create_session(
            target_type="task", target_id=task_elsewhere.id, initiative_id=phase.initiative_id
        )


def test_one_active_session_per_target_until_the_first_is_closed(chats, phase):
    first = open_session(chats, phase)
    with refused(Conflict, "chat_session_already_active") as caught:
        open_session(chats, phase)
    assert caught.value.details == {"target_type": "phase", "target_id": phase.id}
    assert ChatSession.objects.count() == 1

    chats.update_session(first.id, status=ChatSessionStatus.CLOSED)
    second = open_session(chats, phase)
    assert second.id != first.id
    assert chats.find_active_session("phase", phase.id) == second
    # Another target is never affected.
    assert open_session(chats, f.PhaseFactory(initiative=phase.initiative)).status == "active"


def test_active_session_refusal_leaves_the_callers_transaction_usable(chats, phase):
    open_session(chats, phase)
    with transaction.atomic():
        with refused(Conflict, "chat_session_already_active"):
            open_session(chats, phase)
        # On PostgreSQL a failed statement outside a savepoint would abort the block.
        assert ChatSession.objects.filter(target_id=phase.id).count() == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_racing_creators_get_exactly_one_active_session():
    phase = f.PhaseFactory()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create() -> None:
        try:
            barrier.wait()
            ChatSessionRepository().create_session(
                target_type="phase", target_id=phase.id, initiative_id=phase.initiative_id
            )
            outcomes.append("created")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["chat_session_already_active"] * 3 + ["created"]
    assert ChatSession.objects.filter(target_id=phase.id, status="active").count() == 1


def test_find_active_session_ignores_closed_sessions(chats, phase):
    f.ChatSessionFactory(
        initiative=phase.initiative, target_id=phase.id, status=ChatSessionStatus.CLOSED
    )
    assert chats.find_active_session("phase", phase.id) is None
    active = open_session(chats, phase)
    assert chats.find_active_session("phase", phase.id) == active
    assert chats.find_active_session("task", phase.id) is None


def test_find_active_session_refuses_an_unknown_target_type(chats):
    with refused(InvalidInput, "invalid_target_type"):
        chats.find_active_session("page", "x" * 22)


def test_find_active_session_by_agent_id_returns_the_newest_active(chats, initiative, agent):
    f.ChatSessionFactory(initiative=initiative, agent=agent, status="closed", created_at=_at(9))
    older = f.ChatSessionFactory(initiative=initiative, agent=agent, created_at=_at(1))
    newer = f.ChatSessionFactory(initiative=initiative, agent=agent, created_at=_at(2))
    f.ChatSessionFactory(initiative=initiative)  # no agent

    assert chats.find_active_session_by_agent_id(agent.id) == newer
    chats.update_session(newer.id, status="closed")
    assert chats.find_active_session_by_agent_id(agent.id) == older
    assert chats.find_active_session_by_agent_id(f.AgentFactory().id) is None


def test_update_session_closes_and_assigns_an_agent(chats, phase, agent):
    session = open_session(chats, phase)
    stamped = session.updated_at
    updated = chats.update_session(session.id, status="closed", agent_id=agent.id)
    stored = ChatSession.objects.get(pk=session.id)
    assert (updated.status, stored.status) == ("closed", "closed")
    assert stored.agent_id == agent.id
    assert stored.updated_at > stamped


@pytest.mark.parametrize(
    ("fields", "error", "code"),
    [
        ({"status": "paused"}, InvalidInput, "invalid_status"),
        ({"target_id": "y" * 22}, InvalidInput, "invalid_field"),
        ({"initiative_id": "y" * 22}, InvalidInput, "invalid_field"),
        ({"agent_id": "z" * 22}, NotFound, "agent_not_found"),
    ],
)
def test_update_session_refuses_bad_fields(chats, phase, fields, error, code):
    session = open_session(chats, phase)
    with refused(error, code):
        chats.update_session(session.id, **fields)
    stored = ChatSession.objects.get(pk=session.id)
    assert (stored.status, stored.target_id, stored.agent_id) == ("active", phase.id, None)


def test_update_session_refuses_reopening_when_another_is_active(chats, phase):
    first = open_session(chats, phase)
    chats.update_session(first.id, status="closed")
    open_session(chats, phase)
    with refused(Conflict, "chat_session_already_active"):
        chats.update_session(first.id, status="active")
    assert ChatSession.objects.get(pk=first.id).status == "closed"


def test_update_session_refuses_a_missing_session(chats):
    with refused(NotFound, "chat_session_not_found"):
        chats.update_session("x" * 22, status="closed")


def test_create_message_appends_to_an_active_session(chats, phase):
    session = open_session(chats, phase)
    change_set = f.ChangeSetFactory(initiative=phase.initiative)
    message = chats.create_message(
        chat_session_id=session.id, role=ChatRole.USER, content="Split it."
    )
    reply = chats.create_message(
        chat_session_id=session.id,
        role=ChatRole.ASSISTANT,
        content="Done.",
        change_set_id=change_set.id,
    )
    stored = ChatMessage.objects.get(pk=reply.id)
    assert (stored.role, stored.content, stored.change_set_id) == (
        "assistant",
        "Done.",
        change_set.id,
    )
    assert chats.find_messages_by_session_id(session.id) == [message, reply]


def test_create_message_refuses_a_closed_session(chats, phase):
    session = open_session(chats, phase)
    chats.update_session(session.id, status="closed")
    with refused(Conflict, "chat_session_closed"):
        chats.create_message(chat_session_id=session.id, role="user", content="Still there?")
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"role": "bot"}, InvalidInput, "invalid_role"),
        ({"content": " "}, InvalidInput, "empty_content"),
        ({"chat_session_id": "x" * 22}, NotFound, "chat_session_not_found"),
        ({"change_set_id": "x" * 22}, NotFound, "change_set_not_found"),
    ],
)
def test_create_message_refuses_bad_input(chats, phase, overrides, error, code):
    session = open_session(chats, phase)
    fields = {"chat_session_id": session.id, "role": "user", "content": "Hi"}
    with refused(error, code):
        chats.create_message(**{**fields, **overrides})
    assert not ChatMessage.objects.exists()


def test_create_message_refuses_a_change_set_of_another_initiative(chats, phase):
    session = open_session(chats, phase)
    foreign = f.ChangeSetFactory()
    with refused(InvalidInput, "chat_change_set_other_initiative"):
        chats.create_message(
            chat_session_id=session.id, role="assistant", content="x", change_set_id=foreign.id
        )


def bulk_messages(session, n):
    return ChatMessage.objects.bulk_create(
        ChatMessage(chat_session=session, role=ChatRole.USER, content=str(i), created_at=_at(i))
        for i in range(n)
    )


def test_find_messages_by_session_id_is_oldest_first_and_pages_after_a_cursor(chats, phase):
    session = open_session(chats, phase)
    messages = bulk_messages(session, 5)
    f.ChatMessageFactory()  # another session's

    assert chats.find_messages_by_session_id(session.id) == messages
    assert chats.find_messages_by_session_id(session.id, limit=2) == messages[:2]
    assert chats.find_messages_by_session_id(session.id, after=messages[1].id) == messages[2:]
    assert chats.find_messages_by_session_id(session.id, after=messages[1].id, limit=1) == [
        messages[2]
    ]
    assert chats.find_messages_by_session_id(session.id, after=messages[-1].id) == []
    assert chats.find_messages_by_session_id("x" * 22) == []


def test_find_messages_by_session_id_refuses_a_foreign_cursor_and_a_bad_limit(chats, phase):
    session = open_session(chats, phase)
    foreign = f.ChatMessageFactory()
    with refused(InvalidInput, "invalid_cursor"):
        chats.find_messages_by_session_id(session.id, after=foreign.id)
    with refused(InvalidInput, "invalid_limit"):
        chats.find_messages_by_session_id(session.id, limit=0)


@pytest.mark.parametrize("n", ROW_COUNTS)
def test_chat_reads_run_a_fixed_number_of_queries(chats, phase, n, django_assert_max_num_queries):
    session = open_session(chats, phase)
    messages = bulk_messages(session, n)
    ChatSession.objects.bulk_create(
        ChatSession(
            target_type="task",
            target_id=f"t{i:021d}",
            initiative=phase.initiative,
            status="closed",
        )
        for i in range(n)
    )
    with django_assert_max_num_queries(1):
        assert len(chats.find_messages_by_session_id(session.id)) == n
    with django_assert_max_num_queries(2):
        assert len(chats.find_messages_by_session_id(session.id, after=messages[4].id)) == n - 5
    with django_assert_max_num_queries(1):
        assert chats.find_active_session("phase", phase.id) == session


def test_a_session_is_opened_only_through_create_session():
    assert not hasattr(ChatSessionRepository(), "create")


def test_close_session_closes_exactly_once(chats, phase):
    session = open_session(chats, phase)
    closed = chats.close_session(session.id)
    assert closed.status == ChatSession.objects.get(pk=session.id).status == "closed"
    with refused(Conflict, "chat_session_closed"):
        chats.close_session(session.id)
    with refused(NotFound, "chat_session_not_found"):
        chats.close_session("x" * 22)
    assert open_session(chats, phase).status == "active"


def test_find_ids_by_target_lists_active_and_closed_sessions(chats, phase):
    first = open_session(chats, phase)
    chats.close_session(first.id)
    second = open_session(chats, phase)
    open_session(chats, f.PhaseFactory(initiative=phase.initiative))
    assert sorted(chats.find_ids_by_target("phase", phase.id)) == sorted([first.id, second.id])
    with refused(InvalidInput, "invalid_target_type"):
        chats.find_ids_by_target("page", phase.id)


# --- change sets -----------------------------------------------------------------------------


@pytest.fixture
def change_sets():
    return ChangeSetRepository()


def entry(action=ChangeAction.CREATE, **overrides):
    values = {
        "entity_type": "tasks",
        "entity_id": "t" * 22,
        "action": action,
        "after": {"name": "New"},
    }
    if action != ChangeAction.CREATE:
        values["before"] = {"name": "Old"}
    if action == ChangeAction.DELETE:
        values.pop("after")
    return {**values, **overrides}


def new_change_set(change_sets, initiative, *, entries=None, **overrides):
    proposal = f.ProposalFactory(initiative=initiative)
    fields = {
        "initiative_id": initiative.id,
        "source": ChangeSetSource.PROPOSAL,
        "proposal_id": proposal.id,
        "description": "Accepted a task",
        "entries": entries if entries is not None else [entry()],
    }
    return change_sets.create(**{**fields, **overrides})


def test_change_set_create_stores_entries_in_position_order(change_sets, initiative):
    change_set = new_change_set(
        change_sets,
        initiative,
        entries=[
            entry(entity_id="a" * 22),
            entry(ChangeAction.UPDATE, entity_id="b" * 22),
            entry(ChangeAction.DELETE, entity_id="c" * 22),
        ],
    )
    stored = ChangeSet.objects.get(pk=change_set.id)
    assert stored.status == ChangeSetStatus.APPLIED
    assert stored.description == "Accepted a task"
    rows = list(ChangeSetEntry.objects.filter(change_set=stored).order_by("sort_order"))
    assert [(r.sort_order, r.entity_id, r.action) for r in rows] == [
        (0, "a" * 22, "create"),
        (1, "b" * 22, "update"),
        (2, "c" * 22, "delete"),
    ]
    assert (rows[1].before, rows[1].after) == ({"name": "Old"}, {"name": "New"})
    assert rows[2].after is None


def test_change_set_create_from_chat_names_the_session(change_sets, phase):
    session = f.ChatSessionFactory(initiative=phase.initiative, target_id=phase.id)
    change_set = change_sets.create(
        initiative_id=phase.initiative_id,
        source=ChangeSetSource.CHAT,
        chat_session_id=session.id,
        entries=[entry()],
    )
    assert ChangeSet.objects.get(pk=change_set.id).chat_session_id == session.id


def test_change_set_create_inserts_entries_in_one_statement(
    change_sets, initiative, django_assert_num_queries
):
    proposal = f.ProposalFactory(initiative=initiative)

    def create(n):
        return change_sets.create(
            initiative_id=initiative.id,
            source="proposal",
            proposal_id=proposal.id,
            entries=[entry(entity_id=f"{i:022d}") for i in range(n)],
        )

    with CaptureQueriesContext(connection) as one:
        create(1)
    # 100 entries fit one INSERT even under SQLite's 999-parameter batches.
    with django_assert_num_queries(len(one.captured_queries)):
        create(100)
    assert ChangeSetEntry.objects.count() == 101


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"source": "import"}, "invalid_source"),
        ({"proposal_id": None}, "change_set_source_missing"),
        ({"source": "chat"}, "change_set_source_missing"),
        ({"entries": []}, "empty_change_set"),
        ({"entries": [entry(), "tasks"]}, "invalid_entry"),
        ({"entries": [entry(colour="red")]}, "invalid_entry"),
        ({"entries": [{"entity_type": "tasks", "action": "create"}]}, "invalid_entry"),
        ({"entries": [entry(action="rename")]}, "invalid_entry"),
        ({"entries": [entry(before={"name": "x"})]}, "invalid_entry"),
        ({"entries": [entry(ChangeAction.UPDATE, before=None)]}, "invalid_entry"),
        ({"entries": [entry(ChangeAction.DELETE, after={"name": "x"})]}, "invalid_entry"),
        ({"entries": [entry(entity_id="x" * 23)]}, "invalid_entry"),
        ({"initiative_id": "x" * 22}, "invalid_reference"),
    ],
)
def test_change_set_create_refuses_bad_input_and_writes_nothing(
    change_sets, initiative, overrides, code
):
    with refused(InvalidInput, code):
        new_change_set(change_sets, initiative, **overrides)
    assert not ChangeSet.objects.exists()
    assert not ChangeSetEntry.objects.exists()


def test_change_set_create_names_the_bad_entry(change_sets, initiative):
    with refused(InvalidInput, "invalid_entry") as caught:
        new_change_set(change_sets, initiative, entries=[entry(), entry(action="rename")])
    assert caught.value.details["index"] == 1
    assert "action" in caught.value.details["fields"]


def test_find_with_entries_prefetches_them_in_order(
    change_sets, initiative, django_assert_num_queries
):
    created = new_change_set(
        change_sets, initiative, entries=[entry(entity_id=f"{i:022d}") for i in range(3)]
    )
    with django_assert_num_queries(2):
        found = change_sets.find_with_entries(created.id)
        assert [e.sort_order for e in found.entries.all()] == [0, 1, 2]
    assert change_sets.find_with_entries("x" * 22) is None
    assert change_sets.get_with_entries(created.id) == created
    with refused(NotFound, "change_set_not_found"):
        change_sets.get_with_entries("x" * 22)


def test_find_by_initiative_id_is_newest_first(change_sets, initiative):
    older = f.ChangeSetFactory(initiative=initiative, created_at=_at(1))
    newer = f.ChangeSetFactory(initiative=initiative, created_at=_at(2))
    f.ChangeSetFactory()  # another initiative's
    assert change_sets.find_by_initiative_id(initiative.id) == [newer, older]
    assert change_sets.find_by_initiative_id(initiative.id, limit=1) == [newer]
    assert change_sets.find_by_initiative_id("x" * 22) == []


def test_find_by_proposal_id_returns_its_change_sets(change_sets, initiative):
    proposal = f.ProposalFactory(initiative=initiative)
    mine = f.ChangeSetFactory(initiative=initiative, proposal=proposal)
    f.ChangeSetEntryFactory(change_set=mine)
    f.ChangeSetFactory(initiative=initiative)
    found = change_sets.find_by_proposal_id(proposal.id, with_entries=True)
    assert found == [mine]
    assert len(found[0].entries.all()) == 1
    assert change_sets.find_by_proposal_id("x" * 22) == []


@pytest.mark.parametrize("n", ROW_COUNTS)
def test_change_set_lists_run_a_fixed_number_of_queries(
    change_sets, initiative, n, django_assert_max_num_queries
):
    proposal = f.ProposalFactory(initiative=initiative)
    sets = ChangeSet.objects.bulk_create(
        ChangeSet(initiative=initiative, source="proposal", proposal=proposal) for _ in range(n)
    )
    ChangeSetEntry.objects.bulk_create(
        ChangeSetEntry(change_set=cs, entity_type="tasks", entity_id="t" * 22, action="create")
        for cs in sets
    )
    with django_assert_max_num_queries(1):
        assert len(change_sets.find_by_initiative_id(initiative.id)) == n
    with django_assert_max_num_queries(2):
        found = change_sets.find_by_initiative_id(initiative.id, with_entries=True)
        assert sum(len(cs.entries.all()) for cs in found) == n
    with django_assert_max_num_queries(2):
        found = change_sets.find_by_proposal_id(proposal.id, with_entries=True)
        assert sum(len(cs.entries.all()) for cs in found) == n


def test_mark_reverted_stamps_status_time_and_updated_at(change_sets, initiative):
    change_set = f.ChangeSetFactory(initiative=initiative)
    stale = timezone.now() - timedelta(hours=1)
    ChangeSet.objects.update(updated_at=stale)

    reverted = change_sets.mark_reverted(change_set.id)

    assert reverted.status == ChangeSetStatus.REVERTED
    assert reverted.reverted_at is not None
    assert reverted.updated_at > stale
    assert ChangeSet.objects.get(pk=change_set.id).status == ChangeSetStatus.REVERTED


def test_mark_reverted_refuses_a_second_revert_and_a_missing_set(change_sets, initiative):
    change_set = f.ChangeSetFactory(initiative=initiative)
    first = change_sets.mark_reverted(change_set.id)
    with refused(Conflict, "change_set_already_reverted"):
        change_sets.mark_reverted(change_set.id)
    assert ChangeSet.objects.get(pk=change_set.id).reverted_at == first.reverted_at
    with refused(NotFound, "change_set_not_found"):
        change_sets.mark_reverted("x" * 22)


def test_a_file_path_with_a_line_break_is_refused():
    from reviews.repositories import ReviewCommentRepository

    phase = f.PhaseFactory()
    with refused(InvalidInput, "invalid_file_path"):
        ReviewCommentRepository().create(
            phase_id=phase.id,
            file_path="a.py\n## injected",
            line_number=1,
            line_type="added",
            body="x",
        )


def test_a_change_set_is_history_its_repository_neither_updates_nor_deletes():
    repository = ChangeSetRepository()
    assert not any(hasattr(repository, name) for name in ("update", "delete", "set_status"))


def test_find_entries_reads_them_in_recorded_order_or_newest_first(change_sets, initiative):
    change_set = new_change_set(
        change_sets,
        initiative,
        entries=[entry(entity_id=f"{n}" * 22) for n in range(3)],
    )
    ids = [e.entity_id for e in change_sets.find_entries(change_set.id)]
    assert ids == ["0" * 22, "1" * 22, "2" * 22]
    newest_first = change_sets.find_entries(change_set.id, newest_first=True)
    assert [e.entity_id for e in newest_first] == ids[::-1]
