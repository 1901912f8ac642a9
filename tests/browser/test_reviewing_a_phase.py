"""A person reviews a phase whose runs changed a real repository, in Chromium, without a
shell: opens the phase in review, reads the diff, comments on a line, requests changes,
sees the agent's rework (the comment resolved and outdated), and approves."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from core import services as core_services
from core.actors import Actor, acting_as
from core.models import PhaseStatus, Task, TaskStatus
from reviews.models import ReviewComment
from tests import factories as f
from tests.browser.conftest import logged_in
from tests.reviews.git_project import git_project

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

APP = """\
def total(prices):
    result = 0
    for price in prices:
        result = result + price
    return result
"""

APP_BY_THE_AGENT = """\
def total(prices: list[int]) -> int:
    \"\"\"The sum of the prices, in cents.\"\"\"
    result = 0
    for price in prices:
        result = result + price
    return result
"""

APP_REWORKED = """\
def total(prices: list[int]) -> int:
    \"\"\"The sum of the prices, in cents.\"\"\"
    return sum(prices)
"""


def a_run(task: Task, project, start: str, end: str) -> None:
    """What cw-runner records of a run that succeeded: its start and end commits."""
    run = f.RunFactory(task=task, outcome="succeeded", ended_at=timezone.now())
    f.RunCommitFactory(run=run, project=project, start_commit=start, end_commit=end)


@pytest.fixture
def in_review(tmp_path):
    repo = git_project(tmp_path, name="Checkout totals", project_name="storefront")
    start = repo.commit({"cart/total.py": APP, "README": "Shop\n"}, "the shop")
    repo.push("main")
    repo.checkout(repo.initiative.branch, new=True)
    end = repo.commit(
        {"cart/total.py": APP_BY_THE_AGENT, "cart/tax.py": "RATE = 20\n"}, "types, tax rate"
    )
    repo.push(repo.initiative.branch)
    phase = f.PhaseFactory(initiative=repo.initiative, name="Typed totals")
    task = f.TaskFactory(phase=phase, name="Type the totals", status=TaskStatus.COMPLETED)
    a_run(task, repo.project, start, end)
    phase.status = PhaseStatus.PENDING_REVIEW
    phase.save(update_fields=["status"])
    core_services.project_fetch(project_id=repo.project.pk)
    repo.phase = phase
    repo.end = end
    return repo


def test_a_person_reviews_the_diff_requests_changes_and_approves_the_rework(
    page, in_review, screenshots
):
    phase = in_review.phase
    page.goto(f"/admin/core/phase/{phase.pk}/change/")
    page.click("#cw-open-review")
    page.wait_for_url(re.compile(f"/admin/core/phase/{phase.pk}/review/"))

    # The diff: both files, counted, the changed lines highlighted.
    expect(page.locator(".cw-summary")).to_contain_text("2 files changed")
    expect(page.locator("table.cw-files")).to_contain_text("cart/total.py")
    docstring = page.locator("#L0-1-a2")  # total.py is the second file, line 2 added
    expect(docstring).to_contain_text('"""The sum of the prices, in cents."""')
    expect(docstring.locator("span[class^='hl-s']").first).to_be_visible()

    # A comment on the loop, written at its line.
    loop = page.locator("#L0-1-c4")
    loop.hover()
    loop.locator("a.cw-add").click()
    form = page.locator("tr.cw-form-row form")
    form.locator("textarea").fill("Use sum() instead of the loop.")
    form.locator("input[type=submit]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Comment added on cart/total.py:4")
    expect(page.locator("#cw-unresolved")).to_have_text("1 unresolved comment of 1")
    comment = ReviewComment.objects.get()
    expect(page.locator(f"#comment-{comment.pk}")).to_contain_text("Use sum() instead")
    if screenshots is not None:
        page.locator("#L0-1-a2").hover()
        page.screenshot(path=str(screenshots / "review.png"), full_page=False)

    # Request changes: it asks first; the comment stays open, handed to the rework.
    page.click("input[value^='Request changes']")
    expect(page.locator(".cw-confirm-question")).to_contain_text("Request changes on")
    page.click("input[value^='Yes, request changes']")
    expect(page.locator("ul.messagelist")).to_contain_text("Changes requested")
    expect(page.locator(f"#comment-{comment.pk}")).to_contain_text("handed to the rework")
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.IN_PROGRESS

    # The agent's rework: a run of the review task changes the loop and completes.
    rework = Task.objects.get(phase=phase, category="review")
    assert "Use sum() instead of the loop." in rework.description
    assert "```diff" in rework.description
    reworked = in_review.commit({"cart/total.py": APP_REWORKED}, "sum()")
    in_review.push(in_review.initiative.branch)
    with acting_as(Actor.tool("cw-runner")):
        core_services.task_start(task_id=rework.pk)
        a_run(rework, in_review.project, in_review.end, reworked)
        core_services.task_complete(task_id=rework.pk, summary="Used sum().")
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.PENDING_REVIEW

    # Fetch, see the rework: the comment is resolved and its line is gone.
    page.click("input[value='Fetch now']")
    expect(page.locator("ul.messagelist")).to_contain_text("Fetched")
    expect(page.locator("#L0-1-a3")).to_contain_text("return sum(prices)")
    resolved = page.locator(f"#comment-{comment.pk}")
    expect(resolved).to_contain_text("resolved")
    expect(resolved.locator(".cw-outdated")).to_be_visible()
    expect(page.locator("#cw-unresolved")).to_have_text("0 unresolved comments of 1")

    page.click("input[value='Approve the review']")
    expect(page.locator("ul.messagelist")).to_contain_text("Approve the review: done")
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.COMPLETED


def test_without_scripts_a_line_still_takes_a_comment(browser, live_server, lead, in_review):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    tab = logged_in(context, live_server)
    tab.goto(f"/admin/core/phase/{in_review.phase.pk}/review/?at=0-1:added:1#L0-1-a1")
    tab.locator("#cw-comment-form textarea").fill("Name the return type in the docstring too.")
    tab.locator("#cw-comment-form input[type=submit]").click()
    expect(tab.locator("ul.messagelist")).to_contain_text("Comment added on cart/total.py:1")
    assert ReviewComment.objects.get().line_text == "def total(prices: list[int]) -> int:"
    context.close()
