"""What may happen to the shape of a plan: creating, changing and deleting initiatives,
phases, tasks, dependencies, pages and projects.

Every public ``<entity>_<action>`` function here is one transaction, takes keyword-only
arguments, writes through the repositories only, and records its event(s) after its
writes, in the same transaction (a refusal writes nothing and records nothing). Statuses
move through ``core.services.lifecycle``, never here.
"""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from typing_extensions import Unpack

from core.errors import NotFound
from core.events import event_record
from core.models import Initiative, Page, Phase, Project, Task
from core.repositories import (
    DependencyRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    TaskRepository,
)
from core.repositories.initiatives import InitiativeChanges
from core.repositories.pages import PageChanges
from core.repositories.phases import PhaseChanges
from core.repositories.projects import ProjectChanges
from core.repositories.tasks import TaskChanges, TaskFields
from core.services.lifecycle import lock_phase_with_initiative

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()
projects = ProjectRepository()


# --- initiatives -----------------------------------------------------------------------


@transaction.atomic
def initiative_create(
    *, name: str, branch: str | None = None, execution_mode: str | None = None
) -> Initiative:
    """Create an active initiative (a ``cw/<slug>`` branch is made when none is given)."""
    fields: dict[str, Any] = {"name": name, "branch": branch}
    if execution_mode is not None:
        fields["execution_mode"] = execution_mode
    initiative = initiatives.create(**fields)
    event_record(
        "initiative.created",
        subject_type="initiative",
        subject_id=initiative.pk,
        initiative_id=initiative.pk,
        data={"name": initiative.name, "execution_mode": initiative.execution_mode},
    )
    return initiative


@transaction.atomic
def initiative_update(*, initiative_id: str, **changes: Unpack[InitiativeChanges]) -> Initiative:
    """Rename an initiative or change its branch (its status moves through the lifecycle)."""
    return initiatives.update(initiatives.get_for_update(initiative_id), **changes)


# --- phases ----------------------------------------------------------------------------


@transaction.atomic
def phase_create(*, initiative_id: str, name: str, content: str | None = None) -> Phase:
    """Add a pending phase to an initiative (``content``: a Tiptap document as text)."""
    initiatives.get_for_update(initiative_id)
    phase = phases.create(initiative_id=initiative_id, name=name, content=content)
    event_record(
        "phase.created",
        subject_type="phase",
        subject_id=phase.pk,
        initiative_id=initiative_id,
        data={"name": phase.name},
    )
    return phase


@transaction.atomic
def phase_update(*, phase_id: str, **changes: Unpack[PhaseChanges]) -> Phase:
    """Change a phase's name or content."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    return phases.update(phase, **changes)


@transaction.atomic
def phase_delete(*, phase_id: str) -> None:
    """Delete a phase with its tasks and dependency edges (``phase_not_found`` if none);
    the event names the tasks that went with it."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    task_ids = tasks.ids_in_phase(phase.pk)
    phases.delete(phase.pk)
    event_record(
        "phase.deleted",
        subject_type="phase",
        subject_id=phase.pk,
        initiative_id=phase.initiative_id,
        data={"name": phase.name, "task_ids": task_ids},
    )


@transaction.atomic
def phase_add_dependency(*, phase_id: str, depends_on_id: str) -> None:
    """``phase_id`` may not start before ``depends_on_id`` completes; refused across
    initiatives (400), for a duplicate (409) or a cycle (409 ``dependency_cycle``)."""
    _add_dependency(phases, "phase", phase_id, depends_on_id)


@transaction.atomic
def phase_remove_dependency(*, phase_id: str, depends_on_id: str) -> None:
    """Remove an edge (404 ``dependency_not_found`` when there is none)."""
    _remove_dependency(phases, "phase", phase_id, depends_on_id)


# --- tasks -----------------------------------------------------------------------------


@transaction.atomic
def task_create(
    *,
    name: str,
    phase_id: str | None = None,
    initiative_id: str | None = None,
    parent_task_id: str | None = None,
    description: str | None = None,
    type: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    order: int | None = None,
) -> Task:
    """Add a pending task to a phase, to an initiative without a phase, or under a parent
    task (whose phase and initiative it takes when given neither)."""
    if initiative_id is not None:
        initiatives.require(initiative_id)
    if parent_task_id is not None:
        tasks.require(parent_task_id)
    fields: TaskFields = {
        "name": name,
        "phase_id": phase_id,
        "initiative_id": initiative_id,
        "parent_task_id": parent_task_id,
        "description": description,
    }
    if type is not None:
        fields["type"] = type
    if category is not None:
        fields["category"] = category
    if priority is not None:
        fields["priority"] = priority
    if order is not None:
        fields["order"] = order
    task = tasks.create(**fields)
    event_record(
        "task.created",
        subject_type="task",
        subject_id=task.pk,
        initiative_id=task.initiative_id,
        data={"phase_id": task.phase_id, "parent_task_id": task.parent_task_id},
    )
    return task


@transaction.atomic
def task_update(*, task_id: str, **changes: Unpack[TaskChanges]) -> Task:
    """Change a task's fields; it may move between its initiative's phases only."""
    return tasks.update(tasks.get_for_update(task_id), **changes)


