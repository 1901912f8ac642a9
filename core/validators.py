"""What a column is documented to hold, as Django validators on the model fields.

Declared on the fields, they are run by every door alike: the repositories' validation
(``full_clean``), the admin's model forms, and (through the shared length constants) the
API's schemas. Messages never quote the value (it may be long, or a secret).
"""

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

#: Names and titles (initiatives, phases, tasks, pages, proposals): one line of words.
NAME_MAX_LENGTH = 500
#: Long text (descriptions, documents, comments, messages, log chunks): 1 MB of text,
#: well inside the API's body limit.
TEXT_MAX_LENGTH = 1_000_000

#: File paths (worktrees' output files, files under review): Linux's PATH_MAX.
PATH_MAX_LENGTH = 4096

#: The characters that break a line (Python's ``str.splitlines``): none may be inside a
#: name (around it they are white space, stripped).
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

name_length = MaxLengthValidator(NAME_MAX_LENGTH)
text_length = MaxLengthValidator(TEXT_MAX_LENGTH)
path_length = MaxLengthValidator(PATH_MAX_LENGTH)

#: The URL schemes git clones from (``git+ssh`` and ``ssh+git`` are git's aliases of ssh).
GIT_URL_SCHEMES = frozenset({"https", "http", "ssh", "git", "file", "git+ssh", "ssh+git"})

# git's "scp-like" syntax, ``[user@]host:path``: a colon before any slash, the host a
# DNS name or a bracketed IPv6 address, and a path after the colon.
_SCP_LIKE_URL = re.compile(
    r"(?:[A-Za-z0-9._~+-]+@)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?!//)[^\s]+"
)
_GIT_URL_MESSAGE = (
    "Enter a git repository URL: https://, http://, ssh://, git:// or file://, or the "
    "scp-like user@host:path."
)


def _loads(text: str) -> Any:
    """``json.loads`` that refuses ``NaN`` and ``Infinity``, which are not JSON (a
    browser's ``JSON.parse`` and PostgreSQL's ``jsonb`` refuse them too)."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def validate_json(value: str) -> None:
    """The value is one JSON document (any JSON value)."""
    try:
        _loads(value)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError("Enter a valid JSON document.", code="invalid_json") from None


def validate_one_line(value: str) -> None:
    """The value is one line: no line break inside it once stripped (a name or title:
    what lists, dropdowns and messages show on one line)."""
    if isinstance(value, str) and any(c in LINE_BREAKS for c in value.strip()):
        raise ValidationError("Enter one line: a name has no line breaks.", code="multi_line")


#: What every name and title column holds: one line of at most ``NAME_MAX_LENGTH``.
NAME_VALIDATORS: list[Callable[[Any], None]] = [name_length, validate_one_line]


def validate_git_url(value: str) -> None:
    """The value is a URL git can clone from: ``https://``, ``http://``, ``ssh://``,
    ``git://`` or ``file://`` (with a host, except ``file://``, and a path), or the
    scp-like ``user@host:path`` (``git@github.com:org/repo.git``). Django's
    ``URLValidator`` knows no scp-like URLs, hence this one."""
    if not isinstance(value, str) or any(c.isspace() or not c.isprintable() for c in value):
        raise ValidationError(_GIT_URL_MESSAGE, code="invalid_git_url")
    if "://" in value:
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises ValueError for a port that is not a number
        except ValueError:
            raise ValidationError(_GIT_URL_MESSAGE, code="invalid_git_url") from None
        scheme_ok = parts.scheme.lower() in GIT_URL_SCHEMES
        host_ok = parts.scheme.lower() == "file" or bool(parts.hostname)
        if scheme_ok and host_ok and parts.path.strip("/"):
            return
        raise ValidationError(_GIT_URL_MESSAGE, code="invalid_git_url")
    if not _SCP_LIKE_URL.fullmatch(value):
        raise ValidationError(_GIT_URL_MESSAGE, code="invalid_git_url")


#: A git object name: 40 hex digits (SHA-1) or 64 (SHA-256 repositories).
_GIT_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def validate_git_commit(value: str) -> None:
    """The value is a full git commit name in lower case: 40 hexadecimal digits (SHA-1)
    or 64 (a SHA-256 repository); abbreviations name no commit for good."""
    if not isinstance(value, str) or not _GIT_COMMIT.fullmatch(value):
        raise ValidationError(
            "Enter a full git commit: 40 or 64 lower-case hexadecimal digits.",
            code="invalid_git_commit",
        )


def validate_jsonl(value: str) -> None:
    """Every non-blank line of the value is a JSON document (JSON Lines).

    No field uses it any more (a log chunk is any text the agent printed,
    ``docs/decisions.md``, "Logs: raw text"); it stays for the migrations that name it.

    Lines end at ``\n`` alone (``\r\n`` too: the ``\r`` is JSON whitespace), as the
    JSON Lines format says, not at every separator ``str.splitlines`` knows: a JSON
    string may hold a raw U+2028 or U+0085, and a coding CLI's output does.
    """
    for number, line in enumerate(value.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            _loads(line)
        except (TypeError, ValueError, RecursionError):
            raise ValidationError(
                "Line %(line)s is not a JSON document (each line of a log chunk is one).",
                code="invalid_jsonl",
                params={"line": number},
            ) from None


def validate_tiptap_document(value: str) -> None:
    """The value is a Tiptap (ProseMirror) document: JSON whose root is ``{"type": "doc"}``
    and whose every node has a string ``type``, a list ``content`` of nodes when it has
    children, a string ``text`` for text nodes, and a list of typed ``marks``."""
    try:
        doc = _loads(value)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError(
            'Enter a Tiptap document (JSON such as {"type": "doc", "content": []}).',
            code="invalid_tiptap",
        ) from None
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        raise ValidationError(
            'A Tiptap document is a JSON object whose "type" is "doc".', code="invalid_tiptap"
        )
    problem = _tiptap_problem(doc)
    if problem:
        raise ValidationError(
            "Not a Tiptap document: %(problem)s.",
            code="invalid_tiptap",
            params={"problem": problem},
        )


def _tiptap_problem(doc: dict[str, Any]) -> str | None:
    # An explicit stack: a deeply nested document must not exhaust Python's stack.
    stack: list[tuple[Any, str]] = [(doc, "doc")]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return f"{where} is not a node with a type"
        if node["type"] == "text" and not isinstance(node.get("text"), str):
            return f"{where} is a text node without text"
        marks = node.get("marks", [])
        if not isinstance(marks, list) or not all(
            isinstance(m, dict) and isinstance(m.get("type"), str) for m in marks
        ):
            return f"{where} has marks that are not typed objects"
        if "attrs" in node and not isinstance(node["attrs"], dict | type(None)):
            return f"{where} has attrs that are not an object"
        content = node.get("content", [])
        if not isinstance(content, list):
            return f"{where}.content is not a list"
        stack.extend((child, f"{where}.content[{i}]") for i, child in enumerate(content))
    return None
