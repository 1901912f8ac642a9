"""What every cw admin shares: actions, buttons, forms and deletes that run a service, so a
person in the admin meets exactly the rules a tool meets in the API and every change they
make is on the event feed.

- ``service_action``: the admin never changes a status itself; each action calls the
  same service function as the API, and a refusal (a ``DomainError``) becomes an error
  message naming the record, while the records that could be changed are changed.
- ``ServiceAdmin``: adding, changing and deleting a record (one or many) go through the
  services its ``Writes`` names, so each change is on the event feed as the person's;
  the form first tries the write in a transaction it rolls back, so a refusal is shown
  on the form instead of a server error. A record's History is its events in words.
- ``ButtonsAdmin``: a record's page carries ``Button``s for what a person does to it;
  each is a POST to ``<record>/do/<slug>/`` (URL name ``<app>_<model>_do``) that runs one
  service and comes back to the page with the outcome in words: a ``DomainError`` in its
  words, a ``Refused`` (not in this state) as a warning, a record deleted meanwhile as a
  warning on the list. ``service_button`` builds the common one, a service called with
  the record's id. A button that cannot be undone asks first (``Button.confirm``).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from core.actors import Actor, current_actor
from core.errors import DomainError
from core.events import EVENT_KINDS
from core.history import HISTORY_LIMIT, record_history
from core.text import shorten
from core.validators import validate_one_line

#: How many characters of a record's name a button's message shows.
MESSAGE_NAME_CHARACTERS = 60


class _DryRun(Exception):
    """Raised to roll back a write that only checked the rules."""


@dataclass(frozen=True)
class Writes:
    """The services an admin's add form, change form and deletes call.

    ``create(**fields)`` makes a record from the add form's values; ``update(<id>=pk,
    **changed)`` changes the fields the change form changed; ``delete(<id>=pk)`` deletes
    one record (a bulk delete calls it for each, in one transaction). A relation is
    passed as ``<name>_id``. ``fields`` turns a form's values into the service's
    arguments when they differ. A missing service means the admin does not offer it.
    """

    id_argument: str
    create: Callable[..., Any] | None = None
    update: Callable[..., Any] | None = None
    delete: Callable[..., Any] | None = None
    fields: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: values
    #: The services are a person's gate: each call also gets ``actor=`` the person the
    #: door named (the admin's logged-in user, ``core.actors.current_actor``).
    pass_actor: bool = False

    def call(self, service: Callable[..., Any] | None, **kwargs: Any) -> Any:
        """Call one of the services (which the admin offers only when it is set)."""
        assert service is not None  # the admin does not offer what is missing
        if self.pass_actor:
            kwargs["actor"] = current_actor()
        return service(**kwargs)


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


class HistoryAdmin(admin.ModelAdmin):
    """A record's History page lists its events in words, newest first ("alice approved
    the plan", "tool ci-runner started the task"), instead of Django's admin log.

    Its forms show a text column that holds one line (a name or a title: its validators
    include ``validate_one_line``) as a one-line input, not a ten-row text area.
    """

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.TextField) and validate_one_line in db_field.validators:
            kwargs.setdefault("widget", widgets.AdminTextInputWidget)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def history_view(self, request, object_id, extra_context=None):
        record = self.get_object(request, unquote(object_id))
        if record is None:
            self.message_user(
                request,
                f"There is no {self.opts.verbose_name} '{unquote(object_id)}' any more.",
                messages.WARNING,
            )
            return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        if not self.has_view_or_change_permission(request, record):
            raise PermissionDenied
        history = record_history(record, limit=HISTORY_LIMIT)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {record}",
            "subtitle": None,
            "history": history,
            "history_cut": len(history) == HISTORY_LIMIT,
            "module_name": str(capfirst(self.opts.verbose_name_plural)),
            "object": record,
            "opts": self.opts,
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/cw/object_history.html", context)


class _DeleteRefused(Exception):
    """A bulk delete a service refused: the action says why instead of "deleted"."""


class ServiceAdmin(HistoryAdmin):
    """A ``ModelAdmin`` whose add and change forms and deletes write through services
    (``writes``), so each change is checked by the same rules as in the API and recorded
    on the event feed as the logged-in person's. The form first tries the write in a
    transaction it rolls back, so a refusal is shown on the form instead of a server
    error; a refused delete comes back with the reason. Django's own admin log is not
    written: a record's History is its events (``history_view``).
    """

    writes: ClassVar[Writes]

    # --- what is offered -------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        return self.writes.create is not None and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.writes.update is not None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.writes.delete is not None and super().has_delete_permission(request, obj)

    # --- forms -----------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(form_class):  # type: ignore[misc,valid-type]
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

        return ServiceForm

    def save_model(self, request, obj, form, change) -> None:
        saved = self.write(form)
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db

    def write(self, form) -> models.Model:
        """Create or update the form's record through the service."""
        writes = self.writes
        if form.instance._state.adding:
            return writes.call(writes.create, **writes.fields(self.form_values(form)))
        changed = writes.fields(self.form_values(form, only=form.changed_data))
        return writes.call(writes.update, **{writes.id_argument: form.instance.pk}, **changed)

    def form_values(self, form, only: list[str] | None = None) -> dict[str, Any]:
        """The form's values of the model's fields (all, or ``only`` those), a relation
        as ``<name>_id``."""
        values: dict[str, Any] = {}
        for field in self.model._meta.concrete_fields:
            if field.name not in form.cleaned_data or (only is not None and field.name not in only):
                continue
            value = form.cleaned_data[field.name]
            if field.is_relation:
                values[field.attname] = None if value is None else value.pk
            else:
                values[field.name] = value
        return values

    def response_post_save_add(self, request, obj):
        """After a plain Save of a record added from another record's page (a link with
        ``RETURN_TO``, e.g. a phase's "Add a task"), back to that page."""
        back = return_to(request)
        return redirect(back) if back else super().response_post_save_add(request, obj)

    # --- deletes ---------------------------------------------------------------------

    def delete_model(self, request, obj) -> None:
        self.writes.call(self.writes.delete, **{self.writes.id_argument: obj.pk})

    def delete_queryset(self, request, queryset) -> None:
        try:
            with transaction.atomic():
                for pk in list(queryset.values_list("pk", flat=True)):
                    self.writes.call(self.writes.delete, **{self.writes.id_argument: pk})
        except DomainError as error:
            raise _DeleteRefused(error.message) from error

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            opts = self.opts
            return redirect(
                f"admin:{opts.app_label}_{opts.model_name}_change", quote(unquote(object_id))
            )

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except _DeleteRefused as refusal:
            self.message_user(request, f"Nothing was deleted: {refusal}", messages.ERROR)
            return redirect(request.get_full_path())

    # --- history: the record's events, not Django's admin log -------------------------

    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None


