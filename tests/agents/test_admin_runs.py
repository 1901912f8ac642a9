"""The runs' side of the admin (``agents/admin_runs.py``): a run's list and page with a
confirmed cancel, the task page's runs and its cancel and requeue buttons, a crashed
agent's requeue, and budgets and limits written through their services. Each button is
shown only when it can succeed; pressed anyway, it says why in words."""

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import Budget, Run, RunLimit
from agents.services import run_heartbeat
from core.models import Event, Task
from tests import factories as f
from tests.agents.test_run_services import live_run

pytestmark = pytest.mark.django_db


def page(client: Client, model: str, obj) -> str:
    app = "core" if model == "task" else "agents"
    response = client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
    assert response.status_code == HTTPStatus.OK
    return response.content.decode()


def button_url(model: str, obj, slug: str) -> str:
    app = "core" if model == "task" else "agents"
    return reverse(f"admin:{app}_{model}_do", args=[obj.pk, slug])


def press(client: Client, model: str, obj, slug: str, **data) -> list[str]:
    """Post a button (confirmed when ``confirmed="yes"``) and follow back to the page."""
    response = client.post(button_url(model, obj, slug), data, follow=True)
    assert response.status_code == HTTPStatus.OK
    return [str(m) for m in response.context["messages"]]


def failed_run(task: Task, attempt: int, **fields) -> Run:
    return f.RunFactory(
        task=task,
        attempt=attempt,
        outcome="failed",
        ended_at=timezone.now(),
        agent__status="crashed",
        **fields,
    )


def blocked_task() -> Task:
    """A task blocked with its attempts spent: two failed runs."""
    initiative = f.InitiativeFactory(max_attempts=2, execution_mode="yolo")
    phase = f.PhaseFactory(initiative=initiative, status="in_progress")
    task = f.TaskFactory(phase=phase, status="blocked", blocked_from_status="pending")
    failed_run(task, 1, exit_code=1, error="tests failed", cost_micros=1_230_000)
    failed_run(task, 2, exit_code=137, error="OOM killed")
    return task


# --- the run's pages ---------------------------------------------------------------------


def test_the_run_list_shows_attempt_usage_and_cost_in_dollars(admin_client):
    run = live_run(input_tokens=1_000, output_tokens=200, cost_micros=2_500_000)

    response = admin_client.get(reverse("admin:agents_run_changelist"), {"outcome": "running"})

    assert response.status_code == HTTPStatus.OK
    text = response.content.decode()
    assert "$2.50" in text
    assert "1,200" in text
    assert run.runner_name in text


def test_a_live_runs_page_is_read_only_with_a_cancel_button(admin_client):
    run = live_run()

    text = page(admin_client, "run", run)

    assert f'action="{button_url("run", run, "cancel")}"' in text
    assert 'name="_save"' not in text


def test_cancelling_a_run_asks_first_and_changes_nothing_until_confirmed(admin_client):
    run = live_run()

    response = admin_client.post(button_url("run", run, "cancel"))

    assert response.status_code == HTTPStatus.OK
    text = response.content.decode()
    assert "Are you sure?" in text
    assert 'name="confirmed" value="yes"' in text
    run.refresh_from_db()
    assert run.outcome == "running"
    assert not Event.objects.exists()


def test_a_confirmed_cancel_ends_the_run_as_the_person(admin_client, admin_user):
    run = live_run()

    shown = press(admin_client, "run", run, "cancel", confirmed="yes")

    assert shown and shown[0].startswith("Cancelled attempt 1")
    run.refresh_from_db()
    assert run.outcome == "cancelled"
    assert Task.objects.get(pk=run.task_id).status == "pending"
    event = Event.objects.get(kind="run.cancelled")
    assert (event.actor_type, event.actor_name, event.actor_via) == (
        "person",
        admin_user.username,
        "admin",
    )
    assert f'action="{button_url("run", run, "cancel")}"' not in page(admin_client, "run", run)


def test_cancelling_a_run_that_is_over_says_so(admin_client):
    run = failed_run(f.TaskFactory(), 1)

    shown = press(admin_client, "run", run, "cancel", confirmed="yes")

    assert shown == ["This run has no live run to cancel any more."]


