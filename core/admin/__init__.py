"""The plan in the admin: initiatives, phases, tasks, pages, projects and their links.

Besides the forms (saved through the repositories) and the lifecycle actions (calling
the services), the plan's pages show what a person needs around a record, read-only:

- an initiative: its phases with their progress, its pages, its projects, and the
  picture of its phase dependency graph (and, with ``?phase=<id>``, of one phase's task
  graph), drawn on the server by ``core.graphs``; the picture alone is served at
  ``<initiative>/graph/`` (``?phase=<id>`` for a phase's tasks);
- a phase: what it depends on and what depends on it, its tasks and their picture;
- a task: its dependencies and dependents, its subtasks, and its context (the summaries
  of the tasks it depends on, ``services.task_context``).

Each page has a button for every lifecycle step that applies to the record's status
(``core.admin_base.service_button``): a POST to ``<record>/do/<step>/`` that calls the
same service as the changelist action and comes back with a message in words.
Everything that belongs to the agents or reviews apps (review comments, request changes,
the agents on a task) is added by ``operations.admin``, since core never imports them.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import truncatechars
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from core import services
from core.admin_base import (
    Button,
    ButtonsAdmin,
    RepositoryAdmin,
    change_url,
    service_action,
    service_button,
)
from core.admin_base import (
    OldDependencyAdmin as DependencyAdmin,
)
from core.errors import NotFound
from core.graphs import GraphNode, render_svg
from core.models import (
    ApiRateWindow,
    ApiToken,
    Event,
    Initiative,
    InitiativeProject,
    InitiativeStatus,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Project,
    Task,
    TaskDependency,
    TaskStatus,
    TaskType,
)
from core.repositories import (
    InitiativeProjectRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    TaskRepository,
    plans,
)
from core.tokens import api_token_revoke

phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()

#: How many characters of a name a list shows (the record's page shows all of it).
LIST_NAME_CHARACTERS = 60
#: Lifecycle columns change only through the services (the actions and buttons).
LIFECYCLE_FIELDS = ("status", "blocked_from_status")


# --- labels in words -----------------------------------------------------------------------


#: Between an initiative's name and its phase's or task's, in choices.
CHOICE_SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "


def choice_label(record: models.Model) -> str:
    """How a phase or task reads in a dropdown: its initiative's name, an angle quote,
    then its own name (the initiative loaded with it, so a list costs one query)."""
    initiative = getattr(record, "initiative", None)
    name = str(record)
    return f"{initiative.name}{CHOICE_SEPARATOR}{name}" if initiative is not None else name


class PlanChoiceField(forms.ModelChoiceField):
    """A choice of phase or task labelled with its initiative."""

    def label_from_instance(self, obj: models.Model) -> str:
        return choice_label(obj)


class PlanAutocompleteSelect(AutocompleteSelect):
    """The admin's autocomplete, asking ``PlanAutocompleteJsonView`` (on the target's
    admin) so the choices found are labelled with their initiative too."""

    def get_url(self) -> str:
        opts = self.field.remote_field.model._meta
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_choices")


class PlanAutocompleteJsonView(AutocompleteJsonView):
    """Django's autocomplete answer, each result labelled with ``choice_label``."""

    def get_queryset(self):
        return super().get_queryset().select_related("initiative")

    def serialize_result(self, obj, to_field_name):
        return {"id": str(getattr(obj, to_field_name)), "text": choice_label(obj)}


def _editing_id(request: HttpRequest) -> str | None:
    """The id of the record whose change form ``request`` is for, or None."""
    match = getattr(request, "resolver_match", None)
    if match is None or not (match.url_name or "").endswith("_change"):
        return None
    object_id = match.kwargs.get("object_id")
    return unquote(object_id) if object_id else None


def _editing_initiative_id(request: HttpRequest, find: Callable[[str], str | None]) -> Any:
    """The initiative of the record being edited (``find(record_id)``), looked up once
    per request however many fields ask (``None`` when not on a change form)."""
    record_id = _editing_id(request)
    if record_id is None:
        return None
    memo: dict[str, Any] = request.__dict__.setdefault("_cw_editing_initiative", {})
    if record_id not in memo:
        memo[record_id] = find(record_id)
    return memo[record_id]


