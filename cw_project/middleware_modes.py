"""The one shape of cw's middlewares that run in both of Django's modes.

Under ASGI a sync-only middleware would make every request behind it (long polls and
streams included) hold a thread until it ended; each of cw's middlewares is therefore
sync and async alike: ``call_sync`` under WSGI, ``__acall__`` under ASGI.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse


class SyncAndAsyncMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        return self.__acall__(request) if self.is_async else self.call_sync(request)

    def call_sync(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError
