"""Service transitions under concurrent callers, on the real database (threads, commits)."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from core import services as core
from core.errors import DomainError
from core.models import ExecutionMode, InitiativeStatus, PhaseStatus, TaskStatus
from reviews import services as reviews
from reviews.models import ChangeSet, ProposalStatus
from tests import factories as f
from tests.reviews.helpers import a_person

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def race(*calls: Callable[[], object]) -> tuple[list[object], list[Exception]]:
    """Run the calls at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = []
    errors: list[Exception] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results.append(call())
        except Exception as error:  # collected and asserted by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.parametrize("round_", range(3))
def test_the_last_tasks_of_a_phase_completing_at_once_still_finish_it(round_):
    initiative = f.InitiativeFactory(execution_mode=ExecutionMode.YOLO)
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    tasks = [f.TaskFactory(phase=phase, status=TaskStatus.IN_PROGRESS) for _ in range(4)]

    _results, errors = race(*(lambda t=t: core.task_complete(task_id=t.id) for t in tasks))

    assert errors == []
    phase.refresh_from_db()
    initiative.refresh_from_db()
    assert phase.status == PhaseStatus.COMPLETED
    assert initiative.status == InitiativeStatus.COMPLETED


def test_one_task_started_twice_at_once_starts_once():
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    task = f.TaskFactory(phase=phase)

    results, errors = race(*(lambda: core.task_start(task_id=task.id) for _ in range(4)))

    assert len(results) == 1
    assert [e.code for e in errors] == ["transition_not_allowed"] * 3


def test_one_proposal_accepted_twice_at_once_is_applied_once():
    proposal = f.ProposalFactory(metadata=None)
    person = a_person()

    results, errors = race(
        *(lambda: reviews.proposal_accept(proposal_id=proposal.id, actor=person) for _ in range(4))
    )

    assert len(results) == 1
    assert all(isinstance(e, DomainError) for e in errors)
    assert [e.code for e in errors] == ["proposal_not_pending"] * 3
    assert ChangeSet.objects.count() == 1
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED


def test_accept_and_dismiss_racing_leave_one_outcome():
    proposal = f.ProposalFactory(metadata=None)
    person = a_person()

    results, errors = race(
        lambda: reviews.proposal_accept(proposal_id=proposal.id, actor=person),
        lambda: reviews.proposal_dismiss(proposal_id=proposal.id, actor=person),
    )

    assert (len(results), len(errors)) == (1, 1)
    proposal.refresh_from_db()
    applied = ChangeSet.objects.count()
    assert (proposal.status, applied) in {("accepted", 1), ("dismissed", 0)}


@pytest.mark.parametrize("round_", range(5))
def test_applying_a_proposal_and_a_lifecycle_transition_never_deadlock(round_):
    """Both take the initiative's lock first, so they wait for each other instead."""
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    done = f.TaskFactory(phase=phase, status=TaskStatus.COMPLETED)
    task = f.TaskFactory(phase=phase)
    proposal = f.ProposalFactory(
        initiative=phase.initiative,
        target_id=task.id,
        title="Sharper name",
        metadata={"dependencies": [done.id]},
    )
    person = a_person()

    _results, errors = race(
        lambda: reviews.proposal_accept(proposal_id=proposal.id, actor=person),
        lambda: core.task_start(task_id=task.id),
    )

    assert errors == []
    task.refresh_from_db()
    assert (task.name, task.status) == ("Sharper name", TaskStatus.IN_PROGRESS)


@pytest.mark.parametrize("round_", range(5))
def test_accept_all_and_a_lifecycle_transition_never_deadlock(round_):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    done = f.TaskFactory(phase=phase, status=TaskStatus.COMPLETED)
    task = f.TaskFactory(phase=phase)
    agent = f.AgentFactory()
    f.ProposalFactory(
        agent=agent,
        initiative=phase.initiative,
        target_id=task.id,
        title="Sharper name",
        metadata={"dependencies": [done.id]},
    )
    person = a_person()

    _results, errors = race(
        lambda: reviews.proposal_accept_all(agent_id=agent.id, actor=person),
        lambda: core.task_start(task_id=task.id),
    )

    assert errors == []
    task.refresh_from_db()
    assert (task.name, task.status) == ("Sharper name", TaskStatus.IN_PROGRESS)
