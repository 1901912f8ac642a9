"""A page's content and a phase's description, written as markdown and read as HTML.

Both are stored as Tiptap documents (JSON text: what the API and the editor speak). In
the admin a person writes markdown in a plain textarea: the form shows the stored
document converted (``core.tiptap.tiptap_to_markdown``), converts what is written back
when it is cleaned (``markdown_to_tiptap_json``), and the record's service saves it like
any other field. The document is read rendered (``tiptap_to_html``: generated from the
nodes, every text escaped, links only to safe addresses) above the textarea, and in its
place for a person who may only view the record.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from core.tiptap import (
    markdown_to_tiptap,
    markdown_to_tiptap_json,
    tiptap_to_html,
    tiptap_to_markdown,
)
from core.validators import TEXT_MAX_LENGTH

#: The fields written as markdown, on the models whose admins use ``MarkdownContentAdmin``.
MARKDOWN_FIELDS = ("content",)

_TEXTAREA_STYLE = (
    "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; "
    "font-size: 0.875rem; line-height: 1.45; width: min(100%, 60em); box-sizing: border-box"
)


def _stored_document(value: Any) -> dict[str, Any] | None:
    """The Tiptap document stored as ``value`` (JSON text), None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("type") == "doc" else None


def rendered(value: Any) -> SafeString:
    """A stored document (JSON text) as HTML for a page; text that is not a document
    (older content) as markdown would read it. Always safe to insert."""
    doc = _stored_document(value)
    if doc is None:
        doc = markdown_to_tiptap(value) if isinstance(value, str) else None
    return mark_safe(tiptap_to_html(doc))  # noqa: S308 - tiptap_to_html escapes every text


def as_markdown(value: Any) -> str:
    """A stored document as the markdown a person edits (text that is not a document
    stays as it is)."""
    doc = _stored_document(value)
    if doc is not None:
        return tiptap_to_markdown(doc)
    return value if isinstance(value, str) else ""


class _Written(str):
    """Markdown a person wrote (a bound form's data), as opposed to a stored document."""


class MarkdownTextarea(forms.Textarea):
    """A monospace textarea for markdown, under the document it holds, rendered."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        defaults = {"rows": 18, "cols": 100, "class": "cw-markdown", "style": _TEXTAREA_STYLE}
        super().__init__({**defaults, **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        textarea = super().render(name, value, attrs, renderer)
        html = tiptap_to_html(markdown_to_tiptap(value)) if value and str(value).strip() else ""
        if not html:
            return textarea
        return format_html(
            '{}<div class="cw-markdown-field"><div class="cw-rendered" data-cw-rendered>{}</div>'
            "{}</div>",
            render_to_string("admin/core/rendered_style.html"),
            mark_safe(html),  # noqa: S308 - tiptap_to_html escapes every text
            textarea,
        )


class MarkdownDocumentField(forms.CharField):
    """A Tiptap document edited as markdown: shown converted, cleaned into the document
    as JSON text (None when nothing is written)."""

    widget = MarkdownTextarea

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "Markdown: # headings, - lists, 1. numbered lists, **bold**, *italic*, "
            "`code`, ``` code blocks, > quotes, [links](https://…).",
        )
        super().__init__(strip=False, **kwargs)

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).replace("\r\n", "\n")

    def bound_data(self, data: Any, initial: Any) -> Any:
        return _Written(data) if isinstance(data, str) else data

    def prepare_value(self, value: Any) -> Any:
        return value if isinstance(value, _Written) else as_markdown(value)

    def clean(self, value: Any) -> str | None:
        written = super().clean(value)
        if not written.strip():
            return None
        document = markdown_to_tiptap_json(written)
        if len(document) > TEXT_MAX_LENGTH:
            raise forms.ValidationError(
                "This text is too long: stored as a document it takes %(length)s characters, "
                "at most %(limit)s.",
                code="max_length",
                params={"length": len(document), "limit": TEXT_MAX_LENGTH},
            )
        return document

    def has_changed(self, initial: Any, data: Any) -> bool:
        """Changed when the document changes, whatever its spelling."""
        written = self.to_python(data)
        before = _stored_document(initial)
        if before is None and not (initial or "").strip():
            return bool(written.strip())
        if before is None:
            return True
        return not written.strip() or markdown_to_tiptap(written) != before


class MarkdownContentAdmin(admin.ModelAdmin):
    """An admin whose record's ``content`` (a Tiptap document) is written as markdown and
    read as HTML: above the textarea, and in its place when the record is only viewed."""

    #: What the field is called on the form (a phase's content is its description).
    content_label = "Content"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in MARKDOWN_FIELDS:
            return MarkdownDocumentField(label=self.content_label)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fields
        shown: list[Any] = []
        for field in fields:
            field = "content_rendered" if field == "content" else field
            if field not in shown:
                shown.append(field)
        return shown

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            return (*readonly, "content_rendered")
        return readonly

    @admin.display(description="content")
    def content_rendered(self, record: Any) -> SafeString:
        return format_html(
            '{}<div class="cw-rendered" data-cw-rendered>{}</div>',
            render_to_string("admin/core/rendered_style.html"),
            rendered(record.content),
        )
