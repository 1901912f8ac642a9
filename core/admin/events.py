"""The event feed, read-only."""

from django.contrib import admin

from core.models import Event


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
