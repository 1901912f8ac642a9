"""Every public repository method is either used by cw or marked as the seed's alone.

The seed's repositories name methods that no cw code calls yet; they are kept, tested
and marked ``@seed_only``. A method cw code calls must not carry the mark, and a method
nothing calls must carry it (or go, when the seed does not name it). A method built for
an issue's services still to come is marked ``@planned(issue)`` the same way.
"""

import inspect
import re
from pathlib import Path

from core.repositories.base import Repository

ROOT = Path(__file__).resolve().parents[2]
#: Where production code lives (tests, the benchmark and docs are not production).
PRODUCTION = ("core", "agents", "reviews", "operations", "cw_project")


def _repository_methods() -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    stack = [Repository]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for name, member in vars(cls).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                found.setdefault(name, []).append(member)
    return found


def _production_source() -> str:
    return "\n".join(
        path.read_text()
        for package in PRODUCTION
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def _called(name: str, source: str) -> bool:
    return re.search(rf"\.{name}\b", source) is not None


def test_each_method_is_used_or_marked_as_the_seeds():
    source = _production_source()
    unmarked_unused, marked_used = [], []
    for name, members in _repository_methods().items():
        marked = any(
            getattr(member, "seed_only", False) or hasattr(member, "planned_for")
            for member in members
        )
        used = _called(name, source)
        if not used and not marked:
            unmarked_unused.append(name)
        if used and marked:
            marked_used.append(name)
    assert unmarked_unused == [], (
        "no cw code calls these: mark them @seed_only (or @planned) or remove them"
    )
    assert marked_used == [], "cw code calls these: drop their @seed_only or @planned mark"


def test_the_marked_methods_are_the_seeds():
    marked = sorted(
        name
        for name, members in _repository_methods().items()
        if any(getattr(member, "seed_only", False) for member in members)
    )
    assert "find_by_status" in marked
    assert "find_all" in marked
