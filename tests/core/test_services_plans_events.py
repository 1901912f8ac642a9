"""Every plan write is on the feed (``core/services/plans.py``, ``lifecycle``): the event
each records with its data, nothing for an update that changes nothing, and nothing for
a refusal."""

import pytest

from core import services
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import Event, Task
from tests import factories as f

pytestmark = pytest.mark.django_db


def events() -> list[tuple[str, str, str, str | None, dict]]:
    return [
        (e.kind, e.subject_type, e.subject_id, e.initiative_id, e.data)
        for e in Event.objects.order_by("id")
    ]


def kinds() -> list[str]:
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


# --- initiatives -----------------------------------------------------------------------------


def test_initiative_update_records_the_fields_it_changed():
    initiative = f.InitiativeFactory(name="Old", branch="cw/old")

    services.initiative_update(initiative_id=initiative.id, name="New", branch="cw/old")

    assert events() == [
        ("initiative.updated", "initiative", initiative.id, initiative.id, {"fields": ["name"]})
    ]


def test_initiative_update_to_the_same_values_records_nothing():
    initiative = f.InitiativeFactory(name="Same")

    services.initiative_update(initiative_id=initiative.id, name="Same")

    assert events() == []


def test_a_refused_initiative_update_records_nothing():
    taken = f.InitiativeFactory(branch="cw/taken")
    initiative = f.InitiativeFactory()

    with pytest.raises(Conflict):
        services.initiative_update(initiative_id=initiative.id, branch=taken.branch)
    with pytest.raises(NotFound):
        services.initiative_update(initiative_id="missing", name="X")

    assert events() == []


def test_changing_the_execution_mode_records_from_and_to_once():
    initiative = f.InitiativeFactory(execution_mode="review_per_phase")

    services.initiative_set_execution_mode(initiative_id=initiative.id, execution_mode="yolo")
    services.initiative_set_execution_mode(initiative_id=initiative.id, execution_mode="yolo")
    with pytest.raises(InvalidInput):
        services.initiative_set_execution_mode(initiative_id=initiative.id, execution_mode="fast")

    assert events() == [
        (
            "initiative.execution_mode_changed",
            "initiative",
            initiative.id,
            initiative.id,
            {"from": "review_per_phase", "to": "yolo"},
        )
    ]


def test_an_update_of_name_and_mode_records_each_in_its_own_kind():
    initiative = f.InitiativeFactory(name="Old", execution_mode="yolo")

    services.initiative_update(
        initiative_id=initiative.id, name="New", execution_mode="review_per_phase"
    )

    assert [(kind, data) for kind, _t, _s, _i, data in events()] == [
        ("initiative.execution_mode_changed", {"from": "yolo", "to": "review_per_phase"}),
        ("initiative.updated", {"fields": ["name"]}),
    ]


def test_setting_projects_records_what_was_linked_and_unlinked():
    initiative = f.InitiativeFactory()
    kept, dropped, added = f.ProjectFactory(), f.ProjectFactory(), f.ProjectFactory()
    for project in (kept, dropped):
        f.InitiativeProjectFactory(initiative=initiative, project=project)

    services.initiative_set_projects(initiative_id=initiative.id, project_ids=[kept.id, added.id])
    services.initiative_set_projects(initiative_id=initiative.id, project_ids=[added.id, kept.id])

    assert events() == [
        (
            "initiative.projects_changed",
            "initiative",
            initiative.id,
            initiative.id,
            {"added": [added.id], "removed": [dropped.id]},
        )
    ]


def test_a_refused_set_of_projects_records_nothing():
    initiative = f.InitiativeFactory()

    with pytest.raises(NotFound):
        services.initiative_set_projects(initiative_id=initiative.id, project_ids=["missing"])

    assert events() == []


# --- phases and tasks ----------------------------------------------------------------------


def test_phase_update_records_its_changed_fields_and_nothing_when_none_changed():
    phase = f.PhaseFactory(name="Build")

    services.phase_update(phase_id=phase.id, name="Build")
    services.phase_update(phase_id=phase.id, name="Build it")
    with pytest.raises(DomainError):
        services.phase_update(phase_id=phase.id, content='{"not": "tiptap"}')

    assert events() == [
        ("phase.updated", "phase", phase.id, phase.initiative_id, {"fields": ["name"]})
    ]


