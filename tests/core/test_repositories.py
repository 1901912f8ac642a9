"""The core repositories: initiatives, phases, tasks, pages, projects."""

import threading

import pytest
from django.db import connection

from core.errors import Conflict, DependencyCycle, InvalidInput, NotFound
from core.models import (
    InitiativeProject,
    Page,
    PhaseDependency,
    PhaseStatus,
    Task,
    TaskDependency,
    TaskPriority,
    TaskStatus,
    TaskType,
)
from core.repositories import (
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    TaskRepository,
    find_cycle,
    plans,
    topological_order,
)
from tests import factories as f

pytestmark = pytest.mark.django_db

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()
projects = ProjectRepository()


# --- standard CRUD -------------------------------------------------------------------------


def test_create_find_update_delete_round_trip():
    initiative = initiatives.create(name="User auth")
    assert initiatives.find_by_id(initiative.id) == initiative
    before = initiative.updated_at

    updated = initiatives.update(initiative.id, name="User auth v2")

    assert updated.name == "User auth v2"
    assert updated.updated_at >= before
    assert initiatives.get(initiative.id).name == "User auth v2"
    assert initiatives.delete(initiative.id) is True
    assert initiatives.find_by_id(initiative.id) is None
    assert initiatives.delete(initiative.id) is False


def test_find_by_id_of_a_missing_record_is_none_and_get_raises_a_coded_error():
    assert initiatives.find_by_id("missing") is None
    with pytest.raises(NotFound) as error:
        initiatives.get("missing")
    assert error.value.code == "initiative_not_found"


def test_update_refuses_unknown_and_read_only_fields():
    initiative = f.InitiativeFactory()
    with pytest.raises(InvalidInput) as error:
        initiatives.update(initiative.id, id="other", colour="red")
    assert error.value.code == "invalid_field"
    assert error.value.details["fields"] == ["colour", "id"]


def test_create_refuses_an_unknown_enum_value_before_the_database():
    with pytest.raises(InvalidInput) as error:
        initiatives.create(name="x", execution_mode="reckless")
    assert error.value.code == "validation_failed"
    assert "execution_mode" in error.value.details["fields"]


def test_find_all_pages_with_limit_and_offset():
    made = [f.InitiativeFactory() for _ in range(5)]
    assert initiatives.find_all() == made
    assert initiatives.find_all(limit=2, offset=1) == made[1:3]


# --- initiatives ---------------------------------------------------------------------------


def test_initiative_branch_is_generated_from_its_name_and_kept_unique():
    first = initiatives.create(name="User Auth!")
    second = initiatives.create(name="user auth")
    third = initiatives.create(name="User  auth")
    explicit = initiatives.create(name="Other", branch="feature/other")

    assert first.branch == "cw/user-auth"
    assert second.branch == "cw/user-auth-2"
    assert third.branch == "cw/user-auth-3"
    assert explicit.branch == "feature/other"


def test_initiative_with_an_unsluggable_name_still_gets_a_branch():
    assert initiatives.create(name="???").branch == "cw/initiative"


def test_explicit_duplicate_branch_is_refused():
    initiatives.create(name="a", branch="cw/a")
    with pytest.raises(Conflict):
        initiatives.create(name="b", branch="cw/a")


def test_find_by_status_filters_and_validates():
    active = f.InitiativeFactory()
    f.InitiativeFactory(status="archived")
    assert initiatives.find_by_status("active") == [active]
    with pytest.raises(InvalidInput) as error:
        initiatives.find_by_status("sleeping")
    assert error.value.code == "invalid_status"


# --- dependencies -------------------------------------------------------------------------


@pytest.fixture
def three_phases():
    initiative = f.InitiativeFactory()
    return [f.PhaseFactory(initiative=initiative, name=n) for n in ("Design", "Build", "Ship")]


def test_phase_dependencies_and_dependents(three_phases):
    design, build, ship = three_phases
    phases.create_dependency(build.id, design.id)
    phases.create_dependency(ship.id, build.id)
    phases.create_dependency(ship.id, design.id)

    assert phases.get_dependencies(ship.id) == [design, build]
    assert phases.get_dependents(design.id) == [build, ship]
    assert phases.get_dependencies(design.id) == []
    assert phases.find_by_initiative_id(design.initiative_id) == three_phases


