"""Phase and task choices labelled with their initiative, in dropdowns and autocompletes
alike, and names cut to what a list shows."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import AutocompleteSelect
from django.db import models
from django.http import HttpRequest
from django.urls import path, reverse

from core.admin_base import ServiceAdmin
from core.models import Phase, Task
from core.text import shorten

#: How many characters of a name a list shows (the record's page shows all of it).
LIST_NAME_CHARACTERS = 60


#: Between an initiative's name and its phase's or task's, in choices.
CHOICE_SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "


def choice_label(record: models.Model) -> str:
    """How a phase or task reads in a dropdown: its initiative's name, an angle quote,
    then its own name (the initiative loaded with it, so a list costs one query)."""
    initiative = getattr(record, "initiative", None)
    name = str(record)
    return f"{initiative.name}{CHOICE_SEPARATOR}{name}" if initiative is not None else name


class PlanChoiceField(forms.ModelChoiceField):
    """A choice of phase or task labelled with its initiative."""

    def label_from_instance(self, obj: models.Model) -> str:
        return choice_label(obj)


class PlanAutocompleteSelect(AutocompleteSelect):
    """The admin's autocomplete, asking ``PlanAutocompleteJsonView`` (on the target's
    admin) so the choices found are labelled with their initiative too."""

    def get_url(self) -> str:
        opts = self.field.remote_field.model._meta
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_choices")


class PlanAutocompleteJsonView(AutocompleteJsonView):
    """Django's autocomplete answer, each result labelled with ``choice_label``."""

    def get_queryset(self):
        return super().get_queryset().select_related("initiative")

    def serialize_result(self, obj, to_field_name):
        return {"id": str(getattr(obj, to_field_name)), "text": choice_label(obj)}


def editing_id(request: HttpRequest) -> str | None:
    """The id of the record whose change form ``request`` is for, or None."""
    match = getattr(request, "resolver_match", None)
    if match is None or not (match.url_name or "").endswith("_change"):
        return None
    object_id = match.kwargs.get("object_id")
    return unquote(object_id) if object_id else None


def editing_initiative_id(request: HttpRequest, find: Callable[[str], str | None]) -> Any:
    """The initiative of the record being edited (``find(record_id)``), looked up once
    per request however many fields ask (``None`` when not on a change form)."""
    record_id = editing_id(request)
    if record_id is None:
        return None
    memo: dict[str, Any] = request.__dict__.setdefault("_cw_editing_initiative", {})
    if record_id not in memo:
        memo[record_id] = find(record_id)
    return memo[record_id]


class PlanChoicesAdmin(ServiceAdmin):
    """Phase and task choices labelled with their initiative (``choice_label``), in
    dropdowns and autocompletes alike."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        target = db_field.remote_field.model
        if target in (Phase, Task):
            kwargs.setdefault("form_class", PlanChoiceField)
            if "queryset" not in kwargs:
                kwargs["queryset"] = target._default_manager.select_related("initiative")
            if db_field.name in self.get_autocomplete_fields(request) and "widget" not in kwargs:
                kwargs["widget"] = PlanAutocompleteSelect(
                    db_field, self.admin_site, using=kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_urls(self):
        opts = self.model._meta
        if self.model not in (Phase, Task):
            return super().get_urls()
        choices = PlanAutocompleteJsonView.as_view(admin_site=self.admin_site)
        return [
            path(
                "choices/",
                self.admin_site.admin_view(choices),
                name=f"{opts.app_label}_{opts.model_name}_choices",
            ),
            *super().get_urls(),
        ]


def shortened(text: str | None) -> str:
    return shorten(text, LIST_NAME_CHARACTERS)
