"""``docs/errors.md``, the reference of every error code for API users, rendered from the
catalogue in ``core.errors``.

Regenerate it with ``manage.py error_catalogue > docs/errors.md``; a test compares the
committed file with a fresh rendering, so a code cannot change by accident.
"""

from django.apps import apps
from django.urls import get_resolver

from core.errors import ErrorCode, catalogue

#: The sections of the reference, in order: the API's own codes, then each app's.
SECTIONS = ("api", "core", "agents", "reviews", "operations")

_INTRO = """\
# Error codes

<!-- Generated from the catalogue in core/errors.py: do not edit by hand.
     Regenerate with `.venv/bin/python manage.py error_catalogue > docs/errors.md`. -->

Every error the API answers has one shape,
`{"code": "<stable code>", "message": "<for people>", "details": {...}}`. Branch on
`code`: it is part of the contract and never changes meaning; `message` may be reworded.
This is every code, with the HTTP status it comes with and what it means. A code marked
*(constraint)* is a database constraint's refusal (see `core/models.py` and the apps'
models). An HTTP error with a status this list has no code for answers `http_<status>`.

Codes read `<thing>_<problem>` (`task_not_found`, `page_root_taken`,
`dependency_other_initiative`); the two generic problems of a value lead, `invalid_<thing>`
and `empty_<thing>`, so a refused field's code is `invalid_<field>` (`invalid_limit`). A
renamed code keeps its former spelling for one release: the API answers the new `code`
and lists the former ones in `deprecated_codes`; the last section pairs them.
"""

_RENAMED_INTRO = """
## Renamed codes

Each former code on the left is answered as the code on the right, with the former one
in the body's `deprecated_codes`, until the next release drops the former spellings:
match on the new code.

| former code | code | HTTP status |
|---|---|---|
"""


def load_catalogue() -> dict[str, ErrorCode]:
    """The whole catalogue: the apps' codes (declared when they are ready), the models'
    constraint codes, and the API's own codes (declared by its error handlers, which the
    URLconf loads)."""
    get_resolver().url_patterns  # noqa: B018 -- imports the URLconf and so the API
    return catalogue()


def _section_title(app: str) -> str:
    if app == "api":
        return "API (`cw_project`)"
    return f"{apps.get_app_config(app).verbose_name} (`{app}`)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(codes: dict[str, ErrorCode] | None = None) -> str:
    """The reference as Markdown: one table of code, status and meaning per section,
    sorted by code, so the same catalogue always renders the same text."""
    codes = load_catalogue() if codes is None else codes
    unknown = {entry.app for entry in codes.values()} - set(SECTIONS)
    if unknown:
        raise ValueError(f"Error codes declared by unknown sections: {sorted(unknown)}.")
    parts = [_INTRO]
    for app in SECTIONS:
        entries = sorted((e for e in codes.values() if e.app == app), key=lambda e: e.code)
        if not entries:
            continue
        parts.append(f"\n## {_section_title(app)}\n\n")
        parts.append("| code | HTTP status | meaning |\n|---|---|---|\n")
        for entry in entries:
            origin = " *(constraint)*" if entry.constraints else ""
            former = "".join(f" Replaces `{old}`." for old in entry.replaces)
            parts.append(
                f"| `{entry.code}` | {entry.status} | {_cell(entry.meaning)}{origin}{former} |\n"
            )
    renamed = sorted((old, entry) for entry in codes.values() for old in entry.replaces)
    if renamed:
        parts.append(_RENAMED_INTRO)
        for old, entry in renamed:
            parts.append(f"| `{old}` | `{entry.code}` | {entry.status} |\n")
    return "".join(parts)
