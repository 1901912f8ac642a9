"""cw's own mirror of each project's repository, to read the code people review.

A mirror is a bare repository at ``CW_MIRRORS_DIR/<project id>.git`` whose branches are
the project's, as last fetched (``+refs/heads/*:refs/heads/*``, pruned). It is fetched by
``manage.py cw_fetch``, the "Fetch now" button on a project's page and
``POST /api/projects/{id}/fetch`` (which cw-runner calls once a run has pushed its
work). Everything here only reads the mirror, except ``fetch``; each call is one git
process with a time limit, and no call holds a database transaction.

Git is run with a fixed environment: no prompt for credentials (ssh in batch mode), no ``ext::``
transport, no pager, no colour, no external diff driver, and ``C`` messages.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from core.models import Project

#: How long one fetch may take before it is given up (seconds).
FETCH_TIMEOUT = 300
#: How long one reading command may take (seconds).
READ_TIMEOUT = 60

_ENVIRONMENT = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
#: Over ssh: never ask for a password, give up on a host that does not answer (an
#: operator's own GIT_SSH_COMMAND, e.g. naming a deploy key, is kept).
_SSH = {"GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15"}
_SAFE = ("-c", "protocol.ext.allow=never", "-c", "core.quotePath=false", "-c", "color.ui=false")


class MirrorError(Exception):
    """A git command on a mirror failed; the message ends with what git said."""


def mirrors_dir() -> Path:
    return Path(settings.CW_MIRRORS_DIR)


def path_of(project_id: str) -> Path:
    return mirrors_dir() / f"{project_id}.git"


def exists(project_id: str) -> bool:
    return (path_of(project_id) / "HEAD").is_file()


def git(project_id: str, *arguments: str, timeout: float = READ_TIMEOUT, check: bool = True) -> str:
    """``git arguments`` in the project's mirror; its standard output."""
    return _run(path_of(project_id), arguments, timeout=timeout, check=check)


def _run(
    cwd: Path, arguments: tuple[str, ...], *, timeout: float, check: bool, given: str = ""
) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program and argument list
            ["git", *_SAFE, *arguments],  # noqa: S607
            cwd=cwd,
            env={**_SSH, **os.environ, **_ENVIRONMENT},
            input=given.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MirrorError(f"git {arguments[0]} took longer than {timeout:.0f} s.") from None
    except OSError as error:
        raise MirrorError(f"git could not run: {error}.") from None
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        raise MirrorError(f"git {arguments[0]} failed: {' / '.join(said[-3:]) or 'no reason'}")
    return done.stdout.decode("utf-8", "surrogateescape")


@contextmanager
def _locked(project_id: str) -> Iterator[None]:
    """One fetch of a mirror at a time, across processes."""
    lock = mirrors_dir() / f"{project_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(project: Project) -> None:
    """Create the project's mirror if need be, point it at the project's URL, and fetch
    every branch (pruning those gone); ``MirrorError`` when git cannot."""
    path = path_of(project.pk)
    with _locked(project.pk):
        if not (path / "HEAD").is_file():
            path.mkdir(parents=True, exist_ok=True)
            _run(path, ("init", "--quiet", "--bare"), timeout=READ_TIMEOUT, check=True)
            _run(path, ("remote", "add", "origin", project.url), timeout=READ_TIMEOUT, check=True)
            _run(
                path,
                ("config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"),
                timeout=READ_TIMEOUT,
                check=True,
            )
        else:
            _run(
                path, ("remote", "set-url", "origin", project.url), timeout=READ_TIMEOUT, check=True
            )
        _run(path, ("fetch", "--quiet", "--prune", "origin"), timeout=FETCH_TIMEOUT, check=True)


def commit_of(project_id: str, ref: str) -> str | None:
    """The commit ``ref`` names in the mirror (a branch or a commit), or None."""
    if not exists(project_id):
        return None
    found = git(project_id, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return found.strip() or None


def missing(project_id: str, commits: list[str]) -> list[str]:
    """Those of ``commits`` the mirror does not hold as commits (one git process)."""
    if not commits:
        return []
    if not exists(project_id):
        return list(commits)
    answer = _run(
        path_of(project_id),
        ("cat-file", "--batch-check=%(objectname) %(objecttype)"),
        timeout=READ_TIMEOUT,
        check=True,
        given="".join(f"{sha}\n" for sha in commits),
    ).splitlines()
    return [sha for sha, line in zip(commits, answer, strict=False) if not line.endswith(" commit")]


def merge_base(project_id: str, one: str, other: str) -> str | None:
    found = git(project_id, "merge-base", one, other, check=False)
    return found.strip() or None


def is_ancestor(project_id: str, older: str, newer: str) -> bool:
    """Whether ``newer`` holds ``older`` (false too when either is unknown)."""
    try:
        git(project_id, "merge-base", "--is-ancestor", older, newer)
    except MirrorError:
        return False
    return True


def diff(project_id: str, base: str, head: str) -> str:
    """The unified diff from ``base`` to ``head`` (renames found, three lines of
    context, no colour, no external driver)."""
    return git(
        project_id,
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--find-renames",
        "--unified=3",
        base,
        head,
        "--",
    )
