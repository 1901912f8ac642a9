"""The API router of the ``agents`` app: accounts, agents, their logs and messages."""

from ninja import Router

router = Router(tags=["agents"])
