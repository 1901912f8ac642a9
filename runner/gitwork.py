"""Git for the runner: a bare mirror per project, a worktree per run, and nothing of a
run's work removed before it is safe.

- A **mirror** (``<workspace>/mirrors/<project id>.git``) is a bare repository whose
  ``origin`` is the project's URL, fetched (``+refs/heads/*:refs/remotes/origin/*``)
  before each run. Every change to it holds its lock, so the runner's slots take turns.
- A run's **worktree** starts from the initiative's branch on origin (the project's
  default branch while that does not exist yet) on a branch of its own,
  ``<initiative branch>-run-<run id>``.
- At the end, what the agent left uncommitted is committed, the run's branch is pushed,
  and a succeeded run's work is merged into the initiative's branch (fast-forward, else a
  merge commit; a conflict leaves it on the run's branch and says so).
- A worktree is removed only when its run has ended, nothing in it is uncommitted and its
  commit is reachable from a branch on origin (``removable``).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

IDENTITY = ("-c", "user.name=cw-runner", "-c", "user.email=cw-runner@localhost")
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class GitError(Exception):
    """A git command failed; the message ends with what git said."""


def git(*arguments: str, cwd: Path, check: bool = True, timeout: float = 600) -> str:
    """``git arguments`` in ``cwd``; its stdout (stripped)."""
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    done = subprocess.run(  # noqa: S603
        ["git", *arguments],  # noqa: S607
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise GitError(f"git {' '.join(arguments[:2])} failed: {' / '.join(said)}")
    return done.stdout.strip()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock: one thread of this runner and one process at a time."""
    with _locks_guard:
        lock = _locks.setdefault(path, threading.Lock())
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock, open(str(path) + ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    url: str
    default_branch: str


class Mirror:
    def __init__(self, path: Path, project: Project | None = None) -> None:
        self.path = path
        self._project = project

    @classmethod
    def of(cls, workspace: Path, project: Project) -> Mirror:
        return cls(workspace / "mirrors" / f"{project.id}.git", project)

    @property
    def project(self) -> Project:
        if self._project is None:
            raise GitError(f"{self.path}: no project known for this mirror.")
        return self._project

    def fetch(self) -> None:
        """Create the mirror if need be, point it at the project's URL, fetch."""
        with locked(self.path):
            if not (self.path / "HEAD").exists():
                self.path.mkdir(parents=True, exist_ok=True)
                git("init", "--quiet", "--bare", cwd=self.path)
                git("remote", "add", "origin", self.project.url, cwd=self.path)
                git(
                    "config",
                    "remote.origin.fetch",
                    "+refs/heads/*:refs/remotes/origin/*",
                    cwd=self.path,
                )
            else:
                git("remote", "set-url", "origin", self.project.url, cwd=self.path)
            git("fetch", "--quiet", "--prune", "origin", cwd=self.path)

    def has(self, ref: str) -> bool:
        return bool(git("rev-parse", "--verify", "--quiet", ref, cwd=self.path, check=False))

    def add_worktree(self, path: Path, branch: str, initiative_branch: str) -> str:
        """A worktree at ``path`` on a new ``branch`` from the initiative's branch on origin
        (else the default branch); its start commit."""
        base = f"refs/remotes/origin/{initiative_branch}"
        if not self.has(base):
            base = f"refs/remotes/origin/{self.project.default_branch}"
            if not self.has(base):
                raise GitError(
                    f"{self.project.url} has neither {initiative_branch} nor "
                    f"{self.project.default_branch}."
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path):
            git("worktree", "add", "--quiet", "-B", branch, str(path), base, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=path)

    def reachable_from_origin(self, commit: str) -> bool:
        """Whether a branch on origin (as last fetched) holds ``commit``."""
        found = git(
            "for-each-ref", "--contains", commit, "refs/remotes/origin/", cwd=self.path, check=False
        )
        return bool(found)

    def remove_worktree(self, path: Path, branch: str | None) -> None:
        with locked(self.path):
            git("worktree", "remove", str(path), cwd=self.path)
            git("worktree", "prune", cwd=self.path, check=False)
            if branch:
                git("branch", "-D", branch, cwd=self.path, check=False)


def head(worktree: Path) -> str:
    return git("rev-parse", "HEAD", cwd=worktree)


def is_dirty(worktree: Path) -> bool:
    return bool(git("status", "--porcelain", "--untracked-files=all", cwd=worktree))


def commit_leftovers(worktree: Path, run_id: str) -> bool:
    """Commit what the agent left uncommitted (nothing of its work is lost); whether
    there was any."""
    if not is_dirty(worktree):
        return False
    git("add", "--all", cwd=worktree)
    git(
        *IDENTITY,
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        f"cw-runner: what run {run_id} left uncommitted",
        cwd=worktree,
    )
    return True


def keep(mirror: Mirror, worktree: Path, branch: str, run_id: str) -> str:
    """Commit what the run left uncommitted and push its branch: its work outlives the
    worktree. The commit it ended at."""
    commit_leftovers(worktree, run_id)
    end = head(worktree)
    publish(mirror, worktree, branch)
    return end


def publish(mirror: Mirror, worktree: Path, branch: str) -> None:
    """Push the run's branch to origin, so its commits outlive the worktree."""
    with locked(mirror.path):
        git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=worktree)
        git("fetch", "--quiet", "origin", cwd=mirror.path)


def integrate(mirror: Mirror, worktree: Path, initiative_branch: str, attempts: int = 5) -> str:
    """Bring the run's work into the initiative's branch on origin: ``"fast-forward"``,
    ``"merged"``, ``"up-to-date"`` or ``"conflict"`` (the work stays on the run's branch)."""
    remote = f"refs/remotes/origin/{initiative_branch}"
    for _ in range(attempts):
        with locked(mirror.path):
            git("fetch", "--quiet", "origin", cwd=mirror.path)
            how = "fast-forward"
            if mirror.has(remote):
                tip = git("rev-parse", remote, cwd=mirror.path)
                if _is_ancestor(worktree, "HEAD", tip):
                    return "up-to-date"
                if not _is_ancestor(worktree, tip, "HEAD"):
                    merged = subprocess.run(  # noqa: S603
                        ["git", *IDENTITY, "merge", "--quiet", "--no-edit", tip],  # noqa: S607
                        cwd=worktree,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if merged.returncode != 0:
                        git("merge", "--abort", cwd=worktree, check=False)
                        return "conflict"
                    how = "merged"
            pushed = subprocess.run(  # noqa: S603
                ["git", "push", "--quiet", "origin", f"HEAD:refs/heads/{initiative_branch}"],  # noqa: S607
                cwd=worktree,
                capture_output=True,
                text=True,
                check=False,
            )
            if pushed.returncode == 0:
                git("fetch", "--quiet", "origin", cwd=mirror.path)
                return how
    return "conflict"


def _is_ancestor(worktree: Path, older: str, newer: str) -> bool:
    done = subprocess.run(  # noqa: S603
        ["git", "merge-base", "--is-ancestor", older, newer],  # noqa: S607
        cwd=worktree,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0
