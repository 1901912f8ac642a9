"""The ready queue kept current (``core.repositories.readiness``): each write that may
change which tasks are ready refreshes exactly what it reaches, so the stored queue
always equals its rule. (The suite also compares the two after every test.)"""

import io

import pytest
from django.db import connection

from core import services
from core.models import PhaseStatus, ReadyTask, Task, TaskPriority
from core.repositories import TaskRepository, readiness
from core.services import plans
from operations.transfer import export_initiative, import_initiative, load_document
from tests import factories as f

pytestmark = pytest.mark.django_db

tasks = TaskRepository()


def queue() -> list[str]:
    return [task.name for task in tasks.find_ready()]


def _phase(status=PhaseStatus.IN_PROGRESS, **kwargs):
    return f.PhaseFactory(status=status, **kwargs)


def test_a_task_joins_the_queue_when_its_dependency_completes_and_leaves_when_started():
    phase = _phase()
    first = plans.task_create(phase_id=phase.pk, name="first")
    second = plans.task_create(phase_id=phase.pk, name="second")
    plans.task_add_dependency(task_id=second.pk, depends_on_id=first.pk)
    assert queue() == ["first"]

    services.task_start(task_id=first.pk)
    assert queue() == []
    services.task_complete(task_id=first.pk, summary="done")
    assert queue() == ["second"]


def test_removing_the_open_dependency_or_deleting_it_frees_the_dependent():
    phase = _phase()
    first = plans.task_create(phase_id=phase.pk, name="first")
    second = plans.task_create(phase_id=phase.pk, name="second")
    third = plans.task_create(phase_id=phase.pk, name="third")
    plans.task_add_dependency(task_id=second.pk, depends_on_id=first.pk)
    plans.task_add_dependency(task_id=third.pk, depends_on_id=first.pk)
    assert queue() == ["first"]

    plans.task_remove_dependency(task_id=second.pk, depends_on_id=first.pk)
    assert sorted(queue()) == ["first", "second"]
    plans.task_delete(task_id=first.pk)
    assert sorted(queue()) == ["second", "third"]


def test_priority_and_type_changes_move_a_task_in_the_queue():
    phase = _phase()
    low = plans.task_create(phase_id=phase.pk, name="low", priority=TaskPriority.LOW)
    plans.task_create(phase_id=phase.pk, name="medium")
    assert queue() == ["medium", "low"]

    plans.task_update(task_id=low.pk, priority=TaskPriority.HIGH)
    assert queue() == ["low", "medium"]
    plans.task_update(task_id=low.pk, type="checkpoint:decision")
    assert queue() == ["medium"]
    assert [t.name for t in tasks.find_ready(checkpoints=True)] == ["low"]


def test_a_phase_completing_frees_the_tasks_of_the_phase_after_it():
    initiative = f.InitiativeFactory(execution_mode="yolo")
    design = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    build = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    plans.phase_add_dependency(phase_id=build.pk, depends_on_id=design.pk)
    sketch = plans.task_create(phase_id=design.pk, name="sketch")
    plans.task_create(phase_id=build.pk, name="code")
    assert queue() == ["sketch"]

    services.task_start(task_id=sketch.pk)
    services.task_complete(task_id=sketch.pk)  # the phase completes with its last task
    assert queue() == ["code"]


def test_archiving_an_initiative_empties_its_share_of_the_queue():
    phase = _phase()
    plans.task_create(phase_id=phase.pk, name="a")
    other = plans.task_create(phase_id=_phase().pk, name="b")
    services.initiative_archive(initiative_id=phase.initiative_id)
    assert queue() == ["b"]
    plans.phase_delete(phase_id=other.phase_id)
    assert queue() == []


def test_a_large_restore_is_refreshed_in_parts(monkeypatch):
    monkeypatch.setattr(readiness, "CHUNK", 7)
    phase = _phase()
    for i in range(30):
        plans.task_create(phase_id=phase.pk, name=f"t{i:02}")
    out = io.BytesIO()
    export_initiative(phase.initiative_id, out)
    plans.initiative_delete(initiative_id=phase.initiative_id)
    assert queue() == []

    import_initiative(load_document(out.getvalue()))
    assert sorted(queue()) == [f"t{i:02}" for i in range(30)]


def test_drift_names_each_task_the_stored_queue_gets_wrong():
    ready = f.ReadyTaskFactory()
    waiting = f.TaskFactory(phase=ready.task.phase)
    Task.objects.filter(pk=ready.task_id).update(status="completed")  # past the repositories

    assert readiness.drift() == [(ready.task_id, (False, 1, ready.created_at), None)]
    ReadyTask.objects.filter(pk=ready.task_id).delete()
    ReadyTask.objects.filter(pk=waiting.pk).delete()
    assert readiness.drift()[0][0] == waiting.pk
    readiness.rebuild()
    assert readiness.drift() == []


def test_the_migrations_fill_gives_what_the_rule_gives():
    """The migration that made the table filled it with its own SQL: for the tasks
    already stored, it must agree with the rule the repositories keep."""
    from importlib import import_module

    fill = import_module("core.migrations.0011_ready_tasks").FILL
    test_a_task_joins_the_queue_when_its_dependency_completes_and_leaves_when_started()
    f.TaskFactory(phase=_phase(status=PhaseStatus.PENDING))
    f.TaskFactory(phase=None, initiative=f.InitiativeFactory(status="archived"))
    f.TaskFactory(phase=_phase(), type="checkpoint:human-verify", priority="high")
    expected = sorted(ReadyTask.objects.values_list("task_id", "checkpoint", "rank"))
    assert len(expected) == 2

    ReadyTask.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(fill)
    assert sorted(ReadyTask.objects.values_list("task_id", "checkpoint", "rank")) == expected


@pytest.mark.parametrize("size", [20, 2_000])
def test_the_head_of_the_queue_costs_one_query_whatever_the_plan(size, django_assert_num_queries):
    phase = _phase()
    made = Task.objects.bulk_create(
        Task(phase=phase, initiative=phase.initiative, name=f"t{i}") for i in range(size)
    )
    readiness.rebuild()
    with django_assert_num_queries(1):
        head = tasks.find_ready_to_take(limit=50)
    assert [t.pk for t in head] == [t.pk for t in made[:50]]
