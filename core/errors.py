"""The domain errors of cw, and the one catalogue of the codes they carry.

Repositories and services raise these; the API turns them into one JSON error shape and
the admin into messages. ``code`` is part of the public contract: tools branch on it,
so an existing code never changes meaning.

Every code is declared once in the catalogue, with its HTTP status and a one-line
meaning (``docs/errors.md`` is generated from it: ``manage.py error_catalogue``):

- each app declares the codes it raises in its own ``errors`` module (this one for core
  and for the codes every app shares; ``agents.errors`` and ``reviews.errors``, loaded
  by their ``AppConfig.ready()``), and the API the codes only it answers
  (``cw_project.errors``);
- a model constraint declares its code itself, with ``violation_error_code`` and
  ``violation_error_message`` (409 for a ``UniqueConstraint``, 400 otherwise): the
  catalogue gathers those from the models. A code several constraints share with
  different messages is declared once more here, with the meaning they share.

``DomainError`` refuses a code the catalogue does not declare (``UndeclaredErrorCode``)
or one declared for another status (``ErrorClassMismatch``): programming errors, never
answered as a refusal, so a new code cannot reach an API user without an entry.

Codes follow one grammar, ``<thing>_<problem>`` (``task_not_found``, ``page_root_taken``,
``dependency_other_initiative``), except the two generic problems of a value, which lead:
``invalid_<thing>`` and ``empty_<thing>`` (``invalid_limit``, ``empty_name``), so the code
of a refused field follows from the field's name (``docs/decisions.md``, "Error codes").

A code renamed keeps its old spelling for one release as an alias: ``rename(old, new)``
records it, the catalogue lists it under the new code (``ErrorCode.replaces``), the API
answers the new code with the old ones in ``deprecated_codes``, and raising the old code
is refused like any undeclared one.
"""

import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from django.db import models

# --- the hierarchy ---------------------------------------------------------------------


class DomainError(Exception):
    """Base of every refusal the domain makes on purpose."""

    #: The HTTP status of every code raised with this class (the most specific wins).
    http_status: ClassVar[int] = 400
    default_code: ClassVar[str] = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details if details is not None else {}
        check_raisable(self.code, type(self))

    def __str__(self) -> str:
        return self.message

    @property
    def error_code(self) -> "ErrorCode":
        """The catalogue's entry for this error's code."""
        return lookup(self.code)


class NotFound(DomainError):
    """A record named by id does not exist (or no longer exists)."""

    http_status = 404
    default_code = "not_found"


class InvalidInput(DomainError):
    """The request is malformed for the domain (bad value, missing field, wrong scope)."""

    http_status = 400
    default_code = "invalid_input"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, already done, changed since)."""

    http_status = 409
    default_code = "conflict"


class TransitionNotAllowed(Conflict):
    """A lifecycle transition that the record's current status does not allow."""

    default_code = "transition_not_allowed"


class DependencyCycle(Conflict):
    """A dependency edge that would close a cycle; ``details['cycle']`` names it."""

    default_code = "dependency_cycle"


class PermissionRequired(DomainError):
    """The operation needs an acting person (or a right the caller does not have)."""

    http_status = 403
    default_code = "permission_required"


# --- the catalogue ---------------------------------------------------------------------


class UndeclaredErrorCode(LookupError):
    """A code that the catalogue does not declare: declare it in its app's ``errors``."""


class ErrorClassMismatch(TypeError):
    """A code raised with an error class of another HTTP status than it is declared with."""


class DuplicateErrorCode(ValueError):
    """A code declared twice, differently."""


@dataclass(frozen=True)
class ErrorCode:
    """One entry of the catalogue."""

    code: str
    status: int
    meaning: str
    #: The ``DomainError`` class the code is raised with; None for a code only the API
    #: answers (``validation_error``, ``not_authenticated``, …).
    error: type[DomainError] | None
    #: Who declares it: an app label (``core``, ``agents``, ``reviews``) or ``api``.
    app: str
    #: The model constraints (``app_label.Model.constraint_name``) that carry the code.
    constraints: tuple[str, ...] = ()
    #: The former codes of this refusal (``rename``), kept as aliases for one release.
    replaces: tuple[str, ...] = ()


_CODE_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_declared: dict[str, ErrorCode] = {}
#: Each renamed code, by its former spelling (``rename``).
_renamed: dict[str, str] = {}
_complete: dict[str, ErrorCode] | None = None


