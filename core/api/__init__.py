"""The ``core`` app's API: one router (``router``), its operations in one module per
topic (``plans``: planning records; ``events``: the event feed)."""

from core.api import plans  # noqa: F401  (registers its operations on the router)
from core.api.router import router

__all__ = ["router"]
