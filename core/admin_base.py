"""What every cw admin shares: actions that run a service, and forms that save through a
repository, so a person in the admin meets exactly the rules a tool meets in the API.

- ``service_action``: the admin never changes a status itself; each action calls the
  same service function as the API, and a refusal (a ``DomainError``) becomes an error
  message naming the record, while the records that could be changed are changed.
- ``RepositoryAdmin``: adding or changing a record goes through the model's repository
  (``create`` / ``apply``); the form first tries the write in a transaction it rolls
  back, so a refusal is shown on the form instead of a server error.
"""

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db import models, transaction

from core.actors import Actor
from core.errors import DomainError
from core.repositories import DependencyRepository, Repository


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
