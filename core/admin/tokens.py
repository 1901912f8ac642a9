"""API tokens: made, listed and revoked here (as with ``manage.py create_api_token`` and
``revoke_api_token``), through the same services, each on the event feed as the
person's.

A token is a tool's or a person's (a personal token acts for its person: only a
superuser makes one for someone else). Its secret is shown once, on the page that answers
the form that made it, and never again: only its hash is stored. A run's token is made
by the system with its run and ends with it: it is listed, never made here.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

from core.admin_base import ButtonsAdmin, ServiceAdmin, Writes, service_action, service_button
from core.models import ApiToken
from core.tokens import api_token_create, api_token_revoke

#: Whom a token made here acts for.
TOOL, PERSON = "tool", "person"
KIND_CHOICES = (
    (TOOL, "A tool's token (a runner, the orchestrator, a script)"),
    (PERSON, "A personal token: it acts for a person"),
)


class ApiTokenAddForm(forms.ModelForm):
    """A token's name, and whom it acts for: a tool, or a person (by default the one
    making it)."""

    kind = forms.ChoiceField(
        label="For", choices=KIND_CHOICES, initial=TOOL, widget=forms.RadioSelect
    )
    person = forms.ModelChoiceField(
        queryset=get_user_model()._default_manager.order_by("pk"),
        required=False,
        help_text="For a personal token: the person it acts for (it passes the gates only "
        "people may pass).",
    )

    #: The person filling in the form (set by ``ApiTokenAdmin.get_form``).
    maker: Any = None

    class Meta:
        model = ApiToken
        fields = ("name",)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("kind") == TOOL:
            cleaned["person"] = None
            return cleaned
        person = cleaned.get("person")
        if person is None:
            self.add_error("person", "Choose the person this personal token acts for.")
        elif self.maker is not None and person != self.maker and not self.maker.is_superuser:
            self.add_error("person", "Only a superuser makes a personal token for someone else.")
        return cleaned


def _revocable(token: ApiToken) -> bool:
    return token.revoked_at is None and token.run_id is None


@admin.register(ApiToken)
class ApiTokenAdmin(ButtonsAdmin, ServiceAdmin):
    """Tokens are made with the add form (``api_token_create``: the page after it shows
    the secret once) and revoked with the button on a token's page or the list's action
    (``api_token_revoke``); they are never edited nor deleted (a revoked token stays,
    for the record). People see whose each token is, never its hash."""

    writes = Writes("token_id_or_prefix", create=api_token_create)
    form = ApiTokenAddForm
    list_display = (
        "name",
        "owner",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    list_select_related = ("created_by", "person")
    # A run's token (``run`` set) is made by take-next or a resume and dies with its run.
    list_filter = (
        ("revoked_at", admin.EmptyFieldListFilter),
        ("person", admin.EmptyFieldListFilter),
        ("run", admin.EmptyFieldListFilter),
    )
    search_fields = ("name", "prefix")
    #: What a token's page shows (nothing on it is edited).
    record_fields = (
        "name",
        "owner",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "run",
    )
    buttons = (
        service_button(
            "revoke",
            "Revoke",
            api_token_revoke,
            id_argument="token_id_or_prefix",
            shown=_revocable,
            confirm=(
                "Revoke the token {record}? Whatever uses it is refused from now on; this "
                "cannot be undone."
            ),
            done=lambda token, revoked: f"The token {revoked} is revoked.",
        ),
    )
    actions = (
        service_action(api_token_revoke, id_argument="token_id_or_prefix", description="Revoke"),
    )

    def get_fields(self, request, obj=None):
        return ("name", "kind", "person") if obj is None else self.record_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.record_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        return type(form_class.__name__, (form_class,), {"maker": request.user})

    def has_button_permission(self, request: HttpRequest, record: Any) -> bool:
        # Nothing of a token is edited; revoking it takes the permission to change it.
        return admin.ModelAdmin.has_change_permission(self, request, record)

    @admin.display(description="whose")
    def owner(self, token: ApiToken) -> str:
        if token.person is not None:
            return f"{token.person.get_username()}'s (personal)"
        return "a run's" if token.run_id else "a tool's"

    # --- made once, shown once -----------------------------------------------------------

    def write(self, form) -> ApiToken:
        """Make the token the form describes; its clear value is kept on the form, for
        the page that answers it."""
        data = form.cleaned_data
        token, form.clear_token = api_token_create(
            name=data["name"], person=data.get("person"), created_by=form.maker
        )
        return token

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        obj.clear_token = form.clear_token

    def response_add(self, request, obj, post_url_continue=None):
        """The page that shows the new token's secret, this once: it is never stored
        and never shown again."""
        context = {
            **self.admin_site.each_context(request),
            "title": f"Token {obj.name} made",
            "subtitle": None,
            "opts": self.opts,
            "token": obj,
            "clear_token": obj.clear_token,
            "token_url": reverse("admin:core_apitoken_change", args=[obj.pk]),
            "list_url": reverse("admin:core_apitoken_changelist"),
        }
        request.current_app = self.admin_site.name
        response = TemplateResponse(request, "admin/core/apitoken/made.html", context)
        response["Cache-Control"] = "no-store"
        return response
