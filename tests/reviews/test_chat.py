"""Chat services: open or get the one active session of a target, post messages, close."""

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.models import Event
from reviews import services
from reviews.models import ChangeSetStatus, ChatMessage, ChatSession, ChatSessionStatus
from tests import factories as f
from tests.reviews.helpers import a_person, propose

pytestmark = pytest.mark.django_db


def events(kind: str | None = None) -> list[Event]:
    qs = Event.objects.all() if kind is None else Event.objects.filter(kind=kind)
    return list(qs.order_by("id"))


@pytest.fixture
def phase(initiative):
    return f.PhaseFactory(initiative=initiative)


@pytest.fixture
def session(phase):
    session, _opened = services.chat_session_open(target_type="phase", target_id=phase.id)
    return session


# --- opening ---------------------------------------------------------------------------------


def test_open_opens_an_active_session_on_the_phase_and_records_it(phase, agent):
    session, opened = services.chat_session_open(
        target_type="phase", target_id=phase.id, agent_id=agent.id
    )

    assert opened is True
    assert (session.target_type, session.target_id, session.initiative_id, session.agent_id) == (
        "phase",
        phase.id,
        phase.initiative_id,
        agent.id,
    )
    assert session.status == ChatSessionStatus.ACTIVE
    [event] = events()
    assert (event.kind, event.subject_type, event.subject_id, event.initiative_id) == (
        "chat.opened",
        "chat_session",
        session.id,
        phase.initiative_id,
    )
    assert event.data == {"target_type": "phase", "target_id": phase.id, "agent_id": agent.id}


def test_open_again_gets_the_active_session_without_a_second_event(phase, session, agent):
    again, opened = services.chat_session_open(
        target_type="phase", target_id=phase.id, agent_id=agent.id
    )

    assert (again.id, opened) == (session.id, False)
    assert again.agent_id is None  # the active session is returned as it is
    assert ChatSession.objects.count() == 1
    assert len(events("chat.opened")) == 1


def test_open_on_a_task_takes_the_initiative_of_its_phase(phase):
    task = f.TaskFactory(phase=phase)

    session, opened = services.chat_session_open(target_type="task", target_id=task.id)

    assert opened is True
    assert session.initiative_id == phase.initiative_id


def test_open_after_close_opens_a_new_session(phase, session):
    services.chat_session_close(session_id=session.id)

    fresh, opened = services.chat_session_open(target_type="phase", target_id=phase.id)

    assert opened is True
    assert fresh.id != session.id


def test_open_on_a_task_in_no_initiative_is_refused(db):
    task = f.TaskFactory(phase=None, initiative=None)

    with pytest.raises(InvalidInput) as error:
        services.chat_session_open(target_type="task", target_id=task.id)

    assert error.value.code == "chat_target_without_initiative"
    assert ChatSession.objects.count() == 0
    assert events() == []


@pytest.mark.parametrize(
    ("fields", "error_class", "code"),
    [
        ({"target_type": "page", "target_id": "x"}, InvalidInput, "invalid_target_type"),
        ({"target_type": "phase", "target_id": "missing"}, NotFound, "phase_not_found"),
        ({"target_type": "task", "target_id": "missing"}, NotFound, "task_not_found"),
    ],
)
def test_open_refusals_write_nothing(db, fields, error_class, code):
    with pytest.raises(error_class) as error:
        services.chat_session_open(**fields)

    assert error.value.code == code
    assert ChatSession.objects.count() == 0
    assert events() == []


def test_open_with_an_unknown_agent_is_refused_and_writes_nothing(phase):
    with pytest.raises(NotFound) as error:
        services.chat_session_open(target_type="phase", target_id=phase.id, agent_id="missing")

    assert error.value.code == "agent_not_found"
    assert ChatSession.objects.count() == 0
    assert events() == []


# --- messages --------------------------------------------------------------------------------


