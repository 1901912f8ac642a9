"""A person's requeue of a task (``task_requeue``): back to the ready queue with fresh
attempts, its runs kept as history; refused for tools, live runs and other statuses."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Run
from agents.repositories import RunRepository
from agents.services import run_cancel, run_finish, run_take_next, task_requeue
from core.actors import Actor, acting_as
from core.errors import Conflict, NotFound, PermissionRequired, TransitionNotAllowed
from core.history import record_history
from core.models import Event, Task
from core.services import task_block
from tests import factories as f
from tests.agents.test_run_services import RUNNER, assert_runs_and_tasks_agree, live_run, person

pytestmark = pytest.mark.django_db


def fail_until_blocked(task: Task, *, failures: int) -> list[Run]:
    """Fail ``failures`` runs of ``task`` one after the other (the last blocks it)."""
    done = []
    for _ in range(failures):
        attempt = (Run.objects.filter(task=task).order_by("-attempt").first() or Run()).attempt
        run = live_run(task=task, attempt=(attempt or 0) + 1)
        run_finish(run_id=run.pk, runner_name=RUNNER, outcome="failed", exit_code=1, error="boom")
        done.append(run)
    return done


def blocked_task(*, max_attempts: int = 2) -> Task:
    """A task blocked because its ``max_attempts`` attempts failed."""
    run = live_run(max_attempts=max_attempts)
    task = run.task
    run_finish(run_id=run.pk, runner_name=RUNNER, outcome="failed", exit_code=1)
    fail_until_blocked(task, failures=max_attempts - 1)
    task.refresh_from_db()
    assert task.status == "blocked"
    return task


def events_since(last: int) -> list[Event]:
    return list(Event.objects.filter(id__gt=last).order_by("id"))


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_a_blocked_task_goes_back_to_pending_with_the_actor_on_its_event():
    task = blocked_task(max_attempts=2)
    lead = person()
    last = last_event_id()

    with acting_as(lead):
        requeued = task_requeue(task_id=task.pk, actor=lead)

    assert requeued.status == "pending"
    task.refresh_from_db()
    assert (task.status, task.blocked_from_status) == ("pending", None)
    [event] = events_since(last)
    assert (event.kind, event.subject_type, event.subject_id) == ("task.requeued", "task", task.pk)
    assert event.data == {"from": "blocked", "attempts_reset": 2}
    assert event.actor == {
        "type": "person",
        "id": str(lead.user.pk),
        "name": "lead",
        "via": "admin",
    }
    assert record_history(task)[0]["sentence"].endswith("requeued the task with fresh attempts")
    assert_runs_and_tasks_agree()


def test_after_a_requeue_a_task_that_failed_max_attempts_times_gets_max_attempts_more():
    task = blocked_task(max_attempts=2)
    lead = person()

    task_requeue(task_id=task.pk, actor=lead)

    # The first fresh failure returns it to the queue, not to blocked.
    fail_until_blocked(task, failures=1)
    task.refresh_from_db()
    assert task.status == "pending"
    # The second blocks it again, listing only the failures since the requeue.
    fail_until_blocked(task, failures=1)
    task.refresh_from_db()
    assert task.status == "blocked"
    blocked = Event.objects.filter(kind="task.blocked").order_by("-id").first()
    assert [failure["attempt"] for failure in blocked.data["failures"]] == [3, 4]
    # Every attempt is still on record, numbered on.
    attempts = Run.objects.filter(task=task).order_by("attempt").values_list("attempt", flat=True)
    assert list(attempts) == [1, 2, 3, 4]


def test_the_runs_before_a_requeue_are_set_aside_not_rewritten():
    task = blocked_task(max_attempts=2)

    task_requeue(task_id=task.pk, actor=person())

    runs = Run.objects.filter(task=task).order_by("attempt")
    assert [(r.outcome, r.exit_code) for r in runs] == [("failed", 1), ("failed", 1)]
    assert all(r.attempts_reset_at is not None for r in runs)
    assert RunRepository().counted_failures(task.pk) == []


def test_a_requeued_task_is_not_held_back_by_its_earlier_failures():
    task = blocked_task(max_attempts=1)
    task.initiative.retry_backoff_seconds = 3600
    task.initiative.save(update_fields=["retry_backoff_seconds"])
    f.AccountFactory()

    task_requeue(task_id=task.pk, actor=person())
    taken = run_take_next(runner_name="runner-2", runner_host="build-02", providers=["claude"])

    assert taken is not None
    assert (taken.task.pk, taken.run.attempt) == (task.pk, 2)
    assert_runs_and_tasks_agree()


def test_a_task_a_person_blocked_after_its_run_ended_is_requeued():
    run = live_run()
    task = run.task
    task_block(task_id=task.pk)
    lead = person()
    run_cancel(run_id=run.pk, actor=lead)  # the blocked task stays blocked
    task.refresh_from_db()
    assert (task.status, task.blocked_from_status) == ("blocked", "in_progress")

    task_requeue(task_id=task.pk, actor=lead)

    task.refresh_from_db()
    assert task.status == "pending"  # not in progress without a run
    assert Event.objects.filter(kind="task.requeued").last().data == {
        "from": "blocked",
        "attempts_reset": 0,
    }


def test_an_in_progress_task_without_a_live_run_is_requeued():
    task = f.TaskFactory(status="in_progress")  # started, its agent never reported back

    task_requeue(task_id=task.pk, actor=person())

    task.refresh_from_db()
    assert task.status == "pending"


def test_a_tool_cannot_requeue_and_nothing_is_written():
    task = blocked_task()
    last = last_event_id()

    with pytest.raises(PermissionRequired) as caught:
        task_requeue(task_id=task.pk, actor=Actor.tool("orchestrator"))

    assert caught.value.code == "person_required"
    task.refresh_from_db()
    assert task.status == "blocked"
    assert events_since(last) == []
    assert not Run.objects.filter(attempts_reset_at__isnull=False).exists()


def test_a_task_that_does_not_exist_is_404():
    with pytest.raises(NotFound) as caught:
        task_requeue(task_id="no-such-task", actor=person())

    assert caught.value.code == "task_not_found"


def test_a_task_with_a_live_run_is_refused_and_nothing_is_written():
    earlier = live_run(max_attempts=3)
    task = earlier.task
    run_finish(run_id=earlier.pk, runner_name=RUNNER, outcome="failed")
    run = live_run(task=task, attempt=2)
    last = last_event_id()

    with pytest.raises(Conflict) as caught:
        task_requeue(task_id=task.pk, actor=person())

    assert caught.value.code == "task_has_live_run"
    assert caught.value.details == {"id": task.pk, "run_id": run.pk}
    assert events_since(last) == []
    assert not Run.objects.filter(attempts_reset_at__isnull=False).exists()


def test_a_blocked_task_whose_run_is_still_live_is_refused():
    run = live_run()
    task_block(task_id=run.task_id)

    with pytest.raises(Conflict) as caught:
        task_requeue(task_id=run.task_id, actor=person())

    assert caught.value.code == "task_has_live_run"


@pytest.mark.parametrize("status", ["pending", "completed"])
def test_a_pending_or_completed_task_is_refused_with_where_it_may_come_from(status):
    task = f.TaskFactory(status=status)
    Run.objects.create(
        task=task,
        attempt=1,
        runner_name=RUNNER,
        runner_host="build-01",
        outcome="failed",
        ended_at=timezone.now() - timedelta(minutes=1),
    )
    last = last_event_id()

    with pytest.raises(TransitionNotAllowed) as caught:
        task_requeue(task_id=task.pk, actor=person())

    assert caught.value.code == "transition_not_allowed"
    assert caught.value.details == {
        "id": task.pk,
        "status": status,
        "allowed_from": ["blocked", "in_progress"],
    }
    assert events_since(last) == []
    assert not Run.objects.filter(attempts_reset_at__isnull=False).exists()
