"""The admin's dashboard: the index page of the cw admin site (``cw_project.admin_site``).

It says what needs a person now (proposals, reviews, checkpoints, messages,
questions, crashed agents, exhausted accounts) and how each active initiative is
getting on. Its data is ``operations.status.gather_status`` (the ``cw_status`` command's),
so it costs the same fixed number of queries whatever the number of rows; this module
only turns that document into cards whose every count links to the admin changelist
that lists those rows.

The runs (``operations.run_status``) have their own section: the runs in flight and
those that ended lost or crashed lately, each row linking to its run, task, initiative,
agent and account; every active budget with a bar of what it spent; and the queue of
ready tasks with what holds them back. A lost run not swept yet is a card among what
needs a person. A record whose model has no admin page is named without a link
(``admin.site.is_registered``), so the page works whatever the admin registers.

A changelist link filters with plain field lookups (``status__exact``,
``agent__id__exact``, ``replies__isnull``), which Django's admin accepts on any
changelist whatever its ``list_filter``. Where the dashboard's rule is more than such a
lookup can say (a checkpoint is *ready*, an exhaustion has not yet *passed*), the link
lists the nearest wider set and its title says so. The messages waiting for a person
(unread, or wanting a reply) are a union no lookup can say: their two counts are linked
instead of the total.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.timesince import timesince, timeuntil

from agents.models import (
    Account,
    Agent,
    AgentStatus,
    Budget,
    Message,
    MessageStatus,
    MessageType,
    ParticipantType,
    Run,
    RunOutcome,
    UsageScope,
)
from core.admin_base import change_url
from core.models import Initiative, InitiativeStatus, Phase, PhaseStatus, Task, TaskStatus, TaskType
from core.text import shorten
from operations.review_page import review_url
from operations.run_status import DIED_OUTCOMES, dollars, spent_of_limit, window_words
from reviews.models import Proposal, ProposalStatus

#: Rows listed per card (the count says how many there are in all).
DASHBOARD_LIMIT = 10
#: Ready tasks named under each initiative.
READY_SHOWN = 3
#: The longest a name or a quoted text runs on the dashboard.
NAME_LENGTH = 60
QUOTE_LENGTH = 80

CHECKPOINT_TYPES = [value for value in TaskType.values if value != TaskType.AUTO]


# --- links -----------------------------------------------------------------------------


def _admin_changelist(model: type[models.Model], **lookups: Any) -> str:
    """``changelist_url``, or "" while ``model`` has no admin page (the runs' admin
    pages came after the dashboard's first version)."""
    return changelist_url(model, **lookups) if admin.site.is_registered(model) else ""


def _admin_change(model: type[models.Model], id: Any) -> str:
    """``change_url``, or "" while ``model`` has no admin page or ``id`` is None."""
    return change_url(model, id) if id is not None and admin.site.is_registered(model) else ""


def changelist_url(model: type[models.Model], **lookups: Any) -> str:
    """The admin changelist of ``model`` filtered by ``lookups`` (field lookups)."""
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(lookups)}" if lookups else url


# --- what the template shows -----------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One row of a card: a record named in words, linked to its page."""

    text: str
    url: str
    note: str = ""
    count: int | None = None
    count_url: str = ""


@dataclass(frozen=True)
class Count:
    """A number with what it counts, linked to the rows it counts."""

    n: int
    label: str
    url: str = ""
    title: str = ""


@dataclass(frozen=True)
class Card:
    """One thing that needs (or may need) a person: how many, and the first rows."""

    key: str
    title: str
    total: int
    url: str
    lines: list[Line]
    more: int = 0
    url_title: str = ""
    counts: list[Count] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Segment:
    """A part of a stacked bar: the records of one status."""

    status: str
    label: str
    n: int
    url: str


@dataclass(frozen=True)
class InitiativeRow:
    name: str
    url: str
    tasks_url: str
    phases: list[Segment]
    phases_total: int
    tasks: list[Segment]
    tasks_total: int
    ready_total: int
    ready: list[Line]
    ready_more: int


@dataclass(frozen=True)
class RunRow:
    """One run: its task and attempt, who holds it, and how it is going (or ended)."""

    task: str
    task_url: str
    attempt: str
    run_url: str
    initiative: str
    initiative_url: str
    agent: str
    agent_url: str
    account: str
    account_url: str
    runner: str
    started: str
    heartbeat: str
    overdue: bool
    tokens: str
    cost: str
    ended: str = ""
    error: str = ""