def test_dependency_self_edge_is_refused(three_phases):
    with pytest.raises(InvalidInput) as error:
        phases.create_dependency(three_phases[0].id, three_phases[0].id)
    assert error.value.code == "dependency_self_edge"


def test_duplicate_dependency_is_refused(three_phases):
    design, build, _ = three_phases
    phases.create_dependency(build.id, design.id)
    with pytest.raises(Conflict) as error:
        phases.create_dependency(build.id, design.id)
    assert error.value.code == "dependency_taken"
    assert PhaseDependency.objects.count() == 1


def test_cross_initiative_dependency_is_refused(three_phases):
    elsewhere = f.PhaseFactory()
    with pytest.raises(InvalidInput) as error:
        phases.create_dependency(three_phases[0].id, elsewhere.id)
    assert error.value.code == "dependency_other_initiative"


def test_dependency_on_a_missing_record_is_refused(three_phases):
    with pytest.raises(NotFound) as error:
        phases.create_dependency(three_phases[0].id, "missing")
    assert error.value.code == "phase_not_found"


def test_cycle_is_refused_with_the_cycle_named(three_phases):
    design, build, ship = three_phases
    phases.create_dependency(build.id, design.id)
    phases.create_dependency(ship.id, build.id)

    with pytest.raises(DependencyCycle) as error:
        phases.create_dependency(design.id, ship.id)

    assert error.value.code == "dependency_cycle"
    cycle = error.value.details["cycle"]
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {design.id, build.id, ship.id}
    for name in ("Design", "Build", "Ship"):
        assert f"'{name}'" in error.value.message
    assert PhaseDependency.objects.count() == 2


def test_task_dependencies_refuse_cycles_and_cross_initiative_edges():
    phase = f.PhaseFactory()
    a, b, c = (f.TaskFactory(phase=phase, name=n) for n in "abc")
    tasks.create_dependency(b.id, a.id)
    tasks.create_dependency(c.id, b.id)
    with pytest.raises(DependencyCycle):
        tasks.create_dependency(a.id, c.id)
    with pytest.raises(InvalidInput):
        tasks.create_dependency(a.id, f.TaskFactory().id)
    assert tasks.get_dependencies(c.id) == [b]
    assert tasks.get_dependents(a.id) == [b]
    assert tasks.get_dependency_ids([a.id, c.id]) == {a.id: [], c.id: [b.id]}
    assert sorted(tasks.dependency_edges(phase.initiative_id)) == sorted(
        [(b.id, a.id), (c.id, b.id)]
    )


def test_remove_dependency():
    dependency = f.TaskDependencyFactory()
    assert tasks.remove_dependency(dependency.task_id, dependency.depends_on_task_id) is True
    assert not TaskDependency.objects.exists()
    assert tasks.remove_dependency(dependency.task_id, dependency.depends_on_task_id) is False


def test_find_cycle_and_topological_order_helpers():
    assert find_cycle([("b", "a"), ("c", "b")]) is None
    cycle = find_cycle([("b", "a"), ("a", "b")])
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert topological_order(["c", "b", "a"], [("c", "b"), ("b", "a")]) == ["a", "b", "c"]
    assert topological_order(["x", "y"], []) == ["x", "y"]


# --- tasks -------------------------------------------------------------------------------


def test_task_takes_its_phases_initiative():
    phase = f.PhaseFactory()
    task = tasks.create(phase=phase, name="Write it")
    assert task.initiative_id == phase.initiative_id


def test_task_refuses_an_initiative_other_than_its_phases():
    phase = f.PhaseFactory()
    with pytest.raises(InvalidInput) as error:
        tasks.create(phase_id=phase.id, initiative_id=f.InitiativeFactory().id, name="x")
    assert error.value.code == "task_phase_other_initiative"


def test_task_refuses_a_missing_phase_and_a_foreign_parent():
    with pytest.raises(NotFound):
        tasks.create(phase_id="missing", name="x")
    parent = f.TaskFactory()
    with pytest.raises(InvalidInput) as error:
        tasks.create(phase=f.PhaseFactory(), parent_task=parent, name="x")
    assert error.value.code == "task_parent_other_initiative"


