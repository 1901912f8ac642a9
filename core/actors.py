"""Who is acting: a person, a tool or the system, and the gates only people may pass.

Every door says who acts, once, for the whole of what it does (``acting_as``): the API
from its authentication (a staff session or a personal token is that person; any other
token is a tool), the admin from its logged-in user, a command as the system under the
command's name (with the operator's name when given), a sweep as the system. Every event
a service records carries the actor in force (``current_actor``), so the feed says who
made each change.

Services that are a person's gate — approving a plan, a phase review or an initiative,
requesting changes, accepting or dismissing proposals, completing a checkpoint,
answering a message addressed to a person — call ``require_person`` first, so every door
obeys the same rule.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import PermissionRequired
from core.models import ApiToken

ActorKind = Literal["person", "tool", "system"]
#: Where an actor acted from: the admin, the API, a command, or a sweep inside cw.
ActorVia = Literal["admin", "api", "command", "system"]


@dataclass(frozen=True)
class Actor:
    """A person (with their user), a tool (with its token) or the system (a command or a
    sweep, named), and the door it acted through."""

    kind: ActorKind
    name: str
    user: Any = None
    token_id: str | None = None
    via: ActorVia = "system"

    @classmethod
    def person(cls, user: Any, *, via: ActorVia = "admin") -> "Actor":
        return cls(kind="person", name=user.get_username(), user=user, via=via)

    @classmethod
    def tool(cls, name: str, *, token_id: str | None = None) -> "Actor":
        return cls(kind="tool", name=name, token_id=token_id, via="api")

    @classmethod
    def system(cls, name: str, *, via: ActorVia = "system") -> "Actor":
        return cls(kind="system", name=name, via=via)

    @property
    def is_person(self) -> bool:
        """A person whose account is active (a deactivated user passes no gate)."""
        return self.kind == "person" and bool(getattr(self.user, "is_active", False))

    @property
    def id(self) -> str | None:
        """The person's user id or the tool's token id (none for the system)."""
        if self.kind == "person":
            return str(self.user.pk)
        return self.token_id

    def as_dict(self) -> dict[str, Any]:
        """The actor as the API shows it (``ActorOut``)."""
        return {"type": self.kind, "id": self.id, "name": self.name, "via": self.via}

    def as_fields(self) -> dict[str, Any]:
        """The actor as an event stores it (``Event.actor_*``)."""
        return {
            "actor_type": self.kind,
            "actor_id": self.id,
            "actor_name": self.name[:150],
            "actor_via": self.via,
        }


#: Who acts when no door said: cw itself (a sweep, a migration, a test calling a service).
SYSTEM = Actor.system("cw")

_current: ContextVar[Actor | None] = ContextVar("cw_actor", default=None)


def current_actor() -> Actor:
    """The actor the door in force named, else ``SYSTEM``."""
    return _current.get() or SYSTEM


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run the block as ``actor``: every event recorded inside names it."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def begin_acting(actor: Actor | None) -> Any:
    """Name the actor until ``end_acting(token)`` (for doors that cannot use a ``with``:
    a middleware around a request); returns the token to end with."""
    return _current.set(actor)


def end_acting(token: Any) -> None:
    _current.reset(token)


def set_actor(actor: Actor) -> None:
    """Name the actor for the rest of the current door's scope (an API request once its
    caller is authenticated; the middleware that opened the scope ends it)."""
    _current.set(actor)


def actor_from_auth(auth: Any) -> Actor:
    """The actor behind an API request's ``request.auth``: a token (a person's when it is
    personal; a run's acts as the tool ``agent:<agent name>``; else a tool's) or a staff
    user."""
    if isinstance(auth, ApiToken):
        if auth.person_id:
            return Actor.person(auth.person, via="api")
        scope = auth.run_scope
        if scope is not None:
            # A run's token acts for the run's agent: a tool named after it.
            return Actor.tool(f"agent:{scope.agent_name or scope.agent_id}", token_id=auth.pk)
        return Actor.tool(auth.name, token_id=auth.pk)
    return Actor.person(auth, via="api")


def require_person(actor: Actor | None, action: str) -> Actor:
    """Refuse ``action`` unless a person acts: 403 ``person_required``."""
    if actor is None or not actor.is_person:
        who = "nobody" if actor is None else f"the {actor.kind} '{actor.name}'"
        raise PermissionRequired(
            f"Only a person can {action}; {who} asked. Use a staff session or a personal token.",
            code="person_required",
            details={"action": action, "actor": None if actor is None else actor.kind},
        )
    return actor
