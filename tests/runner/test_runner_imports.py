"""``runner`` is standard-library only: it must install and run where Django and cw's
apps are not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "runner"
MODULES = sorted(RUNNER.glob("*.py"))
FORBIDDEN = ("django", "ninja", "core", "agents", "reviews", "operations", "cw_project", "bench")


def imported(path: Path) -> list[tuple[int, str]]:
    """Every top-level module name ``path`` imports (absolute imports), with its line."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside runner
                names.append((node.lineno, "runner"))
            elif node.module:
                names.append((node.lineno, node.module.split(".")[0]))
    return names


def test_every_runner_module_is_found() -> None:
    assert {p.stem for p in MODULES} >= {
        "config", "client", "gitwork", "usage", "logship", "agent",
        "state", "work", "clean", "loop", "cli", "__main__",
    }  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_only_the_standard_library_and_runner(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"runner", "__future__"}
    wrong = [
        f"{path.name}:{line} imports {name}" for line, name in imported(path) if name not in allowed
    ]
    assert wrong == []


def test_the_ast_check_would_catch_a_django_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom django.db import models\ndef f():\n    import core.x\n")
    assert [name for _, name in imported(module)] == ["os", "django", "core"]


BLOCKER = f"""
import importlib, sys
FORBIDDEN = {FORBIDDEN!r}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError("runner imported " + name)
        return None

sys.meta_path.insert(0, Blocker())
sys.path.insert(0, {str(ROOT)!r})
for name in {[f"runner.{p.stem}" for p in MODULES if p.stem != "__main__"]!r}:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
assert not leaked, leaked
print("ok")
"""


@pytest.mark.processes
def test_every_module_imports_with_django_blocked(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603  (this Python, code the test wrote)
        [sys.executable, "-I", "-c", BLOCKER],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.processes
def test_the_blocker_does_block(tmp_path: Path) -> None:
    code = BLOCKER.replace("for name in", "import django\nfor name in", 1)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "runner imported django" in done.stderr