def declare(app: str, code: str, error: type[DomainError] | int, meaning: str) -> ErrorCode:
    """Declare ``code``: raised with the ``DomainError`` subclass ``error`` (its status
    follows the class), or answered only by the API with the HTTP status ``error``."""
    global _complete
    if not _CODE_PATTERN.fullmatch(code):
        raise ValueError(f"Error code {code!r} is not snake_case.")
    if not meaning.strip() or "\n" in meaning:
        raise ValueError(f"Error code {code!r} needs a meaning of one line.")
    if isinstance(error, int):
        entry = ErrorCode(code, error, meaning, None, app)
    else:
        entry = ErrorCode(code, error.http_status, meaning, error, app)
    existing = _declared.get(code)
    if existing is not None and existing != entry:
        raise DuplicateErrorCode(
            f"Error code {code!r} is declared twice: by {existing.app} and by {app}."
        )
    _declared[code] = entry
    _complete = None
    return entry


def rename(old: str, new: str) -> None:
    """Record that the refusal once answered ``old`` now answers ``new`` (declared, or a
    constraint's code). ``old`` stays documented as an alias for one release: listed
    beside ``new`` in ``docs/errors.md`` and answered in the API's ``deprecated_codes``;
    raising it is refused (``UndeclaredErrorCode``)."""
    global _complete
    if not _CODE_PATTERN.fullmatch(old) or not _CODE_PATTERN.fullmatch(new) or old == new:
        raise ValueError(f"Cannot rename {old!r} to {new!r}: two different snake_case codes.")
    existing = _renamed.get(old)
    if existing is not None and existing != new:
        raise DuplicateErrorCode(f"Error code {old!r} is renamed twice: to {existing!r}, {new!r}.")
    _renamed[old] = new
    _complete = None


def renamed() -> dict[str, str]:
    """Every former code (an alias for one release), with the code that replaced it."""
    return dict(_renamed)


def _with_aliases(codes: dict[str, ErrorCode], *, complete: bool) -> dict[str, ErrorCode]:
    """``codes`` with each entry's former codes (``replaces``); once ``complete``, a
    rename to a code that is not declared, or of one still declared, is refused."""
    by_new: dict[str, list[str]] = {}
    for old, new in sorted(_renamed.items()):
        if old in codes:
            raise DuplicateErrorCode(
                f"Error code {old!r} is renamed to {new!r} but still declared: drop it."
            )
        by_new.setdefault(new, []).append(old)
    for new, olds in by_new.items():
        entry = codes.get(new)
        if entry is None:
            if complete:
                raise UndeclaredErrorCode(f"Error code {olds} renamed to {new!r}, undeclared.")
            continue
        codes[new] = replace(entry, replaces=tuple(olds))
    return codes


def constraint_error_class(constraint: models.BaseConstraint) -> type[DomainError]:
    """How a refusal by ``constraint`` is raised: a clash (409) for a unique constraint,
    a refused value (400) for any other."""
    return Conflict if isinstance(constraint, models.UniqueConstraint) else InvalidInput


def _constraint_carriers() -> dict[str, list[tuple[str, models.BaseConstraint]]]:
    """Each ``violation_error_code`` of the installed models, with the constraints (by
    name, in a stable order) that carry it."""
    from django.apps import apps

    carriers: dict[str, list[tuple[str, models.BaseConstraint]]] = {}
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        for constraint in sorted(model._meta.constraints, key=lambda c: c.name):
            code = constraint.violation_error_code
            if code:
                name = f"{model._meta.label}.{constraint.name}"
                carriers.setdefault(code, []).append((name, constraint))
    return carriers


def _with_constraint_codes() -> dict[str, ErrorCode]:
    codes = dict(_declared)
    for code, carried in _constraint_carriers().items():
        names = tuple(name for name, _ in carried)
        classes = {constraint_error_class(c) for _, c in carried}
        statuses = {cls.http_status for cls in classes}
        if len(statuses) > 1:
            raise ErrorClassMismatch(
                f"Error code {code!r} is carried by unique and other constraints: {names}."
            )
        entry = codes.get(code)
        if entry is not None:
            if entry.status not in statuses:
                raise ErrorClassMismatch(
                    f"Error code {code!r} is declared by {entry.app} with status "
                    f"{entry.status}, but the constraints {names} refuse with {statuses}."
                )
            codes[code] = replace(entry, constraints=names)
            continue
        name, first = carried[0]
        codes[code] = ErrorCode(
            code=code,
            status=statuses.pop(),
            meaning=str(first.violation_error_message),
            error=classes.pop(),
            app=name.split(".", 1)[0] if len({n.split(".")[0] for n in names}) == 1 else "core",
            constraints=names,
        )
    return codes


def _current() -> dict[str, ErrorCode]:
    global _complete
    if _complete is not None:
        return _complete
    from django.apps import apps

    if not apps.models_ready:
        return _with_aliases(dict(_declared), complete=False)
    _complete = _with_aliases(_with_constraint_codes(), complete=True)
    return _complete


