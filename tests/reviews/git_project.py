"""A real git repository for review tests: a bare origin, a working clone to commit in,
and the ``Project`` of an initiative that points at it (``file://``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.models import Initiative, Project
from tests import factories as f
from tests.runner.gitwork_helpers import git, make_origin


@dataclass
class GitProject:
    root: Path
    origin: Path
    work: Path
    project: Project
    initiative: Initiative

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        """Write (text or bytes), or delete (None) ``files`` in the clone and commit."""
        for name, content in files.items():
            path = self.work / name
            if content is None:
                git(self.work, "rm", "-q", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            git(self.work, "add", name)
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def checkout(self, branch: str, *, new: bool = False) -> None:
        git(self.work, "checkout", "-q", *(["-b"] if new else []), branch)

    def push(self, branch: str) -> None:
        git(self.work, "push", "-q", "--force", "origin", f"HEAD:refs/heads/{branch}")


def git_project(
    root: Path,
    *,
    branch: str = "cw/review-me",
    project_name: str | None = None,
    **initiative: object,
) -> GitProject:
    origin = make_origin(root)
    work = root / "work"
    git(root, "clone", "-q", str(origin), str(work))
    named = {"name": project_name} if project_name else {}
    project = f.ProjectFactory(url=f"file://{origin}", **named)
    made = f.InitiativeFactory(branch=branch, **initiative)
    f.InitiativeProjectFactory(initiative=made, project=project)
    return GitProject(root, origin, work, project, made)
