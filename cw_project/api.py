"""The one NinjaAPI of cw; each app contributes a router."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="cw API",
    version="1.0.0",
    description="The control plane for teams of AI coding agents.",
)
