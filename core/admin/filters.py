"""The plan's changelist filters: by initiative, by phase (of the chosen initiative), by
whether a task is ready now."""

from django.contrib import admin

from core.errors import NotFound
from core.repositories import InitiativeRepository, PhaseRepository

phases = PhaseRepository()


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
