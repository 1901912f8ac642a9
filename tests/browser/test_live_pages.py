"""Live pages in a real browser: the dashboard, a phase's page and the log viewer follow
the server's streams (static/cw/live.js, an EventSource) and update in place as
changes commit, without a reload; without JavaScript they are the same pages, read as
of when they were loaded.

The changes are made here, in the test's thread, through the services (as the API or
another person's admin would), while the browser shows the page.
"""

import json

import pytest

from agents.services import logs
from core import services
from tests import factories as f

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]


def stays(page) -> None:
    """Mark the loaded document, so ``still_the_same`` tells an update in place from a
    reload."""
    page.evaluate("window.cwLoadedOnce = true")


def still_the_same(page) -> bool:
    return page.evaluate("window.cwLoadedOnce === true")


def said(text: str, session: int = 1) -> dict:
    """A chunk in which the agent says ``text`` (Claude Code's stream-json)."""
    line = {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}
    return {"session_number": session, "content": json.dumps(line) + "\n"}


def live_status(page):
    return page.locator("[data-cw-live-status]")


def test_the_dashboard_shows_a_new_initiative_without_a_reload(page):
    page.goto("/admin/")
    expect(live_status(page)).to_have_attribute("data-state", "live")
    stays(page)

    services.initiative_create(name="Arrived while the page was open")

    expect(page.locator("#cw-dashboard")).to_contain_text("Arrived while the page was open")
    assert still_the_same(page)


def test_a_phase_page_updates_its_tasks_and_says_when_the_phase_itself_changed(page):
    initiative = services.initiative_create(name="Live phase")
    phase = services.phase_create(initiative_id=initiative.pk, name="Build it")
    task = services.task_create(phase_id=phase.pk, name="First task")
    page.goto(f"/admin/core/phase/{phase.pk}/change/")
    expect(live_status(page)).to_have_attribute("data-state", "live")
    notice = page.locator("[data-cw-live-notice]")
    expect(notice).to_be_hidden()
    stays(page)

    services.task_update(task_id=task.pk, name="First task, renamed elsewhere")
    services.task_create(phase_id=phase.pk, name="A second task")

    tasks = page.locator("#plan-tasks")
    expect(tasks).to_contain_text("First task, renamed elsewhere")
    expect(tasks).to_contain_text("A second task")
    expect(notice).to_be_hidden()  # the tasks changed, not the phase's own fields

    services.phase_update(phase_id=phase.pk, name="Build it well")

    expect(notice).to_be_visible()
    assert page.locator("#id_name").input_value() == "Build it"  # the form is left alone
    assert still_the_same(page)


def test_the_log_viewer_appends_new_chunks_and_says_when_a_new_session_begins(page):
    agent = f.AgentFactory()
    logs.agent_log_append(agent_id=agent.pk, chunks=[said("first line")])
    page.goto(f"/admin/agents/agent/{agent.pk}/log/")
    expect(live_status(page)).to_have_attribute("data-state", "live")
    stays(page)

    logs.agent_log_append(agent_id=agent.pk, chunks=[said("second line"), said("third line")])

    rows = page.locator("ol.cw-log > li.cw-chunk")
    expect(rows).to_have_count(3)
    expect(rows.last).to_contain_text("third line")
    notice = page.locator("[data-cw-live-notice]")
    expect(notice).to_be_hidden()

    logs.agent_log_append(agent_id=agent.pk, chunks=[said("a new session", session=2)])

    expect(notice).to_be_visible()
    expect(rows).to_have_count(3)  # the new session is on its own page
    assert still_the_same(page)


def test_an_empty_log_shows_its_first_chunks_as_they_come(page):
    agent = f.AgentFactory()
    page.goto(f"/admin/agents/agent/{agent.pk}/log/")
    expect(page.locator("#cw-log-region")).to_contain_text("no log yet")
    expect(live_status(page)).to_have_attribute("data-state", "live")

    logs.agent_log_append(agent_id=agent.pk, chunks=[said("hello")])

    expect(page.locator("ol.cw-log > li.cw-chunk")).to_have_count(1)


def test_without_javascript_the_pages_say_how_old_they_are(browser, live_server, page):
    context = browser.new_context(
        base_url=live_server.url,
        java_script_enabled=False,
        storage_state=page.context.storage_state(),
    )
    plain = context.new_page()
    plain.goto("/admin/")
    services.initiative_create(name="Not shown until a reload")

    expect(live_status(plain)).to_contain_text("reload the page")
    expect(plain.locator("#cw-dashboard")).not_to_contain_text("Not shown until a reload")
    plain.reload()
    expect(plain.locator("#cw-dashboard")).to_contain_text("Not shown until a reload")
    context.close()
