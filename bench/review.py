"""A phase's review page (``operations.review_page``) on a real repository: a phase whose
branch changed 2,000 lines over 40 Python files, with a comment on every file, read
from cw's mirror and rendered for a logged-in person (the test client, the whole
request: session, permissions, the diff, highlighting, comments, template).

Targets (issue 23: "the query count and render time of a phase page with a 2,000-line
diff over 40 files"):

- the page reads a fixed number of rows: its queries at 40 files and 40 comments equal
  those at 4 files and 4 comments (a ``rule``, checked by ``--quick`` too);
- the page's time over the floor, the work any page showing this diff must do in the
  same run — ``git diff`` of the range, read into files and lines, every line
  highlighted by Pygments — is at most 2x (the database, comments and HTML cost at most
  as much again). Highlighted texts are kept for the next reading, so the floor and
  the first reading start with none kept; a reading again is shown, with the queries.
"""

import tempfile
from pathlib import Path

from bench.harness import Result, count_queries, median_time

FILES = 40
LINES_PER_FILE = 50  # 40 x 50 = 2,000 added lines
SMALL_FILES = 4


def _source(number: int) -> str:
    lines = [f'"""Module {number} of the bench."""', ""]
    while len(lines) < LINES_PER_FILE:
        n = len(lines)
        lines.append(f"def step_{n}(value: int) -> int:  # the {n}th step")
        lines.append(f"    return value * {n} + len('{'x' * (n % 17)}')")
    return "\n".join(lines[:LINES_PER_FILE]) + "\n"


def _phase_with_diff(root: Path, files: int, tag: str):
    """A fetched project whose initiative's branch adds ``files`` files, and a phase in
    review with a comment on each; the phase and the project."""
    from core import services
    from core.models import (
        Initiative,
        InitiativeProject,
        Phase,
        PhaseStatus,
        Project,
    )
    from reviews.models import ReviewComment
    from tests.reviews.git_project import GitProject
    from tests.runner.gitwork_helpers import git, make_origin

    origin = make_origin(root)
    work = root / "work"
    git(root, "clone", "-q", str(origin), str(work))
    project = Project.objects.create(name=f"bench-{tag}", url=f"file://{origin}")
    initiative = Initiative.objects.create(name=f"Bench {tag}", branch=f"cw/bench-{tag}")
    InitiativeProject.objects.create(initiative=initiative, project=project)
    repo = GitProject(root, origin, work, project, initiative)
    repo.checkout(initiative.branch, new=True)
    repo.commit({f"pkg/module_{n:02d}.py": _source(n) for n in range(files)}, "the work")
    repo.push(initiative.branch)
    services.project_fetch(project_id=project.pk)
    phase = Phase.objects.create(
        initiative=initiative, name=f"Bench phase {tag}", status=PhaseStatus.PENDING_REVIEW
    )
    ReviewComment.objects.bulk_create(
        ReviewComment(
            phase=phase,
            project=project,
            file_path=f"pkg/module_{n:02d}.py",
            line_number=3,
            line_type="added",
            body="Say why.",
        )
        for n in range(files)
    )
    return phase, project


def run(quick: bool) -> Result:
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    from core import mirrors
    from reviews import diffs
    from reviews.services import phase_diff

    result = Result("review")
    with (
        tempfile.TemporaryDirectory() as folder,
        override_settings(CW_MIRRORS_DIR=Path(folder) / "mirrors"),
    ):
        root = Path(folder)
        big, project = _phase_with_diff(root / "big", FILES, "big")
        small, _ = _phase_with_diff(root / "small", SMALL_FILES, "small")
        person = get_user_model().objects.create_superuser("bench-reviewer", "r@example.com", "x")
        client = Client()
        client.force_login(person)

        def page(phase) -> str:
            answer = client.get(f"/admin/core/phase/{phase.pk}/review/")
            assert answer.status_code == 200, answer.status_code
            return answer.content.decode()

        html = page(big)
        shown_lines = html.count('<tr class="cw-line ')
        comments = html.count('class="cw-comment"')
        result.check(
            f"review page: lines and comments shown, {FILES} files",
            shown_lines + comments,
            unit="rows",
            target="every line and every comment",
            held=(shown_lines, comments) == (FILES * LINES_PER_FILE, FILES),
            baseline=FILES * LINES_PER_FILE + FILES,
            baseline_label="in the diff",
            kind="rule",
        )
        page(small)
        big_queries = count_queries(lambda: page(big))
        small_queries = count_queries(lambda: page(small))
        result.check(
            f"review page: queries, {FILES} files / {SMALL_FILES} files",
            big_queries,
            unit="queries",
            target="the same (a fixed number of rows)",
            held=big_queries == small_queries,
            baseline=small_queries,
            baseline_label=f"{SMALL_FILES} files",
            kind="rule",
        )

        diff = phase_diff(phase_id=big.pk, highlight=False).projects[0]
        base, head = diff.base, diff.head
        assert base and head

        def floor() -> None:
            diffs._highlight_text.cache_clear()
            files = diffs.parse(mirrors.diff(project.pk, base, head)[0])
            diffs.highlight(files)

        def first_reading() -> None:
            diffs._highlight_text.cache_clear()
            page(big)

        repeat = 3 if quick else 7
        floor_time = median_time(floor, repeat=repeat)
        page_time = median_time(first_reading, repeat=repeat)
        page(big)
        again_time = median_time(lambda: page(big), repeat=repeat)
        ratio = page_time / floor_time
        lines = f"{FILES * LINES_PER_FILE:,} lines over {FILES} files"
        result.info(f"review page, first reading: {lines}", page_time * 1000, unit="ms")
        result.info(f"review page, read again: {lines}", again_time * 1000, unit="ms")
        result.info(f"review page: queries, {lines}", big_queries, unit="queries")
        result.check(
            "review page, first reading / git diff + parse + highlight",
            page_time * 1000,
            unit="ms",
            target="<= 2x",
            held=ratio <= 2.0,
            baseline=floor_time * 1000,
            baseline_label="the floor",
            ratio=ratio,
        )
    return result
