"""Creating, changing and deleting plans (``core/services/plans.py``): each write records
its event in its transaction, and a refusal writes nothing and records nothing."""

import json

import pytest

from core import services
from core.errors import Conflict, DependencyCycle, InvalidInput, NotFound
from core.models import Event, Initiative, InitiativeProject, Page, Phase, PhaseDependency, Task
from tests import factories as f

pytestmark = pytest.mark.django_db


def _events():
    return [(e.kind, e.subject_type, e.subject_id, e.data) for e in Event.objects.order_by("id")]


# --- initiatives -------------------------------------------------------------------------


def test_initiative_create_makes_a_branch_and_records_the_event():
    initiative = services.initiative_create(name="User auth", execution_mode="yolo")

    assert (initiative.branch, initiative.execution_mode, initiative.status) == (
        "cw/user-auth",
        "yolo",
        "active",
    )
    assert _events() == [
        (
            "initiative.created",
            "initiative",
            initiative.id,
            {"name": "User auth", "execution_mode": "yolo"},
        )
    ]


def test_initiative_create_refuses_an_unknown_mode_and_writes_nothing():
    with pytest.raises(InvalidInput):
        services.initiative_create(name="X", execution_mode="fast")

    assert (Initiative.objects.count(), _events()) == (0, [])


def test_initiative_update_renames():
    initiative = f.InitiativeFactory(name="Old")

    services.initiative_update(initiative_id=initiative.id, name="New")

    initiative.refresh_from_db()
    assert initiative.name == "New"


# --- phases -------------------------------------------------------------------------------


def test_phase_create_update_delete_record_their_events():
    initiative = f.InitiativeFactory()

    phase = services.phase_create(initiative_id=initiative.id, name="Build")
    services.phase_update(phase_id=phase.id, name="Build it")
    services.phase_delete(phase_id=phase.id)

    assert not Phase.objects.exists()
    assert _events() == [
        ("phase.created", "phase", phase.id, {"name": "Build"}),
        ("phase.updated", "phase", phase.id, {"fields": ["name"]}),
        ("phase.deleted", "phase", phase.id, {"name": "Build it", "task_ids": []}),
    ]
    assert Event.objects.filter(initiative_id=initiative.id).count() == 3


def test_phase_create_in_an_unknown_initiative_is_404():
    with pytest.raises(NotFound) as error:
        services.phase_create(initiative_id="nope", name="Build")

    assert error.value.code == "initiative_not_found"
    assert _events() == []


def test_phase_content_must_be_a_tiptap_document():
    initiative = f.InitiativeFactory()

    with pytest.raises(InvalidInput):
        services.phase_create(initiative_id=initiative.id, name="X", content='{"a": 1}')

    assert (Phase.objects.count(), _events()) == (0, [])


def test_phase_dependencies_are_added_and_removed_with_events():
    first = f.PhaseFactory()
    second = f.PhaseFactory(initiative=first.initiative)

    services.phase_add_dependency(phase_id=second.id, depends_on_id=first.id)
    with pytest.raises(DependencyCycle):
        services.phase_add_dependency(phase_id=first.id, depends_on_id=second.id)
    services.phase_remove_dependency(phase_id=second.id, depends_on_id=first.id)

    assert _events() == [
        ("dependency.added", "phase", second.id, {"depends_on_id": first.id}),
        ("dependency.removed", "phase", second.id, {"depends_on_id": first.id}),
    ]
    assert not PhaseDependency.objects.exists()


def test_removing_a_missing_dependency_is_404_dependency_not_found():
    phase = f.PhaseFactory()

    with pytest.raises(NotFound) as error:
        services.phase_remove_dependency(phase_id=phase.id, depends_on_id="other")

    assert error.value.code == "dependency_not_found"
    assert _events() == []


def test_a_dependency_across_initiatives_is_400_and_records_nothing():
    with pytest.raises(InvalidInput) as error:
        services.phase_add_dependency(
            phase_id=f.PhaseFactory().id, depends_on_id=f.PhaseFactory().id
        )

    assert error.value.code == "dependency_other_initiative"
    assert _events() == []


# --- tasks --------------------------------------------------------------------------------


def test_task_create_in_a_phase_an_initiative_or_under_a_parent():
    phase = f.PhaseFactory()

    in_phase = services.task_create(phase_id=phase.id, name="A", priority="high", order=2)
    loose = services.task_create(initiative_id=phase.initiative_id, name="B")
    child = services.task_create(parent_task_id=in_phase.id, name="C")

    assert (in_phase.initiative_id, in_phase.priority, in_phase.order) == (
        phase.initiative_id,
        "high",
        2,
    )
    assert (loose.phase_id, loose.initiative_id) == (None, phase.initiative_id)
    assert (child.phase_id, child.parent_task_id) == (phase.id, in_phase.id)
    assert [kind for kind, *_ in _events()] == ["task.created"] * 3


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ({"phase_id": "nope"}, "phase_not_found"),
        ({"initiative_id": "nope"}, "initiative_not_found"),
        ({"parent_task_id": "nope"}, "task_not_found"),
    ],
)
def test_task_create_under_an_unknown_record_is_404_and_writes_nothing(where, code):
    with pytest.raises(NotFound) as error:
        services.task_create(name="A", **where)

    assert error.value.code == code
    assert (Task.objects.count(), _events()) == (0, [])


def test_task_update_refuses_a_phase_of_another_initiative():
    task = f.TaskFactory()

    with pytest.raises(InvalidInput) as error:
        services.task_update(task_id=task.id, phase_id=f.PhaseFactory().id)

    assert error.value.code == "task_phase_other_initiative"