def test_task_create_says_where_the_task_is():
    phase = f.PhaseFactory()
    parent = f.TaskFactory(phase=phase)

    task = services.task_create(parent_task_id=parent.id, name="Child", category="research")

    assert events() == [
        (
            "task.created",
            "task",
            task.id,
            phase.initiative_id,
            {
                "name": "Child",
                "phase_id": phase.id,
                "parent_task_id": parent.id,
                "category": "research",
            },
        )
    ]


def test_task_update_records_its_changed_fields_in_the_models_order():
    task = f.TaskFactory(name="Old", priority="medium")

    services.task_update(task_id=task.id, priority="high", name="New", description=None)

    assert events() == [
        (
            "task.updated",
            "task",
            task.id,
            task.initiative_id,
            {"fields": ["name", "priority"]},
        )
    ]


def test_task_update_that_changes_nothing_or_is_refused_records_nothing():
    task = f.TaskFactory(name="Same")
    other_initiative_phase = f.PhaseFactory()

    services.task_update(task_id=task.id, name="Same")
    with pytest.raises(DomainError):
        services.task_update(task_id=task.id, phase_id=other_initiative_phase.id)
    with pytest.raises(InvalidInput):
        services.task_update(task_id=task.id, priority="urgent")

    assert events() == []


def test_task_delete_names_the_subtasks_that_went_with_it():
    task = f.TaskFactory()
    child = f.TaskFactory(phase=task.phase, parent_task=task)

    services.task_delete(task_id=task.id)

    assert events() == [
        (
            "task.deleted",
            "task",
            task.id,
            task.initiative_id,
            {"phase_id": task.phase_id, "subtask_ids": [child.id]},
        )
    ]


# --- pages ----------------------------------------------------------------------------------


def test_the_root_page_is_recorded_when_it_is_created_only():
    initiative = f.InitiativeFactory(name="Auth")

    root = services.page_get_or_create_root(initiative_id=initiative.id)
    services.page_get_or_create_root(initiative_id=initiative.id)

    assert events() == [
        (
            "page.created",
            "page",
            root.id,
            initiative.id,
            {"title": "Auth", "parent_page_id": None},
        )
    ]


def test_page_create_records_the_root_it_creates_then_the_page():
    initiative = f.InitiativeFactory(name="Auth")

    page = services.page_create(initiative_id=initiative.id, title="Notes")

    root = page.parent_page
    assert events() == [
        ("page.created", "page", root.id, initiative.id, {"title": "Auth", "parent_page_id": None}),
        (
            "page.created",
            "page",
            page.id,
            initiative.id,
            {"title": "Notes", "parent_page_id": root.id},
        ),
    ]


def test_a_refused_page_create_records_nothing():
    initiative = f.InitiativeFactory()
    elsewhere = services.page_get_or_create_root(initiative_id=f.InitiativeFactory().id)
    Event.objects.all().delete()

    with pytest.raises(InvalidInput):
        services.page_create(initiative_id=initiative.id, title="X", parent_page_id=elsewhere.id)
    with pytest.raises(NotFound):
        services.page_create(initiative_id="missing", title="X")

    assert events() == []


def test_page_update_and_move_say_what_changed_and_where_it_went():
    initiative = f.InitiativeFactory()
    first = services.page_create(initiative_id=initiative.id, title="First")
    second = services.page_create(initiative_id=initiative.id, title="Second")
    root_id = first.parent_page_id
    Event.objects.all().delete()

    services.page_update(page_id=second.id, title="Second, renamed")
    services.page_move(page_id=second.id, parent_page_id=first.id, sort_order=3)
    services.page_move(page_id=second.id, parent_page_id=first.id, sort_order=3)  # no change
    services.page_update(page_id=second.id, title="Again", parent_page_id=root_id)

    assert [(kind, data) for kind, _t, _s, _i, data in events()] == [
        ("page.updated", {"fields": ["title"]}),
        (
            "page.moved",
            {
                "from_parent_page_id": root_id,
                "parent_page_id": first.id,
                "from_sort_order": 0,
                "sort_order": 3,
            },
        ),
        (
            "page.moved",
            {
                "from_parent_page_id": first.id,
                "parent_page_id": root_id,
                "from_sort_order": 3,
                "sort_order": 3,
            },
        ),
        ("page.updated", {"fields": ["title"]}),
    ]


