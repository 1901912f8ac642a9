"""Projects (repositories an initiative works on) and the links between initiatives and
projects."""

from django.contrib import admin

from core import services
from core.admin.filters import InitiativeListFilter
from core.admin_base import ServiceAdmin, Writes
from core.models import InitiativeProject, Project


@admin.register(Project)
class ProjectAdmin(ServiceAdmin):
    writes = Writes(
        "project_id",
        create=services.project_create,
        update=services.project_update,
        delete=services.project_delete,
    )
    list_display = ("name", "url", "default_branch", "last_fetched_at")
    readonly_fields = ("last_fetched_at",)  # stamped by a fetch, never typed
    search_fields = ("name", "url")


@admin.register(InitiativeProject)
class InitiativeProjectAdmin(ServiceAdmin):
    """Links are added and removed, never edited (a link is just its pair)."""

    writes = Writes(
        "initiative_project_id",
        create=services.initiative_project_create,
        delete=services.initiative_project_delete,
    )
    list_display = ("__str__", "initiative", "project", "created_at")
    list_select_related = ("initiative", "project")
    list_filter = (InitiativeListFilter, "project")
    autocomplete_fields = ("initiative", "project")
