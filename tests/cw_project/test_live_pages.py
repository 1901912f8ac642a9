"""The pages that follow what happens say what to follow (the browser tests in
tests/browser/test_live_pages.py watch them do it): the stream's address, from which
cursor, which events, and what stays as it was loaded."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from agents.services import logs
from core import services
from core.admin_base import API_NAMESPACE
from core.events import EVENT_KINDS, event_last_id
from cw_project.api import api
from tests import factories as f

pytestmark = pytest.mark.django_db


def live_bar(response) -> dict[str, str]:
    """The data-cw-live-* attributes of the page's live bar ({} when it has none)."""
    html = response.content.decode()
    start = html.find('<p class="cw-live"')
    if start < 0:
        return {}
    tag = html[start : html.index(">", start)]
    attributes = {}
    for part in tag.split(" data-cw-live")[1:]:
        name, _, value = part.partition("=")
        attributes[name.lstrip("-") or "stream"] = value.strip().strip('"').replace("&amp;", "&")
    return attributes


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def test_the_api_namespace_is_the_apis():
    assert api.urls_namespace == API_NAMESPACE


def test_the_dashboard_follows_the_whole_feed_from_the_newest_event(admin_client):
    services.initiative_create(name="Already there")

    bar = live_bar(admin_client.get("/admin/"))

    assert urlparse(bar["stream"]).path == reverse(f"{API_NAMESPACE}:stream_events")
    assert query(bar["stream"]) == {"after": [str(event_last_id())]}
    assert set(bar["events"].split()) == set(EVENT_KINDS)
    assert bar["mode"] == "refresh"


def test_a_phase_page_follows_its_initiative_and_watches_the_phase(admin_client):
    initiative = services.initiative_create(name="Followed")
    phase = services.phase_create(initiative_id=initiative.pk, name="P")

    response = admin_client.get(reverse("admin:core_phase_change", args=[phase.pk]))

    bar = live_bar(response)
    assert query(bar["stream"]) == {
        "after": [str(event_last_id())],
        "initiative_id": [initiative.pk],
    }
    assert bar["watch"] == phase.pk
    assert 'id="cw-live-phase" data-cw-live-region' in response.content.decode()


def test_the_log_viewer_follows_the_log_on_its_latest_page_only(admin_client):
    agent = f.AgentFactory()
    line = '{"type":"system","subtype":"init"}\n'
    ids = logs.agent_log_append(agent_id=agent.pk, chunks=[{"content": line} for _ in range(150)])
    log = reverse("admin:agents_agent_log", args=[agent.pk])

    bar = live_bar(admin_client.get(log))

    assert urlparse(bar["stream"]).path == reverse(
        f"{API_NAMESPACE}:follow_agent_log", args=[agent.pk]
    )
    assert query(bar["stream"]) == {"after": [str(ids[-1])]}
    assert bar["mode"] == "log"
    assert bar["events"] == "chunk"
    assert bar["session"] == "1"
    # An older page, or an older session's, stays as it is: nothing is appended there.
    assert live_bar(admin_client.get(f"{log}?session=1&after=0")) == {}


def test_an_empty_log_is_followed_from_its_start(admin_client):
    agent = f.AgentFactory()

    bar = live_bar(admin_client.get(reverse("admin:agents_agent_log", args=[agent.pk])))

    assert query(bar["stream"]) == {"after": ["0"]}
    assert "session" not in bar