@dataclass(frozen=True)
class RunTable:
    key: str
    title: str
    total: int
    url: str
    rows: list[RunRow]
    more: int
    url_title: str = ""


@dataclass(frozen=True)
class BudgetRow:
    """One active budget: its scope named, what it spent against its limit."""

    scope_type: str
    scope: str
    scope_url: str
    url: str
    spent: str
    window: str
    percent: int
    state: str
    note: str


@dataclass(frozen=True)
class QueueRow:
    """An initiative that has a limit or a spent budget: its ready tasks and live runs."""

    name: str
    url: str
    ready: int
    live: str
    reasons: list[str]


@dataclass(frozen=True)
class Queue:
    ready: int
    ready_url: str
    held_back: int
    live: str
    reasons: list[str]
    rows: list[QueueRow]
    more: int
    other_budgets_spent: int


@dataclass(frozen=True)
class Dashboard:
    attention: list[Card]
    running: Card
    initiatives: list[InitiativeRow]
    initiatives_total: int
    initiatives_url: str
    runs: list[RunTable] = field(default_factory=list)
    budgets: list[BudgetRow] = field(default_factory=list)
    budgets_total: int = 0
    budgets_url: str = ""
    queue: Queue | None = None


def build_dashboard(status: Mapping[str, Any], *, now: datetime) -> Dashboard:
    """The dashboard of ``status`` (a ``gather_status`` document): the cards that have
    something in them, in the order a person would deal with them."""
    cards = [
        _proposals_card(status["proposals"], now),
        _phases_card(status["phases_pending_review"], now),
        _initiatives_review_card(status["initiatives_pending_review"], now),
        _checkpoints_card(status["checkpoints"]),
        _messages_card(status["messages"], now),
        _agents_card("questions", status["questions"], now),
        _agents_card("crashed", status["agents"]["crashed"], now),
        _accounts_card(status["accounts"], now),
        _lost_runs_card(status["runs"]["lost"], now),
    ]
    initiatives = status["initiatives"]
    runs = status["runs"]
    budgets = status["budgets"]
    return Dashboard(
        attention=[card for card in cards if card.total],
        running=_agents_card("running", status["agents"]["running"], now),
        initiatives=[_initiative_row(item) for item in initiatives["items"]],
        initiatives_total=initiatives["total"],
        initiatives_url=changelist_url(Initiative, status__exact=InitiativeStatus.ACTIVE),
        runs=[
            table
            for table in (
                _run_table(
                    "in_flight",
                    "Runs in flight",
                    runs["in_flight"],
                    now,
                    url=_admin_changelist(Run, outcome__exact=RunOutcome.RUNNING),
                ),
                _run_table(
                    "died",
                    f"Ended lost or crashed in the last {_hours(runs['died']['since'], now)} hours",
                    runs["died"],
                    now,
                    url=_admin_changelist(Run, outcome__in=",".join(DIED_OUTCOMES)),
                    url_title="Every run that ended lost or crashed, whenever it ended.",
                ),
            )
            if table.total
        ],
        budgets=[_budget_row(item) for item in budgets["items"]],
        budgets_total=budgets["total"],
        budgets_url=_admin_changelist(Budget, active__exact="1"),
        queue=_queue(status["queue"]),
    )


def _name(text: str | None) -> str:
    return shorten(text, NAME_LENGTH)


def _quote(value: Any) -> str:
    """A message or an agent's pending questions as one short quoted text."""
    text = " ".join(_words(value).split())
    return f"“{shorten(text, QUOTE_LENGTH)}”" if text else ""


