"""WhiteNoise's static files middleware, sync and async alike.

``whitenoise.middleware.WhiteNoiseMiddleware`` is sync-only: under ASGI, Django would
run it in a thread and every request behind it (long polls and streams included) would
hold that thread until it ended. This one answers a static file the same way and hands
every other request on without a thread.
"""

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware  # type: ignore[import-untyped]

from cw_project.middleware_modes import SyncAndAsyncMiddleware


class StaticFilesMiddleware(SyncAndAsyncMiddleware, WhiteNoiseMiddleware):
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        WhiteNoiseMiddleware.__init__(self, get_response)
        SyncAndAsyncMiddleware.__init__(self, get_response)

    def call_sync(self, request: HttpRequest) -> HttpResponse:
        return WhiteNoiseMiddleware.__call__(self, request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if self.autorefresh:  # DEBUG: looks on the disk, in a thread
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
