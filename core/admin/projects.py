"""Projects (repositories an initiative works on) and the links between initiatives and
projects."""

from django.contrib import admin
from django.contrib.admin.utils import unquote

from core import mirrors, services
from core.admin.filters import InitiativeListFilter
from core.admin_base import ButtonsAdmin, ServiceAdmin, Writes, service_button
from core.models import InitiativeProject, Project

FETCH = service_button(
    "fetch",
    "Fetch now",
    services.project_fetch,
    id_argument="project_id",
    done=lambda project, _result: (
        f"Fetched '{project}' into cw's mirror: its phases' diffs read the latest commits."
    ),
)


@admin.register(Project)
class ProjectAdmin(ButtonsAdmin, ServiceAdmin):
    """A project's page fetches its repository into cw's mirror ("Fetch now"), which
    the phases' review pages read their diffs from."""

    buttons = (FETCH,)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {"mirrored": mirrors.exists(unquote(object_id)), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

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