def _words(value: Any) -> str:
    """The words of a JSON value: a string, a question object's ``question`` (or
    ``text``), the items of a list joined; anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " / ".join(_words(item) for item in value)
    if isinstance(value, dict):
        for key in ("question", "text"):
            if isinstance(value.get(key), str):
                return value[key]
    return json.dumps(value, ensure_ascii=False)


def _for(iso: str | None, now: datetime) -> str:
    """How long ago ``iso`` was, in words ("3 hours", "less than a minute")."""
    if not iso:
        return ""
    then = datetime.fromisoformat(iso)
    if (now - then).total_seconds() < 60:
        return "less than a minute"
    return timesince(then, now, depth=1)


def _ago(iso: str | None, now: datetime) -> str:
    return f"{_for(iso, now)} ago" if iso else ""


def _join(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


def _proposals_card(section: Mapping[str, Any], now: datetime) -> Card:
    lines = [
        Line(
            text=_name(row["agent_name"]),
            url=change_url(Agent, row["agent_id"]),
            note=f"oldest {_ago(row['oldest_at'], now)}",
            count=row["pending"],
            count_url=changelist_url(
                Proposal, status__exact=ProposalStatus.PENDING, agent__id__exact=row["agent_id"]
            ),
        )
        for row in section["items"]
    ]
    agents = section["total"]
    return Card(
        key="proposals",
        title="Proposals to accept or dismiss",
        total=section["proposals"],
        url=changelist_url(Proposal, status__exact=ProposalStatus.PENDING),
        lines=lines,
        more=agents - len(lines),
        note=f"from {agents} agent{'s' if agents != 1 else ''}",
    )


def _phases_card(section: Mapping[str, Any], now: datetime) -> Card:
    return Card(
        key="phases",
        title="Phases waiting for review",
        total=section["total"],
        url=changelist_url(Phase, status__exact=PhaseStatus.PENDING_REVIEW),
        lines=[
            Line(
                text=_name(item["name"]),
                url=review_url(item["id"]),  # straight to its diff
                note=_join(
                    f"in {_name(item['initiative_name'])}",
                    f"waiting {_for(item['since'], now)}",
                ),
            )
            for item in section["items"]
        ],
        more=section["total"] - len(section["items"]),
    )


def _initiatives_review_card(section: Mapping[str, Any], now: datetime) -> Card:
    return Card(
        key="initiatives_review",
        title="Initiatives waiting for approval",
        total=section["total"],
        url=changelist_url(Initiative, status__exact=InitiativeStatus.PENDING_REVIEW),
        lines=[
            Line(
                text=_name(item["name"]),
                url=change_url(Initiative, item["id"]),
                note=f"waiting {_for(item['since'], now)}",
            )
            for item in section["items"]
        ],
        more=section["total"] - len(section["items"]),
    )


def _checkpoints_card(section: Mapping[str, Any]) -> Card:
    labels = dict(TaskType.choices)
    return Card(
        key="checkpoints",
        title="Checkpoints ready for a person",
        total=section["total"],
        url=changelist_url(
            Task, type__in=",".join(CHECKPOINT_TYPES), status__exact=TaskStatus.PENDING
        ),
        url_title="Every pending checkpoint task; the ready ones are named here.",
        lines=[
            Line(
                text=_name(item["name"]),
                url=change_url(Task, item["id"]),
                note=_join(
                    str(labels.get(item["type"], item["type"])),
                    f"in {_name(item['initiative_name'])}" if item["initiative_name"] else "",
                ),
            )
            for item in section["items"]
        ],
        more=section["total"] - len(section["items"]),
    )


def _messages_card(section: Mapping[str, Any], now: datetime) -> Card:
    to_people = {"recipient_type__exact": ParticipantType.USER, "replies__isnull": "True"}
    unread = changelist_url(Message, status__exact=MessageStatus.PENDING, **to_people)
    needs_reply = changelist_url(
        Message,
        requires_response__exact="1",
        status__in=f"{MessageStatus.PENDING},{MessageStatus.READ}",
        **to_people,
    )
    return Card(
        key="messages",
        title="Messages waiting for a person",
        total=section["total"],
        url="",
        lines=[
            Line(
                text=_join(_name(item["sender_name"]) or "a person", _quote(item["content"])),
                url=change_url(Message, item["id"]),
                note=_join(
                    str(dict(MessageType.choices).get(item["type"], item["type"])),
                    "reply wanted" if item["requires_response"] else "",
                    _ago(item["created_at"], now),
                ),
            )
            for item in section["items"]
        ],
        more=section["total"] - len(section["items"]),
        counts=[
            Count(n=section["unread"], label="unread", url=unread),
            Count(n=section["requires_response"], label="want a reply", url=needs_reply),
        ],
    )


def _agent_lines(section: Mapping[str, Any], now: datetime, *, crashed: bool = False) -> list[Line]:
    return [
        Line(
            text=_name(item["name"]),
            url=change_url(Agent, item["id"]),
            note=_join(
                f"exit code {item['exit_code']}"
                if crashed and item["exit_code"] is not None
                else "",
                f"on {_name(item['task_name'])}" if item["task_name"] else "",
                _quote(item["pending_questions"]),
                _ago(item["since"], now) if crashed else f"for {_for(item['since'], now)}",
            ),
        )
        for item in section["items"]
    ]


def _agents_url(status: str) -> str:
    return changelist_url(Agent, status__exact=status, user_dismissed_at__isnull="True")


#: The agent cards: key, title and the status they list.
AGENT_CARDS = {
    "questions": ("Agents waiting for an answer", AgentStatus.WAITING_FOR_INPUT),
    "crashed": ("Crashed agents", AgentStatus.CRASHED),
    "running": ("Agents at work", AgentStatus.RUNNING),
}


def _agents_card(key: str, section: Mapping[str, Any], now: datetime) -> Card:
    title, status = AGENT_CARDS[key]
    return Card(
        key=key,
        title=title,
        total=section["total"],
        url=_agents_url(status),
        lines=_agent_lines(section, now, crashed=status == AgentStatus.CRASHED),
        more=section["total"] - len(section["items"]),
    )


def _accounts_card(section: Mapping[str, Any], now: datetime) -> Card:
    exhausted = section["exhausted"]
    return Card(
        key="accounts",
        title="Exhausted accounts",
        total=exhausted["total"],
        url=changelist_url(Account, is_exhausted__exact="1"),
        url_title="Every account marked exhausted, including those whose time has passed.",
        lines=[
            Line(
                text=_name(item["email"]),
                url=change_url(Account, item["id"]),
                note=_join(
                    item["provider"],
                    _returns(item["exhausted_until"], now),
                ),
            )
            for item in exhausted["items"]
        ],
        more=exhausted["total"] - len(exhausted["items"]),
        note=", ".join(
            f"{row['provider']}: {row['available']} of {row['total']} available"
            for row in section["providers"]
        ),
    )


def _returns(iso: str | None, now: datetime) -> str:
    """When a parked account is back: in how long, or when a person releases it."""
    if iso is None:
        return "until a person releases it"
    return f"back in {timeuntil(datetime.fromisoformat(iso), now, depth=2)}"


def _segments(
    model: type[models.Model],
    choices: type[models.TextChoices],
    counts: Mapping[str, int],
    initiative_id: str,
) -> list[Segment]:
    return [
        Segment(
            status=value,
            label=str(label),
            n=counts[value],
            url=changelist_url(model, initiative__id__exact=initiative_id, status__exact=value),
        )
        for value, label in choices.choices
        if counts.get(value)
    ]


def _initiative_row(item: Mapping[str, Any]) -> InitiativeRow:
    id = item["id"]
    ready = item["ready"]
    shown = ready["items"][:READY_SHOWN]
    return InitiativeRow(
        name=_name(item["name"]),
        url=change_url(Initiative, id),
        tasks_url=changelist_url(Task, initiative__id__exact=id),
        phases=_segments(Phase, PhaseStatus, item["phases"], id),
        phases_total=item["phases"]["total"],
        tasks=_segments(Task, TaskStatus, item["tasks"], id),
        tasks_total=item["tasks"]["total"],
        ready_total=ready["total"],
        ready=[
            Line(text=_name(task["name"]), url=change_url(Task, task["id"]), note=task["priority"])
            for task in shown
        ],
        ready_more=ready["total"] - len(shown),
    )


# --- runs, budgets and the queue -------------------------------------------------------


def _hours(iso: str, now: datetime) -> int:
    return round((now - datetime.fromisoformat(iso)).total_seconds() / 3600)


def _run_title(item: Mapping[str, Any]) -> str:
    return _name(item["task_name"])


def _lost_runs_card(section: Mapping[str, Any], now: datetime) -> Card:
    return Card(
        key="lost_runs",
        title="Lost runs, not swept yet",
        total=section["total"],
        url=_admin_changelist(Run, outcome__exact=RunOutcome.RUNNING),
        url_title="Every live run; the ones past their heartbeat deadline are named here.",
        lines=[
            Line(
                text=_run_title(item),
                url=_admin_change(Run, item["id"]) or change_url(Task, item["task_id"]),
                note=_join(
                    item["runner"],
                    _name(item["agent_name"]) if item["agent_name"] else "",
                    f"silent {_for(item['heartbeat_at'], now)}",
                ),
            )
            for item in section["items"]
        ],
        more=section["total"] - len(section["items"]),
        note="Their runner died and no sweep took them back yet (cw_reconcile does).",
    )


def _run_row(item: Mapping[str, Any], now: datetime) -> RunRow:
    ended = ""
    if item["ended_at"]:
        outcome = str(dict(RunOutcome.choices).get(item["outcome"], item["outcome"])).lower()
        ended = _join(
            f"{outcome} {_ago(item['ended_at'], now)}",
            f"exit code {item['exit_code']}" if item["exit_code"] is not None else "",
        )
    return RunRow(
        task=_run_title(item),
        task_url=change_url(Task, item["task_id"]),
        attempt=f"attempt {item['attempt']}",
        run_url=_admin_change(Run, item["id"]),
        initiative=_name(item["initiative_name"]) if item["initiative_name"] else "",
        initiative_url=_admin_change(Initiative, item["initiative_id"]),
        agent=_name(item["agent_name"]) if item["agent_name"] else "",
        agent_url=_admin_change(Agent, item["agent_id"]),
        account=_name(item["account_email"]) if item["account_email"] else "",
        account_url=_admin_change(Account, item["account_id"]),
        runner=_name(item["runner"]),
        started=_ago(item["started_at"], now),
        heartbeat=_ago(item["heartbeat_at"], now),
        overdue=item["overdue"],
        tokens=f"{item['tokens']:,}",
        cost=dollars(item["cost_micros"]),
        ended=ended,
        error=_quote(item["error"]) if item["error"] else "",
    )


def _run_table(
    key: str,
    title: str,
    section: Mapping[str, Any],
    now: datetime,
    *,
    url: str,
    url_title: str = "",
) -> RunTable:
    return RunTable(
        key=key,
        title=title,
        total=section["total"],
        url=url,
        rows=[_run_row(item, now) for item in section["items"]],
        more=section["total"] - len(section["items"]),
        url_title=url_title,
    )


#: The admin page of a budget's scope, by scope type.
SCOPE_PAGES: dict[str, type[models.Model]] = {
    UsageScope.INITIATIVE: Initiative,
    UsageScope.PHASE: Phase,
    UsageScope.TASK: Task,
    UsageScope.ACCOUNT: Account,
}


def _budget_row(item: Mapping[str, Any]) -> BudgetRow:
    model = SCOPE_PAGES.get(item["scope_type"])
    deleted = item["scope_name"].endswith("(deleted)")
    return BudgetRow(
        scope_type=str(dict(UsageScope.choices)[item["scope_type"]]).lower(),
        scope=_name(item["scope_name"]),
        scope_url=_admin_change(model, item["scope_id"]) if model and not deleted else "",
        url=_admin_change(Budget, item["id"]),
        spent=spent_of_limit(item),
        window=window_words(item["window_seconds"]),
        percent=min(item["percent"], 100),
        state=item["state"],
        note=_name(item["note"]),
    )


def _live(live: int, max_live: int | None) -> str:
    if max_live is None:
        return f"{live:,} live run{'s' if live != 1 else ''}"
    return f"{live:,} of {max_live:,} live runs"


def _queue(section: Mapping[str, Any]) -> Queue | None:
    overall = section["overall"]
    rows = section["initiatives"]
    if not (section["ready"] or overall["live"] or rows["total"]):
        return None
    reasons = []
    if overall["full"]:
        reasons.append("The overall limit on live runs is reached: every ready task waits.")
    if section["everything_spent"]:
        reasons.append("The budget on everything is spent: every ready task waits.")
    return Queue(
        ready=section["ready"],
        ready_url=changelist_url(Task, status__exact=TaskStatus.PENDING, type__exact=TaskType.AUTO),
        held_back=section["held_back"],
        live=_live(overall["live"], overall["max_live"])
        + ("" if overall["max_live"] is not None else " (no overall limit)"),
        reasons=reasons,
        rows=[
            QueueRow(
                name=_name(row["name"] or row["id"]),
                url=change_url(Initiative, row["id"]),
                ready=row["ready"],
                live=_live(row["live"], row["max_live"]),
                reasons=[
                    reason
                    for reason, holds in (
                        ("at its limit", row["at_limit"]),
                        ("its budget is spent", row["budget_spent"]),
                    )
                    if holds
                ],
            )
            for row in rows["items"]
        ],
        more=rows["total"] - len(rows["items"]),
        other_budgets_spent=section["other_budgets_spent"],
    )
