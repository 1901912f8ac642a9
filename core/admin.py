from django.contrib import admin, messages

from core.models import (
    ApiToken,
    Initiative,
    InitiativeProject,
    Page,
    Phase,
    PhaseDependency,
    Project,
    Task,
    TaskDependency,
)
from core.tokens import api_token_revoke

for model in (
    Initiative,
    Phase,
    PhaseDependency,
    Task,
    TaskDependency,
    Page,
    Project,
    InitiativeProject,
):
    admin.site.register(model)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with ``manage.py create_api_token`` (which prints the token
    once); here people see them, never their hash, and revoke them."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at", "created_by")
    readonly_fields = fields
    actions = ("revoke_tokens",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token_id_or_prefix=token.pk)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
