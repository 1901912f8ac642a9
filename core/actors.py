"""Who is acting: a person or a tool, and the gates only people may pass.

Every door says who acts: the API from its authentication (a staff session or a personal
token is that person; any other token is a tool), the admin from its logged-in user, a
command from the operator's choice. Services that are a person's gate — approving a plan,
a phase review or an initiative, requesting changes, accepting or dismissing proposals,
completing a checkpoint, answering a message addressed to a person — call
``require_person`` first, so every door obeys the same rule.
"""

from dataclasses import dataclass
from typing import Any, Literal

from core.errors import PermissionRequired
from core.models import ApiToken


@dataclass(frozen=True)
class Actor:
    """A person (with their user) or a tool (with its token's name)."""

    kind: Literal["person", "tool"]
    name: str
    user: Any = None

    @classmethod
    def person(cls, user: Any) -> "Actor":
        return cls(kind="person", name=user.get_username(), user=user)

    @classmethod
    def tool(cls, name: str) -> "Actor":
        return cls(kind="tool", name=name)

    @property
    def is_person(self) -> bool:
        """A person whose account is active (a deactivated user passes no gate)."""
        return self.kind == "person" and bool(getattr(self.user, "is_active", False))


def actor_from_auth(auth: Any) -> Actor:
    """The actor behind an API request's ``request.auth``: a token (a person's when it is
    personal, else a tool's) or a staff user."""
    if isinstance(auth, ApiToken):
        return Actor.person(auth.person) if auth.person_id else Actor.tool(auth.name)
    return Actor.person(auth)


def require_person(actor: Actor | None, action: str) -> Actor:
    """Refuse ``action`` unless a person acts: 403 ``person_required``."""
    if actor is None or not actor.is_person:
        who = "nobody" if actor is None else f"the tool '{actor.name}'"
        raise PermissionRequired(
            f"Only a person can {action}; {who} asked. Use a staff session or a personal token.",
            code="person_required",
            details={"action": action, "actor": None if actor is None else actor.kind},
        )
    return actor
