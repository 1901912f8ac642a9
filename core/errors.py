"""The domain errors of cw: one small hierarchy, each error with a stable machine code.

Repositories and services raise these; the API turns them into one JSON error shape and
the admin into messages. ``code`` is part of the public contract: tools branch on it,
so an existing code never changes meaning.
"""

from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain makes on purpose."""

    default_code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details if details is not None else {}

    def __str__(self) -> str:
        return self.message


class NotFound(DomainError):
    """A record named by id does not exist (or no longer exists)."""

    default_code = "not_found"


class InvalidInput(DomainError):
    """The request is malformed for the domain (bad value, missing field, wrong scope)."""

    default_code = "invalid_input"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, already done, changed since)."""

    default_code = "conflict"


class TransitionNotAllowed(Conflict):
    """A lifecycle transition that the record's current status does not allow."""

    default_code = "transition_not_allowed"


class DependencyCycle(Conflict):
    """A dependency edge that would close a cycle; ``details['cycle']`` names it."""

    default_code = "dependency_cycle"


class PermissionRequired(DomainError):
    """The operation needs an acting person (or a right the caller does not have)."""

    default_code = "permission_required"


def not_found(model_name: str, record_id: object) -> NotFound:
    """The NotFound for one missing record, with a code such as ``task_not_found``."""
    slug = model_name.lower().replace(" ", "_")
    return NotFound(
        f"{model_name} '{record_id}' does not exist.",
        code=f"{slug}_not_found",
        details={"id": str(record_id)},
    )
