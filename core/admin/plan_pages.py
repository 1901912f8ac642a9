"""What the plan's record pages share: the lifecycle columns only the services change,
buttons shown by status, links to records, and the dependency pictures (``core.graphs``)."""

from collections.abc import Callable, Iterable
from typing import Any

from django.db import models

from core.admin_base import change_url
from core.graphs import GraphNode, render_svg
from core.models import Initiative, Phase, PhaseStatus, Task, TaskStatus
from core.repositories import PhaseRepository, TaskRepository

phases = PhaseRepository()
tasks = TaskRepository()

#: Lifecycle columns change only through the services (the actions and buttons).
LIFECYCLE_FIELDS = ("status", "blocked_from_status")


def status_in(*statuses: str) -> Callable[[Any], bool]:
    return lambda record: record.status in statuses


def linked(records: Iterable[models.Model]) -> list[dict[str, Any]]:
    return [{"record": record, "url": change_url(record)} for record in records]


def phase_graph_svg(initiative: Initiative, phase_rows: list[Phase]) -> str:
    nodes = [GraphNode(p.pk, p.name, p.status, change_url(p)) for p in phase_rows]
    return render_svg(
        nodes,
        phases.dependency_edges(initiative.pk),
        title=f"Phases of {initiative.name}",
        statuses=PhaseStatus.choices,
    )


def task_graph_svg(phase: Phase, task_rows: list[Task]) -> str:
    nodes = [GraphNode(t.pk, t.name, t.status, change_url(t)) for t in task_rows]
    return render_svg(
        nodes,
        tasks.dependency_edges(phase.initiative_id),
        title=f"Tasks of {phase.name}",
        statuses=TaskStatus.choices,
    )