def test_a_refused_page_move_records_nothing():
    initiative = f.InitiativeFactory()
    parent = services.page_create(initiative_id=initiative.id, title="Parent")
    child = services.page_create(
        initiative_id=initiative.id, title="Child", parent_page_id=parent.id
    )
    Event.objects.all().delete()

    with pytest.raises(InvalidInput):
        services.page_move(page_id=parent.id, parent_page_id=child.id)
    with pytest.raises(InvalidInput):
        services.page_move(page_id=parent.parent_page_id, parent_page_id=child.id)

    assert events() == []


def test_page_delete_names_the_pages_that_went_with_it():
    initiative = f.InitiativeFactory()
    parent = services.page_create(initiative_id=initiative.id, title="Parent")
    child = services.page_create(
        initiative_id=initiative.id, title="Child", parent_page_id=parent.id
    )
    grandchild = services.page_create(
        initiative_id=initiative.id, title="Grandchild", parent_page_id=child.id
    )
    Event.objects.all().delete()

    services.page_delete(page_id=parent.id)
    with pytest.raises(NotFound):
        services.page_delete(page_id=parent.id)

    assert events() == [
        (
            "page.deleted",
            "page",
            parent.id,
            initiative.id,
            {"title": "Parent", "page_ids": [child.id, grandchild.id]},
        )
    ]


# --- projects --------------------------------------------------------------------------------


def test_project_create_update_fetch_and_delete_record_their_events():
    project = services.project_create(name="api", url="git@example.com:team/api.git")
    services.project_update(project_id=project.id, name="api")  # no change
    services.project_update(project_id=project.id, default_branch="trunk")
    services.project_mark_fetched(project_id=project.id)
    linked = f.InitiativeProjectFactory(project=project)
    services.project_delete(project_id=project.id)

    assert events() == [
        (
            "project.created",
            "project",
            project.id,
            None,
            {"name": "api", "url": "git@example.com:team/api.git"},
        ),
        ("project.updated", "project", project.id, None, {"fields": ["default_branch"]}),
        ("project.fetched", "project", project.id, None, {}),
        (
            "project.deleted",
            "project",
            project.id,
            None,
            {"name": "api", "initiative_ids": [linked.initiative_id]},
        ),
    ]


def test_refused_project_writes_record_nothing():
    taken = f.ProjectFactory()

    with pytest.raises(Conflict):
        services.project_create(name=taken.name, url="git@example.com:team/other.git")
    with pytest.raises(Conflict):
        services.project_update(project_id=f.ProjectFactory().id, url=taken.url)
    with pytest.raises(NotFound):
        services.project_delete(project_id="missing")
    with pytest.raises(NotFound):
        services.project_mark_fetched(project_id="missing")

    assert events() == []


def test_an_update_that_changes_nothing_is_not_written():
    task = f.TaskFactory(name="Same")
    stamped = Task.objects.get(pk=task.pk).updated_at

    services.task_update(task_id=task.id, name="Same", phase_id=task.phase_id)

    assert Task.objects.get(pk=task.pk).updated_at == stamped
    assert events() == []


def test_a_field_no_update_sets_is_refused_even_at_its_current_value():
    task = f.TaskFactory()

    with pytest.raises(InvalidInput) as refused:
        services.task_update(task_id=task.id, status=task.status)

    assert refused.value.code == "invalid_field"


# --- what the admin's forms need: an initiative deleted, one project linked or unlinked ------


def test_initiative_delete_records_one_event_for_all_it_owned():
    initiative = f.InitiativeFactory(name="Gone")
    f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))

    services.initiative_delete(initiative_id=initiative.id)
    with pytest.raises(NotFound):
        services.initiative_delete(initiative_id=initiative.id)

    assert events() == [
        ("initiative.deleted", "initiative", initiative.id, initiative.id, {"name": "Gone"})
    ]
    assert not Task.objects.exists()


def test_linking_and_unlinking_one_project_records_what_changed():
    initiative, project = f.InitiativeFactory(), f.ProjectFactory()

    link = services.initiative_project_create(initiative_id=initiative.id, project_id=project.id)
    with pytest.raises(Conflict):
        services.initiative_project_create(initiative_id=initiative.id, project_id=project.id)
    services.initiative_project_delete(initiative_project_id=link.id)
    with pytest.raises(NotFound):
        services.initiative_project_delete(initiative_project_id=link.id)

    assert [(kind, data) for kind, _t, _s, _i, data in events()] == [
        ("initiative.projects_changed", {"added": [project.id], "removed": []}),
        ("initiative.projects_changed", {"added": [], "removed": [project.id]}),
    ]
