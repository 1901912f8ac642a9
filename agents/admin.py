"""The agents app's admin: every add and change form saves through the repositories or
the account services, statuses are read-only (they change through services), log chunks
are read-only history, and an account's secrets are write-only."""

from typing import Any

from django import forms
from django.contrib import admin

from agents import services
from agents.models import Account, Agent, AgentLogChunk, Conversation, Message
from agents.repositories import (
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    MessageRepository,
)
from agents.services import SECRET_FIELDS
from core.admin_base import RepositoryAdmin, service_action
from core.errors import InvalidInput

#: The account columns a person edits on the form (secrets have their own fields).
ACCOUNT_FORM_FIELDS = ("email", "provider", "sort_order")


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value, not even one just submitted on a form
    that was refused: secrets are write-only."""

    def format_value(self, value):
        return None


class AccountAdminForm(forms.ModelForm):
    """Secrets are write-only here: the form never shows them, only lets a person replace
    or clear them. Saving goes through ``account_create`` / ``account_update``
    (``AccountAdmin.write``), never ``Model.save``."""

    new_config_json = forms.CharField(
        label="Config JSON",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Write-only. Paste a new .claude.json to replace the stored one; "
        "leave blank to keep it.",
    )
    clear_config_json = forms.BooleanField(label="Clear config JSON", required=False)
    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Write-only. Paste a new .credentials.json to replace the stored one; "
        "leave blank to keep it.",
    )
    clear_credentials = forms.BooleanField(label="Clear credentials", required=False)

    class Meta:
        model = Account
        fields = ACCOUNT_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in SECRET_FIELDS:
            value = cleaned.get(f"new_{name}")
            if value:
                try:
                    services.validate_account_fields({name: value})
                except InvalidInput as error:
                    self.add_error(f"new_{name}", error.message)
            if value and cleaned.get(f"clear_{name}"):
                self.add_error(f"clear_{name}", "Either paste a new value or clear it, not both.")
        return cleaned

    def secret_changes(self) -> dict[str, str | None]:
        """The secrets to write: a pasted value replaces one, a ticked box clears it."""
        changes: dict[str, str | None] = {}
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                changes[name] = None
            elif self.cleaned_data.get(f"new_{name}"):
                changes[name] = self.cleaned_data[f"new_{name}"]
        return changes


@admin.register(Account)
class AccountAdmin(RepositoryAdmin):
    """Accounts are added and changed through the same services as the API, so a
    duplicate or malformed one is refused on the form; exhaustion is read-only (the API
    parks an account, people release it with the action)."""

    repository = AccountRepository()
    form = AccountAdminForm
    list_display = (
        "email",
        "provider",
        "sort_order",
        "is_exhausted",
        "exhausted_until",
        "last_used_at",
        "has_config",
        "has_credentials",
    )
    list_filter = ("provider", "is_exhausted")
    search_fields = ("email",)
    readonly_fields = (
        "is_exhausted",
        "exhausted_until",
        "last_used_at",
        "created_at",
        "updated_at",
    )
    actions = (
        service_action(
            services.account_release,
            id_argument="account_id",
            description="Release (not exhausted)",
        ),
    )

    def get_queryset(self, request):
        # Secrets are neither read nor decrypted to render a page; whether they are set
        # comes annotated from the database.
        return self.repository.queryset()

    def write(self, form) -> Account:
        data = form.cleaned_data
        secrets: dict[str, Any] = form.secret_changes()
        if form.instance._state.adding:
            fields = {name: data[name] for name in ACCOUNT_FORM_FIELDS}
            return services.account_create(**fields, **secrets)
        changed = {name: data[name] for name in form.changed_data if name in ACCOUNT_FORM_FIELDS}
        return services.account_update(account_id=form.instance.pk, **changed, **secrets)

    def save_model(self, request, obj, form, change) -> None:
        saved = self.write(form)
        # Copy what the write loaded: a secret it left unread is not read (nor decrypted)
        # just to fill in the form's instance.
        for field in saved._meta.concrete_fields:
            if field.attname in saved.__dict__:
                setattr(obj, field.attname, saved.__dict__[field.attname])
        obj._state.adding = False
        obj._state.db = saved._state.db

    @admin.display(boolean=True, description="config set")
    def has_config(self, account: Account) -> bool:
        return account.config_is_set  # type: ignore[attr-defined]  # AccountRepository.queryset

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, account: Account) -> bool:
        return account.credentials_are_set  # type: ignore[attr-defined]  # see has_config


#: What an agent's process reports, and its status: changed only by the orchestrator's
#: services, never on a form.
AGENT_RUNTIME_FIELDS = ("status", "pid", "exit_code", "session_id", "result", "pending_questions")


@admin.register(Agent)
class AgentAdmin(RepositoryAdmin):
    """Agents are added and changed through ``AgentRepository``; their status and runtime
    columns are read-only."""

    repository = AgentRepository()
    list_display = ("name", "status", "mode", "task", "initiative", "account", "created_at")
    list_filter = ("status", "mode", "provider")
    search_fields = ("name", "session_id", "worktree_id")
    list_select_related = ("task", "initiative", "account")
    readonly_fields = (*AGENT_RUNTIME_FIELDS, "user_dismissed_at", "created_at", "updated_at")
    actions = (
        service_action(
            services.agent_dismiss, id_argument="agent_id", description="Dismiss (finished)"
        ),
        service_action(
            services.agent_mark_stopped, id_argument="agent_id", description="Mark stopped"
        ),
    )

    def get_queryset(self, request):
        # The account column shows the login only: its secrets are not read (nor decrypted).
        return super().get_queryset(request).defer("account__config_json", "account__credentials")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            # The choices list accounts without reading their secrets.
            kwargs["queryset"] = AccountRepository().queryset()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Message)
class MessageAdmin(RepositoryAdmin):
    """Messages are written through ``MessageRepository``; their status changes only
    through the services (the action marks pending messages read)."""

    repository = MessageRepository()
    list_display = (
        "__str__",
        "type",
        "status",
        "requires_response",
        "parent_message",
        "created_at",
    )
    list_filter = ("status", "type", "sender_type", "recipient_type", "requires_response")
    search_fields = ("content", "sender_id", "recipient_id")
    list_select_related = ("parent_message",)
    readonly_fields = ("status", "created_at", "updated_at")
    actions = (
        service_action(
            services.message_mark_read, id_argument="message_id", description="Mark read"
        ),
    )


@admin.register(AgentLogChunk)
class AgentLogChunkAdmin(admin.ModelAdmin):
    """Log chunks are the output agents wrote: history, never added or edited here (a
    person may delete them)."""

    list_display = ("id", "agent_name", "agent_id", "session_number", "created_at")
    list_filter = ("agent_id", "session_number")
    search_fields = ("agent_name", "agent_id")
    # Logs grow long: do not count the whole table for every page.
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(RepositoryAdmin):
    """A question is answered once, by ``answer()``: the answer and status are read-only."""

    repository = ConversationRepository()
    list_display = ("question", "from_agent", "to_agent", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("from_agent", "to_agent")
    readonly_fields = ("answer", "status")
