"""The ASGI application ``make serve`` runs (uvicorn).

Django's ASGI handler gives each request a thread of its own for its synchronous work
(a ``ThreadSensitiveContext`` per request), which lives as long as the request: a
thousand long polls or streams waiting on the event loop would keep a thousand idle
threads. ``CwASGIHandler`` runs every request's synchronous work on one pool of
``CW_ASGI_THREADS`` threads per process instead (default 4): a waiting request holds
no thread, and the synchronous views (the admin, most of the API) run at most that many
at once per process, as a WSGI server's threads would. Reads (GET, HEAD, OPTIONS) have a
pool of as many threads of their own, so a read never waits for a thread behind writes
that wait for the database (on PostgreSQL under the ``live`` bench, ``whoami``'s p50 went
from 160 ms to 6 ms). More threads do not serve more:
the work is Python's, one thread at a time (the GIL), and every extra runnable thread
makes the event loop wait its turn longer (measured with the ``live`` bench: 16 threads
answered fewer appends than 4, with a slower ``whoami``).

Each synchronous call of a request is whole in itself (a view, a read, a middleware
hook); none keeps a transaction or other per-thread state open for a later call, which
is what running a request's calls on one thread would protect. Each pool thread keeps
its database connection for the next request (``CW_DB_CONN_MAX_AGE``), so a process
holds at most twice ``CW_ASGI_THREADS`` connections, however many requests wait.
"""

import asyncio
import contextvars
import functools
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, URLResolver, get_resolver, set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cw_project.settings")


#: Requests run on the pool of reads.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def pool_size() -> int:
    """``CW_ASGI_THREADS``: the threads a process runs synchronous work on."""
    return max(1, int(os.environ.get("CW_ASGI_THREADS", "4")))


class CwASGIHandler(ASGIHandler):
    """Django's ASGI handler with one pool of threads for every request's sync work."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="cw-sync")
        # Reads have threads of their own: a read never waits for a thread behind writes
        # that wait for the database (SQLite's write lock, PostgreSQL's commit).
        self.read_pool = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="cw-read")
        # The same middlewares in their synchronous form, for the synchronous views.
        self.sync_handler = _ResolvedOnceHandler()
        self.sync_handler.load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        pool = self.read_pool if scope.get("method") in READ_METHODS else self.pool
        async with ThreadSensitiveContext(executor=pool):
            await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A request to a synchronous view is served in one call on the pool: the
        request's start, the middlewares and the view, and (unless it streams) the
        response's end, where Django's handler hands over three times (the start and the
        end signals run their receivers, ``close_old_connections`` among them, in calls
        of their own) and watches for a disconnect that cannot stop a synchronous view
        anyway. Every other request (an asynchronous view, a refused one) is Django's."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, _ = self.create_request(scope, body_file)  # refused: Django answers it
        if request is None or self._view_is_async(request):
            body_file.seek(0)
            await super().handle(scope, _replay(body_file, receive), send)
            return
        pool = self.read_pool if scope.get("method") in READ_METHODS else self.pool
        try:
            # Straight onto the pool: asgiref's sync_to_async, built for calls that must
            # share a thread and carry their context back, cost more than the hand-over.
            response = await asyncio.get_running_loop().run_in_executor(
                pool, contextvars.copy_context().run, self._respond, scope, request
            )
            await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], request: HttpRequest) -> HttpResponseBase:
        """(On the pool.) The response to ``request`` from its synchronous view, closed
        unless it streams (its content is in memory: closing sends ``request_finished``)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        response = self.sync_handler.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """A synchronous view runs with the middlewares in one call on the pool, as under
        WSGI; only an asynchronous view (a long poll, a stream) goes through the
        middlewares' asynchronous form. Django's handler ran each synchronous middleware
        hook and the view in a call of its own: some eighteen hand-overs between the
        event loop and the pool per request, which cost more than an append's work."""
        if self._view_is_async(request):
            return await super().get_response_async(request)
        return await sync_to_async(self.sync_handler.get_response)(request)

    @staticmethod
    def _view_is_async(request: HttpRequest) -> bool:
        match = _resolved(get_resolver(), request.path_info)
        if match is None:
            return False
        request.cw_resolver_match = (request.path_info, match)  # type: ignore[attr-defined]
        return iscoroutinefunction(match.func)


@functools.lru_cache(maxsize=4096)
def _resolved(resolver: URLResolver, path_info: str) -> ResolverMatch | None:
    """``path_info``'s match (None: no route), remembered: resolving walks the API's
    patterns one by one, on the event loop, and the same paths come again and again (an
    agent appends to its log's path ten times a second)."""
    try:
        return resolver.resolve(path_info)
    except Resolver404:
        return None


def _replay(body_file: Any, receive: Any) -> Any:
    """An ASGI ``receive`` that gives the body already read from ``receive`` first."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body_file.read(), "more_body": False}

    return replay


class _ResolvedOnceHandler(BaseHandler):
    """Django's synchronous handler, using the URL match ``CwASGIHandler`` made already
    (resolving walks every pattern of the API: a tenth of a small request's time)."""

    def resolve_request(self, request: HttpRequest) -> Any:
        path_info, match = getattr(request, "cw_resolver_match", (None, None))
        if path_info != request.path_info or hasattr(request, "urlconf"):
            return super().resolve_request(request)
        request.resolver_match = match
        return match


def get_application() -> CwASGIHandler:
    get_asgi_application()  # django.setup(), as Django's own does
    handler = CwASGIHandler()
    get_resolver().resolve("/api/whoami")  # build the URL patterns now, not in a request
    freeze_startup_heap()
    return handler


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (Django, the apps, the API's schemas and
    routes: some 150,000 objects) out of the garbage collector's sight (``gc.freeze``),
    as long-lived Python servers do. The collector's full passes then walk only what
    requests made, not the whole program: under the ``live`` bench a full pass paused a
    process's event loop for 100-500 ms every few seconds, and every request waiting on
    it, before this; 15-40 ms after. Frozen objects are never freed, which costs nothing
    for what lives as long as the process anyway."""
    gc.collect()
    gc.freeze()


application = get_application()
