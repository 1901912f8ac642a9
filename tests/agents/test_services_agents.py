"""The agents' lifecycle services (``agents/services/agents.py``): registration with an
account claimed in the same transaction, the state machine, dismissal, their events."""

import json

import pytest

from agents import services
from agents.models import Account, Agent, AgentStatus
from core.errors import Conflict, NotFound, TransitionNotAllowed
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db


def kinds() -> list[str]:
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


def test_agent_register_generates_a_name_and_records_agent_registered():
    task = f.TaskFactory()
    agent, account = services.agent_register(worktree_id="/w/1", task_id=task.id)
    assert account is None
    assert agent.name and agent.status == AgentStatus.IDLE
    assert agent.task_id == task.id
    assert agent.initiative_id == task.initiative_id
    event = Event.objects.get(kind="agent.registered")
    assert (event.subject_type, event.subject_id) == ("agent", agent.id)
    assert event.initiative_id == task.initiative_id
    assert event.data == {"name": agent.name, "task_id": task.id, "account_id": None}


def test_agent_register_claims_an_account_in_the_same_transaction():
    account = f.AccountFactory()
    agent, claimed = services.agent_register(worktree_id="/w/1", name="a1", claim_account=True)
    assert claimed is not None and claimed.id == account.id
    assert agent.account_id == account.id
    assert kinds() == ["agent.registered", "account.claimed"]
    assert Event.objects.get(kind="account.claimed").data["agent_id"] == agent.id


def test_agent_register_without_an_available_account_writes_nothing():
    with pytest.raises(Conflict) as error:
        services.agent_register(worktree_id="/w/1", claim_account=True)
    assert error.value.code == "account_unavailable"
    assert not Agent.objects.exists() and not Event.objects.exists()


def test_agent_register_with_a_taken_name_does_not_keep_the_claim():
    f.AgentFactory(name="taken")
    account = f.AccountFactory()
    with pytest.raises(Conflict) as error:
        services.agent_register(worktree_id="/w/1", name="taken", claim_account=True)
    assert error.value.code == "agent_name_taken"
    assert Account.objects.get(pk=account.pk).last_used_at is None
    assert not Event.objects.exists()


def test_agent_register_with_an_unknown_task_is_not_found():
    with pytest.raises(NotFound) as error:
        services.agent_register(worktree_id="/w/1", task_id="nope")
    assert error.value.code == "task_not_found"
    assert not Agent.objects.exists()


def test_agent_lifecycle_runs_waits_runs_again_and_stops_with_events():
    agent = f.AgentFactory()
    services.agent_mark_running(agent_id=agent.id, pid=42, session_id="s-1")
    services.agent_mark_waiting(agent_id=agent.id, pending_questions=[{"q": "Which db?"}])
    agent.refresh_from_db()
    assert agent.status == AgentStatus.WAITING_FOR_INPUT
    assert json.loads(agent.pending_questions) == [{"q": "Which db?"}]
    services.agent_mark_running(agent_id=agent.id)
    services.agent_mark_stopped(agent_id=agent.id, exit_code=0, result={"ok": True})
    agent.refresh_from_db()
    assert (agent.status, agent.pid, agent.session_id, agent.exit_code) == ("stopped", 42, "s-1", 0)
    assert agent.pending_questions is None and json.loads(agent.result) == {"ok": True}
    changes = [
        (e.data["from"], e.data["to"])
        for e in Event.objects.filter(kind="agent.status_changed").order_by("id")
    ]
    assert changes == [
        ("idle", "running"),
        ("running", "waiting_for_input"),
        ("waiting_for_input", "running"),
        ("running", "stopped"),
    ]


@pytest.mark.parametrize(
    ("status", "service", "allowed"),
    [
        ("idle", services.agent_mark_waiting, ["running"]),
        (
            "running",
            services.agent_mark_running,
            ["idle", "waiting_for_input", "stopped", "crashed"],
        ),
        ("stopped", services.agent_mark_idle, ["running", "waiting_for_input"]),
        ("crashed", services.agent_mark_stopped, ["idle", "running", "waiting_for_input"]),
    ],
)
def test_agent_transitions_that_make_no_sense_are_refused_with_the_allowed_states(
    status, service, allowed
):
    agent = f.AgentFactory(status=status)
    kwargs = {"pending_questions": []} if service is services.agent_mark_waiting else {}
    with pytest.raises(TransitionNotAllowed) as error:
        service(agent_id=agent.id, **kwargs)
    assert error.value.code == "transition_not_allowed"
    assert error.value.details["allowed_from"] == allowed
    assert error.value.details["status"] == status
    agent.refresh_from_db()
    assert agent.status == status
    assert not Event.objects.exists()


def test_a_crashed_agent_may_run_again():
    agent = f.AgentFactory(status="crashed")
    assert services.agent_mark_running(agent_id=agent.id).status == "running"


def test_agent_transition_of_an_unknown_agent_is_not_found():
    with pytest.raises(NotFound) as error:
        services.agent_mark_running(agent_id="nope")
    assert error.value.code == "agent_not_found"


def test_agent_dismiss_sets_the_time_once_and_records_agent_dismissed():
    agent = f.AgentFactory(status="stopped")
    dismissed = services.agent_dismiss(agent_id=agent.id)
    assert dismissed.user_dismissed_at is not None
    assert kinds() == ["agent.dismissed"]
    with pytest.raises(Conflict) as error:
        services.agent_dismiss(agent_id=agent.id)
    assert error.value.code == "agent_already_dismissed"
    assert kinds() == ["agent.dismissed"]


def test_agent_dismiss_refuses_an_agent_at_work():
    agent = f.AgentFactory(status="running")
    with pytest.raises(TransitionNotAllowed) as error:
        services.agent_dismiss(agent_id=agent.id)
    assert error.value.details["allowed_from"] == ["idle", "stopped", "crashed"]
    agent.refresh_from_db()
    assert agent.user_dismissed_at is None
