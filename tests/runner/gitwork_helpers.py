"""Real git repositories in a temporary folder for the runner's tests: a bare origin with
a ``main`` commit, and someone else's clone of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603  (git, with arguments the test chose)
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_origin(root: Path) -> Path:
    """A bare repository with one commit on ``main`` (README)."""
    origin = root / "origin.git"
    seed = root / "seed"
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", "main")
    (seed / "README").write_text("hello\n")
    git(seed, "add", "README")
    git(seed, "commit", "-q", "-m", "first")
    git(root, "clone", "-q", "--bare", str(seed), str(origin))
    return origin


def commit_file(worktree: Path, name: str, text: str, message: str = "change") -> str:
    (worktree / name).write_text(text)
    git(worktree, "add", name)
    git(worktree, "commit", "-q", "-m", message)
    return git(worktree, "rev-parse", "HEAD")


def someone_pushes(origin: Path, root: Path, branch: str, name: str, text: str) -> str:
    """Another person's commit of ``name`` on ``branch`` of origin; its id."""
    number = 1
    while (clone := root / f"other-{branch}-{name}-{number}").exists():
        number += 1
    git(root, "clone", "-q", "-b", branch, str(origin), str(clone))
    commit = commit_file(clone, name, text, f"someone else: {name}")
    git(clone, "push", "-q", "origin", branch)
    return commit


def tip(origin: Path, branch: str) -> str:
    return git(origin, "rev-parse", f"refs/heads/{branch}")


def has_branch(origin: Path, branch: str) -> bool:
    found = subprocess.run(  # noqa: S603
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],  # noqa: S607
        cwd=origin,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0
