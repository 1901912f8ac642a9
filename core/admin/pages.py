"""An initiative's pages, a tree under one root."""

from django.contrib import admin

from core import services
from core.admin.choices import editing_id, editing_initiative_id, shortened
from core.admin.filters import InitiativeListFilter
from core.admin.markdown import MarkdownContentAdmin
from core.admin_base import ServiceAdmin, Writes
from core.models import Page
from core.repositories import PageRepository

pages = PageRepository()


@admin.register(Page)
class PageAdmin(MarkdownContentAdmin, ServiceAdmin):
    """Pages, their content written as markdown and read rendered (``core.admin.markdown``)."""

    writes = Writes(
        "page_id",
        create=services.page_create,
        update=services.page_update,
        delete=services.page_delete,
    )
    list_display = ("short_title", "initiative", "parent_page", "sort_order", "updated_at")
    list_filter = (InitiativeListFilter,)
    search_fields = ("title", "initiative__name")
    list_select_related = ("initiative", "parent_page")
    autocomplete_fields = ("initiative", "parent_page")

    @admin.display(description="title", ordering="title")
    def short_title(self, page: Page) -> str:
        return shortened(page.title)

    def get_readonly_fields(self, request, obj=None):
        return ("initiative",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        page_id = editing_id(request)
        if db_field.name == "parent_page" and page_id:
            initiative_id = editing_initiative_id(request, pages.initiative_id_of)
            kwargs["queryset"] = Page.objects.filter(initiative_id=initiative_id).exclude(
                pk=page_id
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
