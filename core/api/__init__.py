"""The ``core`` app's API: one router (``router``), its operations in one module per
topic (``plans``: initiatives, phases, tasks and the ready queue; ``pages``;
``projects``; ``events``: the event feed)."""

from core.api import events, pages, plans, projects  # noqa: F401  (registers their operations on the router)
from core.api.router import router

__all__ = ["router"]