def test_post_appends_a_message_and_records_it(session):
    message = services.chat_message_post(
        session_id=session.id, role="user", content="Split this phase in two."
    )

    assert (message.chat_session_id, message.role, message.content, message.change_set_id) == (
        session.id,
        "user",
        "Split this phase in two.",
        None,
    )
    [event] = events("chat.message_posted")
    assert (event.subject_type, event.subject_id, event.initiative_id) == (
        "chat_message",
        message.id,
        session.initiative_id,
    )
    assert event.data == {"chat_session_id": session.id, "role": "user", "change_set_id": None}


def test_an_assistant_message_names_the_change_set_it_applied_which_reverts(
    session, agent, initiative
):
    change_set = services.proposal_accept(
        proposal_id=propose(agent, initiative).id, actor=a_person()
    )

    message = services.chat_message_post(
        session_id=session.id,
        role="assistant",
        content="Added the task.",
        change_set_id=change_set.id,
    )
    services.change_set_revert(change_set_id=message.change_set_id)

    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.REVERTED
    assert ChatMessage.objects.get().change_set_id == change_set.id
    assert events("chat.message_posted")[0].data["change_set_id"] == change_set.id


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"role": "user", "content": "   "}, "empty_content"),
        ({"role": "robot", "content": "Hi"}, "invalid_role"),
    ],
)
def test_post_refuses_bad_messages_and_writes_nothing(session, fields, code):
    with pytest.raises(InvalidInput) as error:
        services.chat_message_post(session_id=session.id, **fields)

    assert error.value.code == code
    assert ChatMessage.objects.count() == 0
    assert events("chat.message_posted") == []


def test_only_an_assistant_message_may_name_a_change_set(session):
    change_set = f.ChangeSetFactory(initiative_id=session.initiative_id)

    with pytest.raises(InvalidInput) as error:
        services.chat_message_post(
            session_id=session.id, role="user", content="Mine", change_set_id=change_set.id
        )

    assert error.value.code == "chat_change_set_not_assistant"
    assert ChatMessage.objects.count() == 0


def test_a_change_set_of_another_initiative_is_refused(session):
    other = f.ChangeSetFactory()

    with pytest.raises(InvalidInput) as error:
        services.chat_message_post(
            session_id=session.id, role="assistant", content="Done", change_set_id=other.id
        )

    assert error.value.code == "chat_change_set_other_initiative"
    assert ChatMessage.objects.count() == 0
    assert events("chat.message_posted") == []


def test_post_to_an_unknown_session_or_change_set_is_not_found(session):
    with pytest.raises(NotFound) as error:
        services.chat_message_post(session_id="missing", role="user", content="Hi")
    assert error.value.code == "chat_session_not_found"

    with pytest.raises(NotFound) as error:
        services.chat_message_post(
            session_id=session.id, role="assistant", content="Hi", change_set_id="missing"
        )
    assert error.value.code == "change_set_not_found"
    assert events("chat.message_posted") == []


# --- closing ---------------------------------------------------------------------------------


def test_close_closes_once_and_records_it(session):
    closed = services.chat_session_close(session_id=session.id)

    assert closed.status == ChatSessionStatus.CLOSED
    [event] = events("chat.closed")
    assert (event.subject_type, event.subject_id, event.initiative_id) == (
        "chat_session",
        session.id,
        session.initiative_id,
    )
    with pytest.raises(Conflict) as error:
        services.chat_session_close(session_id=session.id)
    assert error.value.code == "chat_session_closed"
    assert len(events("chat.closed")) == 1


def test_a_closed_session_takes_no_messages(session):
    services.chat_session_close(session_id=session.id)

    with pytest.raises(Conflict) as error:
        services.chat_message_post(session_id=session.id, role="user", content="Hello?")

    assert error.value.code == "chat_session_closed"
    assert ChatMessage.objects.count() == 0


def test_close_of_an_unknown_session_is_not_found(db):
    with pytest.raises(NotFound) as error:
        services.chat_session_close(session_id="missing")
    assert error.value.code == "chat_session_not_found"
    assert events() == []
