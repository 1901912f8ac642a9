"""A person's day in the admin, in a real browser, on the demo data.

Each test logs in, reads the dashboard, does one piece of work through the pages (the
buttons and actions people use) and sees the dashboard reflect it.
"""

import re

import pytest

from agents.models import Account, Agent, AgentStatus
from agents.repositories import LogChunkRepository
from agents.services import agent_log_append
from core.actors import Actor
from core.models import Initiative, Phase, PhaseStatus
from operations.demo import load_demo
from reviews.models import Proposal, ProposalStatus, ReviewComment

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def demo(lead):
    return load_demo(actor=Actor.person(lead))


def count(page, key: str) -> int:
    """The number a dashboard card shows for ``key`` (0 when the card is not shown)."""
    page.goto("/admin/")
    shown = page.locator(f'[data-count="{key}"]')
    return int(shown.first.inner_text()) if shown.count() else 0


def flash(page) -> str:
    page.wait_for_load_state()
    return page.locator("ul.messagelist").inner_text()


def test_the_dashboard_shows_what_needs_a_person(page, demo, screenshots):
    page.goto("/admin/")
    pending = Proposal.objects.filter(status=ProposalStatus.PENDING).count()
    assert count(page, "proposals") == pending > 0
    assert count(page, "phases") == Phase.objects.filter(status=PhaseStatus.PENDING_REVIEW).count()
    assert count(page, "crashed") == 1
    # A count leads to the changelist of exactly those records.
    page.locator('[data-count="proposals"]').first.click()
    page.wait_for_url(re.compile("/admin/reviews/proposal/"))
    expect(page.locator("#result_list tbody tr")).to_have_count(pending)
    if screenshots is not None:
        page.goto("/admin/")
        page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)


def test_accepting_a_proposal_from_its_changelist(page, demo):
    before = count(page, "proposals")
    proposal = Proposal.objects.filter(status=ProposalStatus.PENDING).order_by("title").first()
    page.goto(f"/admin/reviews/proposal/?status__exact=pending&q={proposal.title[:20]}")
    page.locator(f'#result_list input[name="_selected_action"][value="{proposal.pk}"]').check()
    page.select_option('select[name="action"]', "proposal_accept")
    page.click('button[name="index"]')
    assert "Accept: done for 1 record" in flash(page)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED
    assert count(page, "proposals") == before - 1


def test_accepting_a_proposal_from_its_page_after_its_preview(page, demo):
    proposal = Proposal.objects.filter(status=ProposalStatus.PENDING).order_by("title").last()
    page.goto(f"/admin/reviews/proposal/{proposal.pk}/change/")
    expect(page.get_by_role("heading", name="If you accept")).to_be_visible()
    page.click('input[type="submit"][value="Accept"]')
    assert "ccepted" in flash(page)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED


def test_resolving_the_review_and_approving_the_phase(page, demo):
    phase = Phase.objects.get(pk=demo.highlights["phase_in_review_id"])
    assert count(page, "phases") == 1
    comment = ReviewComment.objects.filter(phase=phase, resolved=False).first()
    page.goto(f"/admin/reviews/reviewcomment/{comment.pk}/change/")
    page.click('input[type="submit"][value="Resolve"]')
    assert "esolved" in flash(page)
    comment.refresh_from_db()
    assert comment.resolved

    page.goto(f"/admin/core/phase/{phase.pk}/change/")
    page.click('input[type="submit"][value="Approve the review"]')
    assert "Approve the review" in flash(page) or "approved" in flash(page).lower()
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.COMPLETED
    assert count(page, "phases") == 0


def test_the_dependency_picture_leads_to_each_record(page, demo, screenshots):
    initiative = Initiative.objects.get(execution_mode="review_per_phase")
    page.goto(f"/admin/core/initiative/{initiative.pk}/change/")
    nodes = page.locator("#plan-phase-graph svg a")
    assert nodes.count() == Phase.objects.filter(initiative=initiative).count()
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "initiative.png"), full_page=True)
    href = nodes.first.get_attribute("href")
    nodes.first.click()
    page.wait_for_url(re.compile(r"/admin/core/phase/[\w-]+/change/"))
    assert page.url.endswith(href)
    assert page.locator("h2, h1").first.is_visible()


def test_reading_a_crashed_agents_log_page_by_page(page, demo, screenshots):
    crashed = Agent.objects.get(status=AgentStatus.CRASHED)
    assert count(page, "crashed") == 1
    page.goto(f"/admin/agents/agent/{crashed.pk}/log/")
    expect(page.locator(".kind-error, .cw-failed").first).to_be_visible()  # why it crashed
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "log.png"), full_page=True)
    session = LogChunkRepository().get_session_count(crashed.pk)
    # A long session: 250 more chunks, so the log spans three pages of 100.
    line = '{"type":"assistant","message":{"content":[{"type":"text","text":"Step %d"}]}}\n'
    agent_log_append(
        agent_id=crashed.pk,
        chunks=[{"session_number": session, "content": line % n} for n in range(250)],
    )
    page.goto(f"/admin/agents/agent/{crashed.pk}/change/")
    page.get_by_role("link", name="View log").first.click()
    page.wait_for_url(re.compile(r"/log/"))
    records = page.locator(".kind-assistant_text")
    expect(records.last).to_contain_text("Step 249")  # the latest page first
    page.locator("a.cw-older").first.click()
    expect(page.locator(".kind-assistant_text").last).to_contain_text("Step 149")
    page.locator("a.cw-older").first.click()
    expect(page.locator(".kind-assistant_text").first).not_to_contain_text("Step 1")
    page.locator("a.cw-newer").first.click()
    expect(page.locator(".kind-assistant_text").last).to_contain_text("Step 149")


def test_approving_a_plan_and_releasing_an_account(page, demo):
    phase = Phase.objects.filter(status=PhaseStatus.PENDING).order_by("name").first()
    page.goto(f"/admin/core/phase/{phase.pk}/change/")
    page.click('input[type="submit"][value="Approve the plan"]')
    page.wait_for_load_state()
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.APPROVED

    assert count(page, "accounts") == 1
    account = Account.objects.get(pk=demo.highlights["exhausted_account_id"])
    page.goto(f"/admin/agents/account/{account.pk}/change/")
    expect(page.locator("body")).not_to_contain_text("demo-not-a-real")  # write-only secrets
    page.click('input[type="submit"][value="Release it now"]')
    assert "is back in the rotation" in flash(page)
    account.refresh_from_db()
    assert not account.is_exhausted
    assert count(page, "accounts") == 0
