"""The demo's git repositories: one bare repository per demo project, at
``CW_DEMO_REPOS_DIR/<name>.git``, holding what ``operations.demo.codebases`` describes.

A repository is made once: when ``<name>.git`` exists it is kept as it is (so running
the demo again, or after a fresh database, reuses it). It is built in a temporary folder
next to it and moved into place whole, so an interrupted run leaves no half-made one.
Git runs with a fixed identity (``cw-demo <demo@example.invalid>``), fixed dates (the
same content gives the same commits), no system or global configuration and no network.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings

from operations.demo.codebases import Codebase

#: How long one git command may take (seconds).
GIT_TIMEOUT = 60
#: When the demo's first commit was made; each later commit is an hour after the last.
FIRST_COMMIT_AT = 1_767_600_000  # 2026-01-05 08:00 UTC

_IDENTITY = (
    "-c",
    "user.name=cw-demo",
    "-c",
    "user.email=demo@example.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
)


class DemoRepositoryError(Exception):
    """Git could not make a demo repository; the message ends with what git said."""


def demo_repos_dir() -> Path:
    return Path(settings.CW_DEMO_REPOS_DIR)


def path_of(codebase: Codebase) -> Path:
    return demo_repos_dir() / f"{codebase.name}.git"


def ensure_repository(codebase: Codebase) -> Path:
    """The bare repository of ``codebase``, made if it does not exist yet;
    ``DemoRepositoryError`` when git or the file system refuses."""
    target = path_of(codebase)
    if (target / "HEAD").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{codebase.name}-") as work:
            built = _build(codebase, Path(work))
            try:
                built.rename(target)
            except OSError:
                if not (target / "HEAD").is_file():  # not another run's, made meanwhile
                    raise
    except OSError as error:
        raise DemoRepositoryError(f"{target}: {error}") from None
    return target


def _build(codebase: Codebase, work: Path) -> Path:
    """Commit ``codebase`` in a working tree under ``work``; its bare clone there."""
    tree = work / "tree"
    tree.mkdir()
    clock = iter(range(FIRST_COMMIT_AT, FIRST_COMMIT_AT + 3600 * 1000, 3600))
    _git(tree, "init", "--quiet", f"--initial-branch={codebase.default_branch}")
    _write(tree, codebase.files)
    _commit(tree, "Initial import", next(clock))
    for branch, commits in codebase.branches.items():
        _git(tree, "checkout", "--quiet", "-b", branch, codebase.default_branch)
        for message, changes in commits:
            _write(tree, changes)
            _commit(tree, message, next(clock))
    _git(tree, "checkout", "--quiet", codebase.default_branch)
    bare = work / "bare.git"
    _git(work, "clone", "--quiet", "--bare", "--no-local", str(tree), str(bare))
    _git(bare, "remote", "remove", "origin")
    return bare


def _write(tree: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        file = tree / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content, encoding="utf-8")


def _commit(tree: Path, message: str, at: int) -> None:
    _git(tree, "add", "--all")
    _git(tree, "commit", "--quiet", "--no-verify", "-m", message, when=at)


def _git(cwd: Path, *arguments: str, when: int | None = None) -> None:
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    if when is not None:
        environment["GIT_AUTHOR_DATE"] = environment["GIT_COMMITTER_DATE"] = f"{when} +0000"
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program and argument list
            ["git", *_IDENTITY, *arguments],  # noqa: S607
            cwd=cwd,
            env=environment,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DemoRepositoryError(f"git {arguments[0]} could not run: {error}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        raise DemoRepositoryError(
            f"git {arguments[0]} failed: {' / '.join(said[-3:]) or 'no reason'}"
        )
