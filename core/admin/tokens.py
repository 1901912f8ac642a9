"""API tokens: listed and revoked here, created with ``manage.py create_api_token``."""

from django.contrib import admin

from core.admin_base import service_action
from core.models import ApiToken
from core.tokens import api_token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with ``manage.py create_api_token`` (which prints the token
    once); here people see them, never their hash, and revoke them."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by")
    list_select_related = ("created_by",)
    # A run's token (``run`` set) is made by take-next or a resume and dies with its run.
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), ("run", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by", "run")
    readonly_fields = fields
    actions = (
        service_action(api_token_revoke, id_argument="token_id_or_prefix", description="Revoke"),
    )

    def has_add_permission(self, request) -> bool:
        return False
