"""What a phase changed, per project, read from cw's mirrors (``core.mirrors``).

The range of a project's diff:

- from the commits the phase's runs recorded: the first start commit to the last
  succeeded run's end commit (any ended run's when none succeeded). When another run's
  end commit is not in that one (runs that worked side by side), the initiative's
  branch is the end instead, if it holds them all. The start is moved to the merge base
  when it is not an ancestor of the end.
- else, the initiative's branch against the project's default branch (from their merge
  base), as a pull request would show it.

Nothing here writes, and nothing fetches: a mirror that lacks a commit says so
(``ProjectDiff.problem``), and a person fetches with the project's button or
``cw_fetch``. Reads git only, never inside a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.models import RunCommit, RunOutcome
from agents.repositories import RunCommitRepository
from core import mirrors
from core.errors import NotFound
from core.models import Initiative, Phase, Project
from core.repositories import InitiativeRepository, PhaseRepository, ProjectRepository
from reviews import diffs
from reviews.diffs import FileDiff
from reviews.models import ReviewComment

run_commits = RunCommitRepository()
phases = PhaseRepository()
initiatives = InitiativeRepository()
projects = ProjectRepository()

RUNS = "runs"
BRANCH = "branch"


@dataclass
class ProjectDiff:
    project: Project
    files: list[FileDiff] = field(default_factory=list)
    base: str | None = None
    head: str | None = None
    #: RUNS or BRANCH: where the range came from.
    source: str | None = None
    #: Why there is no diff (not fetched, a commit or branch missing), in words.
    problem: str | None = None
    #: Something the reader should know about the range (runs' work left out).
    note: str | None = None
    #: Whether cw holds a mirror of the project at all.
    mirrored: bool = False

    @property
    def additions(self) -> int:
        return sum(each.additions for each in self.files)

    @property
    def deletions(self) -> int:
        return sum(each.deletions for each in self.files)

    def file(self, path: str) -> FileDiff | None:
        return next((each for each in self.files if each.path == path), None)


@dataclass
class PhaseDiff:
    phase: Phase
    projects: list[ProjectDiff]

    def file(self, project_id: str | None, path: str) -> FileDiff | None:
        """The file at ``path`` in ``project_id``'s diff (any project's when None)."""
        for each in self.projects:
            if project_id is None or each.project.pk == project_id:
                found = each.file(path)
                if found is not None:
                    return found
        return None


def phase_diff(
    *, phase_id: str, highlight: bool = True, show: frozenset[str] = frozenset()
) -> PhaseDiff:
    """The diff of ``phase_id``'s work in each project of its initiative (files over
    ``diffs.LARGE_FILE_LINES`` changed lines summarised unless their path is in
    ``show``); lines highlighted when ``highlight``."""
    phase = phases.get(phase_id)
    initiative = initiatives.get(phase.initiative_id)
    commits = run_commits.find_by_phase_id(phase_id)
    found = []
    for project in projects.find_projects_by_initiative_id(initiative.pk):
        diff = _project_diff(
            project, initiative, [c for c in commits if c.project_id == project.pk]
        )
        diffs.summarise_large(diff.files, shown=show)
        if highlight:
            diffs.highlight(diff.files)
        found.append(diff)
    return PhaseDiff(phase, found)


def _project_diff(
    project: Project, initiative: Initiative, commits: list[RunCommit]
) -> ProjectDiff:
    diff = ProjectDiff(project, mirrored=mirrors.exists(project.pk))
    if not diff.mirrored:
        diff.problem = 'cw has no copy of this repository yet: "Fetch now" makes one.'
        return diff
    try:
        if any(c.start_commit or c.end_commit for c in commits):
            _range_from_runs(diff, initiative, commits)
        else:
            _range_from_branch(diff, initiative)
        if diff.problem is None and diff.base and diff.head:
            text, cut = mirrors.diff(project.pk, diff.base, diff.head)
            diff.files = diffs.parse(text)
            if cut:
                diff.note = (
                    f"The diff is larger than {mirrors.DIFF_MAX_BYTES // 1_000_000} MB: "
                    f"only its first {len(diff.files)} files are shown."
                )
    except mirrors.MirrorError as error:
        diff.problem = f"git could not read the diff: {error}"
    return diff


def _range_from_runs(diff: ProjectDiff, initiative: Initiative, commits: list[RunCommit]) -> None:
    project_id = diff.project.pk
    diff.source = RUNS
    starts: list[str] = [c.start_commit for c in commits if c.start_commit]
    ended = [c for c in commits if c.end_commit]
    succeeded = [c for c in ended if c.run.outcome == RunOutcome.SUCCEEDED] or ended
    succeeded.sort(key=lambda c: (c.run.ended_at or c.run.started_at, c.run.started_at))
    ends: list[str] = [c.end_commit for c in succeeded if c.end_commit]
    wanted = [*starts, *(c.end_commit for c in ended if c.end_commit)]
    missing = mirrors.missing(project_id, wanted)
    if missing:
        diff.problem = (
            f"The mirror lacks commit {missing[0][:12]} that the phase's runs recorded: "
            "fetch the repository."
        )
        return
    if not ends:  # started, nothing ended yet: the start against the branch
        diff.base = starts[0]
        branch = initiative.branch and mirrors.commit_of(project_id, initiative.branch)
        diff.head = branch or starts[0]
        return
    head, others = ends[-1], ends[:-1]
    if any(not mirrors.is_ancestor(project_id, sha, head) for sha in others):
        branch = initiative.branch and mirrors.commit_of(project_id, initiative.branch)
        if branch and all(mirrors.is_ancestor(project_id, sha, branch) for sha in others):
            head = branch
        else:
            diff.note = "Some runs' work is on branches of their own and is not shown."
    base = starts[0] if starts else None
    if base is None or not mirrors.is_ancestor(project_id, base, head):
        default = mirrors.commit_of(project_id, diff.project.default_branch)
        base = mirrors.merge_base(project_id, base or default or head, head)
        if base is None:
            diff.problem = "The runs' commits share no history with the default branch."
            return
    diff.base, diff.head = base, head


def _range_from_branch(diff: ProjectDiff, initiative: Initiative) -> None:
    project = diff.project
    diff.source = BRANCH
    if not initiative.branch:
        diff.problem = "The initiative has no branch, and no run recorded its commits."
        return
    head = mirrors.commit_of(project.pk, initiative.branch)
    default = mirrors.commit_of(project.pk, project.default_branch)
    if head is None:
        diff.problem = (
            f"The branch {initiative.branch} is not in the mirror (no run has pushed work, "
            "or the repository was fetched before): fetch the repository."
        )
        return
    if default is None:
        diff.problem = f"The default branch {project.default_branch} is not in the mirror."
        return
    diff.base, diff.head = mirrors.merge_base(project.pk, default, head), head


def line_context(
    *, phase_id: str, project_id: str | None, file_path: str, line_type: str, line_number: int
) -> dict[str, str | None]:
    """What a new comment at this line keeps of the phase's diff as it reads now: its
    project (when the path is in one project's diff only and none was named), the
    line's text and the hunk around it. Empty when the diff cannot be read or does not
    have the line: the comment is kept without them (never refused for it)."""
    try:
        diff = phase_diff(phase_id=phase_id, highlight=False, show=frozenset({file_path}))
    except NotFound:
        return {}
    holding = [
        each
        for each in diff.projects
        if (project_id is None or each.project.pk == project_id) and each.file(file_path)
    ]
    if len(holding) != 1:
        return {}
    found = holding[0].file(file_path)
    assert found is not None
    line = found.line_at(line_type, line_number)
    if line is None:
        return {}
    return {
        "project_id": holding[0].project.pk,
        "line_text": line.text,
        "hunk": found.excerpt(line_type, line_number),
    }


def is_outdated(comment: ReviewComment, diff: PhaseDiff) -> bool:
    """Whether the line ``comment`` was written on reads otherwise in ``diff`` (or is no
    longer in it). A comment kept without its line's text, or on a project whose diff
    cannot be read now, is never called outdated: there is nothing to compare."""
    if comment.line_text is None:
        return False
    readable = [
        each
        for each in diff.projects
        if each.problem is None and comment.project_id in (None, each.project.pk)
    ]
    if not readable:
        return False
    for each in readable:
        found = each.file(comment.file_path)
        line = found.line_at(comment.line_type, comment.line_number) if found else None
        if line is not None and line.text == comment.line_text:
            return False
    return True
