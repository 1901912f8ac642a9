"""Name who acts for each request, so every event a service records says who made it.

``ActorMiddleware`` opens an actor scope around the request and closes it after the
response. A page outside the API (the admin) names its logged-in user, acting through
the admin; the API leaves it to its authentication (``core.auth``), which names the
token's tool or person, or the staff user, acting through the API.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from core.actors import Actor, begin_acting, end_acting, set_actor
from cw_project.api import api
from cw_project.middleware_modes import SyncAndAsyncMiddleware


class ActorMiddleware(SyncAndAsyncMiddleware):
    def call_sync(self, request: HttpRequest) -> HttpResponse:
        scope = begin_acting(None)
        try:
            return self.get_response(request)
        finally:
            end_acting(scope)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        scope = begin_acting(None)
        try:
            return await self.get_response(request)
        finally:
            end_acting(scope)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        match = request.resolver_match
        if match is not None and api.urls_namespace in match.namespaces:
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            set_actor(Actor.person(user, via="admin"))
        return None