def test_find_by_phase_parent_initiative_and_status():
    phase = f.PhaseFactory()
    parent = tasks.create(phase=phase, name="parent")
    child = tasks.create(phase=phase, parent_task=parent, name="child", status="completed")
    f.TaskFactory()

    assert tasks.find_by_phase_id(phase.id) == [parent, child]
    assert tasks.find_by_parent_task_id(parent.id) == [child]
    assert tasks.find_by_initiative_id(phase.initiative_id) == [parent, child]
    assert tasks.find_by_status("completed") == [child]


def test_ready_tasks_follow_dependencies_phase_status_and_priority():
    initiative = f.InitiativeFactory()
    done_phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.COMPLETED)
    open_phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    waiting_phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    unapproved = f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING)
    f.PhaseDependencyFactory(phase=waiting_phase, depends_on_phase=open_phase)
    f.PhaseDependencyFactory(phase=open_phase, depends_on_phase=done_phase)

    low = f.TaskFactory(phase=open_phase, priority=TaskPriority.LOW)
    high = f.TaskFactory(phase=open_phase, priority=TaskPriority.HIGH)
    blocked_by_dep = f.TaskFactory(phase=open_phase)
    f.TaskDependencyFactory(task=blocked_by_dep, depends_on_task=low)
    done_dep = f.TaskFactory(phase=open_phase, status=TaskStatus.COMPLETED)
    freed = f.TaskFactory(phase=open_phase)
    f.TaskDependencyFactory(task=freed, depends_on_task=done_dep)
    f.TaskFactory(phase=waiting_phase)  # its phase waits for open_phase
    f.TaskFactory(phase=unapproved)  # plan not approved yet
    f.TaskFactory(phase=open_phase, status=TaskStatus.IN_PROGRESS)
    checkpoint = f.TaskFactory(phase=open_phase, type=TaskType.CHECKPOINT_DECISION)
    loose = f.TaskFactory(phase=None, initiative=initiative)

    assert tasks.find_ready() == [high, freed, loose, low]
    assert tasks.find_ready(initiative_id=initiative.id, limit=2) == [high, freed]
    assert tasks.find_ready(checkpoints=True) == [checkpoint]
    # The admin's "ready" column is the same rule, for agents and people alike.
    marked = {task.pk for task in tasks.with_ready(Task.objects.all()) if task.is_ready}
    assert marked == {high.pk, freed.pk, loose.pk, low.pk, checkpoint.pk}


def test_plan_progress_counts_each_phases_and_initiatives_records_as_subqueries():
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.COMPLETED)
    empty = f.PhaseFactory(initiative=initiative)
    f.TaskFactory(phase=phase, status=TaskStatus.COMPLETED)
    f.TaskFactory(phase=phase)

    counted = {
        p.pk: (p.task_done, p.task_total) for p in plans.with_task_progress(phases.queryset())
    }
    [row] = plans.with_plan_progress(initiatives.queryset().filter(pk=initiative.pk))

    assert counted == {phase.pk: (1, 2), empty.pk: (0, 0)}
    assert (row.phase_done, row.phase_total, row.task_done, row.task_total) == (1, 2, 1, 2)


# --- pages -------------------------------------------------------------------------------


def test_root_page_is_created_once_and_found():
    initiative = f.InitiativeFactory(name="Auth")
    assert pages.find_root_page(initiative.id) is None
    root = pages.get_or_create_root_page(initiative.id)
    assert root.title == "Auth"
    assert root.parent_page_id is None
    assert pages.get_or_create_root_page(initiative.id) == root
    assert pages.find_root_page(initiative.id) == root


def test_second_root_page_is_refused_and_children_are_listed():
    root = f.PageFactory()
    with pytest.raises(Conflict) as error:
        pages.create(initiative_id=root.initiative_id, title="Another root")
    assert error.value.code == "page_root_taken"
    child = pages.create(parent_page_id=root.id, title="Child")
    assert child.initiative_id == root.initiative_id
    assert pages.find_by_parent_page_id(root.id) == [child]
    assert pages.find_by_initiative_id(root.initiative_id) == [root, child]


def test_page_parent_must_share_the_initiative():
    root = f.PageFactory()
    with pytest.raises(InvalidInput) as error:
        pages.create(initiative_id=f.InitiativeFactory().id, parent_page_id=root.id, title="x")
    assert error.value.code == "page_parent_other_initiative"