def test_cancelling_takes_the_permission_to_change_runs():
    run = live_run()
    viewer = User.objects.create_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_run"))
    client = Client()
    client.force_login(viewer)

    assert 'value="Cancel the run"' not in page(client, "run", run)
    response = client.post(button_url("run", run, "cancel"), {"confirmed": "yes"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    run.refresh_from_db()
    assert run.outcome == "running"


# --- the task's page ---------------------------------------------------------------------


def test_a_blocked_tasks_page_lists_its_runs_and_offers_requeue(admin_client):
    task = blocked_task()
    first = Run.objects.get(task=task, attempt=1)

    text = page(admin_client, "task", task)

    assert "Runs: its attempts" in text
    assert reverse("admin:agents_run_change", args=[first.pk]) in text
    assert "tests failed" in text and "OOM killed" in text and "$1.23" in text
    assert f'action="{button_url("task", task, "requeue")}"' in text
    assert f'action="{button_url("task", task, "cancel-run")}"' not in text


def test_requeue_from_the_task_page_gives_fresh_attempts(admin_client, admin_user):
    task = blocked_task()

    shown = press(admin_client, "task", task, "requeue")

    assert shown == [
        f"The task '{task}' is back in the ready queue with fresh attempts; its earlier runs "
        "stay in its history."
    ]
    task.refresh_from_db()
    assert task.status == "pending"
    event = Event.objects.get(kind="task.requeued")
    assert event.data == {"from": "blocked", "attempts_reset": 2}
    assert (event.actor_type, event.actor_name) == ("person", admin_user.username)
    text = page(admin_client, "task", task)
    assert "(set aside)" in text
    assert f'action="{button_url("task", task, "requeue")}"' not in text


def test_requeue_pressed_for_a_completed_task_says_why(admin_client):
    task = f.TaskFactory(status="completed")

    shown = press(admin_client, "task", task, "requeue")

    assert len(shown) == 1 and "Cannot requeue task" in shown[0]
    assert not Event.objects.exists()


def test_a_task_with_a_live_run_offers_cancel_not_requeue(admin_client):
    run = live_run()

    text = page(admin_client, "task", run.task)

    assert f'action="{button_url("task", run.task, "cancel-run")}"' in text
    assert f'action="{button_url("task", run.task, "requeue")}"' not in text


def test_cancelling_a_tasks_run_asks_first_then_cancels_it(admin_client):
    run = live_run()

    asked = admin_client.post(button_url("task", run.task, "cancel-run"))
    assert "Are you sure?" in asked.content.decode()
    run.refresh_from_db()
    assert run.outcome == "running"

    shown = press(admin_client, "task", run.task, "cancel-run", confirmed="yes")

    assert shown[0].startswith("Cancelled attempt 1")
    run.refresh_from_db()
    assert run.outcome == "cancelled"


# --- the agent's page --------------------------------------------------------------------


def test_a_crashed_agents_page_offers_to_requeue_its_blocked_task(admin_client):
    task = blocked_task()
    agent = Run.objects.get(task=task, attempt=2).agent

    text = page(admin_client, "agent", agent)

    assert "its task" in text and "is blocked now and may be requeued" in text
    assert f'action="{button_url("agent", agent, "requeue-task")}"' in text

    shown = press(admin_client, "agent", agent, "requeue-task")

    assert shown[0].startswith(f"The task '{task}' is back in the ready queue")
    task.refresh_from_db()
    assert task.status == "pending"


def test_a_crashed_agents_page_says_where_its_task_went_otherwise(admin_client):
    task = f.TaskFactory(status="pending")
    agent = failed_run(task, 1).agent

    text = page(admin_client, "agent", agent)

    assert "is pending now" in text
    assert f'action="{button_url("agent", agent, "requeue-task")}"' not in text


def test_a_running_agents_page_offers_to_cancel_its_run(admin_client):
    run = live_run()

    text = page(admin_client, "agent", run.agent)

    assert f'action="{button_url("agent", run.agent, "cancel-run")}"' in text
    assert f'action="{button_url("agent", run.agent, "requeue-task")}"' not in text


# --- budgets and limits ------------------------------------------------------------------


def test_the_budget_list_shows_what_each_spent(admin_client):
    f.BudgetFactory(limit=1_000)
    f.BudgetFactory(metric="cost", limit=5_000_000)
    run = live_run()
    run_heartbeat(
        run_id=run.pk,
        runner_name=run.runner_name,
        usage=[{"model": "m", "input_tokens": 250, "cost_micros": 1_250_000}],
    )

    response = admin_client.get(reverse("admin:agents_budget_changelist"))

    text = response.content.decode()
    assert "250 of 1,000 tokens (25%)" in text
    assert "$1.25 of $5.00 (25%)" in text


def test_adding_a_budget_goes_through_its_service_as_the_person(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:agents_budget_add"),
        {"scope_type": "all", "scope_id": "", "metric": "tokens", "limit": "5000",
         "window_seconds": "", "warn_percent": "80", "active": "on", "note": ""},
    )  # fmt: skip

    assert response.status_code == HTTPStatus.FOUND
    budget = Budget.objects.get()
    event = Event.objects.get(kind="budget.created")
    assert (event.subject_id, event.actor_type, event.actor_name) == (
        budget.pk,
        "person",
        admin_user.username,
    )


def test_a_budget_on_a_record_that_does_not_exist_is_refused_on_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:agents_budget_add"),
        {"scope_type": "task", "scope_id": "no-such-task", "metric": "tokens", "limit": "5",
         "window_seconds": "", "warn_percent": "80", "active": "on", "note": ""},
    )  # fmt: skip

    assert response.status_code == HTTPStatus.OK
    assert "does not exist" in response.content.decode()
    assert not Budget.objects.exists()
    assert not Event.objects.exists()


def test_raising_a_budget_records_the_change_and_an_unchanged_save_records_nothing(
    admin_client,
):
    budget = f.BudgetFactory(limit=1_000)
    url = reverse("admin:agents_budget_change", args=[budget.pk])
    form = {"limit": "1000", "window_seconds": "", "warn_percent": "80", "active": "on",
            "note": ""}  # fmt: skip

    assert admin_client.post(url, form).status_code == HTTPStatus.FOUND
    assert not Event.objects.exists()

    assert admin_client.post(url, {**form, "limit": "9000"}).status_code == HTTPStatus.FOUND
    budget.refresh_from_db()
    assert budget.limit == 9_000
    assert Event.objects.get(kind="budget.updated").data == {"fields": ["limit"]}


def test_lifting_a_budget_deletes_it_through_its_service(admin_client):
    budget = f.BudgetFactory()

    response = admin_client.post(
        reverse("admin:agents_budget_delete", args=[budget.pk]), {"post": "yes"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert not Budget.objects.exists()
    assert Event.objects.filter(kind="budget.deleted", subject_id=budget.pk).exists()


def test_the_limit_list_shows_live_runs_and_a_second_limit_on_a_scope_is_refused(
    admin_client,
):
    run = live_run()
    f.RunLimitFactory(scope_type="runner", scope_id=run.runner_name, max_live=3)

    listed = admin_client.get(reverse("admin:agents_runlimit_changelist")).content.decode()
    assert "Live now" in listed
    assert '<td class="field-live">1</td>' in listed

    response = admin_client.post(
        reverse("admin:agents_runlimit_add"),
        {"scope_type": "runner", "scope_id": run.runner_name, "max_live": "1"},
    )

    assert response.status_code == HTTPStatus.OK
    assert "already has a limit" in response.content.decode()
    assert RunLimit.objects.count() == 1


def test_changing_a_limit_records_from_and_to(admin_client):
    limit = f.RunLimitFactory(max_live=4)

    response = admin_client.post(
        reverse("admin:agents_runlimit_change", args=[limit.pk]), {"max_live": "1"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert Event.objects.get(kind="run_limit.updated").data == {"from": 4, "to": 1}
