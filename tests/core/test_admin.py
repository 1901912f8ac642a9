"""The core admin (``core/admin/``): actions call the lifecycle services (refusals
become messages naming the record), and forms save through the repositories."""

import re

import pytest
from django.urls import reverse

from core.models import PhaseStatus, TaskStatus, TaskType
from tests import factories as f
from tests.admin_actions import run_admin_action

pytestmark = pytest.mark.django_db


def test_approving_plans_approves_the_pending_and_names_the_refused(admin_client):
    pending = f.PhaseFactory(name="Design")
    done = f.PhaseFactory(name="Shipped", status=PhaseStatus.COMPLETED)

    messages = run_admin_action(admin_client, "core_phase", "phase_approve_plan", pending, done)

    pending.refresh_from_db()
    done.refresh_from_db()
    assert (pending.status, done.status) == (PhaseStatus.APPROVED, PhaseStatus.COMPLETED)
    assert "Approve the plan: done for 1 record(s)." in messages
    assert any(m.startswith("Shipped: Cannot approve the plan of phase") for m in messages)


def test_a_person_completes_a_checkpoint_from_the_admin(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    f.TaskFactory(phase=phase)

    run_admin_action(admin_client, "core_task", "task_complete", checkpoint)

    checkpoint.refresh_from_db()
    assert checkpoint.status == TaskStatus.COMPLETED


def test_lifecycle_statuses_are_read_only_in_the_forms(admin_client):
    phase = f.PhaseFactory()
    page = admin_client.get(reverse("admin:core_phase_change", args=[phase.pk]))
    assert 'name="status"' not in page.content.decode()


# --- forms save through the repositories -------------------------------------------------


def test_an_edge_that_closes_a_cycle_is_refused_on_the_admin_form(admin_client):
    from core.models import PhaseDependency

    a = f.PhaseFactory(name="A")
    b = f.PhaseFactory(initiative=a.initiative, name="B")
    f.PhaseDependencyFactory(phase=b, depends_on_phase=a)

    response = admin_client.post(
        reverse("admin:core_phasedependency_add"), {"phase": a.pk, "depends_on_phase": b.pk}
    )

    assert response.status_code == 200  # the form again, with the reason
    assert "would close a cycle" in response.content.decode()
    assert PhaseDependency.objects.count() == 1


def test_an_edge_added_in_the_admin_is_created_by_the_repository(admin_client):
    from core.models import TaskDependency

    task = f.TaskFactory()
    other = f.TaskFactory(phase=task.phase)
    response = admin_client.post(
        reverse("admin:core_taskdependency_add"), {"task": task.pk, "depends_on_task": other.pk}
    )
    assert response.status_code == 302
    assert TaskDependency.objects.filter(task=task, depends_on_task=other).exists()


def test_a_task_whose_phase_is_in_another_initiative_is_refused_on_the_admin_form(admin_client):
    from core.models import Task

    phase = f.PhaseFactory()
    elsewhere = f.InitiativeFactory()
    response = admin_client.post(
        reverse("admin:core_task_add"),
        {
            "phase": phase.pk,
            "initiative": elsewhere.pk,
            "name": "Misplaced",
            "type": "auto",
            "category": "execute",
            "priority": "medium",
            "order": 0,
        },
    )
    assert response.status_code == 200
    assert "must be its phase&#x27;s initiative" in response.content.decode()
    assert not Task.objects.filter(name="Misplaced").exists()


def test_a_page_added_in_the_admin_gets_its_parents_initiative_and_saves(admin_client):
    from core.models import Page

    root = f.PageFactory()
    response = admin_client.post(
        reverse("admin:core_page_add"),
        {
            "initiative": root.initiative_id,
            "parent_page": root.pk,
            "title": "Child",
            "sort_order": 0,
        },
    )
    assert response.status_code == 302
    child = Page.objects.get(title="Child")
    assert (child.initiative_id, child.parent_page_id) == (root.initiative_id, root.pk)


def test_the_initiative_of_a_phase_is_read_only_once_it_exists(admin_client):
    phase = f.PhaseFactory()
    page = admin_client.get(reverse("admin:core_phase_change", args=[phase.pk]))
    assert 'name="initiative"' not in page.content.decode()


def test_an_initiative_added_with_a_blank_branch_gets_one_generated(admin_client):
    from core.models import Initiative

    response = admin_client.post(
        reverse("admin:core_initiative_add"),
        {"name": "User auth", "branch": "", "execution_mode": "yolo"},
    )
    assert response.status_code == 302
    assert Initiative.objects.get(name="User auth").branch == "cw/user-auth"


def test_a_subtask_added_with_only_its_parent_takes_the_parents_place(admin_client):
    from core.models import Task

    parent = f.TaskFactory()
    response = admin_client.post(
        reverse("admin:core_task_add"),
        {
            "parent_task": parent.pk,
            "name": "Sub",
            "type": "auto",
            "category": "execute",
            "priority": "medium",
            "order": 0,
        },
    )
    assert response.status_code == 302
    sub = Task.objects.get(name="Sub")
    assert (sub.phase_id, sub.initiative_id) == (parent.phase_id, parent.initiative_id)


# --- what a task, a name and an order must be ----------------------------------------------


TASK_FORM = {"type": "auto", "category": "execute", "priority": "medium", "order": 0}


def test_a_task_in_no_phase_and_no_initiative_is_refused_on_the_admin_form(admin_client):
    from core.models import Task

    response = admin_client.post(reverse("admin:core_task_add"), {**TASK_FORM, "name": "Adrift"})

    assert response.status_code == 200  # the form again, with the reason
    assert "A task needs a phase or an initiative" in response.content.decode()
    assert not Task.objects.exists()


def test_a_task_in_an_initiative_only_is_saved_from_the_admin_form(admin_client):
    from core.models import Task

    initiative = f.InitiativeFactory()
    response = admin_client.post(
        reverse("admin:core_task_add"), {**TASK_FORM, "name": "Loose", "initiative": initiative.pk}
    )

    assert response.status_code == 302
    assert Task.objects.get(name="Loose").initiative_id == initiative.pk


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        ("initiative", {"branch": "", "execution_mode": "yolo"}, "name"),
        ("project", {"url": "https://example.com/r.git", "default_branch": "main"}, "name"),
        ("page", {"sort_order": 0}, "title"),
        ("task", TASK_FORM, "name"),
    ],
)
def test_a_name_of_several_lines_is_refused_on_the_admin_forms(admin_client, model, values, field):
    initiative = f.InitiativeFactory(name="Home")
    given = {**values, field: "First line\r\nsecond line", "initiative": initiative.pk}
    before = admin_client.get(reverse(f"admin:core_{model}_changelist")).context["cl"].result_count

    response = admin_client.post(reverse(f"admin:core_{model}_add"), given)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [
        "Enter one line: a name has no line breaks."
    ]
    after = admin_client.get(reverse(f"admin:core_{model}_changelist")).context["cl"].result_count
    assert after == before


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [("page", {"title": "Notes"}, "sort_order"), ("task", {**TASK_FORM, "name": "T"}, "order")],
)
def test_a_negative_order_is_refused_on_the_admin_forms(admin_client, model, values, field):
    initiative = f.InitiativeFactory()

    response = admin_client.post(
        reverse(f"admin:core_{model}_add"), {**values, field: -1, "initiative": initiative.pk}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [
        "Ensure this value is greater than or equal to 0."
    ]


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ("core_initiative_add", "name"),
        ("core_phase_add", "name"),
        ("core_task_add", "name"),
        ("core_page_add", "title"),
        ("core_project_add", "name"),
        ("reviews_proposal_add", "title"),
        ("agents_agent_add", "name"),
    ],
)
def test_names_and_titles_are_one_line_inputs_on_the_admin_forms(admin_client, page, field):
    html = admin_client.get(reverse(f"admin:{page}")).content.decode()

    assert re.search(rf'<input type="text" name="{field}"[^>]*class="vTextField"', html), page
    assert f'<textarea name="{field}"' not in html


def test_a_changed_names_input_holds_the_name(admin_client):
    task = f.TaskFactory(name="Write the API")

    html = admin_client.get(reverse("admin:core_task_change", args=[task.pk])).content.decode()

    assert re.search(r'<input type="text" name="name" value="Write the API"', html)