@transaction.atomic
def task_delete(*, task_id: str) -> None:
    """Delete a task with its subtasks and dependency edges (``task_not_found`` if none);
    the event names the subtasks that went with it."""
    task = tasks.get_for_update(task_id)
    subtask_ids = tasks.descendant_ids(task.pk)
    tasks.delete(task.pk)
    event_record(
        "task.deleted",
        subject_type="task",
        subject_id=task.pk,
        initiative_id=task.initiative_id,
        data={"phase_id": task.phase_id, "subtask_ids": subtask_ids},
    )


@transaction.atomic
def task_add_dependency(*, task_id: str, depends_on_id: str) -> None:
    """``task_id`` may not start before ``depends_on_id`` completes; refused across
    initiatives (400), for a duplicate (409) or a cycle (409 ``dependency_cycle``)."""
    _add_dependency(tasks, "task", task_id, depends_on_id)


@transaction.atomic
def task_remove_dependency(*, task_id: str, depends_on_id: str) -> None:
    """Remove an edge (404 ``dependency_not_found`` when there is none)."""
    _remove_dependency(tasks, "task", task_id, depends_on_id)


def _add_dependency(
    repository: DependencyRepository[Any], kind: str, node_id: str, depends_on_id: str
) -> None:
    """One rule for phases and tasks: create the edge, then record ``dependency.added``."""
    repository.create_dependency(node_id, depends_on_id)
    _record_dependency(repository, "dependency.added", kind, node_id, depends_on_id)


def _remove_dependency(
    repository: DependencyRepository[Any], kind: str, node_id: str, depends_on_id: str
) -> None:
    """Remove the edge (``dependency_not_found`` when there is none), then record
    ``dependency.removed``."""
    repository.require(node_id)
    if not repository.remove_dependency(node_id, depends_on_id):
        raise NotFound(
            f"The {kind} '{node_id}' does not depend on '{depends_on_id}'.",
            code="dependency_not_found",
            details={"id": node_id, "depends_on_id": depends_on_id},
        )
    _record_dependency(repository, "dependency.removed", kind, node_id, depends_on_id)


def _record_dependency(
    repository: DependencyRepository[Any],
    event: str,
    kind: str,
    node_id: str,
    depends_on_id: str,
) -> None:
    event_record(
        event,
        subject_type=kind,
        subject_id=node_id,
        initiative_id=repository.initiative_id_of(node_id),
        data={"depends_on_id": depends_on_id},
    )


# --- pages -----------------------------------------------------------------------------


@transaction.atomic
def page_get_or_create_root(*, initiative_id: str) -> Page:
    """The initiative's root page, created (titled after the initiative) when missing."""
    return pages.get_or_create_root_page(initiative_id)


@transaction.atomic
def page_create(
    *,
    initiative_id: str,
    title: str,
    parent_page_id: str | None = None,
    content: str | None = None,
    sort_order: int | None = None,
) -> Page:
    """Add a page under ``parent_page_id`` (a page of the same initiative; 400
    ``page_parent_other_initiative`` otherwise), or under the root (created when missing)."""
    initiatives.require(initiative_id)
    if parent_page_id is None:
        parent_page_id = pages.get_or_create_root_page(initiative_id).pk
    extra: dict[str, Any] = {} if sort_order is None else {"sort_order": sort_order}
    return pages.create(
        initiative_id=initiative_id,
        parent_page_id=parent_page_id,
        title=title,
        content=content,
        **extra,
    )


@transaction.atomic
def page_update(*, page_id: str, **changes: Unpack[PageChanges]) -> Page:
    """Change a page's title, content, order or parent (see ``page_move``)."""
    return pages.update(pages.get_for_update(page_id), **changes)


@transaction.atomic
def page_move(*, page_id: str, parent_page_id: str, sort_order: int | None = None) -> Page:
    """Place a page under another page of its initiative; the root stays the root and a
    page never goes under itself (400 ``page_root_fixed`` / ``page_parent_cycle``)."""
    changes: PageChanges = {"parent_page_id": parent_page_id}
    if sort_order is not None:
        changes["sort_order"] = sort_order
    return pages.update(pages.get_for_update(page_id), **changes)


@transaction.atomic
def page_delete(*, page_id: str) -> None:
    """Delete a page with the pages under it (``page_not_found`` if none)."""
    pages.require(page_id)
    pages.delete(page_id)


# --- projects --------------------------------------------------------------------------


@transaction.atomic
def project_create(*, name: str, url: str, default_branch: str | None = None) -> Project:
    """Register a git repository (its name and URL are unique: 409 otherwise)."""
    if default_branch is None:
        return projects.create(name=name, url=url)
    return projects.create(name=name, url=url, default_branch=default_branch)


@transaction.atomic
def project_update(*, project_id: str, **changes: Unpack[ProjectChanges]) -> Project:
    return projects.update(projects.get_for_update(project_id), **changes)


@transaction.atomic
def project_delete(*, project_id: str) -> None:
    """Delete a project and its links to initiatives (``project_not_found`` if none)."""
    projects.require(project_id)
    projects.delete(project_id)


@transaction.atomic
def project_mark_fetched(*, project_id: str) -> Project:
    """Record that the repository was just fetched."""
    return projects.update(projects.get_for_update(project_id), last_fetched_at=timezone.now())


@transaction.atomic
def initiative_set_projects(*, initiative_id: str, project_ids: Iterable[str]) -> list[Project]:
    """Make the initiative's projects exactly ``project_ids`` (links diffed, not rewritten)."""
    return projects.set_initiative_projects(initiative_id, project_ids)
