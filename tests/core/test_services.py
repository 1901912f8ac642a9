"""Task, phase and initiative lifecycles (no task-level approval anywhere)."""

import pytest
from django.contrib.auth.models import User

from core import services
from core.actors import Actor
from core.errors import NotFound, PermissionRequired, TransitionNotAllowed
from core.models import (
    ExecutionMode,
    InitiativeStatus,
    PhaseStatus,
    Task,
    TaskDependency,
    TaskStatus,
    TaskType,
)
from core.repositories import readiness
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    return User.objects.create_user(username="lead", password="x" * 12)


def _person() -> Actor:
    """A person who passes the people's gates."""
    user, _ = User.objects.get_or_create(username="lead")
    return Actor.person(user)


def _refresh(*records):
    for record in records:
        record.refresh_from_db()


def approved_phase(mode=ExecutionMode.YOLO, **kwargs):
    initiative = f.InitiativeFactory(execution_mode=mode)
    return f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED, **kwargs)


# --- tasks -------------------------------------------------------------------------------


def test_starting_a_ready_task_starts_its_approved_phase():
    phase = approved_phase()
    task = f.TaskFactory(phase=phase)

    services.task_start(task_id=task.id)

    _refresh(task, phase)
    assert task.status == TaskStatus.IN_PROGRESS
    assert phase.status == PhaseStatus.IN_PROGRESS


def test_start_is_refused_unless_pending():
    task = f.TaskFactory(phase=approved_phase(), status=TaskStatus.IN_PROGRESS)
    with pytest.raises(TransitionNotAllowed) as error:
        services.task_start(task_id=task.id)
    assert error.value.code == "transition_not_allowed"
    assert error.value.details["allowed_from"] == ["pending"]


@pytest.mark.parametrize("phase_status", ["pending", "pending_review", "completed", "blocked"])
def test_start_is_refused_while_the_phase_does_not_allow_work(phase_status):
    task = f.TaskFactory(phase=f.PhaseFactory(status=phase_status))
    with pytest.raises(TransitionNotAllowed) as error:
        services.task_start(task_id=task.id)
    assert error.value.code == "task_not_ready"
    task.refresh_from_db()
    assert task.status == TaskStatus.PENDING


def test_start_is_refused_while_a_dependency_is_open():
    phase = approved_phase()
    first = f.TaskFactory(phase=phase)
    second = f.TaskFactory(phase=phase)
    f.TaskDependencyFactory(task=second, depends_on_task=first)
    with pytest.raises(TransitionNotAllowed) as error:
        services.task_start(task_id=second.id)
    assert error.value.code == "task_not_ready"


def test_start_is_refused_while_the_phase_waits_for_another_phase():
    phase = approved_phase()
    earlier = f.PhaseFactory(initiative=phase.initiative, status=PhaseStatus.IN_PROGRESS)
    f.PhaseDependencyFactory(phase=phase, depends_on_phase=earlier)
    with pytest.raises(TransitionNotAllowed):
        services.task_start(task_id=f.TaskFactory(phase=phase).id)


def test_a_refused_start_names_each_blocker_and_why():
    phase = f.PhaseFactory(name="Build", status=PhaseStatus.PENDING)
    earlier = f.PhaseFactory(initiative=phase.initiative, name="Design", status="in_progress")
    f.PhaseDependencyFactory(phase=phase, depends_on_phase=earlier)
    first = f.TaskFactory(phase=phase, name="Write", status=TaskStatus.IN_PROGRESS)
    other = f.TaskFactory(phase=phase, name="Plan", status=TaskStatus.BLOCKED)
    task = f.TaskFactory(phase=phase, name="Test")
    f.TaskDependencyFactory(task=task, depends_on_task=first)
    f.TaskDependencyFactory(task=task, depends_on_task=other)

    with pytest.raises(TransitionNotAllowed) as error:
        services.task_start(task_id=task.id)

    message = error.value.message
    assert message.startswith("Task 'Test' is not ready: it waits for the tasks ")
    assert "'Write' (in progress)" in message and "'Plan' (blocked)" in message
    assert "the plan of its phase 'Build' is not approved yet" in message
    assert "its phase 'Build' waits for the phase 'Design' (in progress)" in message


