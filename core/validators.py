"""What a column is documented to hold, as Django validators on the model fields.

Declared on the fields, they are run by every door alike: the repositories' validation
(``full_clean``), the admin's model forms, and (through the shared length constants) the
API's schemas. Messages never quote the value (it may be long, or a secret).
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator

#: Names and titles (initiatives, phases, tasks, pages, proposals): one line of words.
NAME_MAX_LENGTH = 500
#: Long text (descriptions, documents, comments, messages, log chunks): 1 MB of text,
#: well inside the API's body limit.
TEXT_MAX_LENGTH = 1_000_000

name_length = MaxLengthValidator(NAME_MAX_LENGTH)
text_length = MaxLengthValidator(TEXT_MAX_LENGTH)


def validate_json(value: str) -> None:
    """The value is one JSON document (any JSON value)."""
    try:
        json.loads(value)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError("Enter a valid JSON document.", code="invalid_json") from None


def validate_jsonl(value: str) -> None:
    """Every non-blank line of the value is a JSON document (JSON Lines)."""
    for number, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
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
        doc = json.loads(value)
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
