"""The reviews' admin: every add and change form saves through the service or repository
the API uses, so a person meets the same rules; statuses change only through actions;
change sets and their entries are read-only history."""

from typing import cast

from django.contrib import admin

from core.admin_base import RepositoryAdmin, service_action
from reviews import services
from reviews.models import (
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
    ChatSession,
    Proposal,
    ProposalStatus,
    ReviewComment,
)
from reviews.repositories import (
    ChatSessionRepository,
    ProposalRepository,
    ReviewCommentRepository,
)

sessions = ChatSessionRepository()
comments = ReviewCommentRepository()


@admin.register(Proposal)
class ProposalAdmin(RepositoryAdmin):
    """Saved through ``proposal_create`` / ``proposal_update`` (a target of the proposal's
    initiative, metadata that is a JSON object of the right shape); accepted and
    dismissed through the actions, after which a proposal is history."""

    repository = ProposalRepository()
    list_display = ("title", "target_type", "status", "agent", "initiative", "created_at")
    list_filter = ("status", "target_type")
    search_fields = ("title", "summary")
    list_select_related = ("agent", "initiative")
    actions = (
        service_action(
            services.proposal_accept,
            id_argument="proposal_id",
            description="Accept",
            pass_actor=True,
        ),
        service_action(
            services.proposal_dismiss,
            id_argument="proposal_id",
            description="Dismiss",
            pass_actor=True,
        ),
    )
    #: Who proposes what, for which initiative: fixed once proposed.
    fixed_fields = ("agent", "initiative", "target_type", "target_id")

    def get_readonly_fields(self, request, obj=None):
        return ("status", *self.fixed_fields) if obj else ("status",)

    def has_change_permission(self, request, obj=None) -> bool:
        pending = obj is None or obj.status == ProposalStatus.PENDING
        return pending and super().has_change_permission(request, obj)

    def write(self, form) -> Proposal:
        data = form.cleaned_data
        if not form.instance._state.adding:
            editable = {"title", "summary", "content", "metadata", "sort_order"}
            changes = {name: data[name] for name in form.changed_data if name in editable}
            return services.proposal_update(proposal_id=form.instance.pk, **changes)
        return services.proposal_create(
            agent_id=data["agent"].pk,
            initiative_id=data["initiative"].pk,
            target_type=data["target_type"],
            target_id=data.get("target_id") or None,
            title=data["title"],
            summary=data.get("summary"),
            content=data.get("content"),
            metadata=data.get("metadata"),
            sort_order=data.get("sort_order") or 0,
        )


@admin.register(ReviewComment)
class ReviewCommentAdmin(RepositoryAdmin):
    """Added through ``review_comment_create`` and changed through the repository's
    ``update`` (one-line file path, line number of at least 1, …); resolved through the
    actions."""

    repository = comments
    list_display = ("file_path", "line_number", "line_type", "author", "resolved", "phase")
    list_filter = ("resolved", "line_type")
    search_fields = ("file_path", "body")
    list_select_related = ("phase",)
    actions = (
        service_action(
            services.review_comment_resolve, id_argument="comment_id", description="Resolve"
        ),
        service_action(comments.unresolve, id_argument="id", description="Unresolve"),
    )

    def get_readonly_fields(self, request, obj=None):
        return ("resolved", "phase") if obj else ("resolved",)

    def write(self, form) -> ReviewComment:
        if not form.instance._state.adding:
            return cast(ReviewComment, super().write(form))
        data = form.cleaned_data
        return services.review_comment_create(
            phase_id=data["phase"].pk,
            file_path=data["file_path"],
            line_number=data["line_number"],
            line_type=data["line_type"],
            body=data["body"],
            author=data.get("author") or "you",
        )


@admin.register(ChatSession)
class ChatSessionAdmin(RepositoryAdmin):
    """Opened through ``create_session`` (a target of the initiative, at most one active
    session per target); only its agent is edited; closed through the action."""

    repository = sessions
    list_display = ("target_type", "target_id", "status", "initiative", "agent", "created_at")
    list_filter = ("status", "target_type")
    list_select_related = ("initiative", "agent")
    actions = (
        service_action(services.chat_session_close, id_argument="session_id", description="Close"),
    )

    def get_readonly_fields(self, request, obj=None):
        return ("status", "target_type", "target_id", "initiative") if obj else ("status",)

    def write(self, form) -> ChatSession:
        data = form.cleaned_data
        if not form.instance._state.adding:
            changes = {name: data[name] for name in form.changed_data if name == "agent"}
            return sessions.update_session(form.instance.pk, **changes)
        return sessions.create_session(
            target_type=data["target_type"],
            target_id=data["target_id"],
            initiative_id=data["initiative"].pk,
            agent_id=data["agent"].pk if data.get("agent") else None,
        )


@admin.register(ChatMessage)
class ChatMessageAdmin(RepositoryAdmin):
    """Added through ``chat_message_post`` (an active session, a change set of the
    session's initiative on an assistant message); a transcript, so never edited."""

    repository = sessions
    list_display = ("__str__", "role", "chat_session", "change_set", "created_at")
    list_filter = ("role",)
    search_fields = ("content",)
    list_select_related = ("chat_session", "change_set")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def write(self, form) -> ChatMessage:
        data = form.cleaned_data
        return services.chat_message_post(
            session_id=data["chat_session"].pk,
            role=data["role"],
            content=data["content"],
            change_set_id=data["change_set"].pk if data.get("change_set") else None,
        )


class ChangeSetEntryInline(admin.TabularInline):
    model = ChangeSetEntry
    extra = 0
    can_delete = False
    fields = ("entity_type", "entity_id", "action", "before", "after")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChangeSet)
class ChangeSetAdmin(admin.ModelAdmin):
    """History that ``change_set_revert`` relies on: written only by the services, never
    added or edited here (not even moved to another initiative); reverted by the action."""

    list_display = ("__str__", "source", "status", "initiative", "created_at", "reverted_at")
    list_filter = ("status", "source")
    list_select_related = ("initiative",)
    inlines = (ChangeSetEntryInline,)
    actions = (
        service_action(
            services.change_set_revert, id_argument="change_set_id", description="Revert"
        ),
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChangeSetEntry)
class ChangeSetEntryAdmin(admin.ModelAdmin):
    """Entries are history, written once with their change set: read-only here."""

    list_display = ("change_set", "entity_type", "entity_id", "action", "created_at")
    list_filter = ("entity_type", "action")
    search_fields = ("entity_id",)
    list_select_related = ("change_set",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