def test_a_task_of_an_archived_initiative_says_so_when_refused():
    phase = approved_phase()
    phase.initiative.status = InitiativeStatus.ARCHIVED
    phase.initiative.save(update_fields=["status"])
    task = f.TaskFactory(phase=phase)
    readiness.rebuild()
    with pytest.raises(TransitionNotAllowed) as error:
        services.task_start(task_id=task.id)
    assert f"its initiative '{phase.initiative}' is archived" in error.value.message


def test_a_checkpoint_is_started_only_by_a_person_with_the_code_of_its_completion(person):
    # Starting and completing a checkpoint are one gate: the same refusal, person_required.
    phase = approved_phase()
    task = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    for nobody in (None, Actor.tool("orchestrator")):
        with pytest.raises(PermissionRequired) as error:
            services.task_start(task_id=task.id, actor=nobody)
        assert error.value.code == "person_required"
        assert error.value.details["action"] == f"start the checkpoint '{task}'"
    _refresh(task)
    assert task.status == TaskStatus.PENDING

    services.task_start(task_id=task.id, actor=Actor.person(person))

    _refresh(task, phase)
    assert (task.status, phase.status) == (TaskStatus.IN_PROGRESS, PhaseStatus.IN_PROGRESS)


def test_complete_records_the_summary():
    task = f.TaskFactory(phase=approved_phase(), status=TaskStatus.IN_PROGRESS)
    f.TaskFactory(phase=task.phase)  # keeps the phase open

    services.task_complete(task_id=task.id, summary="Added the login form.")

    _refresh(task)
    assert task.status == TaskStatus.COMPLETED
    assert task.summary == "Added the login form."


def test_complete_is_refused_unless_in_progress():
    task = f.TaskFactory(phase=approved_phase())
    with pytest.raises(TransitionNotAllowed):
        services.task_complete(task_id=task.id)


def test_checkpoint_is_completed_only_by_a_person(person):
    phase = approved_phase()
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)
    f.TaskFactory(phase=phase)
    for nobody in (None, Actor.tool("orchestrator")):
        with pytest.raises(PermissionRequired) as error:
            services.task_complete(task_id=checkpoint.id, actor=nobody)
        assert error.value.code == "person_required"

    services.task_complete(task_id=checkpoint.id, actor=Actor.person(person), summary="Go with B.")

    _refresh(checkpoint, phase)
    assert checkpoint.status == TaskStatus.COMPLETED
    assert phase.status == PhaseStatus.IN_PROGRESS


def test_a_checkpoint_that_is_not_ready_waits(person):
    phase = approved_phase()
    first = f.TaskFactory(phase=phase)
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_ACTION)
    f.TaskDependencyFactory(task=checkpoint, depends_on_task=first)
    with pytest.raises(TransitionNotAllowed) as error:
        services.task_complete(task_id=checkpoint.id, actor=Actor.person(person))
    assert error.value.code == "task_not_ready"


@pytest.mark.parametrize("start", [TaskStatus.PENDING, TaskStatus.IN_PROGRESS])
def test_block_and_unblock_return_the_task_where_it_was(start):
    task = f.TaskFactory(status=start)
    services.task_block(task_id=task.id)
    _refresh(task)
    assert task.status == TaskStatus.BLOCKED
    services.task_unblock(task_id=task.id)
    _refresh(task)
    assert task.status == start
    assert task.blocked_from_status is None


def test_block_refusals():
    with pytest.raises(TransitionNotAllowed):
        services.task_block(task_id=f.TaskFactory(status=TaskStatus.COMPLETED).id)
    with pytest.raises(TransitionNotAllowed):
        services.task_unblock(task_id=f.TaskFactory().id)
    with pytest.raises(NotFound) as error:
        services.task_block(task_id="missing")
    assert error.value.code == "task_not_found"