class PlanChoicesAdmin(RepositoryAdmin):
    """Phase and task choices labelled with their initiative (``choice_label``), in
    dropdowns and autocompletes alike."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        target = db_field.remote_field.model
        if target in (Phase, Task):
            kwargs.setdefault("form_class", PlanChoiceField)
            if "queryset" not in kwargs:
                kwargs["queryset"] = target._default_manager.select_related("initiative")
            if db_field.name in self.get_autocomplete_fields(request) and "widget" not in kwargs:
                kwargs["widget"] = PlanAutocompleteSelect(
                    db_field, self.admin_site, using=kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_urls(self):
        opts = self.model._meta
        if self.model not in (Phase, Task):
            return super().get_urls()
        choices = PlanAutocompleteJsonView.as_view(admin_site=self.admin_site)
        return [
            path(
                "choices/",
                self.admin_site.admin_view(choices),
                name=f"{opts.app_label}_{opts.model_name}_choices",
            ),
            *super().get_urls(),
        ]


def _short(text: str | None) -> str:
    return truncatechars(text or "", LIST_NAME_CHARACTERS)


# --- changelist filters -------------------------------------------------------------------


class InitiativeListFilter(admin.SimpleListFilter):
    """By initiative (the same parameter as Django's own related filter, so links to
    ``?initiative__id__exact=<id>`` keep working)."""

    title = "initiative"
    parameter_name = "initiative__id__exact"

    def lookups(self, request, model_admin):
        return InitiativeRepository().names_by_name()

    def queryset(self, request, queryset):
        return queryset.filter(initiative_id=self.value()) if self.value() else queryset


class PhaseListFilter(admin.SimpleListFilter):
    """By phase: the phases of the initiative chosen in ``InitiativeListFilter`` (or of
    the chosen phase's), never every phase of every initiative."""

    title = "phase"
    parameter_name = "phase__id__exact"

    def lookups(self, request, model_admin):
        initiative_id = request.GET.get(InitiativeListFilter.parameter_name)
        phase_id = request.GET.get(self.parameter_name)
        if not initiative_id and phase_id:
            try:
                initiative_id = phases.initiative_id_of(phase_id)
            except NotFound:
                return []
        if not initiative_id:
            return []
        return phases.names_in_initiative(initiative_id)

    def queryset(self, request, queryset):
        return queryset.filter(phase_id=self.value()) if self.value() else queryset


class ReadyListFilter(admin.SimpleListFilter):
    """Ready now (for an agent, or for a person when a checkpoint) or not."""

    title = "ready"
    parameter_name = "ready"

    def lookups(self, request, model_admin):
        return (("yes", "Ready now"), ("no", "Not ready"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_ready=self.value() == "yes")
        return queryset


# --- projects and links --------------------------------------------------------------------


@admin.register(Project)
class ProjectAdmin(RepositoryAdmin):
    repository = ProjectRepository()
    list_display = ("name", "url", "default_branch", "last_fetched_at")
    search_fields = ("name", "url")


@admin.register(InitiativeProject)
class InitiativeProjectAdmin(RepositoryAdmin):
    """Links are added and removed, never edited (a link is just its pair)."""

    repository = InitiativeProjectRepository()
    list_display = ("__str__", "initiative", "project", "created_at")
    list_select_related = ("initiative", "project")
    list_filter = (InitiativeListFilter, "project")
    autocomplete_fields = ("initiative", "project")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def write(self, form):
        data = form.cleaned_data
        return self.repository.create(
            initiative_id=data["initiative"].pk, project_id=data["project"].pk
        )


@admin.register(PhaseDependency)
class PhaseDependencyAdmin(PlanChoicesAdmin, DependencyAdmin):
    repository = PhaseRepository()
    edge_fields = ("phase", "depends_on_phase")
    list_display = ("__str__", "initiative", "created_at")
    list_select_related = ("phase__initiative", "depends_on_phase")
    autocomplete_fields = ("phase", "depends_on_phase")
    search_fields = ("phase__name", "depends_on_phase__name")

    @admin.display(description="initiative", ordering="phase__initiative__name")
    def initiative(self, edge: PhaseDependency) -> str:
        return _short(edge.phase.initiative.name)


@admin.register(TaskDependency)
class TaskDependencyAdmin(PlanChoicesAdmin, DependencyAdmin):
    repository = TaskRepository()
    edge_fields = ("task", "depends_on_task")
    list_display = ("__str__", "initiative", "created_at")
    list_select_related = ("task__initiative", "depends_on_task")
    autocomplete_fields = ("task", "depends_on_task")
    search_fields = ("task__name", "depends_on_task__name")

    @admin.display(description="initiative", ordering="task__initiative__name")
    def initiative(self, edge: TaskDependency) -> str:
        return _short(edge.task.initiative.name if edge.task.initiative else "")


@admin.register(Page)
class PageAdmin(RepositoryAdmin):
    repository = pages
    list_display = ("short_title", "initiative", "parent_page", "sort_order", "updated_at")
    list_filter = (InitiativeListFilter,)
    search_fields = ("title", "initiative__name")
    list_select_related = ("initiative", "parent_page")
    autocomplete_fields = ("initiative", "parent_page")

    @admin.display(description="title", ordering="title")
    def short_title(self, page: Page) -> str:
        return _short(page.title)

    def get_readonly_fields(self, request, obj=None):
        return ("initiative",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        page_id = _editing_id(request)
        if db_field.name == "parent_page" and page_id:
            initiative_id = _editing_initiative_id(request, pages.initiative_id_of)
            kwargs["queryset"] = Page.objects.filter(initiative_id=initiative_id).exclude(
                pk=page_id
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- initiatives ---------------------------------------------------------------------------


def _phase_graph_svg(initiative: Initiative, phase_rows: list[Phase]) -> str:
    nodes = [GraphNode(p.pk, p.name, p.status, change_url(p)) for p in phase_rows]
    return render_svg(
        nodes,
        phases.dependency_edges(initiative.pk),
        title=f"Phases of {initiative.name}",
        statuses=PhaseStatus.choices,
    )


def _task_graph_svg(phase: Phase, task_rows: list[Task]) -> str:
    nodes = [GraphNode(t.pk, t.name, t.status, change_url(t)) for t in task_rows]
    return render_svg(
        nodes,
        tasks.dependency_edges(phase.initiative_id),
        title=f"Tasks of {phase.name}",
        statuses=TaskStatus.choices,
    )


INITIATIVE_BUTTONS: tuple[Button, ...] = (
    service_button(
        "approve",
        "Approve",
        services.initiative_approve,
        id_argument="initiative_id",
        shown=lambda initiative: initiative.status == InitiativeStatus.PENDING_REVIEW,
        pass_actor=True,
        style="default",
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
    repository = InitiativeRepository()
    buttons = INITIATIVE_BUTTONS
    list_display = ("short_name", "status", "phases_done", "tasks_done", "execution_mode", "branch")
    list_filter = ("status", "execution_mode")
    search_fields = ("name", "branch")
    date_hierarchy = "created_at"
    readonly_fields = ("status",)
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
        return _short(initiative.name)

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
            svg = _phase_graph_svg(initiative, phases.find_by_initiative_id(initiative.pk))
        else:
            svg = _task_graph_svg(phase, tasks.find_by_phase_id(phase.pk))
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
                _task_graph_svg(chosen, tasks.find_by_phase_id(chosen.pk))
            )
            if chosen
            else None,
            "task_graph_url": f"{graph_url}?phase={quote(chosen.pk)}" if chosen else None,
        }


# --- phases --------------------------------------------------------------------------------


def _status_in(*statuses: str) -> Callable[[Any], bool]:
    return lambda record: record.status in statuses


PHASE_BUTTONS: tuple[Button, ...] = (
    service_button(
        "approve-plan",
        "Approve the plan",
        services.phase_approve_plan,
        id_argument="phase_id",
        shown=_status_in(PhaseStatus.PENDING),
        pass_actor=True,
        style="default",
    ),
    service_button(
        "start",
        "Start",
        services.phase_start,
        id_argument="phase_id",
        shown=_status_in(PhaseStatus.APPROVED),
    ),
    service_button(
        "approve",
        "Approve the review",
        services.phase_approve,
        id_argument="phase_id",
        shown=_status_in(PhaseStatus.PENDING_REVIEW),
        pass_actor=True,
        style="default",
    ),
    service_button(
        "complete",
        "Complete (all tasks done)",
        services.phase_complete,
        id_argument="phase_id",
        shown=_status_in(PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS),
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
        shown=_status_in(PhaseStatus.BLOCKED),
    ),
)


def _linked(records: Iterable[models.Model]) -> list[dict[str, Any]]:
    return [{"record": record, "url": change_url(record)} for record in records]


@admin.register(Phase)
class PhaseAdmin(ButtonsAdmin, PlanChoicesAdmin):
    repository = phases
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
        return _short(phase.name)

    @admin.display(description="tasks done")
    def tasks_done(self, phase: Any) -> str:
        return f"{phase.task_done} / {phase.task_total}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        phase = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if phase is not None and self.has_view_or_change_permission(request, phase):
            context = {**self.plan_context(request, phase), **context}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def plan_context(self, request: HttpRequest, phase: Phase) -> dict[str, Any]:
        """The phase's neighbours, its tasks (with whether each is ready) and their
        picture, and the buttons that apply (a fixed number of queries)."""
        plan = plans.phase_plan(phase.pk)
        return {
            "plan_initiative": {"record": phase.initiative, "url": change_url(phase.initiative)},
            "plan_depends_on": _linked(plan.depends_on),
            "plan_dependents": _linked(plan.dependents),
            "plan_tasks": _linked(plan.tasks),
            "task_graph": mark_safe(  # noqa: S308 - render_svg escapes every text
                _task_graph_svg(phase, plan.tasks)
            ),
            "task_graph_url": reverse(
                "admin:core_initiative_graph", args=[quote(phase.initiative_id)]
            )
            + f"?phase={quote(phase.pk)}",
        }


# --- tasks ---------------------------------------------------------------------------------


def _completable(task: Task) -> bool:
    if task.type == TaskType.AUTO:
        return task.status == TaskStatus.IN_PROGRESS
    return task.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


TASK_BUTTONS: tuple[Button, ...] = (
    service_button(
        "start",
        "Start",
        services.task_start,
        id_argument="task_id",
        shown=lambda task: task.status == TaskStatus.PENDING and task.type == TaskType.AUTO,
        style="default",
    ),
    service_button(
        "complete",
        "Complete",
        services.task_complete,
        id_argument="task_id",
        shown=_completable,
        pass_actor=True,
        style="default",
    ),
    service_button(
        "block",
        "Block",
        services.task_block,
        id_argument="task_id",
        shown=_status_in(TaskStatus.PENDING, TaskStatus.IN_PROGRESS),
    ),
    service_button(
        "unblock",
        "Unblock",
        services.task_unblock,
        id_argument="task_id",
        shown=_status_in(TaskStatus.BLOCKED),
    ),
)


@admin.register(Task)
class TaskAdmin(ButtonsAdmin, PlanChoicesAdmin):
    repository = tasks
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
    readonly_fields = LIFECYCLE_FIELDS
    buttons = TASK_BUTTONS
    actions = (
        service_action(services.task_start, id_argument="task_id", description="Start"),
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
        return (*LIFECYCLE_FIELDS, "initiative") if obj else LIFECYCLE_FIELDS

    def get_autocomplete_fields(self, request):
        # A task's phase is one of its own initiative's few phases: a plain dropdown.
        if _editing_id(request):
            return tuple(name for name in self.autocomplete_fields if name != "phase")
        return self.autocomplete_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        task_id = _editing_id(request)
        if task_id and db_field.name in ("phase", "parent_task"):
            initiative_id = _editing_initiative_id(request, tasks.initiative_id_of)
            related = Phase if db_field.name == "phase" else Task
            queryset = related._default_manager.filter(initiative_id=initiative_id)
            if related is Task:
                queryset = queryset.exclude(pk=task_id)
            kwargs["queryset"] = queryset.select_related("initiative")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="name", ordering="name")
    def short_name(self, task: Task) -> str:
        return _short(task.name)

    @admin.display(description="initiative and phase", ordering="initiative__name")
    def place(self, task: Task) -> str:
        names = [record.name for record in (task.initiative, task.phase) if record is not None]
        return CHOICE_SEPARATOR.join(_short(name) for name in names) if names else "—"

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
            "plan_ready": task.is_ready,
            "plan_initiative": {"record": task.initiative, "url": change_url(task.initiative)}
            if task.initiative_id
            else None,
            "plan_phase": {"record": task.phase, "url": change_url(task.phase)}
            if task.phase_id
            else None,
            "plan_depends_on": _linked(plan.depends_on),
            "plan_dependents": _linked(plan.dependents),
            "plan_subtasks": _linked(plan.subtasks),
            "plan_context": [
                {"entry": entry, "url": reverse("admin:core_task_change", args=[entry.task_id])}
                for entry in services.task_context(task_id=task.pk)
            ],
        }


# --- tokens and events ---------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with ``manage.py create_api_token`` (which prints the token
    once); here people see them, never their hash, and revoke them."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by")
    list_select_related = ("created_by",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by")
    readonly_fields = fields
    actions = (
        service_action(api_token_revoke, id_argument="token_id_or_prefix", description="Revoke"),
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ApiRateWindow)
class ApiRateWindowAdmin(admin.ModelAdmin):
    """The API's write counters (``core.ratelimits``): who wrote how much this minute.
    Read-only; a caller's old windows go when its next one opens."""

    list_display = ("caller", "window_opened", "hits")
    search_fields = ("caller",)
    ordering = ("-window_start", "caller")
    readonly_fields = ("caller", "window_opened", "hits")
    fields = readonly_fields

    @admin.display(description="window opened", ordering="window_start")
    def window_opened(self, obj: ApiRateWindow) -> datetime:
        return datetime.fromtimestamp(obj.window_start, tz=UTC)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The event feed: what the services did, in commit order. Read-only history."""

    list_display = ("id", "kind", "subject_type", "subject_id", "initiative_id", "created_at")
    list_filter = ("kind", "subject_type")
    search_fields = ("subject_id", "initiative_id")
    date_hierarchy = "created_at"
    readonly_fields = (
        "id", "kind", "subject_type", "subject_id", "initiative_id", "data", "created_at"
    )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
