"""Initiatives: their progress in the list, and a page with their phases, pages, projects
and dependency pictures (the picture alone at ``<initiative>/graph/``)."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from core import services
from core.admin.choices import PlanChoicesAdmin, shortened
from core.admin.plan_pages import phase_graph_svg, task_graph_svg
from core.admin_base import Button, ButtonsAdmin, Writes, change_url, service_action, service_button
from core.graphs import GraphNode, render_svg
from core.models import Initiative, InitiativeStatus, Phase, PhaseStatus
from core.repositories import PhaseRepository, TaskRepository, plans

phases = PhaseRepository()
tasks = TaskRepository()


INITIATIVE_BUTTONS: tuple[Button, ...] = (
    service_button(
        "approve",
        "Approve",
        services.initiative_approve,
        id_argument="initiative_id",
        shown=lambda initiative: initiative.status == InitiativeStatus.PENDING_REVIEW,
        pass_actor=True,
        style="default",
        refusal=lambda initiative: services.initiative_approve_refusal(initiative=initiative),
    ),
    service_button(
        "archive",
        "Archive",
        services.initiative_archive,
        id_argument="initiative_id",
        shown=lambda initiative: initiative.status != InitiativeStatus.ARCHIVED,
    ),
)


@admin.register(Initiative)
class InitiativeAdmin(ButtonsAdmin, PlanChoicesAdmin):
    writes = Writes(
        "initiative_id",
        create=services.initiative_create,
        update=services.initiative_update,
        delete=services.initiative_delete,
    )
    buttons = INITIATIVE_BUTTONS
    list_display = ("short_name", "status", "phases_done", "tasks_done", "execution_mode", "branch")
    list_filter = ("status", "execution_mode")
    search_fields = ("name", "branch")
    date_hierarchy = "created_at"
    # The retry policy is shown here and set through the run services' settings, which
    # come with the runs' admin (issue 21); the form never writes it.
    readonly_fields = ("status", "max_attempts", "retry_backoff_seconds")
    actions = (
        service_action(
            services.initiative_approve,
            id_argument="initiative_id",
            description="Approve",
            pass_actor=True,
        ),
        service_action(
            services.initiative_archive, id_argument="initiative_id", description="Archive"
        ),
    )

    def get_queryset(self, request):
        return plans.with_plan_progress(super().get_queryset(request))

    @admin.display(description="name", ordering="name")
    def short_name(self, initiative: Initiative) -> str:
        return shortened(initiative.name)

    @admin.display(description="phases done")
    def phases_done(self, initiative: Any) -> str:
        return f"{initiative.phase_done} / {initiative.phase_total}"

    @admin.display(description="tasks done")
    def tasks_done(self, initiative: Any) -> str:
        return f"{initiative.task_done} / {initiative.task_total}"

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/graph/",
                self.admin_site.admin_view(self.graph_view),
                name=f"{opts.app_label}_{opts.model_name}_graph",
            ),
            *super().get_urls(),
        ]

    def _get_viewable(self, request: HttpRequest, object_id: str) -> Initiative:
        initiative = self.get_object(request, unquote(object_id))
        if initiative is None:
            raise Http404("No initiative with this id.")
        if not self.has_view_or_change_permission(request, initiative):
            raise PermissionDenied
        return initiative

    def _chosen_phase(self, request: HttpRequest, initiative: Initiative) -> Phase | None:
        phase_id = request.GET.get("phase")
        if not phase_id:
            return None
        phase = phases.find_in_initiative(phase_id, initiative.pk)
        if phase is None:
            raise Http404("No phase with this id in this initiative.")
        return phase

    def graph_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The initiative's phase graph as an SVG document; ``?phase=<id>``: that
        phase's task graph."""
        initiative = self._get_viewable(request, object_id)
        phase = self._chosen_phase(request, initiative)
        if phase is None:
            svg = phase_graph_svg(initiative, phases.find_by_initiative_id(initiative.pk))
        else:
            svg = task_graph_svg(phase, tasks.find_by_phase_id(phase.pk))
        return HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        initiative = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if initiative is not None and self.has_view_or_change_permission(request, initiative):
            context = {**self.plan_context(request, initiative), **context}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def plan_context(self, request: HttpRequest, initiative: Initiative) -> dict[str, Any]:
        """What the initiative's page shows around its form: phases, pages, projects and
        the dependency pictures (a fixed number of queries whatever the plan's size)."""
        plan = plans.initiative_plan(initiative.pk)
        chosen = self._chosen_phase(request, initiative)
        graph_url = reverse("admin:core_initiative_graph", args=[quote(initiative.pk)])
        nodes = [
            GraphNode(row.phase.pk, row.phase.name, row.phase.status, change_url(row.phase))
            for row in plan.phases
        ]
        return {
            "plan_phases": [
                {
                    "phase": row.phase,
                    "url": change_url(row.phase),
                    "depends_on": row.depends_on,
                    "done": row.done,
                    "total": row.total,
                    "graph_url": f"?phase={quote(row.phase.pk)}",
                }
                for row in plan.phases
            ],
            "plan_pages": [
                {"page": entry.page, "url": change_url(entry.page), "indent": entry.depth}
                for entry in plan.pages
            ],
            "plan_projects": [
                {"project": project, "url": change_url(project)} for project in plan.projects
            ],
            "phase_graph": mark_safe(  # noqa: S308 - render_svg escapes every text
                render_svg(
                    nodes,
                    plan.phase_edges,
                    title=f"Phases of {initiative.name}",
                    statuses=PhaseStatus.choices,
                )
            ),
            "phase_graph_url": graph_url,
            "chosen_phase": chosen,
            "task_graph": mark_safe(  # noqa: S308 - render_svg escapes every text
                task_graph_svg(chosen, tasks.find_by_phase_id(chosen.pk))
            )
            if chosen
            else None,
            "task_graph_url": f"{graph_url}?phase={quote(chosen.pk)}" if chosen else None,
        }