def test_context_is_every_upstream_summary_in_dependency_order():
    phase = approved_phase()
    schema = f.TaskFactory(phase=phase, name="schema", summary="Tables made.")
    api = f.TaskFactory(phase=phase, name="api", summary="Endpoints made.")
    docs = f.TaskFactory(phase=phase, name="docs", summary="Unrelated.")
    ui = f.TaskFactory(phase=phase, name="ui")
    # Created out of order on purpose: the order comes from the graph, not creation.
    f.TaskDependencyFactory(task=ui, depends_on_task=api)
    f.TaskDependencyFactory(task=api, depends_on_task=schema)

    context = services.task_context(task_id=ui.id)

    assert [(c.name, c.summary) for c in context] == [
        ("schema", "Tables made."),
        ("api", "Endpoints made."),
    ]
    assert docs.id not in [c.task_id for c in context]
    assert services.task_context(task_id=schema.id) == []


def test_ready_lists_split_agent_work_from_checkpoints(person):
    phase = approved_phase()
    auto = f.TaskFactory(phase=phase)
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    assert services.task_list_ready() == [auto]
    assert services.task_list_waiting_checkpoints() == [checkpoint]
    assert services.task_list_ready(initiative_id=f.InitiativeFactory().id) == []


@pytest.mark.parametrize("rows", [10, 5000])
def test_ready_query_count_is_fixed(rows, django_assert_max_num_queries):
    phase = f.PhaseFactory(status=PhaseStatus.IN_PROGRESS)
    made = Task.objects.bulk_create(
        Task(phase=phase, initiative=phase.initiative, name=f"t{i}") for i in range(rows)
    )
    TaskDependency.objects.bulk_create(
        TaskDependency(task=made[i], depends_on_task=made[i - 1]) for i in range(1, rows, 2)
    )
    readiness.rebuild()  # bulk inserts go past the repositories that keep it current
    with django_assert_max_num_queries(1):
        ready = services.task_list_ready()
    assert len(ready) == rows - rows // 2


# --- phases ------------------------------------------------------------------------------


def test_phase_plan_approval_and_start():
    phase = f.PhaseFactory()
    services.phase_approve_plan(phase_id=phase.id, actor=_person())
    _refresh(phase)
    assert phase.status == PhaseStatus.APPROVED
    with pytest.raises(TransitionNotAllowed):
        services.phase_approve_plan(phase_id=phase.id, actor=_person())
    services.phase_start(phase_id=phase.id)
    _refresh(phase)
    assert phase.status == PhaseStatus.IN_PROGRESS
    with pytest.raises(TransitionNotAllowed):
        services.phase_start(phase_id=phase.id)


def test_phase_start_is_refused_while_a_dependency_is_not_completed():
    phase = approved_phase()
    earlier = f.PhaseFactory(initiative=phase.initiative, name="Earlier")
    f.PhaseDependencyFactory(phase=phase, depends_on_phase=earlier)

    with pytest.raises(TransitionNotAllowed) as error:
        services.phase_start(phase_id=phase.id)

    assert error.value.code == "phase_dependencies_incomplete"
    assert "'Earlier'" in error.value.message
    assert error.value.details["waiting_for"] == [earlier.id]


@pytest.mark.parametrize("status", ["pending", "approved", "in_progress", "pending_review"])
def test_phase_block_and_unblock_return_it_where_it_was(status):
    phase = f.PhaseFactory(status=status)
    services.phase_block(phase_id=phase.id)
    _refresh(phase)
    assert phase.status == PhaseStatus.BLOCKED
    services.phase_unblock(phase_id=phase.id)
    _refresh(phase)
    assert phase.status == status


def test_completed_phase_cannot_be_blocked_and_unblocked_phase_cannot_be_unblocked():
    with pytest.raises(TransitionNotAllowed):
        services.phase_block(phase_id=f.PhaseFactory(status=PhaseStatus.COMPLETED).id)
    with pytest.raises(TransitionNotAllowed):
        services.phase_unblock(phase_id=f.PhaseFactory().id)