def catalogue() -> dict[str, ErrorCode]:
    """Every declared code, the models' constraint codes included once the app registry
    is ready (before that, only the codes declared so far)."""
    return dict(_current())


def explicitly_declared() -> dict[str, ErrorCode]:
    """The codes declared with ``declare()`` (without those only constraints carry)."""
    return dict(_declared)


def lookup(code: str) -> ErrorCode:
    """The catalogue's entry for ``code``; ``UndeclaredErrorCode`` when there is none (a
    former code included: it is only an alias of the code that replaced it)."""
    entry = _current().get(code)
    if entry is None and code in _renamed:
        raise UndeclaredErrorCode(
            f"Error code {code!r} was renamed to {_renamed[code]!r}: raise that one."
        )
    if entry is None:
        raise UndeclaredErrorCode(
            f"Error code {code!r} is not in the catalogue: declare it (code, error class, "
            "meaning) in its app's errors module, or on the model constraint that refuses "
            "it, then regenerate docs/errors.md with `manage.py error_catalogue`."
        )
    return entry


def check_raisable(code: str, error: type[DomainError]) -> None:
    """Refuse to raise ``code`` with ``error`` unless the catalogue declares the code for
    a domain error of the same HTTP status."""
    entry = lookup(code)
    if entry.error is None or entry.status != error.http_status:
        declared_as = entry.error.__name__ if entry.error else "an API-only code"
        raise ErrorClassMismatch(
            f"Error code {code!r} is declared as {declared_as} ({entry.status}); it cannot "
            f"be raised as {error.__name__} ({error.http_status})."
        )


# --- core's codes, and those every app shares -------------------------------------------

# Refusals of the shared repository base, validators and pagination contract.
declare(
    "core",
    "invalid_field",
    InvalidInput,
    "A create or update names a field that does not exist or may not be set that way "
    "(`details.fields`).",
)
declare(
    "core",
    "invalid_value",
    InvalidInput,
    "A value cannot be stored alike in every database (NUL, invalid Unicode, an integer "
    "beyond 32 bits, a date out of range) or breaks a rule of the schema.",
)
declare(
    "core",
    "json_too_deep",
    InvalidInput,
    "A JSON value (a proposal's metadata) nests objects and arrays deeper than "
    "`details.max_depth` allows; `details.field` names it.",
)
declare(
    "core",
    "validation_failed",
    InvalidInput,
    "A field's value breaks that field's own rules (length, format, required); "
    "`details.fields` has the messages by field.",
)
declare(
    "core", "invalid_reference", InvalidInput, "A field refers to a record that does not exist."
)
declare(
    "core",
    "invalid_limit",
    InvalidInput,
    "A page's `limit` is not a whole number within the list's page size cap "
    "(`details.min`, `details.max`).",
)
declare(
    "core",
    "invalid_offset",
    InvalidInput,
    "A page's `offset` is not a whole number from 0 to 2147483647.",
)
declare(
    "core",
    "invalid_cursor",
    InvalidInput,
    "An `after` cursor is not an id of the list's items, or names no item of the list.",
)
declare(
    "core",
    "invalid_status",
    InvalidInput,
    "A status that is not one of the record's statuses (`details.allowed` lists them).",
)
declare(
    "core",
    "invalid_type",
    InvalidInput,
    "A type that is not one of the record's types (a task's or a message's).",
)
declare(
    "core",
    "transition_not_allowed",
    TransitionNotAllowed,
    "The record's current status does not allow this transition (`details.allowed_from`).",
)
declare("core", "empty_name", InvalidInput, "The name is missing or blank.")
declare("core", "empty_content", InvalidInput, "The content is missing or blank.")

# Authentication (core.auth).
declare("core", "staff_required", PermissionRequired, "The API is open to staff users only.")
declare(
    "core",
    "csrf_failed",
    PermissionRequired,
    "A browser session's unsafe request lacks the CSRF token (`X-CSRFToken` header).",
)
declare(
    "core",
    "tool_token_required",
    PermissionRequired,
    "The operation takes an API token only: a browser session is refused.",
)

# API tokens (core.tokens).
declare("core", "token_not_found", NotFound, "No API token has this id or prefix.")
rename("api_token_not_found", "token_not_found")
declare("core", "rate_window_not_found", NotFound, "No API write counter has this id.")
rename("api_rate_window_not_found", "rate_window_not_found")
declare(
    "core",
    "token_name_too_long",
    InvalidInput,
    "A token name is longer than `details.max_length` characters.",
)
declare(
    "core",
    "token_prefix_ambiguous",
    InvalidInput,
    "Several API tokens start with this prefix: revoke by id instead.",
)
declare("core", "token_already_revoked", Conflict, "The API token is already revoked.")

