"""Checks every repository shares, so each rule has one wording and one error code.

They raise ``InvalidInput`` with a code from the catalogue (``core.errors``); none of them
quotes a value that may be a secret.
"""

import datetime as dt
import json
from typing import Any

from django.db import models

from core.errors import InvalidInput

#: PostgreSQL's ``integer``: the range of every integer column, so both databases accept
#: exactly the same values.
INT32 = (-(2**31), 2**31 - 1)

#: How deep a JSON value from a caller may nest objects and arrays (the outermost counts
#: as 1: ``{}`` is 1 deep, ``{"a": []}`` 2). Far beyond what any metadata or record snapshot
#: needs, and far below what breaks a recursive reader or writer of JSON: Python's parser
#: and ``json.dumps`` (about 1,000, the recursion limit), orjson (255), pydantic-core.
MAX_JSON_DEPTH = 64


def check_choice(choices: type[models.TextChoices], value: Any, field: str) -> str:
    """Return ``value`` when it is one of ``choices``; else InvalidInput ``invalid_<field>``."""
    if value not in choices.values:
        raise InvalidInput(
            f"Unknown {field.replace('_', ' ')} {value!r}; expected one of "
            f"{', '.join(choices.values)}.",
            code=f"invalid_{field}",
            details={"field": field, "value": str(value), "allowed": list(choices.values)},
        )
    return str(value)


def require_text(value: Any, field: str) -> str:
    """Refuse a missing or blank text value with InvalidInput ``empty_<field>`` (the one
    code for "required text left blank", whatever the record)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"The {field.replace('_', ' ')} must not be empty.",
            code=f"empty_{field}",
            details={"field": field},
        )
    return value


def is_int32(value: Any) -> bool:
    """Whether ``value`` is a whole number (not a bool) that fits 32 bits."""
    return not isinstance(value, bool) and isinstance(value, int) and INT32[0] <= value <= INT32[1]


def require_int(value: Any, field: str, *, minimum: int = INT32[0], code: str) -> int:
    """Return ``value`` when it is a whole number (not a bool) from ``minimum`` to the
    32-bit maximum; else InvalidInput ``code`` naming ``field``."""
    if not is_int32(value) or value < minimum:
        raise InvalidInput(
            f"{field.replace('_', ' ').capitalize()} must be a whole number from {minimum} "
            f"to {INT32[1]}.",
            code=code,
            details={"field": field, field: str(value)},
        )
    return int(value)


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored alike in every database, or None when it can.

    PostgreSQL refuses NUL in text and jsonb while SQLite keeps it; a lone surrogate
    (which JSON's ``\\u`` escapes can spell) cannot be encoded as UTF-8 at all. The
    reason never quotes the text (it may be a secret).
    """
    if "\x00" in text:
        return "must not contain NUL (\\x00) characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "must be valid Unicode: it contains a lone surrogate (\\ud800-\\udfff) "
            "that cannot be encoded as UTF-8"
        )
    return None


def unstorable_text(value: Any) -> bool:
    """Whether a string, or any key or string inside JSON, has a ``text_problem``.

    An explicit stack, not recursion: a document nested thousands deep is walked like a
    flat one instead of exhausting Python's stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if text_problem(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests dicts, lists or tuples more than ``limit`` deep (see
    ``MAX_JSON_DEPTH``; a string or number is 0 deep).

    An explicit stack, not recursion, that stops at the first container past the limit:
    a value nested a hundred thousand deep is refused after ``limit`` steps down, and a
    value that contains itself (no JSON does, but a Python value may) is refused too.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def check_json_depth(value: Any, field: str) -> None:
    """Refuse a value nested deeper than ``MAX_JSON_DEPTH`` with InvalidInput
    ``json_too_deep`` naming ``field``. Run it before any other walk of the value."""
    if json_depth_exceeds(value):
        raise InvalidInput(
            f"The {field.replace('_', ' ')} nests objects and arrays more than "
            f"{MAX_JSON_DEPTH} deep.",
            code="json_too_deep",
            details={"field": field, "max_depth": MAX_JSON_DEPTH},
        )


def outside_int32(field: models.Field, value: Any) -> bool:
    """Whether an integer column's value is a bool or beyond 32 bits (PostgreSQL's
    ``integer``), so both databases accept exactly the same values."""
    if not isinstance(field, models.IntegerField) or isinstance(
        field, models.AutoField | models.BigIntegerField
    ):
        return False
    return isinstance(value, bool) or (isinstance(value, int) and not is_int32(value))


def unstorable_datetime(value: Any) -> bool:
    """Whether an aware datetime falls outside what both databases store once in UTC (a
    far-future time with a negative offset would land in the year 10000)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return False
    try:
        return not 1 <= value.astimezone(dt.UTC).year <= 9998
    except OverflowError:
        return True


def json_text_problem(text: str) -> str | None:
    """Why ``text`` is not a JSON document, or None when it is one."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return "must be a JSON document"
    return None