def test_root_page_of_a_missing_initiative_is_refused():
    with pytest.raises(NotFound):
        pages.get_or_create_root_page("missing")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_racing_callers_get_the_same_single_root_page():
    initiative = f.InitiativeFactory()
    barrier = threading.Barrier(8)
    results, errors = [], []

    def claim():
        try:
            barrier.wait()
            results.append(PageRepository().get_or_create_root_page(initiative.id).id)
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(results)) == 1
    assert Page.objects.filter(initiative=initiative).count() == 1


# --- projects ----------------------------------------------------------------------------


def test_set_initiative_projects_is_diff_based():
    initiative = f.InitiativeFactory()
    a, b, c = (f.ProjectFactory(name=n) for n in "abc")
    projects.set_initiative_projects(initiative.id, [a.id, b.id])
    kept = InitiativeProject.objects.get(initiative=initiative, project=b)

    result = projects.set_initiative_projects(initiative.id, [b.id, c.id, c.id])

    assert result == [b, c]
    assert InitiativeProject.objects.get(initiative=initiative, project=b).id == kept.id
    assert projects.find_projects_by_initiative_id(initiative.id) == [b, c]
    assert projects.set_initiative_projects(initiative.id, []) == []


def test_set_initiative_projects_refuses_unknown_ids_without_writing():
    initiative = f.InitiativeFactory()
    a = f.ProjectFactory()
    projects.set_initiative_projects(initiative.id, [a.id])
    with pytest.raises(NotFound) as error:
        projects.set_initiative_projects(initiative.id, ["nope"])
    assert error.value.details == {"ids": ["nope"]}
    assert projects.find_projects_by_initiative_id(initiative.id) == [a]
    with pytest.raises(NotFound):
        projects.set_initiative_projects("missing", [a.id])


def test_project_name_is_unique_through_the_repository():
    projects.create(name="cw", url="git@x:cw.git")
    with pytest.raises(Conflict):
        projects.create(name="cw", url="git@x:other.git")
    assert projects.find_by_name("cw").url == "git@x:cw.git"


@pytest.mark.parametrize("rows", [10, 1000])
def test_list_methods_have_a_fixed_query_count(rows, django_assert_max_num_queries):
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative)
    root = f.PageFactory(initiative=initiative)
    Task.objects.bulk_create(
        Task(phase=phase, initiative=initiative, name=f"t{i}") for i in range(rows)
    )
    Page.objects.bulk_create(
        Page(initiative=initiative, parent_page=root, title=f"p{i}") for i in range(rows)
    )
    made = [f.ProjectFactory.build() for _ in range(rows)]
    from core.models import Project

    Project.objects.bulk_create(made)
    InitiativeProject.objects.bulk_create(
        InitiativeProject(initiative=initiative, project=p) for p in made
    )

    with django_assert_max_num_queries(1):
        assert len(tasks.find_by_phase_id(phase.id)) == rows
    with django_assert_max_num_queries(1):
        assert len(tasks.find_by_initiative_id(initiative.id)) == rows
    with django_assert_max_num_queries(1):
        assert len(pages.find_by_parent_page_id(root.id)) == rows
    with django_assert_max_num_queries(1):
        assert len(projects.find_projects_by_initiative_id(initiative.id)) == rows
    with django_assert_max_num_queries(1):
        assert len(tasks.find_by_status("pending")) == rows
    with django_assert_max_num_queries(1):
        assert len(pages.find_by_initiative_id(initiative.id)) == rows + 1
    parent = Task.objects.filter(phase=phase).first()
    Task.objects.filter(phase=phase).exclude(pk=parent.pk).update(parent_task=parent)
    with django_assert_max_num_queries(1):
        assert len(tasks.find_by_parent_task_id(parent.id)) == rows - 1
    made_tasks = list(Task.objects.filter(phase=phase).exclude(pk=parent.pk))
    TaskDependency.objects.bulk_create(
        TaskDependency(task=parent, depends_on_task=t) for t in made_tasks
    )
    with django_assert_max_num_queries(1):
        assert len(tasks.get_dependencies(parent.id)) == rows - 1
    with django_assert_max_num_queries(1):
        assert len(tasks.get_dependents(made_tasks[0].id)) == 1
    Initiative = initiatives.model
    Initiative.objects.bulk_create(Initiative(name=f"i{i}") for i in range(rows - 1))
    with django_assert_max_num_queries(1):
        assert len(initiatives.find_all()) == rows
    with django_assert_max_num_queries(1):
        assert len(initiatives.find_by_status("active")) == rows
    Phase = phases.model
    made_phases = Phase.objects.bulk_create(
        Phase(initiative=initiative, name=f"ph{i}") for i in range(rows - 1)
    )
    PhaseDependency.objects.bulk_create(
        PhaseDependency(phase=phase, depends_on_phase=p) for p in made_phases
    )
    with django_assert_max_num_queries(1):
        assert len(phases.find_by_initiative_id(initiative.id)) == rows
    with django_assert_max_num_queries(1):
        assert len(phases.get_dependencies(phase.id)) == rows - 1
    with django_assert_max_num_queries(1):
        assert len(phases.get_dependents(made_phases[0].id)) == 1


