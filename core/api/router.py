"""The one router of the ``core`` app; its operations live in the modules beside it."""

from ninja import Router

router = Router(tags=["core"])