# Initiatives, phases, tasks, pages and projects.
declare("core", "initiative_not_found", NotFound, "No initiative has this id.")
declare("core", "phase_not_found", NotFound, "No phase has this id.")
declare("core", "task_not_found", NotFound, "No task has this id.")
declare("core", "page_not_found", NotFound, "No page has this id.")
declare("core", "phase_dependency_not_found", NotFound, "No phase dependency has this id.")
declare("core", "task_dependency_not_found", NotFound, "No task dependency has this id.")
declare(
    "core",
    "project_not_found",
    NotFound,
    "No project has this id (`details.id`; `details.ids` when linking several).",
)
declare(
    "core",
    "project_fetch_failed",
    Conflict,
    "cw could not fetch the project's repository into its mirror (`details.reason` says "
    "what git said: an unreachable URL, a refused credential, a timeout).",
)
declare(
    "core",
    "initiative_project_not_found",
    NotFound,
    "No link between an initiative and a project has this id.",
)
declare(
    "core",
    "invalid_blocked_from_status",
    InvalidInput,
    "The status a blocked phase or task returns to is not one of its statuses.",
)
declare("core", "invalid_id", InvalidInput, "A dependency is not given as two record ids.")
declare(
    "core",
    "dependency_not_found",
    NotFound,
    "The phase or task does not depend on the record named (nothing to remove).",
)
declare(
    "core",
    "dependency_self_edge",
    InvalidInput,
    "A phase or task cannot depend on itself.",
)
declare(
    "core",
    "dependency_taken",
    Conflict,
    "The phase or task already depends on that one.",
)
rename("dependency_duplicate", "dependency_taken")
declare(
    "core",
    "dependency_other_initiative",
    InvalidInput,
    "A dependency joins phases or tasks of different initiatives: the one depended on "
    "belongs to another initiative.",
)
rename("dependency_cross_initiative", "dependency_other_initiative")
declare(
    "core",
    "dependency_cycle",
    DependencyCycle,
    "The dependency would close a cycle (`details.cycle` names it).",
)
declare("core", "person_not_found", NotFound, "No person (user) has this id.")
declare(
    "core",
    "task_place_required",
    InvalidInput,
    "A task belongs to a phase or an initiative (a subtask may take its parent's): it "
    "names neither.",
)
declare(
    "core",
    "task_phase_other_initiative",
    InvalidInput,
    "A task's phase belongs to another initiative than the task.",
)
rename("task_initiative_mismatch", "task_phase_other_initiative")
declare(
    "core",
    "task_parent_other_initiative",
    InvalidInput,
    "A subtask's parent task belongs to another initiative than the subtask.",
)
rename("task_parent_mismatch", "task_parent_other_initiative")
declare(
    "core",
    "task_parent_cycle",
    InvalidInput,
    "A task cannot be a subtask of itself or of one of its own subtasks.",
)
declare(
    "core",
    "task_not_ready",
    TransitionNotAllowed,
    "The task cannot start: a task it depends on, its phase's approval or a phase that "
    "phase depends on is not done.",
)
declare(
    "core",
    "phase_tasks_incomplete",
    TransitionNotAllowed,
    "The phase still has tasks that are not completed (`details.open_tasks`).",
)
declare(
    "core",
    "initiative_phases_incomplete",
    TransitionNotAllowed,
    "The initiative still has phases that are not completed (`details.open_phases`).",
)
declare(
    "core",
    "phase_dependencies_incomplete",
    TransitionNotAllowed,
    "A phase it depends on is not completed yet.",
)
declare(
    "core",
    "page_parent_other_initiative",
    InvalidInput,
    "A page's parent belongs to another initiative.",
)
rename("page_parent_mismatch", "page_parent_other_initiative")
declare(
    "core",
    "page_parent_cycle",
    InvalidInput,
    "A page cannot be placed under itself or one of its own pages.",
)
declare(
    "core",
    "page_root_fixed",
    InvalidInput,
    "The root page stays the root, and every other page keeps a parent.",
)
declare(
    "core",
    "invalid_project_ids",
    InvalidInput,
    "`project_ids` is not a list of project ids.",
)
declare(
    "core",
    "person_required",
    PermissionRequired,
    "A person's gate (approving, accepting, answering a person, starting or completing a "
    "checkpoint task): a tool's token cannot pass it.",
)
rename("checkpoint_requires_person", "person_required")
declare("core", "invalid_kind", InvalidInput, "An event `kind` that is not in the catalogue.")
declare(
    "core", "invalid_wait", InvalidInput, "A long-poll `wait` is not a number from 0 to 30 seconds."
)
declare("core", "event_not_found", NotFound, "No event has this id (it may have been pruned).")

# Constraint codes renamed (declared on their constraints in core.models).
rename("initiative_project_duplicate", "initiative_project_taken")
rename("page_root_exists", "page_root_taken")