@pytest.mark.parametrize(
    ("mode", "phase_after", "initiative_after"),
    [
        (ExecutionMode.YOLO, PhaseStatus.COMPLETED, InitiativeStatus.COMPLETED),
        (ExecutionMode.REVIEW_PER_PHASE, PhaseStatus.PENDING_REVIEW, InitiativeStatus.ACTIVE),
    ],
)
def test_last_task_completion_finishes_the_phase_by_execution_mode(
    mode, phase_after, initiative_after
):
    phase = approved_phase(mode)
    first = f.TaskFactory(phase=phase)
    second = f.TaskFactory(phase=phase)
    for task in (first, second):
        services.task_start(task_id=task.id)
    services.task_complete(task_id=first.id)
    _refresh(phase)
    assert phase.status == PhaseStatus.IN_PROGRESS

    services.task_complete(task_id=second.id)

    _refresh(phase, phase.initiative)
    assert phase.status == phase_after
    assert phase.initiative.status == initiative_after


def test_phase_in_review_waits_for_a_person_then_the_initiative_waits_too():
    phase = approved_phase(ExecutionMode.REVIEW_PER_PHASE)
    task = f.TaskFactory(phase=phase)
    services.task_start(task_id=task.id)
    services.task_complete(task_id=task.id)

    services.phase_approve(phase_id=phase.id, actor=_person())

    _refresh(phase, phase.initiative)
    assert phase.status == PhaseStatus.COMPLETED
    assert phase.initiative.status == InitiativeStatus.PENDING_REVIEW
    services.initiative_approve(initiative_id=phase.initiative_id, actor=_person())
    _refresh(phase.initiative)
    assert phase.initiative.status == InitiativeStatus.COMPLETED


def test_phase_approve_is_refused_outside_review():
    with pytest.raises(TransitionNotAllowed):
        services.phase_approve(
            phase_id=f.PhaseFactory(status=PhaseStatus.IN_PROGRESS).id, actor=_person()
        )
    with pytest.raises(TransitionNotAllowed):
        services.initiative_approve(initiative_id=f.InitiativeFactory().id, actor=_person())


def test_phase_complete_finishes_an_empty_phase_and_refuses_open_work():
    phase = approved_phase()
    services.phase_complete(phase_id=phase.id)
    _refresh(phase)
    assert phase.status == PhaseStatus.COMPLETED

    busy = approved_phase()
    f.TaskFactory(phase=busy)
    with pytest.raises(TransitionNotAllowed) as error:
        services.phase_complete(phase_id=busy.id)
    assert error.value.code == "phase_tasks_incomplete"


def test_initiative_archive_and_execution_mode():
    initiative = f.InitiativeFactory()
    services.initiative_set_execution_mode(initiative_id=initiative.id, execution_mode="yolo")
    _refresh(initiative)
    assert initiative.execution_mode == "yolo"
    services.initiative_archive(initiative_id=initiative.id)
    _refresh(initiative)
    assert initiative.status == InitiativeStatus.ARCHIVED
    with pytest.raises(TransitionNotAllowed):
        services.initiative_archive(initiative_id=initiative.id)


# --- what the audit found ---------------------------------------------------------------


def test_a_phase_in_review_with_open_tasks_cannot_be_approved():
    phase = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    f.TaskFactory(phase=phase)
    with pytest.raises(TransitionNotAllowed) as error:
        services.phase_approve(phase_id=phase.id, actor=_person())
    assert error.value.code == "phase_tasks_incomplete"


def test_an_initiative_in_review_with_open_phases_cannot_be_approved():
    initiative = f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW)
    f.PhaseFactory(initiative=initiative)
    with pytest.raises(TransitionNotAllowed) as error:
        services.initiative_approve(initiative_id=initiative.id, actor=_person())
    assert error.value.code == "initiative_phases_incomplete"


def test_unblocking_a_phase_whose_work_finished_meanwhile_finishes_it():
    phase = approved_phase()
    task = f.TaskFactory(phase=phase)
    services.task_start(task_id=task.id)
    services.phase_block(phase_id=phase.id)
    services.task_complete(task_id=task.id)  # work under way may finish while blocked
    _refresh(phase)
    assert phase.status == PhaseStatus.BLOCKED

    services.phase_unblock(phase_id=phase.id)

    _refresh(phase, phase.initiative)
    assert phase.status == PhaseStatus.COMPLETED
    assert phase.initiative.status == InitiativeStatus.COMPLETED


