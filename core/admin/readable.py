"""JSON a record carries (an agent's result, a proposal's metadata), shown on its admin
page as labelled fields instead of JSON text: an object as a definition list (each key
in words), a list as a list, a text as text with its line breaks, a truth as yes or no.
Every text is escaped. Their looks are in ``cw/readable.css`` (``READABLE_CSS``, for an
admin's ``Media``)."""

import json
from collections.abc import Mapping
from typing import Any

from django.template.defaultfilters import linebreaksbr
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

#: How deep objects and lists are laid out before the rest is shown as compact JSON.
MAX_DEPTH = 6
#: The stylesheet of the lists, for the ``Media`` of an admin that shows them.
READABLE_CSS = "cw/readable.css"
#: What an absent value shows.
NOTHING = "—"


def key_words(key: str, labels: Mapping[str, str] | None = None) -> str:
    """A key in words: its label in ``labels``, else ``num_turns`` → "Num turns",
    ``filesChanged`` → "Files changed"."""
    if labels and key in labels:
        return labels[key]
    spaced = "".join(f" {c.lower()}" if c.isupper() else c for c in key).replace("_", " ")
    words = " ".join(spaced.split())
    return words[:1].upper() + words[1:] if words else key


def json_readable(
    value: Any, *, labels: Mapping[str, str] | None = None, depth: int = 0
) -> SafeString:
    """``value`` (a parsed JSON value) as HTML for a person: ``labels`` name an
    object's keys at any depth."""
    if value is None:
        return format_html('<span class="cw-quiet">{}</span>', NOTHING)
    if isinstance(value, bool):
        return format_html("{}", "yes" if value else "no")
    if isinstance(value, int | float):
        return format_html("{}", value)
    if isinstance(value, str):
        return linebreaksbr(value, autoescape=True)
    if depth >= MAX_DEPTH:
        return format_html("<code>{}</code>", json.dumps(value, ensure_ascii=False))
    if isinstance(value, dict):
        if not value:
            return format_html('<span class="cw-quiet">{}</span>', NOTHING)
        return format_html(
            '<dl class="cw-json">{}</dl>',
            format_html_join(
                "",
                "<dt>{}</dt><dd>{}</dd>",
                (
                    (
                        key_words(str(key), labels),
                        json_readable(item, labels=labels, depth=depth + 1),
                    )
                    for key, item in value.items()
                ),
            ),
        )
    if isinstance(value, list):
        if not value:
            return format_html('<span class="cw-quiet">{}</span>', NOTHING)
        return format_html(
            '<ul class="cw-json">{}</ul>',
            format_html_join(
                "",
                "<li>{}</li>",
                ((json_readable(item, labels=labels, depth=depth + 1),) for item in value),
            ),
        )
    return format_html("{}", value)


def json_text_readable(text: str | None, *, labels: Mapping[str, str] | None = None) -> SafeString:
    """A JSON text column shown by ``json_readable`` (a text that is not JSON, as text)."""
    if text is None or not text.strip():
        return json_readable(None)
    try:
        value = json.loads(text)
    except ValueError:
        return json_readable(text)
    return json_readable(value, labels=labels)
