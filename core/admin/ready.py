"""The ready queue, read-only: what agents take next, in the order they take it."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.models import ReadyTask


@admin.register(ReadyTask)
class ReadyTaskAdmin(admin.ModelAdmin):
    """The tasks that may be taken now, in queue order (high priority first, then
    oldest). The repositories keep it current as the plan changes; nobody edits it."""

    list_display = ("task", "initiative", "phase", "priority", "checkpoint", "created_at")
    list_filter = ("checkpoint",)
    list_select_related = ("task__initiative", "task__phase")
    search_fields = ("task__name",)
    ordering = ("checkpoint", "rank", "created_at", "task_id")
    readonly_fields = ("task", "checkpoint", "rank", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReadyTask]:
        return super().get_queryset(request).select_related("task__initiative", "task__phase")

    @admin.display(description="initiative")
    def initiative(self, entry: ReadyTask) -> str:
        return str(entry.task.initiative or "—")

    @admin.display(description="phase")
    def phase(self, entry: ReadyTask) -> str:
        return str(entry.task.phase or "—")

    @admin.display(description="priority")
    def priority(self, entry: ReadyTask) -> str:
        return entry.task.get_priority_display()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
