"""Whole initiatives run through the services only, in both execution modes."""

import pytest
from django.contrib.auth.models import User

from core import services as core
from core.actors import Actor
from core.models import ExecutionMode, InitiativeStatus, PhaseStatus, TaskStatus, TaskType
from core.repositories import InitiativeRepository, PhaseRepository, TaskRepository
from reviews import services as reviews
from reviews.repositories import ReviewCommentRepository

pytestmark = pytest.mark.django_db


def plan(mode):
    """An initiative with three dependent phases, each with three dependent tasks.

    Each phase's last task is a human-verify checkpoint, so a person takes part too.
    """
    initiative = InitiativeRepository().create(name=f"Payments ({mode})", execution_mode=mode)
    phase_repo, task_repo = PhaseRepository(), TaskRepository()
    made = []
    for p in range(3):
        phase = phase_repo.create(initiative=initiative, name=f"Phase {p}")
        if made:
            phase_repo.create_dependency(phase.id, made[-1][0].id)
        phase_tasks = []
        for t in range(3):
            task = task_repo.create(
                phase=phase,
                name=f"P{p} task {t}",
                type=TaskType.CHECKPOINT_HUMAN_VERIFY if t == 2 else TaskType.AUTO,
            )
            if phase_tasks:
                task_repo.create_dependency(task.id, phase_tasks[-1].id)
            phase_tasks.append(task)
        made.append((phase, phase_tasks))
    return initiative, made


def work_through(phase, person):
    """An agent loop: take what is ready, do it; a person completes the checkpoints.

    Runs until the phase leaves approved/in progress, checking on every step that no
    task of a phase that must wait is ever offered.
    """
    from core.models import Task

    while True:
        phase.refresh_from_db()
        if phase.status not in (PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS):
            break
        ready = core.task_list_ready(initiative_id=phase.initiative_id)
        waiting = core.task_list_waiting_checkpoints(initiative_id=phase.initiative_id)
        assert {t.phase_id for t in ready + waiting} <= {phase.id}, "work leaked ahead"
        if ready:
            core.task_start(task_id=ready[0].id)
            core.task_complete(task_id=ready[0].id, summary=f"did {ready[0].name}")
        elif waiting:
            core.task_complete(
                task_id=waiting[0].id, actor=Actor.person(person), summary="verified"
            )
        else:
            break
    assert not Task.objects.filter(phase=phase).exclude(status=TaskStatus.COMPLETED).exists()


@pytest.fixture
def person():
    return User.objects.create_user(username="reviewer", password="x" * 12)


def test_yolo_initiative_runs_from_plan_approval_to_completion(person):
    initiative, made = plan(ExecutionMode.YOLO)
    for phase, _tasks in made:  # a person approves the whole plan up front
        core.phase_approve_plan(phase_id=phase.id, actor=Actor.person(person))

    for phase, _tasks in made:
        work_through(phase, person)
        phase.refresh_from_db()
        assert phase.status == PhaseStatus.COMPLETED

    initiative.refresh_from_db()
    assert initiative.status == InitiativeStatus.COMPLETED
    context = core.task_context(task_id=made[2][1][2].id)
    assert [c.summary for c in context] == ["did P2 task 0", "did P2 task 1"]


def test_review_per_phase_initiative_waits_for_people_at_each_phase(person):
    initiative, made = plan(ExecutionMode.REVIEW_PER_PHASE)
    for phase, _tasks in made:
        core.phase_approve_plan(phase_id=phase.id, actor=Actor.person(person))

    for index, (phase, _tasks) in enumerate(made):
        work_through(phase, person)
        phase.refresh_from_db()
        assert phase.status == PhaseStatus.PENDING_REVIEW
        # Nothing moves while the phase waits for its reviewer.
        assert core.task_list_ready(initiative_id=initiative.id) == []
        assert core.task_list_waiting_checkpoints(initiative_id=initiative.id) == []

        if index == 1:
            # The reviewer asks for changes once: the agent gets one review task.
            ReviewCommentRepository().create(
                phase_id=phase.id, file_path="pay.py", line_number=3, line_type="added",
                body="Handle refunds.",
            )  # fmt: skip
            review_task = reviews.phase_request_changes(
                phase_id=phase.id, actor=Actor.person(person)
            )
            assert core.task_list_ready(initiative_id=initiative.id) == [review_task]
            work_through(phase, person)
            phase.refresh_from_db()
            assert phase.status == PhaseStatus.PENDING_REVIEW

        core.phase_approve(phase_id=phase.id, actor=Actor.person(person))
        phase.refresh_from_db()
        assert phase.status == PhaseStatus.COMPLETED

    initiative.refresh_from_db()
    assert initiative.status == InitiativeStatus.PENDING_REVIEW
    core.initiative_approve(initiative_id=initiative.id, actor=Actor.person(person))
    initiative.refresh_from_db()
    assert initiative.status == InitiativeStatus.COMPLETED
