"""A phase's review page in the admin (``operations.review_page``): the diff read from
cw's mirror of a real repository, comments at lines, resolved and reopened in place,
outdated once their line changes, and requesting changes from it."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core import services as core_services
from core.models import Event, PhaseStatus, Task
from reviews import diffs
from reviews.models import ReviewComment
from tests import factories as f
from tests.reviews.git_project import git_project

pytestmark = [pytest.mark.django_db, pytest.mark.processes]


def review_url(phase) -> str:
    return reverse("admin:core_phase_review", args=[phase.pk])


def comment_on_line_3(client, url: str, body: str) -> None:
    """Comment on the added line 3 of ``app.py`` from the review page."""
    fields = {"file_path": "app.py", "line_type": "added", "line_number": "3", "body": body}
    client.post(url, {"action": "comment", **fields})


@pytest.fixture
def reviewed(tmp_path):
    """A phase in review whose initiative's branch changed ``app.py`` and added a
    picture, fetched into cw's mirror."""
    repo = git_project(tmp_path)
    repo.commit({"app.py": "def total(a, b):\n    return a + b\n"})
    repo.push("main")
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit(
        {
            "app.py": "def total(a, b):\n    '''Add.'''\n    return a + b + 0\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        }
    )
    repo.push(repo.initiative.branch)
    core_services.project_fetch(project_id=repo.project.pk)
    phase = f.PhaseFactory(initiative=repo.initiative, status=PhaseStatus.PENDING_REVIEW)
    repo.phase = phase
    return repo


def test_the_page_shows_each_file_with_its_counts_and_highlighted_lines(admin_client, reviewed):
    html = admin_client.get(review_url(reviewed.phase)).content.decode()
    assert "2 files changed" in html
    assert '<a href="#file-0-0"><code>app.py</code></a>' in html
    assert "Binary file added: not shown." in html
    # Each line with both numbers and its highlighting; the added docstring line.
    row = re.search(r'<tr class="cw-line cw-added" id="L0-0-a2">.*?</tr>', html).group(0)
    assert '<td class="cw-num"></td><td class="cw-num">2</td>' in row
    assert 'class="hl-s' in row  # the docstring, coloured as a string
    assert 'href="?at=0-0:added:2#L0-0-a2"' in row
    assert "from" not in html or "branch cw/review-me against main" in html


def test_a_person_comments_on_a_line_and_resolves_it_in_place(admin_client, reviewed):
    url = review_url(reviewed.phase)
    form = admin_client.get(url + "?at=0-0:added:2").content.decode()
    assert 'id="cw-comment-form"' in form and "app.py:2" in form

    answer = admin_client.post(
        url,
        {
            "action": "comment",
            "project_id": reviewed.project.pk,
            "file_path": "app.py",
            "line_type": "added",
            "line_number": "2",
            "body": "Say what it adds.",
            "back": "#L0-0-a2",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == url + "#L0-0-a2"
    comment = ReviewComment.objects.get()
    assert (comment.author, comment.project_id, comment.line_text) == (
        "admin",
        reviewed.project.pk,
        "    '''Add.'''",
    )
    assert comment.hunk.startswith("@@ -1,2 +1,3 @@")
    event = Event.objects.get(kind="review_comment.created")
    assert event.actor_type == "person"

    html = admin_client.get(url).content.decode()
    assert f'id="comment-{comment.pk}"' in html and "Say what it adds." in html
    assert "1 unresolved comment of 1" in html

    admin_client.post(url, {"action": "resolve", "comment": comment.pk})
    comment.refresh_from_db()
    assert comment.resolved
    assert "0 unresolved comments of 1" in admin_client.get(url).content.decode()
    admin_client.post(url, {"action": "unresolve", "comment": comment.pk})
    comment.refresh_from_db()
    assert not comment.resolved


def test_an_empty_comment_is_refused_with_a_message(admin_client, reviewed):
    url = review_url(reviewed.phase)
    answer = admin_client.post(
        url,
        {"action": "comment", "file_path": "app.py", "line_type": "added", "line_number": "2"},
        follow=True,
    )
    assert "The comment was empty" in answer.content.decode()
    assert not ReviewComment.objects.exists()


def test_a_comment_whose_line_changed_is_outdated(admin_client, reviewed):
    url = review_url(reviewed.phase)
    comment_on_line_3(admin_client, url, "Why + 0?")
    assert "cw-badge cw-outdated" not in admin_client.get(url).content.decode()
    reviewed.commit({"app.py": "def total(a, b):\n    '''Add.'''\n    return a + b\n"})
    reviewed.push(reviewed.initiative.branch)
    core_services.project_fetch(project_id=reviewed.project.pk)
    html = admin_client.get(url).content.decode()
    assert "cw-badge cw-outdated" in html
    assert "Comments on lines no longer in this diff" in html


def test_request_changes_keeps_the_comments_open_and_quotes_their_hunks(admin_client, reviewed):
    url = review_url(reviewed.phase)
    comment_on_line_3(admin_client, url, "Drop the + 0.")
    button = reverse("admin:core_phase_do", args=[reviewed.phase.pk, "request-changes"])
    asked = admin_client.post(button, {"next": url})
    assert "Are you sure?" in asked.content.decode()  # it asks first
    done = admin_client.post(button, {"next": url, "confirmed": "yes"})
    assert done["Location"] == url
    task = Task.objects.get(category="review")
    assert "```diff" in task.description and "+    return a + b + 0" in task.description
    comment = ReviewComment.objects.get()
    assert (comment.resolved, comment.addressed_by_id) == (False, task.pk)
    html = admin_client.get(url).content.decode()
    assert "handed to the rework" in html


def test_a_large_file_is_summarised_until_asked_for(admin_client, reviewed, monkeypatch):
    monkeypatch.setattr(diffs, "LARGE_FILE_LINES", 2)
    url = review_url(reviewed.phase)
    html = admin_client.get(url).content.decode()
    assert "A large change (3 lines): not shown unasked." in html
    assert 'id="L0-0-a2"' not in html
    shown = admin_client.get(url + "?show=app.py").content.decode()
    assert 'id="L0-0-a2"' in shown


def test_an_unfetched_project_says_so_and_fetch_now_fixes_it(admin_client, tmp_path):
    repo = git_project(tmp_path)
    repo.checkout(repo.initiative.branch, new=True)
    repo.commit({"new.txt": "new\n"})
    repo.push(repo.initiative.branch)
    phase = f.PhaseFactory(initiative=repo.initiative, status=PhaseStatus.PENDING_REVIEW)
    url = review_url(phase)
    assert "cw has no copy of this repository yet" in admin_client.get(url).content.decode()
    fetch = reverse("admin:core_project_do", args=[repo.project.pk, "fetch"])
    answer = admin_client.post(fetch, {"next": url}, follow=True)
    assert "into cw&#x27;s mirror" in answer.content.decode()
    assert "<code>new.txt</code>" in answer.content.decode()
    project_page = admin_client.get(reverse("admin:core_project_change", args=[repo.project.pk]))
    assert "Fetch now" in project_page.content.decode()
    assert "Last fetched" in project_page.content.decode()


def test_the_page_reads_the_same_rows_whatever_the_diff_size(admin_client, tmp_path):
    """Queries do not grow with files, lines or comments (the bench times it)."""

    def queries(files: int) -> int:
        repo = git_project(tmp_path / str(files), branch=f"cw/size-{files}")
        repo.checkout(repo.initiative.branch, new=True)
        repo.commit({f"src/f{n}.py": "x = 1\ny = 2\n" for n in range(files)})
        repo.push(repo.initiative.branch)
        core_services.project_fetch(project_id=repo.project.pk)
        phase = f.PhaseFactory(initiative=repo.initiative, status=PhaseStatus.PENDING_REVIEW)
        for n in range(files):
            f.ReviewCommentFactory(phase=phase, file_path=f"src/f{n}.py", line_number=1)
        admin_client.get(review_url(phase))  # the session and permissions, once
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(review_url(phase))
        assert page.status_code == 200
        assert page.content.decode().count('class="cw-comment"') == files
        return len(captured)

    assert queries(2) == queries(12)


def test_the_page_comes_back_only_to_its_own_anchors(admin_client, reviewed):
    url = review_url(reviewed.phase)
    comment = f.ReviewCommentFactory(phase=reviewed.phase, file_path="app.py")
    for back in ("//evil.example/x", "#ok\r\nSet-Cookie: x=1", "javascript:alert(1)"):
        answer = admin_client.post(url, {"action": "resolve", "comment": comment.pk, "back": back})
        assert answer["Location"] == url
    answer = admin_client.post(url, {"action": "unresolve", "comment": comment.pk, "back": "#c-1"})
    assert answer["Location"] == url + "#c-1"


def test_a_comment_of_another_phase_is_not_touched(admin_client, reviewed):
    other = f.ReviewCommentFactory()
    answer = admin_client.post(
        review_url(reviewed.phase), {"action": "resolve", "comment": other.pk}, follow=True
    )
    assert "That comment is on another phase." in answer.content.decode()
    other.refresh_from_db()
    assert not other.resolved


def test_request_changes_is_offered_only_with_an_open_comment(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    page = reverse("admin:core_phase_change", args=[phase.pk])
    html = admin_client.get(page).content.decode()
    assert 'data-slug="request-changes"' in html
    assert "No open review comment: comment on the lines to change first." in html
    f.ReviewCommentFactory(phase=phase)
    html = admin_client.get(page).content.decode()
    assert 'data-slug="request-changes"' not in html
    assert 'value="Request changes"' in html
