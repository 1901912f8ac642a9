"""What every cw admin shares: actions and buttons that run a service, and forms that save
through a repository, so a person in the admin meets exactly the rules a tool meets in the
API.

- ``service_action``: the admin never changes a status itself; each action calls the
  same service function as the API, and a refusal (a ``DomainError``) becomes an error
  message naming the record, while the records that could be changed are changed.
- ``RepositoryAdmin``: adding or changing a record goes through the model's repository
  (``create`` / ``apply``); the form first tries the write in a transaction it rolls
  back, so a refusal is shown on the form instead of a server error.
- ``ButtonsAdmin``: a record's page carries ``Button``s for what a person does to it;
  each is a POST to ``<record>/do/<slug>/`` (URL name ``<app>_<model>_do``) that runs one
  service and comes back to the page with the outcome in words: a ``DomainError`` in its
  words, a ``Refused`` (not in this state) as a warning, a record deleted meanwhile as a
  warning on the list. ``service_button`` builds the common one, a service called with
  the record's id.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.defaultfilters import truncatechars
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from core.actors import Actor
from core.errors import DomainError
from core.repositories import DependencyRepository, Repository

#: How many characters of a record's name a button's message shows.
MESSAGE_NAME_CHARACTERS = 60


class _DryRun(Exception):
    """Raised to roll back a write that only checked the rules."""


def service_action(
    service: Callable[..., Any],
    *,
    id_argument: str,
    description: str,
    pass_actor: bool = False,
) -> Callable:
    """An admin action calling ``service(<id_argument>=record.pk)`` for each selected one;
    with ``pass_actor``, also ``actor=`` the logged-in person (for a person's gate)."""

    def action(model_admin: admin.ModelAdmin, request, queryset) -> None:
        done, refused = 0, []
        for record in queryset:
            kwargs = {id_argument: record.pk}
            if pass_actor:
                kwargs["actor"] = Actor.person(request.user)
            try:
                service(**kwargs)
                done += 1
            except DomainError as error:
                refused.append(f"{record}: {error.message}")
        if done:
            model_admin.message_user(
                request, f"{description}: done for {done} record(s).", messages.SUCCESS
            )
        for reason in refused:
            model_admin.message_user(request, reason, messages.ERROR)

    action.__name__ = service.__name__
    return admin.action(description=description)(action)


class RepositoryAdmin(admin.ModelAdmin):
    """A ``ModelAdmin`` whose add and change forms save through ``repository``."""

    repository: ClassVar[Repository]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class RepositoryForm(form_class):  # type: ignore[misc,valid-type]
            def _post_clean(self) -> None:
                super()._post_clean()
                if self.errors:
                    return
                try:
                    with transaction.atomic():
                        model_admin.write(self)
                        raise _DryRun
                except _DryRun:
                    pass
                except DomainError as error:
                    self.add_error(None, error.message)

        return RepositoryForm

    def save_model(self, request, obj, form, change) -> None:
        saved = self.write(form)
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db

    def write(self, form) -> models.Model:
        """Create or update the form's record through the repository."""
        model_fields = {f.name for f in self.model._meta.concrete_fields}
        if form.instance._state.adding:
            values = {
                name: value for name, value in form.cleaned_data.items() if name in model_fields
            }
            return self.repository.create(**values)  # type: ignore[attr-defined]
        changed = {
            name: form.cleaned_data[name] for name in form.changed_data if name in model_fields
        }
        return self.repository.update(  # type: ignore[attr-defined]
            self.repository.get(form.instance.pk), **changed
        )


class DependencyAdmin(RepositoryAdmin):
    """Dependency edges are added through ``create_dependency`` (no self-edge, duplicate,
    cross-initiative edge or cycle) and never edited; they may be deleted."""

    repository: ClassVar[DependencyRepository[Any]]
    edge_fields: ClassVar[tuple[str, str]]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def write(self, form) -> models.Model:
        node, depends_on = (form.cleaned_data[name] for name in self.edge_fields)
        return self.repository.create_dependency(node.pk, depends_on.pk)


# --- buttons on a record's page --------------------------------------------------------------


def change_url(record: models.Model) -> str:
    """The admin page of ``record``."""
    opts = record._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(record.pk)])


