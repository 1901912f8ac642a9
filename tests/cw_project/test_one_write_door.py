"""Services are the only writers: no door (an API handler, an admin module, a command)
calls a repository's write method.

The write methods are found in the repositories' own code: the classes of the apps'
``repositories`` packages (not a subclass a test makes), each read by name from its file
as it is now, as the doors are (not by the line numbers its code was imported with: a
file edited while the suite runs would hand over another method's lines). A public
method writes when
its body calls one of the base class's protected writes (``_create``, ``_update``, …),
a queryset write (``update``, ``delete``, ``bulk_create``, …), a raw statement, or
another write method of its class. The doors are then read for calls of those methods
on a repository: a module-level name bound to ``SomeRepository()``, ``self.repository``
or a repository class's instance made on the spot.
"""

import ast
import sys
from pathlib import Path

from django.apps import apps

from core.repositories.base import Repository

ROOT = Path(__file__).resolve().parents[2]

#: What a method body calls that writes.
PROTECTED_WRITES = frozenset(
    {"_create", "_insert", "_update", "_transition", "_write", "_delete", "_update_many",
     "_save", "restore"}
)  # fmt: skip
QUERYSET_WRITES = frozenset(
    {"update", "delete", "bulk_create", "bulk_update", "create", "get_or_create",
     "update_or_create", "save", "execute", "executemany"}
)  # fmt: skip


#: Decorators that make a class attribute something other than a method.
NOT_METHODS = frozenset({"staticmethod", "classmethod", "property", "cached_property"})


def _repository_packages() -> tuple[str, ...]:
    """The project's apps' ``repositories`` packages."""
    return tuple(
        f"{config.name}.repositories"
        for config in apps.get_app_configs()
        if ROOT in Path(config.path).parents
    )


def _repository_classes() -> list[type[Repository]]:
    """The project's repository classes: ``Repository``'s subclasses defined in an app's
    ``repositories`` package (not one a test defines or patches in, which the worker
    running this test may or may not have met before)."""
    packages = _repository_packages()
    found: list[type[Repository]] = []
    stack = [Repository]
    while stack:
        cls = stack.pop()
        if cls in found:
            continue
        if any(cls.__module__ == p or cls.__module__.startswith(f"{p}.") for p in packages):
            found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def _class_definition(cls: type, trees: dict[str, ast.Module]) -> ast.ClassDef | None:
    """The class's statement in its module's file as it is now (``None`` for a class made
    by ``type(…)``, such as ``record_store``'s)."""
    module = cls.__module__
    if module not in trees:
        trees[module] = ast.parse(Path(sys.modules[module].__file__ or "").read_text())
    body: list[ast.stmt] = trees[module].body
    found: ast.ClassDef | None = None
    for part in cls.__qualname__.split("."):
        found = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if found is None:
            return None
        body = found.body
    return found


#: What an expression a queryset write is called on mentions when it is a queryset or a
#: cursor (not, say, a dict whose ``update`` merges keys).
QUERYSET_MARKS = ("objects", "_default_manager", "queryset", "filter(", "cursor(", "exclude(")


def _calls(function: ast.AST) -> tuple[set[str], set[str]]:
    """The ``self.<name>(…)`` names a function calls, and the queryset writes it calls."""
    bound: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = bound.get(target.id, "") + ast.unparse(node.value)
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            bound[node.optional_vars.id] = ast.unparse(node.context_expr)
    own, other = set(), set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in {"self", "cls"}:
                own.add(node.func.attr)
                continue
            source = (
                bound.get(target.id, "") if isinstance(target, ast.Name) else ast.unparse(target)
            )
            if any(mark in source for mark in QUERYSET_MARKS) or "self." in source:
                other.add(node.func.attr)
    return own, other


def write_methods() -> set[str]:
    """The names of every public repository method that writes."""
    bodies: dict[tuple[type, str], tuple[set[str], set[str]]] = {}
    trees: dict[str, ast.Module] = {}
    for cls in _repository_classes():
        definition = _class_definition(cls, trees)
        for node in definition.body if definition else []:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not any(
                ast.unparse(d).split(".")[-1] in NOT_METHODS for d in node.decorator_list
            ):
                bodies[(cls, node.name)] = _calls(node)
    writes: set[tuple[type, str]] = set()
    changed = True
    while changed:
        changed = False
        for (cls, name), (own, other) in bodies.items():
            if (cls, name) in writes:
                continue
            own_writes = {n for (c, n) in writes if issubclass(cls, c) or issubclass(c, cls)}
            if own & (PROTECTED_WRITES | own_writes) or other & QUERYSET_WRITES:
                writes.add((cls, name))
                changed = True
    return {name for (_cls, name) in writes if not name.startswith("_")}


def door_modules() -> list[Path]:
    """Every module a person, a tool or an operator reaches cw through."""
    found: list[Path] = []
    for config in apps.get_app_configs():
        path = Path(config.path)
        if ROOT not in path.parents:
            continue
        found += [p for p in path.rglob("*.py") if _is_door(p.relative_to(path))]
    found += sorted((ROOT / "cw_project").glob("*.py"))
    return sorted(set(found))


def _is_door(relative: Path) -> bool:
    parts = relative.parts
    return (
        parts[0] in {"api", "admin"}
        or relative.name in {"api.py", "admin.py", "admin_base.py"}
        or relative.name.startswith("admin_")
        or parts[:2] == ("management", "commands")
    )


def repository_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to a repository instance (``tasks = TaskRepository()``)."""
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id.endswith("Repository")
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def repository_writes_in(path: Path, writes: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    names = repository_names(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in writes:
            continue
        target = node.func.value
        on_repository = (
            (isinstance(target, ast.Name) and target.id in names)
            or (isinstance(target, ast.Attribute) and target.attr in {"repository", "edges"})
            or (
                isinstance(target, ast.Call)
                and isinstance(target.func, ast.Name)
                and target.func.id.endswith("Repository")
            )
        )
        if on_repository:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}()")
    return found


def test_the_write_methods_are_found():
    writes = write_methods()
    # A sample the repositories are known to have, read and write.
    assert {"create", "update", "delete", "create_dependency", "append"} <= writes
    assert not {"find_by_id", "get", "exists", "find_page", "count"} & writes


def test_the_doors_are_found():
    doors = {str(p.relative_to(ROOT)) for p in door_modules()}
    assert any(d.endswith("api/plans.py") for d in doors)
    assert any("admin" in d for d in doors)
    assert any("management/commands/cw_accounts.py" in d for d in doors)


def test_no_door_calls_a_repository_write():
    writes = write_methods()
    found = [line for path in door_modules() for line in repository_writes_in(path, writes)]
    assert found == [], "Doors must write through services:\n" + "\n".join(found)


def test_a_repository_a_test_makes_is_not_read():
    class Scratch(Repository):
        def get(self, id):  # a read's name, writing
            return self._create(id=id)

    assert Scratch not in _repository_classes()
    assert "get" not in write_methods()
