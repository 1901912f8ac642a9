"""The ASGI application ``make serve`` runs (uvicorn).

Django's ASGI handler gives each request a thread of its own for its synchronous work
(a ``ThreadSensitiveContext`` per request), which lives as long as the request: a
thousand long polls or streams waiting on the event loop would keep a thousand idle
threads. ``CwASGIHandler`` runs every request's synchronous work on one pool of
``CW_ASGI_THREADS`` threads per process instead (default 16): a waiting request holds
no thread, and the synchronous views (the admin, most of the API) run at most that many
at once per process, as a WSGI server's threads would.

Each synchronous call of a request is whole in itself (a view, a read, a middleware
hook); none keeps a transaction or other per-thread state open for a later call, which
is what running a request's calls on one thread would protect. A thread's database
connection is closed by the next request that starts or ends on it (with
``CW_DB_CONN_MAX_AGE=0``, as ``make serve`` sets), so a process holds at most one
connection per pool thread.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cw_project.settings")


def pool_size() -> int:
    """``CW_ASGI_THREADS``: the threads a process runs synchronous work on."""
    return max(1, int(os.environ.get("CW_ASGI_THREADS", "16")))


class CwASGIHandler(ASGIHandler):
    """Django's ASGI handler with one pool of threads for every request's sync work."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(max_workers=pool_size(), thread_name_prefix="cw-sync")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        async with ThreadSensitiveContext(executor=self.pool):
            await self.handle(scope, receive, send)


def get_application() -> CwASGIHandler:
    get_asgi_application()  # django.setup(), as Django's own does
    return CwASGIHandler()


application = get_application()