class Refused(Exception):
    """A button pressed when the record's state does not allow it: said in words (a
    warning), where a service's refusal is a ``DomainError`` (an error)."""


@dataclass(frozen=True)
class Button:
    """One thing a person does from a record's page: a POST to ``<record>/do/<slug>/``.

    ``run(request, record)`` calls a service and returns the success message (it may read
    fields the button's form posts from ``request.POST``); it raises ``DomainError`` (a
    service's refusal) or ``Refused``. ``shown(record)`` says when the plain button is
    offered (its POST is allowed regardless: the service says no in words).
    """

    slug: str
    label: str
    run: Callable[[HttpRequest, Any], str | SafeString]
    shown: Callable[[Any], bool] = lambda record: True
    #: "default" for the page's main step.
    style: str = ""


def service_button(
    slug: str,
    label: str,
    service: Callable[..., Any],
    *,
    id_argument: str,
    shown: Callable[[Any], bool] = lambda record: True,
    pass_actor: bool = False,
    style: str = "",
    done: Callable[[Any, Any], str] | None = None,
) -> Button:
    """A button calling ``service(<id_argument>=record.pk)`` (with ``actor=`` the person
    when ``pass_actor``); its message is ``done(record, result)``, by default
    "<label>: done for <kind> '<name>'."."""

    def run(request: HttpRequest, record: Any) -> str:
        kwargs: dict[str, Any] = {id_argument: record.pk}
        if pass_actor:
            kwargs["actor"] = Actor.person(request.user)
        result = service(**kwargs)
        if done is not None:
            return done(record, result)
        name = truncatechars(str(record), MESSAGE_NAME_CHARACTERS)
        return f"{label}: done for {record._meta.verbose_name} '{name}'."

    return Button(slug, label, run, shown=shown, style=style)


class ButtonsAdmin(admin.ModelAdmin):
    """A ``ModelAdmin`` whose records' pages carry ``buttons``, served at one URL per
    model, ``<record>/do/<slug>/``: POST only, behind ``admin_view`` (login and CSRF) and
    ``has_button_permission`` (by default the change permission on the record)."""

    buttons: ClassVar[tuple[Button, ...]] = ()

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/do/<slug:slug>/",
                self.admin_site.admin_view(self.button_view),
                name=f"{opts.app_label}_{opts.model_name}_do",
            ),
            *super().get_urls(),
        ]

    def has_button_permission(self, request: HttpRequest, record: models.Model) -> bool:
        """Whether the person may press ``record``'s buttons: whether they may change it."""
        return self.has_change_permission(request, record)

    def button_view(self, request: HttpRequest, object_id: str, slug: str) -> HttpResponse:
        """Run one button on the record, then go back to its page with the outcome."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        button = next((b for b in self.buttons if b.slug == slug), None)
        if button is None:
            raise Http404(f"No button '{slug}' on a {self.opts.verbose_name}.")
        record = self.get_object(request, unquote(object_id))
        if record is None:
            return self.record_gone(request, object_id)
        if not self.has_button_permission(request, record):
            raise PermissionDenied
        try:
            done = button.run(request, record)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        except Refused as refusal:
            self.message_user(request, str(refusal), messages.WARNING)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect(change_url(record))

    def record_gone(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Back to the list, saying the record is not there (deleted meanwhile)."""
        opts = self.opts
        self.message_user(
            request,
            f"There is no {opts.verbose_name} '{unquote(object_id)}' any more.",
            messages.WARNING,
        )
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def button_url(self, record: models.Model, slug: str) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_do", args=[quote(record.pk), slug]
        )

    def button_context(self, request: HttpRequest, record: Any) -> dict[str, Any]:
        """What the record's page needs for its buttons: ``record_buttons`` (those shown,
        for ``admin/core/record_buttons.html``) and ``button_urls`` (every button's URL by
        slug, for a page whose own forms post fields), both empty for a person who may
        not press them."""
        if not self.has_button_permission(request, record):
            return {"record_buttons": [], "button_urls": {}}
        return {
            "record_buttons": [
                {
                    "slug": b.slug,
                    "label": b.label,
                    "style": b.style,
                    "url": self.button_url(record, b.slug),
                }
                for b in self.buttons
                if b.shown(record)
            ],
            "button_urls": {b.slug: self.button_url(record, b.slug) for b in self.buttons},
        }

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context.update(self.button_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)
