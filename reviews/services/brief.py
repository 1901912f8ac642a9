"""The review brief: a phase's unresolved review comments as markdown an agent acts on."""

import re
from collections import defaultdict
from dataclasses import dataclass

from core.models import Phase
from core.repositories import PhaseRepository
from reviews.models import ReviewComment, ReviewLineType
from reviews.repositories import ReviewCommentRepository

phases = PhaseRepository()
review_comments = ReviewCommentRepository()

#: How the brief names the side of the diff a comment is on.
_SIDES: dict[str, str] = {
    ReviewLineType.ADDED: "added line",
    ReviewLineType.REMOVED: "removed line (old side)",
    ReviewLineType.CONTEXT: "unchanged line",
}


@dataclass(frozen=True)
class ReviewBrief:
    phase_id: str
    unresolved: int
    markdown: str


def phase_review_brief(*, phase_id: str) -> ReviewBrief:
    """The phase's unresolved review comments as markdown an agent can act on.

    Grouped by file (in path order), each file's comments ordered by line.
    """
    phase = phases.get(phase_id)
    comments = review_comments.find_by_phase_id(phase_id, unresolved_only=True)
    return ReviewBrief(phase.pk, len(comments), render_brief(phase, comments))


def render_brief(phase: Phase, comments: list[ReviewComment]) -> str:
    """The markdown of the brief for ``comments`` (one section per file)."""
    if not comments:
        return f'# Review of phase "{phase.name}"\n\nNo unresolved review comments.\n'
    by_file: dict[str, list[ReviewComment]] = defaultdict(list)
    for comment in comments:
        by_file[comment.file_path].append(comment)
    files = sorted(by_file)
    lines = [
        f'# Review of phase "{phase.name}"',
        "",
        f"{len(comments)} unresolved comment{'s' if len(comments) != 1 else ''} in "
        f"{len(files)} file{'s' if len(files) != 1 else ''}. Address each one, then "
        "complete this task with a summary of what you changed.",
    ]
    for path in files:
        lines += ["", f"## {_code_span(path)}", ""]
        for comment in sorted(by_file[path], key=lambda c: (c.line_number, c.created_at, c.pk)):
            body = comment.body.strip().replace("\n", "\n  ")
            side = _SIDES.get(comment.line_type, comment.line_type)
            lines.append(f"- **Line {comment.line_number}** ({side}, {comment.author}): {body}")
            if comment.hunk:
                lines += ["", *_indented(_fenced(comment.hunk, "diff")), ""]
    return "\n".join(lines) + "\n"


def _fenced(text: str, language: str) -> list[str]:
    """``text`` as a fenced code block, fenced with more backticks than it contains."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [f"{fence}{language}", *text.split("\n"), fence]


def _indented(lines: list[str]) -> list[str]:
    """``lines`` indented to sit inside a list item."""
    return [f"  {line}" if line else "" for line in lines]


def _code_span(text: str) -> str:
    """``text`` as a markdown code span, fenced with more backticks than it contains."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{padding}{text}{padding}{ticks}"
