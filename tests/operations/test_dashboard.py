"""The dashboard on the admin index: what needs a person now, each count linked to the
changelist of the rows it counts, and the active initiatives' progress."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib import admin
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from agents.models import Account, Agent, AgentStatus, Message, MessageStatus, MessageType
from core.models import Initiative, Phase, PhaseStatus, Task, TaskStatus, TaskType
from cw_project.admin_site import CwAdminSite
from reviews.models import Proposal, ProposalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


# --- reading the page ------------------------------------------------------------------


@dataclass
class Anchor:
    href: str
    text: str
    attrs: dict[str, str]
    card: str | None


class DashboardPage(HTMLParser):
    """The links of the dashboard: every anchor with the card it sits in, and the
    counts (``data-count``) by key."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[Anchor] = []
        self.totals: dict[str, str] = {}
        self._cards: list[tuple[str, int]] = []
        self._depth = 0
        self._open: list[tuple[dict[str, str], list[str]]] = []
        self._span: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "div":
            self._depth += 1
            if "data-card" in values:
                self._cards.append((values["data-card"], self._depth))
        if tag == "a":
            self._open.append((values, []))
        if tag == "span" and "data-count" in values:
            self._span = (values["data-count"], [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self._cards and self._cards[-1][1] == self._depth:
                self._cards.pop()
            self._depth -= 1
        if tag == "a" and self._open:
            values, text = self._open.pop()
            anchor = Anchor(
                href=values.get("href", ""),
                text=" ".join("".join(text).split()),
                attrs=values,
                card=self._cards[-1][0] if self._cards else None,
            )
            self.anchors.append(anchor)
            if "data-count" in values:
                self.totals[values["data-count"]] = anchor.text
        if tag == "span" and self._span is not None:
            key, text = self._span
            self.totals[key] = "".join(text).strip()
            self._span = None

    def handle_data(self, data: str) -> None:
        for _values, text in self._open:
            text.append(data)
        if self._span is not None:
            self._span[1].append(data)

    def count_link(self, key: str) -> Anchor:
        [anchor] = [a for a in self.anchors if a.attrs.get("data-count") == key]
        return anchor

    def in_card(self, card: str) -> list[Anchor]:
        return [a for a in self.anchors if a.card == card]

    def link_to(self, href: str) -> Anchor:
        found = [a for a in self.anchors if a.href == href]
        assert found, f"no link to {href}"
        return found[0]


def dashboard(client) -> tuple[str, DashboardPage]:
    response = client.get(INDEX)
    assert response.status_code == HTTPStatus.OK
    # Django writes durations with non-breaking spaces ("3\xa0hours").
    html = response.content.decode().replace("\xa0", " ")
    page = DashboardPage()
    page.feed(html)
    return html, page


def changelist(model: type[models.Model], **lookups: Any) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(lookups)}" if lookups else url


def change(record: models.Model) -> str:
    opts = record._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])


def listed(client, href: str) -> set[str]:
    """The ids of the rows the changelist at ``href`` lists (it must open, filtered as
    asked: Django sends an invalid lookup to ``?e=1``)."""
    response = client.get(href)
    assert response.status_code == HTTPStatus.OK, href
    return {row.pk for row in response.context["cl"].result_list}


def ids(records: Iterable[models.Model]) -> set[str]:
    return {record.pk for record in records}


# --- who may see it --------------------------------------------------------------------


def test_the_admin_site_is_cws_with_its_titles(admin_client):
    html, _ = dashboard(admin_client)

    assert isinstance(admin.site, CwAdminSite)
    assert "cw · control plane" in html
    assert "Initiatives, agents and reviews" in html


def test_anonymous_people_are_sent_to_log_in(client):
    response = client.get(INDEX)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{reverse('admin:login')}?next={INDEX}"


def test_people_who_are_not_staff_are_sent_to_log_in(client):
    client.force_login(f.UserFactory(is_staff=False))

    response = client.get(INDEX)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("admin:login"))


# --- the empty state -------------------------------------------------------------------


def test_an_empty_database_needs_nothing_and_the_app_list_follows(admin_client):
    html, page = dashboard(admin_client)

    assert "Nothing needs you right now." in html
    assert "No active initiative." in html
    assert page.totals == {"initiatives": "0 in all"}
    assert 'class="app-core module"' in html


def test_running_agents_alone_need_nothing_but_are_shown(admin_client):
    running = f.AgentFactory(name="swift-fox", status=AgentStatus.RUNNING)

    html, page = dashboard(admin_client)

    assert "Nothing needs you right now." in html
    count = page.count_link("running")
    assert count.text == "1"
    assert count.href == changelist(
        Agent, status__exact=AgentStatus.RUNNING, user_dismissed_at__isnull="True"
    )
    assert listed(admin_client, count.href) == {running.pk}
    assert page.link_to(change(running)).text == "swift-fox"


# --- what needs a person, each count linked --------------------------------------------


