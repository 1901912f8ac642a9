"""Tasks: whether each is ready, in the list and on its page, with its neighbours,
subtasks and context, and a button for each lifecycle step."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest

from core import services
from core.actors import Actor
from core.admin.choices import (
    CHOICE_SEPARATOR,
    PlanChoicesAdmin,
    choice_queryset,
    editing_id,
    editing_initiative_id,
    shortened,
)
from core.admin.filters import InitiativeListFilter, PhaseListFilter, ReadyListFilter
from core.admin.plan_pages import LIFECYCLE_FIELDS, linked, status_in
from core.admin_base import (
    MESSAGE_NAME_CHARACTERS,
    Button,
    ButtonsAdmin,
    Writes,
    add_url,
    change_url,
    service_action,
    service_button,
)
from core.models import Phase, Task, TaskDependency, TaskStatus, TaskType
from core.repositories import TaskRepository, plans
from core.text import shorten

tasks = TaskRepository()


def _completable(task: Task) -> bool:
    if task.type == TaskType.AUTO:
        return task.status == TaskStatus.IN_PROGRESS
    return task.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


def _not_ready(task: Task) -> str | None:
    """Why a pending task may not start (or a pending checkpoint be completed) yet."""
    if task.status != TaskStatus.PENDING:
        return None
    return services.task_not_ready_reason(task=task)


def _draft_key(task: Task) -> str:
    """Where the session keeps the summary typed on a task's page until it is stored."""
    return f"cw-task-summary:{task.pk}"


def _complete(request: HttpRequest, task: Task) -> str:
    """Complete the task with the summary (a checkpoint's decision) typed on its page.

    The text is kept in the person's session until the completion succeeds, so a
    refusal (not ready yet, completed meanwhile) comes back to a page that still holds
    it; a blank summary stores none.
    """
    summary = request.POST.get("summary", "").strip()
    request.session[_draft_key(task)] = summary
    services.task_complete(
        task_id=task.pk, summary=summary or None, actor=Actor.person(request.user)
    )
    request.session.pop(_draft_key(task), None)
    name = shorten(str(task), MESSAGE_NAME_CHARACTERS)
    return f"Complete: done for task '{name}'."


TASK_BUTTONS: tuple[Button, ...] = (
    service_button(
        "start",
        "Start",
        services.task_start,
        id_argument="task_id",
        shown=lambda task: task.status == TaskStatus.PENDING and task.type == TaskType.AUTO,
        style="default",
        refusal=_not_ready,
    ),
    # Offered in the page's own panel, with the summary's (a decision's) text field.
    Button("complete", "Complete", _complete, shown=lambda task: False),
    service_button(
        "block",
        "Block",
        services.task_block,
        id_argument="task_id",
        shown=status_in(TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
    ),
    service_button(
        "unblock",
        "Unblock",
        services.task_unblock,
        id_argument="task_id",
        shown=status_in(TaskStatus.BLOCKED),
    ),
)


@admin.register(Task)
class TaskAdmin(ButtonsAdmin, PlanChoicesAdmin):
    writes = Writes(
        "task_id",
        create=services.task_create,
        update=services.task_update,
        delete=services.task_delete,
    )
    list_display = ("short_name", "place", "status", "ready", "type", "priority", "created_at")
    list_filter = (
        InitiativeListFilter,
        PhaseListFilter,
        ReadyListFilter,
        "status",
        "type",
        "category",
        "priority",
    )
    search_fields = ("name", "description")
    list_select_related = ("phase", "initiative")
    autocomplete_fields = ("initiative", "phase", "parent_task")
    date_hierarchy = "created_at"
    #: A task's summary is what completing it said (the ``complete`` button's field).
    readonly_fields = (*LIFECYCLE_FIELDS, "summary")
    buttons = TASK_BUTTONS
    actions = (
        service_action(
            services.task_start, id_argument="task_id", description="Start", pass_actor=True
        ),
        service_action(
            services.task_complete,
            id_argument="task_id",
            description="Complete (checkpoints: as me)",
            pass_actor=True,
        ),
        service_action(services.task_block, id_argument="task_id", description="Block"),
        service_action(services.task_unblock, id_argument="task_id", description="Unblock"),
    )

    def get_queryset(self, request):
        return tasks.with_ready(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "initiative") if obj else self.readonly_fields

    def get_autocomplete_fields(self, request):
        # A task's phase is one of its own initiative's few phases: a plain dropdown.
        if editing_id(request):
            return tuple(name for name in self.autocomplete_fields if name != "phase")
        return self.autocomplete_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        task_id = editing_id(request)
        if task_id and db_field.name in ("phase", "parent_task"):
            initiative_id = editing_initiative_id(request, tasks.initiative_id_of)
            related = Phase if db_field.name == "phase" else Task
            queryset = choice_queryset(related).filter(initiative_id=initiative_id)
            if related is Task:
                queryset = queryset.exclude(pk=task_id)
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="name", ordering="name")
    def short_name(self, task: Task) -> str:
        return shortened(task.name)

    @admin.display(description="initiative and phase", ordering="initiative__name")
    def place(self, task: Task) -> str:
        names = [record.name for record in (task.initiative, task.phase) if record is not None]
        return CHOICE_SEPARATOR.join(shortened(name) for name in names) if names else "—"

    @admin.display(description="ready", boolean=True, ordering="is_ready")
    def ready(self, task: Any) -> bool:
        return task.is_ready

    def change_view(self, request, object_id, form_url="", extra_context=None):
        task = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if task is not None and self.has_view_or_change_permission(request, task):
            context = {**self.plan_context(request, task), **context}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def plan_context(self, request: HttpRequest, task: Any) -> dict[str, Any]:
        """The task's neighbours both ways, its subtasks and its context (the summaries
        of what it depends on), and the buttons that apply."""
        plan = plans.task_plan(task.pk)
        return {
            "plan_add_dependency_url": add_url(TaskDependency, back=task, task=task.pk)
            if request.user.has_perm("core.add_taskdependency")
            else None,
            "plan_add_subtask_url": add_url(
                Task,
                back=task,
                initiative=task.initiative_id,
                phase=task.phase_id,
                parent_task=task.pk,
            )
            if request.user.has_perm("core.add_task")
            else None,
            "plan_completable": _completable(task),
            "plan_complete_refusal": _not_ready(task) if task.type != TaskType.AUTO else None,
            "plan_summary_draft": request.session.get(_draft_key(task), ""),
            "plan_ready": task.is_ready,
            "plan_initiative": {"record": task.initiative, "url": change_url(task.initiative)}
            if task.initiative_id
            else None,
            "plan_phase": {"record": task.phase, "url": change_url(task.phase)}
            if task.phase_id
            else None,
            "plan_depends_on": linked(plan.depends_on),
            "plan_dependents": linked(plan.dependents),
            "plan_subtasks": linked(plan.subtasks),
            "plan_context": [
                {"entry": entry, "url": change_url(Task, entry.task_id)}
                for entry in services.task_context(task_id=task.pk)
            ],
        }
