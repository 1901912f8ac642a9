"""Name who acts for each request, so every event a service records says who made it.

``ActorMiddleware`` opens an actor scope around the request and closes it after the
response. A page outside the API (the admin) names its logged-in user, acting through
the admin; the API leaves it to its authentication (``core.auth``), which names the
token's tool or person, or the staff user, acting through the API.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from core.actors import Actor, begin_acting, end_acting, set_actor
from cw_project.api import api


class ActorMiddleware:
    """Sync and async alike: under ASGI a waiting request (a long poll, a stream) must
    not hold a thread for a middleware that cannot await."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
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
