"""The API router of the ``reviews`` app: proposals, review comments, chat sessions."""

from ninja import Router

router = Router(tags=["reviews"])
