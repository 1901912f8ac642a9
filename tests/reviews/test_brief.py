"""The review brief (``reviews.services.brief``): unresolved comments as markdown."""

import pytest

from reviews import services
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_review_brief_groups_unresolved_comments_by_file_and_line(phase_in_review):
    make = f.ReviewCommentFactory
    make(phase=phase_in_review, file_path="b.py", line_number=30, body="Third")
    make(phase=phase_in_review, file_path="a.py", line_number=9, body="Second",
         line_type="removed")  # fmt: skip
    make(phase=phase_in_review, file_path="a.py", line_number=2, body="First\nmore")
    make(phase=phase_in_review, file_path="a.py", line_number=1, body="Done", resolved=True)

    brief = services.phase_review_brief(phase_id=phase_in_review.id).markdown

    assert brief == (
        '# Review of phase "API"\n\n'
        "3 unresolved comments in 2 files. Address each one, then complete this task with "
        "a summary of what you changed.\n\n"
        "## `a.py`\n\n"
        "- **Line 2** (added line, you): First\n  more\n"
        "- **Line 9** (removed line (old side), you): Second\n\n"
        "## `b.py`\n\n"
        "- **Line 30** (added line, you): Third\n"
    )


def test_the_brief_fences_a_file_path_that_holds_backticks(phase_in_review):
    f.ReviewCommentFactory(phase=phase_in_review, file_path="docs/`odd`.md", body="Hm")
    brief = services.phase_review_brief(phase_id=phase_in_review.id).markdown
    assert "## ``docs/`odd`.md``" in brief
