"""The edges of the phase and task dependency graphs."""

from django.contrib import admin

from core import services
from core.admin.choices import PlanChoicesAdmin, shortened
from core.admin_base import DependencyAdmin
from core.models import PhaseDependency, TaskDependency


@admin.register(PhaseDependency)
class PhaseDependencyAdmin(PlanChoicesAdmin, DependencyAdmin):
    add_edge = staticmethod(services.phase_add_dependency)
    remove_edge = staticmethod(services.phase_remove_dependency)
    edge_fields = ("phase", "depends_on_phase")
    list_display = ("__str__", "initiative", "created_at")
    list_select_related = ("phase__initiative", "depends_on_phase")
    autocomplete_fields = ("phase", "depends_on_phase")
    search_fields = ("phase__name", "depends_on_phase__name")

    @admin.display(description="initiative", ordering="phase__initiative__name")
    def initiative(self, edge: PhaseDependency) -> str:
        return shortened(edge.phase.initiative.name)


@admin.register(TaskDependency)
class TaskDependencyAdmin(PlanChoicesAdmin, DependencyAdmin):
    add_edge = staticmethod(services.task_add_dependency)
    remove_edge = staticmethod(services.task_remove_dependency)
    edge_fields = ("task", "depends_on_task")
    list_display = ("__str__", "initiative", "created_at")
    list_select_related = ("task__initiative", "depends_on_task")
    autocomplete_fields = ("task", "depends_on_task")
    search_fields = ("task__name", "depends_on_task__name")

    @admin.display(description="initiative", ordering="task__initiative__name")
    def initiative(self, edge: TaskDependency) -> str:
        return shortened(edge.task.initiative.name if edge.task.initiative else "")