def test_pending_proposals_are_counted_per_agent_each_linked_to_its_own(admin_client):
    busy, quiet = f.AgentFactory(name="brave-otter"), f.AgentFactory(name="calm-heron")
    initiative = f.InitiativeFactory()
    mine = f.ProposalFactory.create_batch(3, agent=busy, initiative=initiative)
    theirs = f.ProposalFactory(agent=quiet, initiative=initiative)
    f.ProposalFactory(agent=quiet, initiative=initiative, status=ProposalStatus.ACCEPTED)

    html, page = dashboard(admin_client)

    assert "Nothing needs you right now." not in html
    total = page.count_link("proposals")
    assert total.text == "4"
    assert total.href == changelist(Proposal, status__exact="pending")
    assert listed(admin_client, total.href) == ids([*mine, theirs])
    for agent, count, expected in ((busy, "3", ids(mine)), (quiet, "1", {theirs.pk})):
        href = changelist(Proposal, status__exact="pending", agent__id__exact=agent.pk)
        assert page.link_to(href).text == count
        assert page.link_to(change(agent)).text == agent.name
        assert listed(admin_client, href) == expected


def test_phases_and_initiatives_waiting_for_review_link_to_them(admin_client):
    initiative = f.InitiativeFactory(name="Payments rewrite")
    waiting = f.PhaseFactory(
        initiative=initiative, name="Card vault", status=PhaseStatus.PENDING_REVIEW
    )
    f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    done = f.InitiativeFactory(name="Billing", status="pending_review")

    html, page = dashboard(admin_client)

    phases = page.count_link("phases")
    assert phases.text == "1"
    assert phases.href == changelist(Phase, status__exact="pending_review")
    assert listed(admin_client, phases.href) == {waiting.pk}
    # A phase in review leads straight to its diff.
    review = reverse("admin:core_phase_review", args=[waiting.pk])
    assert page.link_to(review).text == "Card vault"
    assert "in Payments rewrite" in html
    initiatives = page.count_link("initiatives_review")
    assert initiatives.text == "1"
    assert listed(admin_client, initiatives.href) == {done.pk}
    assert page.link_to(change(done)).text == "Billing"


def test_ready_checkpoints_are_counted_and_linked_to_the_pending_checkpoints(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED, initiative__name="Auth")
    ready = f.TaskFactory(
        phase=phase, name="Check the login page", type=TaskType.CHECKPOINT_HUMAN_VERIFY
    )
    agents_work = f.TaskFactory(phase=phase, type=TaskType.AUTO)
    done = f.TaskFactory(
        phase=phase, type=TaskType.CHECKPOINT_DECISION, status=TaskStatus.COMPLETED
    )

    _, page = dashboard(admin_client)

    count = page.count_link("checkpoints")
    assert count.text == "1"
    assert "pending checkpoint" in count.attrs["title"]
    rows = listed(admin_client, count.href)
    assert ready.pk in rows
    assert agents_work.pk not in rows
    assert done.pk not in rows
    assert page.link_to(change(ready)).text == "Check the login page"


def test_messages_waiting_for_a_person_are_counted_unread_and_wanting_a_reply(admin_client):
    agent = f.AgentFactory(name="brave-otter")
    unread = f.MessageFactory(sender_id=agent.pk, type=MessageType.QUESTION, content="Which DB?")
    unread_wants_reply = f.MessageFactory(sender_id=agent.pk, requires_response=True)
    read_wants_reply = f.MessageFactory(
        sender_id=agent.pk, status=MessageStatus.READ, requires_response=True
    )
    f.MessageFactory(sender_id=agent.pk, status=MessageStatus.READ)  # read, nothing wanted
    answered = f.MessageFactory(sender_id=agent.pk, requires_response=True)
    f.MessageFactory(
        parent_message=answered,
        sender_type="user",
        recipient_type="agent",
        recipient_id=agent.pk,
    )

    _, page = dashboard(admin_client)

    assert page.totals["messages"] == "3"
    unread_link = page.count_link("messages-unread")
    assert unread_link.text == "2 unread"
    assert listed(admin_client, unread_link.href) == {unread.pk, unread_wants_reply.pk}
    reply_link = page.count_link("messages-want-a-reply")
    assert reply_link.text == "2 want a reply"
    assert listed(admin_client, reply_link.href) == {unread_wants_reply.pk, read_wants_reply.pk}
    assert "brave-otter · “Which DB?”" in page.link_to(change(unread)).text


def test_agents_waiting_and_crashed_link_to_those_not_dismissed(admin_client):
    task = f.TaskFactory(name="Add login")
    waiting = f.AgentFactory(
        name="brave-otter",
        task=task,
        status=AgentStatus.WAITING_FOR_INPUT,
        pending_questions='[{"question": "Which database?"}]',
    )
    crashed = f.AgentFactory(name="bold-owl", status=AgentStatus.CRASHED, exit_code=137)
    f.AgentFactory(status=AgentStatus.CRASHED, user_dismissed_at=timezone.now())

    html, page = dashboard(admin_client)

    questions = page.count_link("questions")
    assert (questions.text, listed(admin_client, questions.href)) == ("1", {waiting.pk})
    assert "on Add login · “Which database?”" in html
    count = page.count_link("crashed")
    assert count.href == changelist(
        Agent, status__exact="crashed", user_dismissed_at__isnull="True"
    )
    assert (count.text, listed(admin_client, count.href)) == ("1", {crashed.pk})
    assert "exit code 137" in html