def test_task_delete_and_dependencies_record_events():
    first = f.TaskFactory()
    second = f.TaskFactory(phase=first.phase)

    services.task_add_dependency(task_id=second.id, depends_on_id=first.id)
    with pytest.raises(Conflict):
        services.task_add_dependency(task_id=second.id, depends_on_id=first.id)
    services.task_remove_dependency(task_id=second.id, depends_on_id=first.id)
    services.task_delete(task_id=first.id)

    assert _events() == [
        ("dependency.added", "task", second.id, {"depends_on_id": first.id}),
        ("dependency.removed", "task", second.id, {"depends_on_id": first.id}),
        ("task.deleted", "task", first.id, {"phase_id": first.phase_id, "subtask_ids": []}),
    ]


def test_task_delete_of_an_unknown_task_is_404():
    with pytest.raises(NotFound):
        services.task_delete(task_id="nope")


# --- pages --------------------------------------------------------------------------------


def test_page_create_goes_under_the_root_which_is_made_when_missing():
    initiative = f.InitiativeFactory(name="Auth")
    content = json.dumps({"type": "doc", "content": [{"type": "paragraph"}]})

    page = services.page_create(initiative_id=initiative.id, title="Notes", content=content)

    root = Page.objects.get(initiative=initiative, parent_page=None)
    assert (root.title, page.parent_page_id, page.content) == ("Auth", root.id, content)
    assert services.page_get_or_create_root(initiative_id=initiative.id) == root


def test_page_move_refuses_a_cycle_and_the_root():
    initiative = f.InitiativeFactory()
    parent = services.page_create(initiative_id=initiative.id, title="Parent")
    child = services.page_create(
        initiative_id=initiative.id, title="Child", parent_page_id=parent.id
    )
    root = parent.parent_page

    with pytest.raises(InvalidInput) as cycle:
        services.page_move(page_id=parent.id, parent_page_id=child.id)
    with pytest.raises(InvalidInput) as fixed:
        services.page_move(page_id=root.id, parent_page_id=child.id)
    moved = services.page_move(page_id=child.id, parent_page_id=root.id, sort_order=3)

    assert (cycle.value.code, fixed.value.code) == ("page_parent_cycle", "page_root_fixed")
    assert (moved.parent_page_id, moved.sort_order) == (root.id, 3)


def test_page_delete_takes_the_pages_under_it():
    initiative = f.InitiativeFactory()
    parent = services.page_create(initiative_id=initiative.id, title="Parent")
    services.page_create(initiative_id=initiative.id, title="Child", parent_page_id=parent.id)

    services.page_delete(page_id=parent.id)

    assert list(Page.objects.values_list("title", flat=True)) == [initiative.name]
    with pytest.raises(NotFound):
        services.page_delete(page_id=parent.id)


# --- projects -----------------------------------------------------------------------------


def test_projects_are_created_updated_fetched_linked_and_deleted():
    project = services.project_create(name="cw", url="https://example.com/cw.git")
    other = services.project_create(name="api", url="git@example.com:api.git", default_branch="dev")
    initiative = f.InitiativeFactory()

    services.project_update(project_id=project.id, default_branch="trunk")
    fetched = services.project_mark_fetched(project_id=project.id)
    linked = services.initiative_set_projects(
        initiative_id=initiative.id, project_ids=[project.id, other.id]
    )
    kept = services.initiative_set_projects(initiative_id=initiative.id, project_ids=[other.id])
    services.project_delete(project_id=other.id)

    assert (fetched.default_branch, fetched.last_fetched_at is not None) == ("trunk", True)
    assert {p.id for p in linked} == {project.id, other.id}
    assert [p.id for p in kept] == [other.id]
    assert not InitiativeProject.objects.exists()


def test_a_project_url_must_be_a_git_url_and_names_are_unique():
    services.project_create(name="cw", url="https://example.com/cw.git")

    with pytest.raises(InvalidInput):
        services.project_create(name="x", url="not a url")
    with pytest.raises(Conflict):
        services.project_create(name="cw", url="https://example.com/other.git")


def test_setting_unknown_projects_is_404_and_changes_nothing():
    project = f.ProjectFactory()
    initiative = f.InitiativeFactory()
    services.initiative_set_projects(initiative_id=initiative.id, project_ids=[project.id])

    with pytest.raises(NotFound):
        services.initiative_set_projects(initiative_id=initiative.id, project_ids=["nope"])

    assert list(InitiativeProject.objects.values_list("project_id", flat=True)) == [project.id]


def test_deleting_names_what_went_with_the_record():
    phase = f.PhaseFactory()
    parent = f.TaskFactory(phase=phase)
    child = f.TaskFactory(phase=phase, parent_task=parent)
    grandchild = f.TaskFactory(phase=phase, parent_task=child)
    other = f.TaskFactory(phase=phase)

    services.task_delete(task_id=parent.id)
    services.phase_delete(phase_id=phase.id)

    assert [e[3] for e in _events()] == [
        {"phase_id": phase.id, "subtask_ids": [child.id, grandchild.id]},
        {"name": phase.name, "task_ids": [other.id]},
    ]


# --- where a task belongs ----------------------------------------------------------------


@pytest.mark.parametrize("parent", [False, True], ids=["alone", "under-a-parent-in-no-plan"])
def test_a_task_in_no_phase_and_no_initiative_is_refused_and_nothing_is_recorded(parent):
    if parent:
        # A task written before the rule, in no initiative: its subtask is refused too.
        adrift = f.TaskFactory(name="Adrift", phase=None, initiative=None)
        Event.objects.all().delete()
    kwargs = {"parent_task_id": adrift.pk} if parent else {}

    with pytest.raises(InvalidInput) as error:
        services.task_create(name="Loose end", **kwargs)

    assert error.value.code == "task_place_required"
    assert not Task.objects.filter(name="Loose end").exists()
    assert _events() == []