# --- invariants update() keeps, and bad input as coded errors ------------------------------


def test_update_by_column_name_still_checks_the_reference():
    from agents.repositories import AgentRepository

    task = f.TaskFactory()
    with pytest.raises(NotFound) as error:
        tasks.update(task.id, phase_id="missing")
    assert error.value.code == "phase_not_found"
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        AgentRepository().update(agent.id, account_id="missing")
    assert error.value.code == "invalid_reference"
    assert "account" in error.value.details["fields"]


def test_a_task_moves_only_within_its_initiative_and_never_under_itself():
    phase = f.PhaseFactory()
    task = f.TaskFactory(phase=phase)
    sub = tasks.create(parent_task=task, name="sub")
    assert (sub.phase_id, sub.initiative_id) == (phase.id, phase.initiative_id)

    with pytest.raises(InvalidInput) as error:
        tasks.update(task.id, phase_id=f.PhaseFactory().id)
    assert error.value.code == "task_phase_other_initiative"
    with pytest.raises(InvalidInput) as error:
        tasks.update(task.id, initiative_id=f.InitiativeFactory().id)
    assert error.value.code == "invalid_field"
    for parent in (task, sub):
        with pytest.raises(InvalidInput) as error:
            tasks.update(task.id, parent_task_id=parent.id)
        assert error.value.code == "task_parent_cycle"
    other_phase = f.PhaseFactory(initiative=phase.initiative)
    assert tasks.update(task.id, phase_id=other_phase.id).phase_id == other_phase.id


def test_the_page_tree_keeps_one_root_and_no_cycles():
    root = f.PageFactory()
    child = f.PageFactory(initiative=root.initiative, parent_page=root)
    grandchild = f.PageFactory(initiative=root.initiative, parent_page=child)
    for parent, code in (
        (child, "page_root_fixed"),
        (f.PageFactory(), "page_root_fixed"),
    ):
        with pytest.raises(InvalidInput) as error:
            pages.update(root.id, parent_page_id=parent.id)
        assert error.value.code == code
    with pytest.raises(InvalidInput) as error:
        pages.update(child.id, parent_page_id=grandchild.id)
    assert error.value.code == "page_parent_cycle"
    with pytest.raises(InvalidInput) as error:
        pages.update(child.id, parent_page_id=f.PageFactory().id)
    assert error.value.code == "page_parent_other_initiative"
    with pytest.raises(InvalidInput) as error:
        pages.update(child.id, parent_page_id=None)
    assert error.value.code == "page_root_fixed"
    sibling = f.PageFactory(initiative=root.initiative, parent_page=root)
    assert pages.update(grandchild.id, parent_page_id=sibling.id).parent_page_id == sibling.id


def test_a_phase_stays_in_its_initiative():
    phase = f.PhaseFactory()
    with pytest.raises(InvalidInput) as error:
        phases.update(phase.id, initiative_id=f.InitiativeFactory().id)
    assert error.value.code == "invalid_field"


def test_branch_of_a_very_long_name_fits_and_popular_names_never_run_out():
    long = initiatives.create(name="Implement " + "very " * 60 + "long feature")
    assert len(long.branch) <= 255
    assert long.branch.startswith("cw/implement-very-")
    Initiative = initiatives.model
    Initiative.objects.bulk_create(
        Initiative(name="Refactor", branch="cw/refactor" + (f"-{n}" if n > 1 else ""))
        for n in range(1, 61)
    )
    assert initiatives.create(name="Refactor").branch == "cw/refactor-61"