def test_exhausted_accounts_say_when_each_returns(admin_client):
    now = timezone.now()
    soon = f.AccountFactory(
        email="soon@example.com", is_exhausted=True, exhausted_until=now + timedelta(hours=3)
    )
    parked = f.AccountFactory(email="parked@example.com", is_exhausted=True)
    f.AccountFactory(email="free@example.com")

    html, page = dashboard(admin_client)

    count = page.count_link("accounts")
    assert count.text == "2"
    assert count.href == changelist(Account, is_exhausted__exact="1")
    assert listed(admin_client, count.href) == {soon.pk, parked.pk}
    assert page.link_to(change(soon)).text == "soon@example.com"
    assert "back in 2 hours, 59 minutes" in html or "back in 3 hours" in html
    assert "until a person releases it" in html
    assert "claude: 1 of 3 available" in html
    assert "free@example.com" not in html


# --- active initiatives ----------------------------------------------------------------


def test_each_active_initiative_shows_phases_and_tasks_by_status_and_what_is_ready(
    admin_client,
):
    initiative = f.InitiativeFactory(name="Auth")
    working = f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    later = f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING)
    schema = f.TaskFactory(phase=working, name="Schema", priority="high")
    views = f.TaskFactory(phase=working, name="Views")
    running = f.TaskFactory(phase=working, status=TaskStatus.IN_PROGRESS)
    f.TaskFactory(phase=later)
    f.InitiativeFactory(name="Shipped", status="completed")

    html, page = dashboard(admin_client)

    assert page.totals["initiatives"] == "1 in all"
    assert page.link_to(change(initiative)).text == "Auth"
    everything = page.link_to(changelist(Task, initiative__id__exact=initiative.pk))
    assert listed(admin_client, everything.href) == {schema.pk, views.pk, running.pk} | ids(
        later.tasks.all()
    )
    for model, status, text, expected in (
        (Phase, "in_progress", "1 in progress", {working.pk}),
        (Phase, "pending", "1 pending", {later.pk}),
        (Task, "pending", "3 pending", {schema.pk, views.pk, *ids(later.tasks.all())}),
        (Task, "in_progress", "1 in progress", {running.pk}),
    ):
        href = changelist(model, initiative__id__exact=initiative.pk, status__exact=status)
        legend = [a for a in page.anchors if a.href == href and a.text]
        assert [a.text for a in legend] == [text]
        assert listed(admin_client, href) == expected
    assert "<strong>2</strong> ready" in html
    assert page.link_to(change(schema)).text == "Schema"
    assert "Shipped" not in html


def test_long_names_are_cut_and_never_shown_as_bare_ids(admin_client):
    long_name = "Rewrite " + "the payment pipeline " * 10
    initiative = f.InitiativeFactory(name=long_name)
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW)

    html, page = dashboard(admin_client)

    assert long_name not in html
    text = page.link_to(change(initiative)).text
    assert text.startswith("Rewrite the payment pipeline")
    assert text.endswith("…")
    assert len(text) <= 60
    assert page.link_to(reverse("admin:core_phase_review", args=[phase.pk])).text == phase.name


# --- a fixed number of queries ---------------------------------------------------------


def populate(count: int) -> None:
    """``count`` active initiatives, each with a row in every section of the dashboard."""
    now = timezone.now()
    for n in range(count):
        initiative = f.InitiativeFactory()
        phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
        f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW)
        f.TaskFactory.create_batch(2, phase=phase)
        f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)
        agent = f.AgentFactory(initiative=initiative, status=AgentStatus.CRASHED, exit_code=1)
        f.AgentFactory(initiative=initiative, status=AgentStatus.RUNNING)
        f.AgentFactory(
            initiative=initiative,
            status=AgentStatus.WAITING_FOR_INPUT,
            pending_questions='["Which?"]',
        )
        f.ProposalFactory(initiative=initiative, agent=agent)
        f.MessageFactory(sender_id=agent.pk, requires_response=True)
        f.AccountFactory(is_exhausted=True, exhausted_until=now + timedelta(hours=n + 1))


def queries_of(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(INDEX)
    assert response.status_code == HTTPStatus.OK
    return len(captured)


def test_the_dashboard_costs_the_same_queries_at_one_and_a_hundred_initiatives(
    admin_client, django_assert_num_queries
):
    populate(1)
    at_one = queries_of(admin_client)
    populate(99)

    with django_assert_num_queries(at_one):
        html, page = dashboard(admin_client)

    assert at_one <= 40
    assert Initiative.objects.count() == 100
    assert page.totals["initiatives"] == "100 in all"
    assert page.totals["proposals"] == "100"
    assert page.totals["crashed"] == "100"
    assert "All 100 active initiatives" in html
    assert [a.text for a in page.anchors].count("its tasks") == 10
    assert "and 90 more" in html
    assert Agent.objects.count() == 300
    assert Message.objects.count() == 100
