"""The catalogue of event kinds (``core.events.EVENT_KINDS``) is what the feed holds:
every event fits its kind, every kind is recorded by some service, and ``docs/api.md``
lists every kind as the catalogue says it."""

import ast
import importlib
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from core.events import EVENT_KINDS, check_event, event_record
from core.events_doc import REGENERATE, api_md, committed_section, render_section, replace_section
from core.services.feed import RecordFeed

ROOT = Path(__file__).resolve().parents[2]
#: The code that records events: the apps' services and the import (``operations``), not
#: the catalogue, nor the words the history pages say each kind with.
SOURCES = [
    *(
        path
        for app in ("core", "agents", "reviews")
        for path in (ROOT / app).glob("services/**/*.py")
    ),
    *(ROOT / "operations" / "transfer").glob("*.py"),
    # The tokens' services (made, revoked) live beside their hashing.
    ROOT / "core" / "tokens.py",
]


def _string_constants(path: Path) -> set[str]:
    """The string literals of a module that are values, not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    }


def _record_feeds() -> list[RecordFeed]:
    """Every ``RecordFeed`` the services define (at their modules' top level)."""
    modules = [
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for path in SOURCES
    ]
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, RecordFeed)
    ]


def _kinds_the_feeds_record() -> set[str]:
    """The kinds a table's feed records by its subject (``<subject>.created``, …) and
    the kinds its splits name."""
    found: set[str] = set()
    for feed in _record_feeds():
        found |= {feed.kind(action) for action in ("created", "updated", "deleted")}
        found |= {split.kind for split in feed.splits if isinstance(split.kind, str)}
    return found


def test_every_kind_is_recorded_by_some_service():
    named = set().union(*(_string_constants(path) for path in SOURCES))
    never = sorted(set(EVENT_KINDS) - named - _kinds_the_feeds_record())
    assert never == [], (
        f"Event kinds no service records: {never}. Record them, or remove them from "
        "core.events.EVENT_KINDS."
    )


def test_every_kind_is_documented_once_in_docs_api_md():
    text = api_md().read_text()
    for kind in EVENT_KINDS:
        assert text.count(f"| `{kind}` |") == 1, kind


def test_docs_api_md_lists_the_catalogue_as_rendered():
    assert committed_section(api_md().read_text()) == render_section(), (
        'The section "The event feed" of docs/api.md is not EVENT_KINDS rendered: a kind, '
        f"its subject or its data changed. Regenerate it with {REGENERATE}."
    )


def test_replacing_the_section_keeps_the_rest_of_the_file():
    text = "# API\n\nBefore.\n"
    once = replace_section(text)
    assert once.startswith(text) and committed_section(once) == render_section()
    assert replace_section(once + "\nAfter.\n") == once + "\nAfter.\n"


def test_the_event_catalogue_command_prints_the_section():
    out = StringIO()
    call_command("event_catalogue", stdout=out)
    assert out.getvalue() == render_section()


@pytest.mark.parametrize(
    ("kind", "subject_type", "data", "problem"),
    [
        ("task.exploded", "task", {}, "Unknown event kind"),
        ("task.started", "phase", {}, "is about a task"),
        ("task.completed", "task", {}, "lacks ['summary']"),
        ("task.started", "task", {"why": "x"}, "unlisted keys ['why']"),
        ("dependency.added", "page", {"depends_on_id": "x"}, "phase or task"),
    ],
)
def test_an_event_that_does_not_fit_its_kind_is_a_programming_error(
    kind, subject_type, data, problem
):
    with pytest.raises(LookupError, match=problem.replace("[", r"\[")):
        check_event(kind, subject_type, data)


@pytest.mark.django_db
def test_optional_data_may_be_given_or_not():
    event_record("account.claimed", subject_type="account", subject_id="a", data={"provider": "x"})
    event_record(
        "account.claimed",
        subject_type="account",
        subject_id="a",
        data={"provider": "x", "agent_id": "b"},
    )