def _initiative():
    return f.InitiativeFactory()


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: initiatives.create(name="a", colour="red"), "invalid_field"),
        (lambda: initiatives.create(name="a\x00b"), "invalid_value"),
        (lambda: initiatives.create(name="\udfff"), "invalid_value"),
        (lambda: initiatives.find_all(limit=-1), "invalid_limit"),
        (lambda: initiatives.find_all(offset=-1), "invalid_offset"),
        (lambda: initiatives.find_all(limit="3"), "invalid_limit"),
        (lambda: projects.set_initiative_projects("x", None), "invalid_project_ids"),
        (lambda: projects.set_initiative_projects("x", [None]), "invalid_project_ids"),
        (lambda: projects.set_initiative_projects("x", [{}]), "invalid_project_ids"),
        (lambda: phases.create_dependency(["a"], "b"), "invalid_id"),
        (lambda: tasks.create(name="x", order=True, initiative=_initiative()), "invalid_value"),
        (lambda: tasks.create(name="x", order=2**40, initiative=_initiative()), "invalid_value"),
    ],
    ids=[
        "unknown-field", "nul", "surrogate", "negative-limit", "negative-offset",
        "string-limit", "projects-none", "projects-none-id", "projects-dict",
        "dependency-list", "bool-int", "huge-int",
    ],
)  # fmt: skip
def test_bad_input_is_a_coded_domain_error_on_every_database(call, code):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.code == code


def test_a_check_constraint_refusal_is_invalid_input_not_a_conflict():
    from django.db import IntegrityError

    from core.repositories import integrity_error_kind

    with pytest.raises(IntegrityError) as raw:
        from django.db import transaction

        with transaction.atomic():
            Task.objects.create(name="x", status="nope")
    assert integrity_error_kind(raw.value) == "check"


@pytest.mark.django_db(transaction=True)
def test_a_locked_read_outside_a_transaction_is_refused_as_a_programming_error():
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    initiative = f.InitiativeFactory()
    with pytest.raises(TransactionManagementError):
        initiatives.get_for_update(initiative.id)
    with transaction.atomic():
        assert initiatives.get_for_update(initiative.id) == initiative


# --- the plans API's reads ----------------------------------------------------------------


def test_page_tree_lists_a_parent_before_its_children_and_siblings_by_sort_order():
    root = f.PageFactory(parent_page=None, title="root")
    second = f.PageFactory(initiative=root.initiative, parent_page=root, sort_order=2, title="b")
    first = f.PageFactory(initiative=root.initiative, parent_page=root, sort_order=1, title="a")
    f.PageFactory(initiative=root.initiative, parent_page=second, sort_order=0, title="b1")
    f.PageFactory(initiative=first.initiative, parent_page=first, sort_order=5, title="a1")
    f.PageFactory(parent_page=None, title="another initiative's")

    tree = PageRepository().find_tree(root.initiative_id)

    assert [p.title for p in tree] == ["root", "a", "a1", "b", "b1"]


def test_task_pages_filter_by_every_criterion_and_count_all_matches():
    phase = f.PhaseFactory()
    parent = f.TaskFactory(phase=phase, order=1)
    child = f.TaskFactory(phase=phase, parent_task=parent, order=0)
    f.TaskFactory(phase=phase, status="completed")
    f.TaskFactory()

    tasks = TaskRepository()
    page = tasks.find_page(phase_id=phase.id, status="pending", limit=1)

    assert (page.total, page.items) == (2, [child])
    assert tasks.find_page(parent_task_id=parent.id).items == [child]
    assert tasks.descendant_ids(parent.id) == [child.id]
    assert tasks.ids_in_phase(phase.id)[:2] == [parent.id, child.id]
    with pytest.raises(InvalidInput):
        tasks.find_page(status="nope")


def test_initiative_and_phase_pages_filter_by_status():
    active = f.InitiativeFactory()
    f.InitiativeFactory(status="archived")
    approved = f.PhaseFactory(initiative=active, status="approved")
    f.PhaseFactory(initiative=active)

    assert InitiativeRepository().find_page(status="active").items == [active]
    phases = PhaseRepository().find_page(initiative_id=active.id, status="approved")
    assert (phases.total, phases.items) == (1, [approved])
