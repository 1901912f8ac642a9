from django import forms
from django.contrib import admin

from agents import services
from agents.models import Account, Agent, AgentLogChunk, Conversation, Message
from agents.repositories import AccountRepository, ConversationRepository
from agents.services import SECRET_FIELDS
from core.admin_base import RepositoryAdmin, service_action
from core.errors import InvalidInput


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value, not even one just submitted on a form
    that was refused: secrets are write-only."""

    def format_value(self, value):
        return None


class AccountAdminForm(forms.ModelForm):
    """Secrets are write-only here: the form never shows them, only lets a person replace
    or clear them."""

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
        fields = ("email", "provider", "sort_order")

    def clean(self):
        cleaned = super().clean()
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

    def save(self, commit=True):
        account = super().save(commit=False)
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                setattr(account, name, None)
            elif self.cleaned_data.get(f"new_{name}"):
                setattr(account, name, self.cleaned_data[f"new_{name}"])
        if commit:
            account.save()
        return account


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
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
    # Exhaustion changes through the services: the API parks an account, people release it.
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
        return AccountRepository().queryset()

    @admin.display(boolean=True, description="config set")
    def has_config(self, account: Account) -> bool:
        return account.config_is_set

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, account: Account) -> bool:
        return account.credentials_are_set


for model in (Agent, AgentLogChunk, Message):
    admin.site.register(model)


@admin.register(Conversation)
class ConversationAdmin(RepositoryAdmin):
    """A question is answered once, by ``answer()``: the answer is read-only here."""

    repository = ConversationRepository()
    list_display = ("question", "from_agent", "to_agent", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("from_agent", "to_agent")
    readonly_fields = ("answer", "status")
