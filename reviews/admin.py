from django.contrib import admin

from core.admin_base import RepositoryAdmin, service_action
from reviews import services
from reviews.models import (
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
    ChatSession,
    Proposal,
    ReviewComment,
)
from reviews.repositories import ChatSessionRepository, ReviewCommentRepository

admin.site.register(ChatMessage)


@admin.register(ChatSession)
class ChatSessionAdmin(RepositoryAdmin):
    """At most one active session per target: the repository refuses a second one."""

    repository = ChatSessionRepository()
    list_display = ("target_type", "target_id", "status", "initiative", "agent", "created_at")
    list_filter = ("status", "target_type")
    list_select_related = ("initiative", "agent")

    def get_readonly_fields(self, request, obj=None):
        return ("target_type", "target_id", "initiative") if obj else ()

    def write(self, form):
        if not form.instance._state.adding:
            return super().write(form)
        data = form.cleaned_data
        session = self.repository.create_session(
            target_type=data["target_type"],
            target_id=data["target_id"],
            initiative_id=data["initiative"].pk,
            agent_id=data["agent"].pk if data.get("agent") else None,
        )
        if data.get("status") and data["status"] != session.status:
            session = self.repository.update_session(session.pk, status=data["status"])
        return session


comments = ReviewCommentRepository()


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    list_display = ("title", "target_type", "status", "agent", "initiative", "created_at")
    list_filter = ("status", "target_type")
    search_fields = ("title", "summary")
    list_select_related = ("agent", "initiative")
    readonly_fields = ("status",)
    actions = (
        service_action(services.proposal_accept, id_argument="proposal_id", description="Accept"),
        service_action(services.proposal_dismiss, id_argument="proposal_id", description="Dismiss"),
    )


class ChangeSetEntryInline(admin.TabularInline):
    model = ChangeSetEntry
    extra = 0
    can_delete = False
    fields = ("entity_type", "entity_id", "action", "before", "after")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChangeSetEntry)
class ChangeSetEntryAdmin(admin.ModelAdmin):
    """Entries are history, written once with their change set: read-only here."""

    list_display = ("change_set", "entity_type", "entity_id", "action", "created_at")
    list_filter = ("entity_type", "action")
    search_fields = ("entity_id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChangeSet)
class ChangeSetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "source", "status", "initiative", "created_at", "reverted_at")
    list_filter = ("status", "source")
    readonly_fields = ("status", "reverted_at")
    inlines = (ChangeSetEntryInline,)
    actions = (
        service_action(
            services.change_set_revert, id_argument="change_set_id", description="Revert"
        ),
    )


@admin.register(ReviewComment)
class ReviewCommentAdmin(admin.ModelAdmin):
    list_display = ("file_path", "line_number", "line_type", "author", "resolved", "phase")
    list_filter = ("resolved", "line_type")
    search_fields = ("file_path", "body")
    list_select_related = ("phase",)
    actions = (
        service_action(comments.resolve, id_argument="id", description="Resolve"),
        service_action(comments.unresolve, id_argument="id", description="Unresolve"),
    )
