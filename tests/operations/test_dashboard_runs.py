"""The runs on the admin dashboard: runs in flight and lost, spend against each budget and
the queue waiting for a free slot, each row linked to its records' pages."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Budget, BudgetMetric, LimitScope, Run, RunOutcome, UsageScope
from core.models import Task, TaskStatus, TaskType
from tests import factories as f
from tests.operations.test_dashboard import INDEX, change, changelist, dashboard, listed
from tests.operations.test_run_status import ended_run, live_run, ready_tasks, spend

pytestmark = pytest.mark.django_db


def test_an_empty_database_says_there_is_no_run_and_no_budget(admin_client):
    html, page = dashboard(admin_client)

    assert "No run in flight, and none lost or crashed in the last day." in html
    assert "No active budget: runs may spend without a cap." in html
    assert 'id="cw-queue"' not in html
    assert "runs-in_flight" not in page.totals


def test_a_run_in_flight_links_to_its_run_task_initiative_agent_and_account(admin_client):
    initiative = f.InitiativeFactory(name="Checkout")
    running = live_run(initiative, runner_name="ci-7", runner_host="box-2", attempt=2)
    spend(running, tokens=1_500, cost_micros=250_000)

    html, page = dashboard(admin_client)

    count = page.count_link("runs-in_flight")
    assert count.text == "1"
    assert count.href == changelist(Run, outcome__exact=RunOutcome.RUNNING)
    assert listed(admin_client, count.href) == {running.pk}
    assert page.link_to(change(running)).text == "attempt 2"
    assert page.link_to(change(running.task)).text == running.task.name
    assert page.link_to(change(initiative)).text == "Checkout"
    assert page.link_to(change(running.agent)).text == running.agent.name
    assert page.link_to(change(running.account)).text == running.account.email
    assert "ci-7@box-2" in html
    assert "1,500" in html
    assert "$0.25" in html
    assert "Nothing needs you right now." in html


def test_without_a_run_admin_page_the_run_is_named_without_a_link(admin_client, monkeypatch):
    running = live_run()
    registered = admin.site.is_registered
    monkeypatch.setattr(
        admin.site, "is_registered", lambda model: model is not Run and registered(model)
    )

    html, page = dashboard(admin_client)

    assert "attempt 1" in html
    assert not [a for a in page.anchors if a.href == change(running)]
    assert page.totals["runs-in_flight"] == "1"
    assert page.link_to(change(running.task)).text == running.task.name


def test_a_lost_run_needs_a_person_and_names_its_runner(admin_client):
    lost = live_run(silent=timedelta(minutes=5), runner_name="ci-3", runner_host="box-9")

    html, page = dashboard(admin_client)

    assert "Nothing needs you right now." not in html
    assert page.totals["lost_runs"] == "1"
    [line] = [a for a in page.in_card("lost_runs") if a.href == change(lost)]
    assert line.text == lost.task.name
    assert "ci-3@box-9" in html
    assert "silent 5 minutes" in html
    assert "overdue" in html


def test_runs_that_ended_lost_or_crashed_lately_are_listed_with_their_error(admin_client):
    crashed = ended_run(RunOutcome.CRASHED, ago=timedelta(minutes=3), exit_code=137, error="OOM")
    ended_run(RunOutcome.SUCCEEDED, ago=timedelta(minutes=3))

    html, page = dashboard(admin_client)

    count = page.count_link("runs-died")
    assert count.text == "1"
    assert listed(admin_client, count.href) == {crashed.pk}
    assert "Ended lost or crashed in the last 24 hours" in html
    assert "crashed 3 minutes ago · exit code 137" in html
    assert "“OOM”" in html


def test_budgets_show_their_scope_by_name_and_what_they_spent(admin_client):
    initiative = f.InitiativeFactory(name="Search")
    running = live_run(initiative)
    spend(running, tokens=900, cost_micros=2_000_000)
    everything = f.BudgetFactory(limit=10_000)
    on_search = f.BudgetFactory(
        scope_type=UsageScope.INITIATIVE, scope_id=initiative.pk, limit=1_000, window_seconds=18_000
    )
    on_account = f.BudgetFactory(
        scope_type=UsageScope.ACCOUNT,
        scope_id=running.account_id,
        metric=BudgetMetric.COST,
        limit=1_500_000,
    )

    html, page = dashboard(admin_client)

    count = page.count_link("budgets")
    assert count.text == "3"
    assert listed(admin_client, count.href) == {everything.pk, on_search.pk, on_account.pk}
    assert page.link_to(change(on_account)).text == "$2.00 of $1.50 (133%)"
    assert page.link_to(change(on_search)).text == "900 of 1,000 tokens (90%)"
    assert page.link_to(change(everything)).text == "900 of 10,000 tokens (9%)"
    assert page.link_to(change(initiative)).text == "Search"
    assert page.link_to(change(running.account)).text == running.account.email
    states = [line.split('"')[1] for line in html.split("data-budget-state=")[1:]]
    assert states == ["spent", "warning", "ok"]
    assert "over 5 hours" in html


def test_the_queue_says_what_holds_ready_tasks_back(admin_client):
    busy = f.InitiativeFactory(name="Busy")
    ready_tasks(busy, 3)
    ready_tasks(f.InitiativeFactory(), 2)
    live_run(busy)
    f.RunLimitFactory(scope_type=LimitScope.INITIATIVE, scope_id=busy.pk, max_live=1)

    html, page = dashboard(admin_client)

    ready = page.count_link("queue-ready")
    assert ready.text == "5"
    assert ready.href == changelist(
        Task, status__exact=TaskStatus.PENDING, type__exact=TaskType.AUTO
    )
    assert page.totals["queue-held"] == "3"
    assert "1 live run (no overall limit)" in html
    assert page.link_to(change(busy)).text == "Busy"
    assert "3 ready, 1 of 1 live runs" in html
    assert "at its limit" in html


# --- a fixed number of queries ---------------------------------------------------------


def populate(count: int) -> None:
    for _ in range(count):
        initiative = f.InitiativeFactory()
        ready_tasks(initiative, 2)
        running = live_run(initiative)
        spend(running, tokens=100, cost_micros=100)
        live_run(initiative, silent=timedelta(minutes=10))
        ended_run(RunOutcome.LOST, ago=timedelta(hours=1))
        f.RunLimitFactory(scope_type=LimitScope.INITIATIVE, scope_id=initiative.pk, max_live=1)
        for scope_type, scope_id in (
            (UsageScope.INITIATIVE, initiative.pk),
            (UsageScope.PHASE, running.task.phase_id),
            (UsageScope.TASK, running.task_id),
            (UsageScope.ACCOUNT, running.account_id),
        ):
            f.BudgetFactory(scope_type=scope_type, scope_id=scope_id, limit=50)


def queries_of(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(INDEX)
    assert response.status_code == HTTPStatus.OK
    return len(captured)


def test_the_runs_cost_the_same_queries_at_two_and_at_forty_initiatives(
    admin_client, django_assert_num_queries
):
    f.BudgetFactory()
    f.RunLimitFactory(scope_type=LimitScope.ALL, scope_id="", max_live=1_000)
    populate(2)
    at_two = queries_of(admin_client)
    populate(38)

    with django_assert_num_queries(at_two):
        _html, page = dashboard(admin_client)

    assert Run.objects.count() == 120
    assert Budget.objects.count() == 161
    assert page.totals["runs-in_flight"] == "80"
    assert page.totals["lost_runs"] == "40"
    assert page.totals["runs-died"] == "40"
    assert page.totals["budgets"] == "161"
    assert page.totals["queue-ready"] == "80"
    assert page.totals["queue-held"] == "80"


def test_a_budget_on_everything_is_named_once(admin_client):
    f.BudgetFactory()

    html, _ = dashboard(admin_client)

    assert "everything everything" not in " ".join(html.split())
    assert '<th scope="row">everything' in html
