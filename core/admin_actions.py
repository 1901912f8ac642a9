"""Admin actions that run a service, one selected record at a time.

The admin never changes a status itself: each action calls the same service function as
the API, and a refusal (a ``DomainError``) becomes an error message naming the record,
while the records that could be changed are changed.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages

from core.errors import DomainError


def service_action(
    service: Callable[..., Any],
    *,
    id_argument: str,
    description: str,
    pass_user: bool = False,
) -> Callable:
    """An admin action calling ``service(<id_argument>=record.pk)`` for each selected one."""

    def action(model_admin: admin.ModelAdmin, request, queryset) -> None:
        done, refused = 0, []
        for record in queryset:
            kwargs = {id_argument: record.pk}
            if pass_user:
                kwargs["acting_user"] = request.user
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
