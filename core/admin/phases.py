"""Phases: their progress in the list, and a page with their neighbours, tasks and task
picture, and a button for each lifecycle step."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import mark_safe

from core import services
from core.admin.choices import PlanChoicesAdmin, shortened
from core.admin.filters import InitiativeListFilter
from core.admin.markdown import MarkdownContentAdmin
from core.admin.plan_pages import LIFECYCLE_FIELDS, linked, status_in, task_graph_svg
from core.admin_base import (
    Button,
    ButtonsAdmin,
    Writes,
    add_url,
    change_url,
    live_feed,
    service_action,
    service_button,
)
from core.events import event_last_id
from core.models import Phase, PhaseDependency, PhaseStatus, Task, TaskDependency
from core.repositories import PhaseRepository, plans

phases = PhaseRepository()


PHASE_BUTTONS: tuple[Button, ...] = (
    service_button(
        "approve-plan",
        "Approve the plan",
        services.phase_approve_plan,
        id_argument="phase_id",
        shown=status_in(PhaseStatus.PENDING),
        pass_actor=True,
        style="default",
    ),
    service_button(
        "start",
        "Start",
        services.phase_start,
        id_argument="phase_id",
        shown=status_in(PhaseStatus.APPROVED),
        refusal=lambda phase: services.phase_refusal(phase=phase, action="start"),
    ),
    service_button(
        "approve",
        "Approve the review",
        services.phase_approve,
        id_argument="phase_id",
        shown=status_in(PhaseStatus.PENDING_REVIEW),
        pass_actor=True,
        style="default",
        refusal=lambda phase: services.phase_refusal(phase=phase, action="approve"),
    ),
    service_button(
        "complete",
        "Complete (all tasks done)",
        services.phase_complete,
        id_argument="phase_id",
        shown=status_in(PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS),
        refusal=lambda phase: services.phase_refusal(phase=phase, action="complete"),
    ),
    service_button(
        "block",
        "Block",
        services.phase_block,
        id_argument="phase_id",
        shown=lambda phase: phase.status not in (PhaseStatus.COMPLETED, PhaseStatus.BLOCKED),
    ),
    service_button(
        "unblock",
        "Unblock",
        services.phase_unblock,
        id_argument="phase_id",
        shown=status_in(PhaseStatus.BLOCKED),
    ),
)


def phase_standing(phase: Phase, depends_on: list[Phase]) -> str:
    """Where the phase stands, in a sentence fit for its status (and, before it is under
    way, for the phases it still waits for)."""
    waiting = [f"'{p.name}'" for p in depends_on if p.status != PhaseStatus.COMPLETED]
    after = (
        f", once {', '.join(waiting)} {'is' if len(waiting) == 1 else 'are'} completed"
        if waiting
        else ""
    )
    status = phase.status
    if status == PhaseStatus.PENDING:
        return (
            "Its plan waits for a person's approval; its tasks may start once it is "
            f"approved{after}."
        )
    if status == PhaseStatus.APPROVED:
        return f"Its plan is approved: its tasks may start{after or ' now'}."
    if status == PhaseStatus.IN_PROGRESS:
        return "Its tasks are under way; it finishes when its last task completes."
    if status == PhaseStatus.PENDING_REVIEW:
        return (
            "Its tasks are all done: it waits for a person to review it (approve it, or "
            "request changes)."
        )
    if status == PhaseStatus.COMPLETED:
        return "It is completed."
    before = (
        PhaseStatus(phase.blocked_from_status).label.lower() if phase.blocked_from_status else None
    )
    return f"It is blocked{f' (it was {before})' if before else ''}: unblock it to go on."


@admin.register(Phase)
class PhaseAdmin(MarkdownContentAdmin, ButtonsAdmin, PlanChoicesAdmin):
    """Phases, their description (``content``) written as markdown and read rendered."""

    content_label = "Description"
    writes = Writes(
        "phase_id",
        create=services.phase_create,
        update=services.phase_update,
        delete=services.phase_delete,
    )
    list_display = ("short_name", "initiative", "status", "tasks_done", "created_at")
    list_filter = (InitiativeListFilter, "status")
    search_fields = ("name", "initiative__name")
    list_select_related = ("initiative",)
    autocomplete_fields = ("initiative",)
    readonly_fields = LIFECYCLE_FIELDS
    buttons = PHASE_BUTTONS
    actions = tuple(
        service_action(fn, id_argument="phase_id", description=label, pass_actor=gate)
        for fn, label, gate in (
            (services.phase_approve_plan, "Approve the plan", True),
            (services.phase_start, "Start", False),
            (services.phase_approve, "Approve the review", True),
            (services.phase_block, "Block", False),
            (services.phase_unblock, "Unblock", False),
            (services.phase_complete, "Complete (all tasks done)", False),
        )
    )

    def get_queryset(self, request):
        return plans.with_task_progress(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return (*LIFECYCLE_FIELDS, "initiative") if obj else LIFECYCLE_FIELDS

    @admin.display(description="name", ordering="name")
    def short_name(self, phase: Phase) -> str:
        return shortened(phase.name)

    @admin.display(description="tasks done")
    def tasks_done(self, phase: Any) -> str:
        return f"{phase.task_done} / {phase.task_total}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        after = event_last_id()  # before the page is read: what it may miss, it hears
        phase = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if phase is not None and self.has_view_or_change_permission(request, phase):
            live = live_feed(
                after=after,
                initiative_id=phase.initiative_id,
                watch=phase.pk,
                notice="This phase changed since the page was read: its form may be out of date.",
            )
            context = {**self.plan_context(request, phase), "live": live, **context}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def plan_context(self, request: HttpRequest, phase: Phase) -> dict[str, Any]:
        """The phase's neighbours, its tasks (with whether each is ready) and their
        picture, and the buttons that apply (a fixed number of queries)."""
        plan = plans.phase_plan(phase.pk)
        may_add_task = request.user.has_perm("core.add_task")
        may_add_edge = request.user.has_perm("core.add_taskdependency")
        return {
            "plan_standing": phase_standing(phase, plan.depends_on),
            "plan_add_task_url": add_url(
                Task, back=phase, initiative=phase.initiative_id, phase=phase.pk
            )
            if may_add_task
            else None,
            "plan_add_phase_dependency_url": add_url(PhaseDependency, back=phase, phase=phase.pk)
            if request.user.has_perm("core.add_phasedependency")
            else None,
            "plan_initiative": {"record": phase.initiative, "url": change_url(phase.initiative)},
            "plan_depends_on": linked(plan.depends_on),
            "plan_dependents": linked(plan.dependents),
            "plan_tasks": [
                {
                    **link,
                    "add_dependency_url": add_url(
                        TaskDependency, back=phase, task=link["record"].pk
                    )
                    if may_add_edge
                    else None,
                }
                for link in linked(plan.tasks)
            ],
            "task_graph": mark_safe(  # noqa: S308 - render_svg escapes every text
                task_graph_svg(phase, plan.tasks)
            ),
            "task_graph_url": reverse(
                "admin:core_initiative_graph", args=[quote(phase.initiative_id)]
            )
            + f"?phase={quote(phase.pk)}",
        }
