"""The API's write counters (``core.ratelimits``), read-only."""

from datetime import UTC, datetime

from django.contrib import admin

from core.models import ApiRateWindow


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
