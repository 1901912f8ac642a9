"""The phase and task pages of ``core.admin``, with what the apps above core know about them.

Core never imports the agents or reviews apps, and these pages need both, so they are
completed here, in the top app: a phase's page shows its review comments grouped by
file with the review brief an agent would get, the agents that worked on its tasks, and
a "Request changes" button on a phase in review (``phase_request_changes``); a task's
page shows its runs and the agents that worked on it, with buttons to cancel its live
run and to requeue it with fresh attempts (``agents.admin_runs``). Phase and Task are
registered again with these subclasses (the admin's autodiscovery imports this module
after ``core.admin``, as ``operations`` comes after ``core`` in ``INSTALLED_APPS``).
"""

from collections.abc import Iterable
from itertools import groupby
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse

from agents import admin_runs
from agents.models import Agent
from agents.repositories import AgentRepository
from core.admin import PhaseAdmin, TaskAdmin
from core.admin_base import change_url, service_button
from core.models import Phase, PhaseStatus, Task
from operations import review_page
from reviews import services
from reviews.repositories import ReviewCommentRepository

agents = AgentRepository()
review_comments = ReviewCommentRepository()

REQUEST_CHANGES = service_button(
    "request-changes",
    "Request changes",
    services.phase_request_changes,
    id_argument="phase_id",
    shown=lambda phase: phase.status == PhaseStatus.PENDING_REVIEW,
    pass_actor=True,
    done=lambda phase, task: (
        f"Changes requested on '{phase}': the open comments were handed to the task "
        f"'{task}' (they are resolved when it completes), and the phase is in progress again."
    ),
    confirm=(
        "Request changes on '{record}'? Its open review comments go to an agent as one "
        "rework task, and the phase goes back in progress until that task is done."
    ),
    refusal=lambda phase: (
        None
        if review_comments.count_unresolved(phase.pk)
        else "No open review comment: comment on the lines to change first."
    ),
)


def _agent_rows(found: Iterable[Agent]) -> list[dict[str, Any]]:
    return [{"agent": agent, "url": change_url(agent)} for agent in found]


class ReviewedPhaseAdmin(PhaseAdmin):
    """``PhaseAdmin`` plus the phase's review (its own page, ``<phase>/review/``, with the
    diff: ``operations.review_page``) and the agents that worked on it."""

    change_form_template = "admin/core/phase/change_form_reviewed.html"
    buttons = (*PhaseAdmin.buttons, REQUEST_CHANGES)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="core_phase_review",
            ),
            *super().get_urls(),
        ]

    def review_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return review_page.review_view(self, request, unquote(object_id))

    def plan_context(self, request: HttpRequest, phase: Phase) -> dict[str, Any]:
        context = super().plan_context(request, phase)
        comments = review_comments.find_by_phase_id(phase.pk)
        by_file = [
            {"path": path, "comments": list(rows)}
            for path, rows in groupby(
                sorted(comments, key=lambda c: (c.file_path, c.line_number, c.created_at)),
                key=lambda c: c.file_path,
            )
        ]
        unresolved = [c for c in comments if not c.resolved]
        return {
            **context,
            "review_files": by_file,
            "review_unresolved": len(unresolved),
            "review_brief": services.render_brief(phase, unresolved),
            "review_comments_url": _comments_url(phase),
            "review_url": review_page.review_url(phase),
            "plan_agents": _agent_rows(agents.find_by_phase_id(phase.pk)),
        }


class WorkedTaskAdmin(TaskAdmin):
    """``TaskAdmin`` plus the task's runs and the agents that worked on it (a retried task
    has several), a button to cancel its live run (it asks first) and one to requeue it
    with fresh attempts when it is blocked or left in progress with no live run."""

    change_form_template = "admin/core/task/change_form_worked.html"
    buttons = (*TaskAdmin.buttons, admin_runs.CANCEL_TASK_RUN, admin_runs.REQUEUE_TASK)

    def plan_context(self, request: HttpRequest, task: Any) -> dict[str, Any]:
        context = super().plan_context(request, task)
        return {
            **context,
            "plan_agents": _agent_rows(agents.find_by_task_id(task.pk)),
            "plan_runs": admin_runs.task_runs(task),
        }


def _comments_url(phase: Phase) -> str:
    return reverse("admin:reviews_reviewcomment_changelist") + f"?phase__id__exact={phase.pk}"


admin.site.unregister(Phase)
admin.site.register(Phase, ReviewedPhaseAdmin)
admin.site.unregister(Task)
admin.site.register(Task, WorkedTaskAdmin)
