from django.contrib import admin

from core import services
from core.admin_base import DependencyAdmin, RepositoryAdmin, service_action
from core.models import (
    ApiToken,
    Event,
    Initiative,
    InitiativeProject,
    Page,
    Phase,
    PhaseDependency,
    Project,
    Task,
    TaskDependency,
)
from core.repositories import (
    InitiativeProjectRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    TaskRepository,
)
from core.tokens import api_token_revoke


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
    list_filter = ("project",)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def write(self, form):
        data = form.cleaned_data
        return self.repository.create(
            initiative_id=data["initiative"].pk, project_id=data["project"].pk
        )


@admin.register(PhaseDependency)
class PhaseDependencyAdmin(DependencyAdmin):
    repository = PhaseRepository()
    edge_fields = ("phase", "depends_on_phase")
    list_display = ("phase", "depends_on_phase", "created_at")
    list_select_related = ("phase", "depends_on_phase")


@admin.register(TaskDependency)
class TaskDependencyAdmin(DependencyAdmin):
    repository = TaskRepository()
    edge_fields = ("task", "depends_on_task")
    list_display = ("task", "depends_on_task", "created_at")
    list_select_related = ("task", "depends_on_task")


@admin.register(Page)
class PageAdmin(RepositoryAdmin):
    repository = PageRepository()
    list_display = ("title", "initiative", "parent_page", "sort_order", "updated_at")
    search_fields = ("title",)
    list_select_related = ("initiative", "parent_page")

    def get_readonly_fields(self, request, obj=None):
        return ("initiative",) if obj else ()


#: Lifecycle columns change only through the services (the actions below).
LIFECYCLE_FIELDS = ("status", "blocked_from_status")


@admin.register(Initiative)
class InitiativeAdmin(RepositoryAdmin):
    repository = InitiativeRepository()
    list_display = ("name", "status", "execution_mode", "branch", "created_at")
    list_filter = ("status", "execution_mode")
    search_fields = ("name", "branch")
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


@admin.register(Phase)
class PhaseAdmin(RepositoryAdmin):
    repository = PhaseRepository()
    list_display = ("name", "initiative", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    list_select_related = ("initiative",)
    readonly_fields = LIFECYCLE_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return (*LIFECYCLE_FIELDS, "initiative") if obj else LIFECYCLE_FIELDS

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


@admin.register(Task)
class TaskAdmin(RepositoryAdmin):
    repository = TaskRepository()
    list_display = ("name", "phase", "type", "category", "priority", "status", "created_at")
    list_filter = ("status", "type", "category", "priority")
    search_fields = ("name", "description")
    list_select_related = ("phase",)
    readonly_fields = LIFECYCLE_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return (*LIFECYCLE_FIELDS, "initiative") if obj else LIFECYCLE_FIELDS

    actions = (
        service_action(
            services.task_complete,
            id_argument="task_id",
            description="Complete (checkpoints: as me)",
            pass_actor=True,
        ),
        service_action(services.task_block, id_argument="task_id", description="Block"),
        service_action(services.task_unblock, id_argument="task_id", description="Unblock"),
    )


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
