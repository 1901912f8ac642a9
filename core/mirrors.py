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
from urllib.parse import urlsplit, urlunsplit

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
    # Text that is not UTF-8 (a Latin-1 source file, a path in another encoding) is
    # read with U+FFFD in place of its bytes: pages and the database take any string.
    return done.stdout.decode("utf-8", "replace")


@contextmanager
def _fetching(project_id: str) -> Iterator[bool]:
    """The right to fetch the mirror, without waiting: True when this caller holds it,
    False when another fetch of it (any process) is under way — that one stands for
    both, and a caller never waits behind it, holding a server's thread."""
    lock = mirrors_dir() / f"{project_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(project: Project) -> bool:
    """Create the project's mirror if need be, point it at the project's URL, and fetch
    every branch (pruning those gone); ``MirrorError`` when git cannot. False, at once,
    when a fetch of the mirror is already under way (nothing is done twice).

    The remote's URL and refspec are set before every fetch, so a mirror left half-made
    by a crash (created, its remote not yet set) is put right by the next one."""
    path = path_of(project.pk)
    with _fetching(project.pk) as mine:
        if not mine:
            return False
        if not (path / "HEAD").is_file():
            path.mkdir(parents=True, exist_ok=True)
            _run(path, ("init", "--quiet", "--bare"), timeout=READ_TIMEOUT, check=True)
        for name, value in (
            ("remote.origin.url", project.url),
            ("remote.origin.fetch", "+refs/heads/*:refs/heads/*"),
        ):
            _run(path, ("config", name, value), timeout=READ_TIMEOUT, check=True)
        _run(path, ("fetch", "--quiet", "--prune", "origin"), timeout=FETCH_TIMEOUT, check=True)
    return True


def shown_url(url: str) -> str:
    """``url`` as people may read it: a password or token in it is left out."""
    parts = urlsplit(url)
    if "://" not in url or parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


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


#: The most of a diff read (bytes): past it, the files after the cut are not shown.
DIFF_MAX_BYTES = 20_000_000


def diff(project_id: str, base: str, head: str) -> tuple[str, bool]:
    """The unified diff from ``base`` to ``head`` (renames found, three lines of
    context, no colour, no external driver), and whether it was cut at
    ``DIFF_MAX_BYTES`` (then the last file read is dropped: it may be partial)."""
    arguments = (
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
    try:
        process = subprocess.Popen(  # noqa: S603 - a fixed program and argument list
            ["git", *_SAFE, *arguments],  # noqa: S607
            cwd=path_of(project_id),
            env={**_SSH, **os.environ, **_ENVIRONMENT},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError as error:
        raise MirrorError(f"git could not run: {error}.") from None
    assert process.stdout is not None
    with process:
        read = process.stdout.read(DIFF_MAX_BYTES + 1)
        cut = len(read) > DIFF_MAX_BYTES
        if cut:
            process.kill()
        else:
            try:
                process.wait(timeout=READ_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                raise MirrorError(f"git diff took longer than {READ_TIMEOUT} s.") from None
            if process.returncode != 0:
                raise MirrorError(f"git diff failed (exit {process.returncode}).")
    text = read[:DIFF_MAX_BYTES].decode("utf-8", "replace")
    if cut:  # drop the last file: it may be cut short
        text = text[: max(text.rfind("\ndiff --git "), 0)]
    return text, cut
