"""The plan as its pages show it: read models of an initiative, a phase and a task over
the planning repositories, each a fixed number of queries whatever the plan's size.

The admin's record pages (``core.admin``) turn them into links and pictures; the rules
they show are the repositories' own (a task is ready by ``TaskRepository.ready_queryset``,
through ``TaskRepository.with_ready``). Progress is annotated as subqueries
(``with_task_progress``, ``with_plan_progress``), so a list of phases or initiatives
shows it at no cost per row.
"""

from dataclasses import dataclass

from django.db import models

from core.models import Initiative, Page, Phase, PhaseStatus, Project, Task, TaskStatus
from core.repositories.pages import PageRepository
from core.repositories.phases import PhaseRepository
from core.repositories.projects import ProjectRepository
from core.repositories.tasks import TaskRepository

phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()
projects = ProjectRepository()


def with_task_progress(queryset: models.QuerySet[Phase]) -> models.QuerySet[Phase]:
    """``queryset`` with ``task_total`` and ``task_done`` (completed) on every phase."""
    return queryset.annotate(
        task_total=tasks.count_per("phase_id"),
        task_done=tasks.count_per("phase_id", status=TaskStatus.COMPLETED),
    )


def with_plan_progress(queryset: models.QuerySet[Initiative]) -> models.QuerySet[Initiative]:
    """``queryset`` with ``phase_total``, ``phase_done``, ``task_total`` and ``task_done``
    (completed) on every initiative."""
    return queryset.annotate(
        phase_total=phases.count_per("initiative_id"),
        phase_done=phases.count_per("initiative_id", status=PhaseStatus.COMPLETED),
        task_total=tasks.count_per("initiative_id"),
        task_done=tasks.count_per("initiative_id", status=TaskStatus.COMPLETED),
    )


# --- an initiative -------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseProgress:
    """A phase of an initiative, how many of its tasks are done, and the names of the
    phases it depends on (sorted)."""

    phase: Phase
    depends_on: list[str]
    done: int
    total: int


@dataclass(frozen=True)
class PageEntry:
    """A page of an initiative's tree and how deep it is (0 for the root)."""

    page: Page
    depth: int


@dataclass(frozen=True)
class InitiativePlan:
    """An initiative's phases (oldest first) with their progress, its phase dependency
    edges (``(phase, phase it depends on)``), its page tree and its projects."""

    phases: list[PhaseProgress]
    phase_edges: list[tuple[str, str]]
    pages: list[PageEntry]
    projects: list[Project]


def initiative_plan(initiative_id: str) -> InitiativePlan:
    """The plan of the initiative ``initiative_id`` (four queries)."""
    rows = list(
        with_task_progress(phases.queryset().filter(initiative_id=initiative_id)).order_by(
            "created_at", "id"
        )
    )
    names = {phase.pk: phase.name for phase in rows}
    edges = phases.dependency_edges(initiative_id)
    depends_on: dict[str, list[str]] = {}
    for node, target in edges:
        depends_on.setdefault(node, []).append(names.get(target, target))
    page_rows = pages.find_tree(initiative_id)
    depth: dict[str, int] = {}
    for page in page_rows:
        depth[page.pk] = depth[page.parent_page_id] + 1 if page.parent_page_id in depth else 0
    return InitiativePlan(
        phases=[
            PhaseProgress(
                phase=phase,
                depends_on=sorted(depends_on.get(phase.pk, [])),
                done=phase.task_done,  # type: ignore[attr-defined]
                total=phase.task_total,  # type: ignore[attr-defined]
            )
            for phase in rows
        ],
        phase_edges=edges,
        pages=[PageEntry(page=page, depth=depth[page.pk]) for page in page_rows],
        projects=projects.find_projects_by_initiative_id(initiative_id),
    )


# --- a phase and a task --------------------------------------------------------------------


@dataclass(frozen=True)
class PhasePlan:
    """A phase's neighbours both ways and its tasks, each with ``is_ready``."""

    depends_on: list[Phase]
    dependents: list[Phase]
    tasks: list[Task]


def phase_plan(phase_id: str) -> PhasePlan:
    """The plan around the phase ``phase_id`` (three queries)."""
    return PhasePlan(
        tasks=list(tasks.with_ready(tasks.queryset().filter(phase_id=phase_id))),
        depends_on=phases.get_dependencies(phase_id),
        dependents=phases.get_dependents(phase_id),
    )


@dataclass(frozen=True)
class TaskPlan:
    """A task's neighbours both ways and its subtasks."""

    depends_on: list[Task]
    dependents: list[Task]
    subtasks: list[Task]


def task_plan(task_id: str) -> TaskPlan:
    """The plan around the task ``task_id`` (three queries)."""
    return TaskPlan(
        depends_on=tasks.get_dependencies(task_id),
        dependents=tasks.get_dependents(task_id),
        subtasks=tasks.find_by_parent_task_id(task_id),
    )
