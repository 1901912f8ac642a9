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


#: How wide a phase or task picker is (select2 reads a number with its unit).
PICKER_WIDTH = "42em"

#: Between an initiative's name and its phase's or task's, in choices.
CHOICE_SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "


def choice_label(record: models.Model) -> str:
    """How a phase or task reads in a dropdown: the path to it, each step after an
    angle quote: its initiative's name, a task's phase's name (when it has one), then
    its own name, so two tasks of the same name in different phases read apart. The
    initiative and phase are loaded with it (``choice_queryset``), so a list costs one
    query; a phase not loaded is left out rather than read row by row."""
    path = []
    initiative = getattr(record, "initiative", None)
    if initiative is not None:
        path.append(initiative.name)
    if isinstance(record, Task) and record.phase_id and Task.phase.is_cached(record):
        path.append(record.phase.name)  # type: ignore[union-attr]
    return CHOICE_SEPARATOR.join([*path, str(record)])


def choice_queryset(model: type[Phase] | type[Task]) -> models.QuerySet:
    """The records of ``model`` with what their ``choice_label`` reads."""
    related = ("initiative", "phase") if model is Task else ("initiative",)
    return model._default_manager.select_related(*related)


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

    def build_attrs(self, base_attrs, extra_attrs=None):
        # Wide enough for a task's whole path, initiative, phase and name: the admin's
        # default is 20em, where two such paths look alike (select2 copies an inline
        # width onto its box).
        attrs = super().build_attrs(base_attrs, extra_attrs)
        attrs["style"] = f"width: {PICKER_WIDTH}"
        return attrs


class PlanAutocompleteJsonView(AutocompleteJsonView):
    """Django's autocomplete answer, each result labelled with ``choice_label``."""

    def get_queryset(self):
        related = ("initiative", "phase") if self.model_admin.model is Task else ("initiative",)
        return super().get_queryset().select_related(*related)

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
                kwargs["queryset"] = choice_queryset(target)
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
