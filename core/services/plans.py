"""What may happen to the shape of a plan: creating, changing and deleting initiatives,
phases, tasks, dependencies, pages and projects.

Every public ``<entity>_<action>`` function here is one transaction, takes keyword-only
arguments, writes through the repositories only, and records its event(s) after its
writes, in the same transaction (a refusal writes nothing and records nothing). Statuses
move through ``core.services.lifecycle``, never here.
"""

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from typing_extensions import Unpack

from core import mirrors
from core.errors import Conflict, NotFound
from core.models import Initiative, InitiativeProject, Page, Phase, Project, Task
from core.repositories import (
    InitiativeProjectRepository,
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
from core.services.feed import (
    INITIATIVES,
    PAGES,
    PHASE_DEPENDENCIES,
    PHASES,
    PROJECTS,
    TASK_DEPENDENCIES,
    TASKS,
    DependencyFeed,
    PendingEvent,
    apply_update,
    record_all,
    snapshot,
)
from core.services.lifecycle import lock_phase_with_initiative

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()
projects = ProjectRepository()
project_links = InitiativeProjectRepository()


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
    record_all(INITIATIVES.created(snapshot(initiative)))
    return initiative


@transaction.atomic
def initiative_update(*, initiative_id: str, **changes: Unpack[InitiativeChanges]) -> Initiative:
    """Rename an initiative or change its branch or execution mode (its status moves
    through the lifecycle); records ``initiative.updated`` with the fields that changed
    (``initiative.execution_mode_changed`` for the mode), nothing when none did."""
    return apply_update(
        INITIATIVES, initiatives, initiatives.get_for_update(initiative_id), changes
    )


@transaction.atomic
def initiative_delete(*, initiative_id: str) -> None:
    """Delete an initiative with everything it owns (phases, tasks, pages, proposals,
    change sets, chat sessions, links to projects); ``initiative_not_found`` when there
    is none. Records ``initiative.deleted``: one event, as for a phase's tasks."""
    initiative = initiatives.get_for_update(initiative_id)
    events = INITIATIVES.deleted(snapshot(initiative))
    initiatives.delete(initiative.pk)
    record_all(events)


# --- phases ----------------------------------------------------------------------------


@transaction.atomic
def phase_create(*, initiative_id: str, name: str, content: str | None = None) -> Phase:
    """Add a pending phase to an initiative (``content``: a Tiptap document as text)."""
    initiatives.get_for_update(initiative_id)
    phase = phases.create(initiative_id=initiative_id, name=name, content=content)
    record_all(PHASES.created(snapshot(phase)))
    return phase


@transaction.atomic
def phase_update(*, phase_id: str, **changes: Unpack[PhaseChanges]) -> Phase:
    """Change a phase's name or content; records ``phase.updated`` with the fields that
    changed (nothing when none did)."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    return apply_update(PHASES, phases, phase, changes)


@transaction.atomic
def phase_delete(*, phase_id: str) -> None:
    """Delete a phase with its tasks and dependency edges (``phase_not_found`` if none);
    the event names the tasks that went with it."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    events = PHASES.deleted(snapshot(phase))
    phases.delete(phase.pk)
    record_all(events)


@transaction.atomic
def phase_add_dependency(*, phase_id: str, depends_on_id: str) -> models.Model:
    """``phase_id`` may not start before ``depends_on_id`` completes; refused across
    initiatives (400), for a duplicate (409) or a cycle (409 ``dependency_cycle``).
    Returns the new edge."""
    return _add_dependency(PHASE_DEPENDENCIES, phase_id, depends_on_id)


@transaction.atomic
def phase_remove_dependency(*, phase_id: str, depends_on_id: str) -> None:
    """Remove an edge (404 ``dependency_not_found`` when there is none)."""
    _remove_dependency(PHASE_DEPENDENCIES, phase_id, depends_on_id)


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
    task (whose phase and initiative it takes when given neither); a task given none of
    them (or a parent in no initiative) is ``task_place_required``."""
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
    record_all(TASKS.created(snapshot(task)))
    return task


@transaction.atomic
def task_update(*, task_id: str, **changes: Unpack[TaskChanges]) -> Task:
    """Change a task's fields; it may move between its initiative's phases only. Records
    ``task.updated`` with the fields that changed (nothing when none did)."""
    return apply_update(TASKS, tasks, tasks.get_for_update(task_id), changes)


@transaction.atomic
def task_delete(*, task_id: str) -> None:
    """Delete a task with its subtasks and dependency edges (``task_not_found`` if none);
    the event names the subtasks that went with it."""
    task = tasks.get_for_update(task_id)
    events = TASKS.deleted(snapshot(task))
    tasks.delete(task.pk)
    record_all(events)


@transaction.atomic
def task_add_dependency(*, task_id: str, depends_on_id: str) -> models.Model:
    """``task_id`` may not start before ``depends_on_id`` completes; refused across
    initiatives (400), for a duplicate (409) or a cycle (409 ``dependency_cycle``).
    Returns the new edge."""
    return _add_dependency(TASK_DEPENDENCIES, task_id, depends_on_id)


@transaction.atomic
def task_remove_dependency(*, task_id: str, depends_on_id: str) -> None:
    """Remove an edge (404 ``dependency_not_found`` when there is none)."""
    _remove_dependency(TASK_DEPENDENCIES, task_id, depends_on_id)


def _add_dependency(feed: DependencyFeed, node_id: str, depends_on_id: str) -> models.Model:
    """One rule for phases and tasks: create the edge, then record ``dependency.added``."""
    edge = feed.repository.create_dependency(node_id, depends_on_id)
    feed.edge("dependency.added", node_id, depends_on_id).record()
    return edge


def _remove_dependency(feed: DependencyFeed, node_id: str, depends_on_id: str) -> None:
    """Remove the edge (``dependency_not_found`` when there is none), then record
    ``dependency.removed``."""
    feed.repository.require(node_id)
    if not feed.repository.remove_dependency(node_id, depends_on_id):
        raise NotFound(
            f"The {feed.subject} '{node_id}' does not depend on '{depends_on_id}'.",
            code="dependency_not_found",
            details={"id": node_id, "depends_on_id": depends_on_id},
        )
    feed.edge("dependency.removed", node_id, depends_on_id).record()


# --- pages -----------------------------------------------------------------------------


def _root_page(initiative_id: str) -> tuple[Page, list[PendingEvent]]:
    """The initiative's root page, created when missing, with the event of its creation
    (none when it was there). The caller holds the initiative's lock, so no one else
    creates it meanwhile."""
    root = pages.find_root_page(initiative_id)
    if root is not None:
        return root, []
    root = pages.get_or_create_root_page(initiative_id)
    return root, PAGES.created(snapshot(root))


@transaction.atomic
def page_get_or_create_root(*, initiative_id: str) -> Page:
    """The initiative's root page, created (titled after the initiative) when missing;
    records ``page.created`` when it creates it."""
    initiatives.get_for_update(initiative_id)
    root, events = _root_page(initiative_id)
    record_all(events)
    return root


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
    ``page_parent_other_initiative`` otherwise), or under the root (created when missing);
    records ``page.created`` (the root's first when it creates it)."""
    initiatives.get_for_update(initiative_id)
    events: list[PendingEvent] = []
    if parent_page_id is None:
        root, events = _root_page(initiative_id)
        parent_page_id = root.pk
    extra: dict[str, Any] = {} if sort_order is None else {"sort_order": sort_order}
    page = pages.create(
        initiative_id=initiative_id,
        parent_page_id=parent_page_id,
        title=title,
        content=content,
        **extra,
    )
    record_all([*events, *PAGES.created(snapshot(page))])
    return page


def _change_page(page_id: str, changes: PageChanges) -> Page:
    return apply_update(PAGES, pages, pages.get_for_update(page_id), changes)


@transaction.atomic
def page_update(*, page_id: str, **changes: Unpack[PageChanges]) -> Page:
    """Change a page's title, content, order or parent (see ``page_move``); records
    ``page.updated`` with the fields that changed, ``page.moved`` when its place did."""
    return _change_page(page_id, changes)


@transaction.atomic
def page_move(*, page_id: str, parent_page_id: str, sort_order: int | None = None) -> Page:
    """Place a page under another page of its initiative; the root stays the root and a
    page never goes under itself (400 ``page_root_fixed`` / ``page_parent_cycle``).
    Records ``page.moved`` (nothing when it is where it was)."""
    changes: PageChanges = {"parent_page_id": parent_page_id}
    if sort_order is not None:
        changes["sort_order"] = sort_order
    return _change_page(page_id, changes)


@transaction.atomic
def page_delete(*, page_id: str) -> None:
    """Delete a page with the pages under it (``page_not_found`` if none); the event
    names the pages that went with it."""
    page = pages.get_for_update(page_id)
    events = PAGES.deleted(snapshot(page))
    pages.delete(page.pk)
    record_all(events)


# --- projects --------------------------------------------------------------------------


@transaction.atomic
def project_create(*, name: str, url: str, default_branch: str | None = None) -> Project:
    """Register a git repository (its name and URL are unique: 409 otherwise)."""
    if default_branch is None:
        project = projects.create(name=name, url=url)
    else:
        project = projects.create(name=name, url=url, default_branch=default_branch)
    record_all(PROJECTS.created(snapshot(project)))
    return project


@transaction.atomic
def project_update(*, project_id: str, **changes: Unpack[ProjectChanges]) -> Project:
    """Change a project's fields; records ``project.updated`` with those that changed."""
    return apply_update(PROJECTS, projects, projects.get_for_update(project_id), changes)


@transaction.atomic
def project_delete(*, project_id: str) -> None:
    """Delete a project and its links to initiatives (``project_not_found`` if none);
    the event names the initiatives that used it."""
    project = projects.get_for_update(project_id)
    events = PROJECTS.deleted(snapshot(project))
    projects.delete(project.pk)
    record_all(events)


@transaction.atomic
def project_mark_fetched(*, project_id: str) -> Project:
    """Record that the repository was just fetched (``project.fetched``)."""
    project = projects.update(projects.get_for_update(project_id), last_fetched_at=timezone.now())
    PendingEvent("project.fetched", "project", project.pk, None).record()
    return project


def project_fetch(*, project_id: str) -> Project:
    """Fetch the project's repository into cw's mirror (``core.mirrors``), then record
    it as fetched (``project.fetched``). The fetch runs outside any transaction and
    never waits behind another fetch of the same mirror: when one is under way, it
    stands for this one (nothing is fetched or recorded twice). 409
    ``project_fetch_failed`` with git's reason when it fails (nothing is recorded); a
    password in the URL is never repeated."""
    project = projects.get(project_id)
    try:
        fetched = mirrors.fetch(project)
    except mirrors.MirrorError as error:
        url = mirrors.shown_url(project.url)
        reason = str(error).replace(project.url, url)
        raise Conflict(
            f"Could not fetch '{project}' from {url}: {reason}",
            code="project_fetch_failed",
            details={"id": project.pk, "reason": reason},
        ) from None
    return project_mark_fetched(project_id=project.pk) if fetched else project


def _record_projects_changed(initiative_id: str, added: list[str], removed: list[str]) -> None:
    PendingEvent(
        "initiative.projects_changed",
        "initiative",
        initiative_id,
        initiative_id,
        {"added": added, "removed": removed},
    ).record()


@transaction.atomic
def initiative_project_create(*, initiative_id: str, project_id: str) -> InitiativeProject:
    """Link one project to an initiative (a second link of the pair is 409); records
    ``initiative.projects_changed``."""
    initiatives.get_for_update(initiative_id)
    link = project_links.create(initiative_id=initiative_id, project_id=project_id)
    _record_projects_changed(initiative_id, [project_id], [])
    return link


@transaction.atomic
def initiative_project_delete(*, initiative_project_id: str) -> None:
    """Remove one link between an initiative and a project
    (``initiative_project_not_found`` when there is none); records
    ``initiative.projects_changed``."""
    link = project_links.get(initiative_project_id)
    initiatives.get_for_update(link.initiative_id)
    project_links.delete(link.pk)
    _record_projects_changed(link.initiative_id, [], [link.project_id])


@transaction.atomic
def initiative_set_projects(*, initiative_id: str, project_ids: Iterable[str]) -> list[Project]:
    """Make the initiative's projects exactly ``project_ids`` (links diffed, not
    rewritten); records ``initiative.projects_changed`` with the projects linked and
    unlinked (nothing when the links were already so)."""
    initiatives.get_for_update(initiative_id)
    before = [project.pk for project in projects.find_projects_by_initiative_id(initiative_id)]
    linked = projects.set_initiative_projects(initiative_id, project_ids)
    after = [project.pk for project in linked]
    added = [pk for pk in after if pk not in before]
    removed = sorted(pk for pk in before if pk not in after)
    if added or removed:
        _record_projects_changed(initiative_id, sorted(added), removed)
    return linked