def test_unblocking_an_empty_phase_does_not_finish_it():
    phase = f.PhaseFactory(status=PhaseStatus.IN_PROGRESS)
    services.phase_block(phase_id=phase.id)
    services.phase_unblock(phase_id=phase.id)
    _refresh(phase)
    assert phase.status == PhaseStatus.IN_PROGRESS


def test_a_deactivated_person_cannot_complete_a_checkpoint(person):
    phase = approved_phase()
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)
    person.is_active = False
    person.save(update_fields=["is_active"])
    with pytest.raises(PermissionRequired):
        services.task_complete(task_id=checkpoint.id, actor=Actor.person(person))


def test_tasks_of_an_archived_initiative_are_never_ready():
    phase = approved_phase()
    f.TaskFactory(phase=phase)
    services.initiative_archive(initiative_id=phase.initiative_id)
    assert services.task_list_ready() == []


# --- events and people's gates ----------------------------------------------------------


def _events(*kinds):
    from core.models import Event

    qs = Event.objects.order_by("id")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return [(e.kind, e.subject_id, e.data) for e in qs]


def test_a_task_run_records_started_then_completed_and_the_phase_moves():
    phase = approved_phase()
    task = f.TaskFactory(phase=phase)

    services.task_start(task_id=task.id)
    services.task_complete(task_id=task.id, summary="done it")

    assert _events() == [
        ("phase.status_changed", phase.id, {"from": "approved", "to": "in_progress"}),
        ("task.started", task.id, {}),
        ("task.completed", task.id, {"summary": "done it"}),
        ("phase.status_changed", phase.id, {"from": "in_progress", "to": "completed"}),
        (
            "initiative.status_changed",
            phase.initiative_id,
            {"from": "active", "to": "completed"},
        ),
    ]


def test_block_and_unblock_record_where_the_task_was_and_went():
    task = f.TaskFactory(phase=approved_phase())

    services.task_block(task_id=task.id)
    services.task_unblock(task_id=task.id)

    assert _events() == [
        ("task.blocked", task.id, {"from": "pending"}),
        ("task.unblocked", task.id, {"to": "pending"}),
    ]


def test_phase_transitions_record_status_changes_with_from_and_to():
    phase = f.PhaseFactory()

    services.phase_approve_plan(phase_id=phase.id, actor=_person())
    services.phase_block(phase_id=phase.id)
    services.phase_unblock(phase_id=phase.id)
    services.phase_start(phase_id=phase.id)

    assert [data for _kind, _id, data in _events("phase.status_changed")] == [
        {"from": "pending", "to": "approved"},
        {"from": "approved", "to": "blocked"},
        {"from": "blocked", "to": "approved"},
        {"from": "approved", "to": "in_progress"},
    ]


def test_a_refused_transition_records_nothing():
    task = f.TaskFactory(phase=f.PhaseFactory())  # its phase is not approved: not ready

    with pytest.raises(TransitionNotAllowed):
        services.task_start(task_id=task.id)
    with pytest.raises(TransitionNotAllowed):
        services.task_unblock(task_id=task.id)

    assert _events() == []


def test_archiving_records_the_initiatives_status_change():
    initiative = f.InitiativeFactory()

    services.initiative_archive(initiative_id=initiative.id)

    assert _events() == [
        ("initiative.status_changed", initiative.id, {"from": "active", "to": "archived"})
    ]


@pytest.mark.parametrize("who", [None, Actor.tool("orchestrator")])
def test_every_gate_refuses_a_tool_or_nobody_and_writes_nothing(who):
    pending = f.PhaseFactory()
    in_review = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    initiative = f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW)

    for gate in (
        lambda: services.phase_approve_plan(phase_id=pending.id, actor=who),
        lambda: services.phase_approve(phase_id=in_review.id, actor=who),
        lambda: services.initiative_approve(initiative_id=initiative.id, actor=who),
    ):
        with pytest.raises(PermissionRequired) as error:
            gate()
        assert error.value.code == "person_required"

    _refresh(pending, in_review, initiative)
    assert (pending.status, in_review.status, initiative.status) == (
        PhaseStatus.PENDING,
        PhaseStatus.PENDING_REVIEW,
        InitiativeStatus.PENDING_REVIEW,
    )
    assert _events() == []