class DependencyAdmin(ServiceAdmin):
    """Dependency edges are added through the ``<kind>_add_dependency`` service (no
    self-edge, duplicate, cross-initiative edge or cycle) and never edited; they may be
    deleted through ``<kind>_remove_dependency``."""

    edge_fields: ClassVar[tuple[str, str]]
    #: The services that add and remove an edge: ``add(<kind>_id=…, depends_on_id=…)``.
    add_edge: ClassVar[Callable[..., Any]]
    remove_edge: ClassVar[Callable[..., Any]]

    def has_add_permission(self, request) -> bool:
        return admin.ModelAdmin.has_add_permission(self, request)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and admin.ModelAdmin.has_change_permission(self, request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def write(self, form) -> models.Model:
        node_field, depends_field = self.edge_fields
        node, depends_on = form.cleaned_data[node_field], form.cleaned_data[depends_field]
        return type(self).add_edge(**{f"{node_field}_id": node.pk, "depends_on_id": depends_on.pk})

    def delete_model(self, request, obj) -> None:
        node_field, depends_field = self.edge_fields
        type(self).remove_edge(
            **{
                f"{node_field}_id": getattr(obj, f"{node_field}_id"),
                "depends_on_id": getattr(obj, f"{depends_field}_id"),
            }
        )

    def delete_queryset(self, request, queryset) -> None:
        try:
            with transaction.atomic():
                for obj in queryset:
                    self.delete_model(request, obj)
        except DomainError as error:
            raise _DeleteRefused(error.message) from error


# --- buttons on a record's page --------------------------------------------------------------


def change_url(record: models.Model | type[models.Model], id: Any = None) -> str:
    """The admin page of ``record``, or of the ``record`` model's record ``id``: the one
    way every cw page links to a record."""
    opts = record._meta
    pk = record.pk if id is None and isinstance(record, models.Model) else id
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])


def admin_link(record: models.Model, text: str | None = None) -> SafeString:
    """The record's name (or ``text``), linking to its admin page."""
    return format_html(
        '<a href="{}">{}</a>', change_url(record), str(record) if text is None else text
    )


#: The query parameter of an add form's address naming the page to go back to once saved.
RETURN_TO = "_return_to"


def add_url(model: type[models.Model], *, back: models.Model | None = None, **initial: Any) -> str:
    """The admin's add form of ``model`` with ``initial`` values (a relation by its id),
    coming back to ``back``'s page once saved."""
    opts = model._meta
    query = {name: value for name, value in initial.items() if value is not None}
    if back is not None:
        query[RETURN_TO] = change_url(back)
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    return f"{url}?{urlencode(query)}" if query else url


def return_to(request: HttpRequest) -> str | None:
    """The page an add form was opened from (``RETURN_TO``), if it is one of this site's."""
    back = request.GET.get(RETURN_TO)
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return None


# --- live pages ------------------------------------------------------------------------------

#: The URL namespace of the API (cw_project.api: ``api-<major version>``).
API_NAMESPACE = "api-1"


def api_url(name: str, *args: Any, **query: Any) -> str:
    """The address of the API operation ``name`` (its operation id), with ``query``."""
    url = reverse(f"{API_NAMESPACE}:{name}", args=args)
    given = {key: value for key, value in query.items() if value is not None}
    return f"{url}?{urlencode(given)}" if given else url


