"""Projects (repositories an initiative works on) and the links between initiatives and
projects."""

from django.contrib import admin

from core.admin.filters import InitiativeListFilter
from core.admin_base import RepositoryAdmin
from core.models import InitiativeProject, Project
from core.repositories import InitiativeProjectRepository, ProjectRepository


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
