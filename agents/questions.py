"""An agent's pending questions, read from the JSON it reported whatever its shape, so a
person reads questions (with their choices) rather than JSON, in the admin and on the
terminal (``manage.py cw_status``).

The agent reports any JSON value (``agent_mark_waiting``). The shapes understood:
Claude Code's ``AskUserQuestion`` input, ``{"questions": [{"question", "header",
"options": [{"label", "description"}], "multiSelect"}]}``, or its list alone; a list of
texts; one text; an object with a ``question`` (or ``text``) and optional ``options``
(texts or ``{"label"/"value", "description"}``). Anything else becomes one question
whose text is the value written out (``key: value``), never lost.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The keys a question's text, options and flags may be under.
_TEXT_KEYS = ("question", "text", "prompt", "content")
_OPTIONS_KEYS = ("options", "choices")
_MULTIPLE_KEYS = ("multiSelect", "multi_select", "multiple")


@dataclass(frozen=True)
class QuestionOption:
    """One answer a question offers."""

    label: str
    description: str = ""


@dataclass(frozen=True)
class Question:
    """One question an agent waits on: its text, a short header (a topic), the answers
    it offers, and whether several may be chosen."""

    text: str
    header: str = ""
    options: tuple[QuestionOption, ...] = field(default=())
    multiple: bool = False


def read_questions(value: Any) -> list[Question]:
    """The questions in ``value``: a parsed JSON value, or JSON text (a text that is not
    JSON is one question). Empty for None, an empty text or an empty list."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [Question(value)] if value.strip() else []
        if isinstance(parsed, str):
            return [Question(parsed)] if parsed.strip() else []
        return read_questions(parsed)
    if isinstance(value, dict) and isinstance(value.get("questions"), list):
        return read_questions(value["questions"])
    items = value if isinstance(value, list) else [value]
    return [_question(item) for item in items if item not in (None, "")]


def _question(item: Any) -> Question:
    if isinstance(item, str):
        return Question(item)
    if isinstance(item, dict):
        text = next((item[key] for key in _TEXT_KEYS if isinstance(item.get(key), str)), None)
        if text is not None:
            raw_options: list[Any] = next(
                (item[key] for key in _OPTIONS_KEYS if isinstance(item.get(key), list)), []
            )
            header = item.get("header")
            return Question(
                text=text,
                header=header if isinstance(header, str) else "",
                options=tuple(_options(raw_options)),
                multiple=any(item.get(key) is True for key in _MULTIPLE_KEYS),
            )
    return Question(_written_out(item))


def _options(raw: Iterable[Any]) -> Iterable[QuestionOption]:
    for option in raw:
        if isinstance(option, dict):
            label = option.get("label", option.get("value", ""))
            description = option.get("description", "")
            yield QuestionOption(
                label=label if isinstance(label, str) else _written_out(label),
                description=description if isinstance(description, str) else "",
            )
        elif option is not None:
            yield QuestionOption(option if isinstance(option, str) else _written_out(option))


def _written_out(value: Any) -> str:
    """A value of no known shape, as readable text: an object's ``key: value`` pairs, a
    list's items, a number or a truth as itself."""
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_written_out(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_written_out(item) for item in value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def questions_as_lines(questions: list[Question]) -> list[str]:
    """The questions as lines of plain text: each numbered, with its header, then one
    line an answer it offers ("- label: description"), and "(several may be chosen)"
    when so."""
    lines: list[str] = []
    for number, question in enumerate(questions, start=1):
        header = f"[{question.header}] " if question.header else ""
        several = " (several may be chosen)" if question.multiple and question.options else ""
        lines.append(f"{number}. {header}{' '.join(question.text.split())}{several}")
        for option in question.options:
            described = f": {' '.join(option.description.split())}" if option.description else ""
            lines.append(f"   - {option.label}{described}")
    return lines