def live(
    stream: str,
    *,
    events: Iterable[str],
    mode: str = "refresh",
    after: int | None = None,
    watch: str | None = None,
    notice: str | None = None,
    session: int | None = None,
    page: str | None = None,
    reload: str | None = None,
) -> dict[str, Any]:
    """What ``admin/cw/live.html`` needs to make a page follow ``stream`` (an SSE
    address) and update itself on each of ``events`` (event names): refresh its
    ``data-cw-live-region`` parts, or (``mode="log"``) append log chunks read from
    ``page``; an event about ``watch`` (a record id), or a chunk of another session
    than ``session``, shows ``notice`` with a link to ``reload`` (else the page)."""
    return {
        "stream": stream,
        "events": " ".join(events),
        "mode": mode,
        "after": after,
        "watch": watch,
        "notice": notice,
        "session": session,
        "page": page,
        "reload": reload,
    }


def live_feed(*, after: int, initiative_id: str | None = None, **options: Any) -> dict[str, Any]:
    """``live`` for a page that follows the event feed from event ``after`` (the newest
    event when the page was read), every kind, optionally one initiative's only."""
    stream = api_url("stream_events", after=after, initiative_id=initiative_id)
    return live(stream, events=EVENT_KINDS, **options)


def back_to(request: HttpRequest) -> str | None:
    """The page a form asked to come back to (its ``next`` field), when it is one of
    this site's; None otherwise (never another site's address)."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


class Refused(Exception):
    """A button pressed when the record's state does not allow it: said in words (a
    warning), where a service's refusal is a ``DomainError`` (an error)."""


@dataclass(frozen=True)
class Button:
    """One thing a person does from a record's page: a POST to ``<record>/do/<slug>/``.

    ``run(request, record)`` calls a service and returns the success message (it may read
    fields the button's form posts from ``request.POST``); it raises ``DomainError`` (a
    service's refusal) or ``Refused``. ``shown(record)`` says when the plain button is
    offered (its POST is allowed regardless: the service says no in words);
    ``refusal(record)``, when given, says in words why the service would refuse it in
    the record's state as it is (or None): a shown button with a refusal is offered
    disabled, with its reason, instead of a button that cannot succeed. A button
    with a ``confirm`` question runs only once the person answered it: its first POST
    shows the question (``admin/cw/confirm_button.html``), whose own POST runs it.
    """

    slug: str
    label: str
    run: Callable[[HttpRequest, Any], str | SafeString]
    shown: Callable[[Any], bool] = lambda record: True
    #: "default" for the page's main step.
    style: str = ""
    #: A question to answer before it runs (a step that cannot be undone), about the
    #: record: ``confirm.format(record=record)``.
    confirm: str | None = None
    refusal: Callable[[Any], str | None] | None = None

    def refused(self, record: Any) -> str | None:
        """Why pressing it now would be refused (``refusal``), or None."""
        return None if self.refusal is None else self.refusal(record)


def dry_run_refusal(service: Callable[..., Any], **kwargs: Any) -> str | None:
    """What ``service(**kwargs)`` would be refused with now (a ``DomainError``'s words),
    or None when it would succeed: the call runs in a transaction that is rolled back,
    so nothing it writes (nor any event it records) is kept. For a button whose
    service's rules are too many to restate (a change set's revert)."""
    try:
        with transaction.atomic():
            service(**kwargs)
            raise _DryRun
    except _DryRun:
        return None
    except DomainError as error:
        return error.message


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
    confirm: str | None = None,
    refusal: Callable[[Any], str | None] | None = None,
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
        name = shorten(str(record), MESSAGE_NAME_CHARACTERS)
        return f"{label}: done for {record._meta.verbose_name} '{name}'."

    return Button(slug, label, run, shown=shown, style=style, confirm=confirm, refusal=refusal)


class ButtonsAdmin(HistoryAdmin):
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
        if button.confirm and request.POST.get("confirmed") != "yes":
            return self.confirm_view(request, record, button)
        try:
            done = button.run(request, record)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        except Refused as refusal:
            self.message_user(request, str(refusal), messages.WARNING)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect(back_to(request) or change_url(record))

    def confirm_view(self, request: HttpRequest, record: Any, button: Button) -> HttpResponse:
        """Ask the button's question; answering yes posts again, confirmed."""
        assert button.confirm is not None
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "subtitle": None,
            "opts": opts,
            "object": record,
            "question": button.confirm.format(record=record),
            "label": button.label,
            "action_url": self.button_url(record, button.slug),
            "back_url": back_to(request) or change_url(record),
            "fields": [
                (name, value)
                for name, value in request.POST.items()
                if name not in ("csrfmiddlewaretoken", "confirmed")
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/cw/confirm_button.html", context)

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
        for ``admin/core/record_buttons.html``, each with the ``refusal`` that disables it,
        if any) and ``button_urls`` (every button's URL by slug, for a page whose own
        forms post fields), both empty for a person who may not press them."""
        if not self.has_button_permission(request, record):
            return {"record_buttons": [], "button_urls": {}}
        return {
            "record_buttons": [
                {
                    "slug": b.slug,
                    "label": b.label,
                    "style": b.style,
                    "url": self.button_url(record, b.slug),
                    "refusal": b.refused(record),
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
