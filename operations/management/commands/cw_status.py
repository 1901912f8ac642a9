"""One screen of what needs attention now.

    manage.py cw_status                         # everything, 10 items a list
    manage.py cw_status --initiative <id>       # only what concerns one initiative
    manage.py cw_status --limit 3               # shorter lists ("and 12 more")
    manage.py cw_status --json | jq '.checkpoints.total'

The screen lists, each only when not empty: pending proposals by agent, phases waiting
for review, initiatives waiting for their final approval, checkpoint tasks waiting for a
person, unanswered messages to people, agents waiting for an answer, crashed agents
(not dismissed) and accounts that are exhausted and when they return. "Nothing needs
attention." stands in for all of them when they are all empty; a lost run not swept yet
(its runner died, and nothing swept since) is among them. Then, for information:
running agents, the runs in flight, the runs that ended lost or crashed in the last 24
hours, every active budget against its limit, the queue of ready tasks with how many of
them limits and budgets hold back, and every *active* initiative (status ``active``;
with ``--initiative``, that one whatever its status) with its tasks counted by status and
what is ready for agents. An account whose exhaustion has passed is available again, so
it is not listed.

``--json`` prints one document (times are ISO 8601; ``since`` is a record's last change,
normally its move into the status shown). Each list is ``{"total": N, "items": [...]}``,
``items`` being the first ``limit`` of ``total``. The keys, in order:

- ``generated_at``, ``limit``;
- ``initiative``: null, or ``{id, name, status}`` of ``--initiative``;
- ``needs_attention``: whether any section before ``agents.running`` has an item
  (``agents.crashed`` and ``accounts.exhausted`` count too);
- ``proposals``: items ``{agent_id, agent_name, pending, oldest_at}`` (``total`` counts
  agents; ``proposals`` counts the pending proposals);
- ``phases_pending_review``: items ``{id, name, initiative_id, initiative_name, since}``;
- ``initiatives_pending_review``: items ``{id, name, since}``;
- ``checkpoints``: items ``{id, name, type, priority, phase_id, initiative_id,
  initiative_name, created_at}``;
- ``messages``: ``unread`` and ``requires_response`` (counts) and items ``{id, type,
  status, requires_response, sender_type, sender_id, sender_name, content,
  created_at}``;
- ``questions`` (agents waiting for input), ``agents.running``, ``agents.crashed``:
  items ``{id, name, initiative_id, task_id, task_name, exit_code, pending_questions,
  since}``;
- ``accounts``: ``providers`` (``[{provider, total, available}]``, every provider) and
  ``exhausted`` (items ``{id, provider, email, exhausted_until}``; ``exhausted_until``
  null: parked until a person releases it);
- ``initiatives``: items ``{id, name, status, phases: {<status>: n, …, total}, tasks:
  {pending, in_progress, completed, blocked, total}, ready: {total, items: [{id, name,
  type, priority, phase_id}]}}``.
- ``runs``: ``in_flight`` (live runs, the longest running first), ``lost`` (live runs past
  their heartbeat deadline, not swept yet, the longest silent first) and ``died`` (runs
  that ended ``lost`` or ``crashed`` after ``since``, the latest first): items ``{id,
  attempt, outcome, task_id, task_name, initiative_id, initiative_name, agent_id,
  agent_name, account_id, account_email, runner ("name@host"), pid, started_at,
  heartbeat_at, heartbeat_deadline, overdue, ended_at, exit_code, error, tokens,
  cost_micros}`` (``tokens``: input, output, cache read and cache write; ``error`` cut to
  200 characters). With ``--initiative``, that initiative's runs only;
- ``budgets``: every active budget (``total``; ``spent`` and ``warning`` count them by
  state), items ``{id, scope_type, scope_id, scope_name, metric, window_seconds, limit,
  spent, percent, warn_percent, state, note}``, spent first, then past their warning,
  then by share spent; ``state`` is ``spent``, ``warning`` or ``ok``; ``limit`` and
  ``spent`` are tokens or micro-dollars (``metric``); ``window_seconds`` null: all time;
- ``queue``: ``ready`` (ready ``auto`` tasks), ``held_back`` (those a limit or a budget
  holds back whoever asks), ``overall`` (``{live, max_live, full}``; ``max_live`` null:
  no overall limit), ``everything_spent``, ``other_budgets_spent`` (spent phase and task
  budgets: they hold their own tasks back, not counted in ``held_back``) and
  ``initiatives``: items ``{id, name, ready, live, max_live, at_limit, budget_spent}`` for
  each initiative with a limit or a spent budget, those holding tasks back first.
  Budgets and the queue belong to the installation: ``--initiative`` does not cut them.

Everything is read, never written. An unknown ``--initiative`` or a ``--limit`` out of
range exits with status 1 and one line on standard error: the reason and its code.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand

from agents.questions import questions_as_lines, read_questions
from core.errors import DomainError
from core.management.commandline import refusal, write_json
from core.repositories import MAX_PAGE_SIZE
from core.text import shorten, terminal_safe
from operations.run_status import dollars, spent_of_limit, window_words
from operations.status import DEFAULT_LIMIT, gather_status

#: The longest a quoted text (a message) runs on the screen.
PREVIEW_LENGTH = 60
#: The longest a line of an agent's question (or of an answer it offers) runs.
QUESTION_LENGTH = 160


class Command(BaseCommand):
    help = (
        "Show what needs attention now: proposals, reviews, checkpoints, messages, agents, "
        "exhausted accounts, runs in flight and lost, spend against each budget, the "
        "queue of ready tasks and the active initiatives' tasks. Reads only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--initiative",
            metavar="ID",
            help=(
                "Only what concerns this initiative (accounts, which belong to none, are "
                "still shown); its task counts are shown whatever its status."
            ),
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DEFAULT_LIMIT,
            metavar="N",
            help=(
                f"List at most N items a section, and N ready tasks an initiative; the "
                f"rest is counted (default {DEFAULT_LIMIT}, at most {MAX_PAGE_SIZE})."
            ),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help=(
                "Print one JSON document instead: generated_at, initiative, limit, "
                "needs_attention, then each section as {total, items} (every key is "
                "described in the module docstring of operations/management/commands/"
                "cw_status.py)."
            ),
        )

    def handle(self, *args, **options):
        try:
            status = gather_status(initiative_id=options["initiative"], limit=options["limit"])
        except DomainError as error:
            raise refusal(error) from error
        if options["json"]:
            write_json(self.stdout, status)
            return
        for line in render(status):
            # Every line is one line of names, previews and figures: none may act on
            # the terminal (a name holding "\x1b[2J" is shown, not run).
            self.stdout.write(terminal_safe(line))


# --- the screen ----------------------------------------------------------------------------


def render(status: dict[str, Any]) -> list[str]:
    """The lines of the text screen for a document from ``gather_status``."""
    now = datetime.fromisoformat(status["generated_at"])
    lines = [f"cw status at {now:%Y-%m-%d %H:%M} {now.tzname() or ''}".rstrip()]
    focus = status["initiative"]
    if focus is not None:
        lines.append(f"Initiative {focus['name']} ({focus['id']}), {focus['status']}")

    attention = [
        _proposals(status["proposals"], now),
        _listing(
            "Phases waiting for review",
            status["phases_pending_review"],
            lambda p: (
                f"{p['name']} ({p['id']}) in {_initiative(p)}, waiting {_ago(p['since'], now)}"
            ),
        ),
        _listing(
            "Initiatives waiting for approval",
            status["initiatives_pending_review"],
            lambda i: f"{i['name']} ({i['id']}), waiting {_ago(i['since'], now)}",
        ),
        _listing(
            "Checkpoints waiting for a person",
            status["checkpoints"],
            lambda t: (
                f"{t['name']} ({t['id']}, {t['type']}, {t['priority']})"
                + (f" in {_initiative(t)}" if t["initiative_id"] else "")
            ),
        ),
        _listing("Unanswered messages", status["messages"], lambda m: _message(m, now)),
        _questions(status["questions"], now),
        _listing(
            "Crashed agents",
            status["agents"]["crashed"],
            lambda a: (
                f"{_agent(a)}, exit code {_or_unknown(a['exit_code'])}, {_ago(a['since'], now)} ago"
            ),
        ),
        _accounts(status["accounts"], now),
        _listing(
            "Lost runs, not swept yet",
            status["runs"]["lost"],
            lambda r: f"{_run(r)}: {_silent(r, now)}",
        ),
    ]
    shown = [section for section in attention if section]
    lines.append("")
    if not shown:
        lines.append("Nothing needs attention.")
    for section in shown:
        lines.extend(section)
        lines.append("")

    information = [
        _listing(
            "Running agents",
            status["agents"]["running"],
            lambda a: f"{_agent(a)}, for {_ago(a['since'], now)}",
        ),
        _listing(
            "Runs in flight",
            status["runs"]["in_flight"],
            lambda r: f"{_run(r)}: {_in_flight(r, now)}",
        ),
        _listing(
            "Runs that ended lost or crashed in the last "
            f"{_hours(status['runs']['died']['since'], now)} hours",
            status["runs"]["died"],
            lambda r: f"{_run(r)}: {_died(r, now)}",
        ),
        _budgets(status["budgets"]),
        _queue(status["queue"]),
        _initiatives(status["initiatives"], focus is not None),
    ]
    for section in information:
        if section:
            if lines[-1] != "":
                lines.append("")
            lines.extend(section)
            lines.append("")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _listing(title: str, section: dict[str, Any], item: Any) -> list[str]:
    """``title: total``, one indented line an item, and how many more were not listed;
    nothing when the list is empty."""
    if not section["total"]:
        return []
    rows = [f"  {item(row)}" for row in section["items"]]
    return [f"{title}: {section['total']}", *rows, *_more(section)]


def _questions(section: dict[str, Any], now: datetime) -> list[str]:
    """Each agent waiting for an answer, then its questions in words (numbered, with the
    answers each offers, ``agents.questions``), each line cut at ``QUESTION_LENGTH``."""
    if not section["total"]:
        return []
    lines = [f"Agents waiting for an answer: {section['total']}"]
    for agent in section["items"]:
        asked = questions_as_lines(read_questions(agent["pending_questions"]))
        waiting = f"  {_agent(agent)}, waiting {_ago(agent['since'], now)}"
        lines.append(f"{waiting}:" if asked else f"{waiting}, no question given")
        for line in asked:
            text = line.lstrip()
            lines.append(f"    {line[: len(line) - len(text)]}{shorten(text, QUESTION_LENGTH)}")
    return [*lines, *_more(section)]


def _more(section: dict[str, Any], indent: str = "  ") -> list[str]:
    hidden = section["total"] - len(section["items"])
    return [f"{indent}and {hidden} more"] if hidden > 0 else []


def _proposals(section: dict[str, Any], now: datetime) -> list[str]:
    if not section["total"]:
        return []
    agents = "agent" if section["total"] == 1 else "agents"
    lines = [f"Pending proposals: {section['proposals']} from {section['total']} {agents}"]
    lines.extend(
        f"  {row['agent_name']} ({row['agent_id']}): {row['pending']} pending, "
        f"oldest {_ago(row['oldest_at'], now)} ago"
        for row in section["items"]
    )
    return lines + _more(section)


def _accounts(section: dict[str, Any], now: datetime) -> list[str]:
    exhausted = section["exhausted"]
    if not exhausted["total"]:
        return []
    providers = ", ".join(
        f"{p['provider']}: {p['available']} of {p['total']} available" for p in section["providers"]
    )
    lines = [f"Exhausted accounts: {exhausted['total']} ({providers})"]
    for account in exhausted["items"]:
        until = account["exhausted_until"]
        back = (
            f"returns in {_duration(datetime.fromisoformat(until) - now, round_up=True)}"
            if until is not None
            else "parked until a person releases it"
        )
        lines.append(f"  {account['email']} ({account['id']}, {account['provider']}) {back}")
    return lines + _more(exhausted)


def _initiatives(section: dict[str, Any], focused: bool) -> list[str]:
    if not section["total"]:
        return []
    lines = ["Tasks" if focused else f"Active initiatives: {section['total']}"]
    for initiative in section["items"]:
        tasks, ready = initiative["tasks"], initiative["ready"]
        counts = ", ".join(
            f"{tasks[status]} {status.replace('_', ' ')}"
            for status in ("pending", "in_progress", "blocked", "completed")
        )
        lines.append(
            f"  {initiative['name']} ({initiative['id']}): {tasks['total']} tasks "
            f"({counts}); {ready['total']} ready"
        )
        lines.extend(
            f"    ready: {task['name']} ({task['id']}, {task['priority']})"
            for task in ready["items"]
        )
        lines.extend(_more(ready, indent="    "))
    return lines + _more(section)


def _run(run: dict[str, Any]) -> str:
    """A run in words: ``<task> in <initiative>, attempt 2, <agent> on <account>,
    <runner>@<host>``."""
    parts = [run["task_name"] + (f" in {run['initiative_name']}" if run["initiative_name"] else "")]
    parts.append(f"attempt {run['attempt']}")
    if run["agent_name"]:
        parts.append(
            run["agent_name"] + (f" on {run['account_email']}" if run["account_email"] else "")
        )
    parts.append(run["runner"])
    return ", ".join(parts)


def _usage(run: dict[str, Any]) -> str:
    return f"{run['tokens']:,} tokens, {dollars(run['cost_micros'])}"


def _in_flight(run: dict[str, Any], now: datetime) -> str:
    beat = f"last heartbeat {_ago(run['heartbeat_at'], now)} ago"
    overdue = ", overdue" if run["overdue"] else ""
    return f"started {_ago(run['started_at'], now)} ago, {beat}{overdue}, {_usage(run)}"


def _silent(run: dict[str, Any], now: datetime) -> str:
    return (
        f"silent {_ago(run['heartbeat_at'], now)} "
        f"(deadline passed {_ago(run['heartbeat_deadline'], now)} ago), {_usage(run)}"
    )


def _died(run: dict[str, Any], now: datetime) -> str:
    text = f"{run['outcome']} {_ago(run['ended_at'], now)} ago"
    if run["exit_code"] is not None:
        text += f", exit code {run['exit_code']}"
    return text + (f": {run['error']}" if run["error"] else "")


def _budgets(section: dict[str, Any]) -> list[str]:
    if not section["total"]:
        return []
    lines = [
        f"Budgets: {section['total']} active ({section['spent']} spent, "
        f"{section['warning']} past their warning threshold)"
    ]
    for budget in section["items"]:
        scope = budget["scope_name"]
        if budget["scope_type"] != "all":
            scope = f"{budget['scope_type']} {scope}"
        lines.append(
            f"  [{budget['state']}] {scope}: {spent_of_limit(budget)}, "
            f"{window_words(budget['window_seconds'])}"
        )
    return lines + _more(section)


def _queue(section: dict[str, Any]) -> list[str]:
    overall = section["overall"]
    if not (section["ready"] or overall["live"] or section["initiatives"]["total"]):
        return []
    live = (
        f"{overall['live']:,} of {overall['max_live']:,} live runs"
        if overall["max_live"] is not None
        else f"{_live_runs(overall['live'])} (no overall limit)"
    )
    lines = [
        f"Queue: {section['ready']:,} ready task{'s' if section['ready'] != 1 else ''}, "
        f"{section['held_back']:,} held back by limits and budgets; {live}"
    ]
    if overall["full"]:
        lines.append("  every ready task waits: the overall limit is reached")
    if section["everything_spent"]:
        lines.append("  every ready task waits: the budget on everything is spent")
    for row in section["initiatives"]["items"]:
        live_text = (
            f"{row['live']:,} of {row['max_live']:,} live runs"
            if row["max_live"] is not None
            else _live_runs(row["live"])
        )
        reasons = [
            "at its limit" if row["at_limit"] else "",
            "its budget is spent" if row["budget_spent"] else "",
        ]
        lines.append(
            ", ".join(
                [f"  {row['name'] or row['id']}: {row['ready']} ready", live_text]
                + [reason for reason in reasons if reason]
            )
        )
    lines.extend(_more(section["initiatives"]))
    if section["other_budgets_spent"]:
        lines.append(
            f"  {section['other_budgets_spent']} spent phase or task budgets hold their "
            f"own tasks back too (not counted)"
        )
    return lines


def _hours(iso: str, now: datetime) -> int:
    return round((now - datetime.fromisoformat(iso)).total_seconds() / 3600)


def _live_runs(count: int) -> str:
    return f"{count:,} live run{'s' if count != 1 else ''}"


def _message(message: dict[str, Any], now: datetime) -> str:
    sender = (
        message["sender_name"] or message["sender_id"] or "an agent"
        if message["sender_type"] == "agent"
        else message["sender_id"] or "a person"
    )
    needs = ", response required" if message["requires_response"] else ""
    return (
        f"{message['id']} {message['type']} from {sender}, {_ago(message['created_at'], now)} "
        f"ago{needs}: {_preview(message['content'])}"
    )


def _agent(agent: dict[str, Any]) -> str:
    task = f" on {agent['task_name']} ({agent['task_id']})" if agent["task_id"] else ""
    return f"{agent['name']} ({agent['id']}){task}"


def _initiative(item: dict[str, Any]) -> str:
    return f"{item['initiative_name'] or '?'} ({item['initiative_id']})"


def _preview(value: Any) -> str:
    """A value on one short line: text quoted, a list of texts as several quoted ones,
    anything else as compact JSON; cut at ``PREVIEW_LENGTH`` characters."""
    if isinstance(value, str):
        text = f'"{value}"'
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = ", ".join(f'"{item}"' for item in value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    if len(text) > PREVIEW_LENGTH:
        text = text[: PREVIEW_LENGTH - 1] + "…"
    return text


def _or_unknown(value: Any) -> str:
    return "unknown" if value is None else str(value)


def _ago(iso: str, now: datetime) -> str:
    """How long before ``now`` the ISO time ``iso`` was."""
    return _duration(now - datetime.fromisoformat(iso))


def _duration(delta: timedelta, *, round_up: bool = False) -> str:
    """A time span the way people say it: ``<1m``, ``12m``, ``3h 12m``, ``2d 5h``; whole
    minutes down (how long ago), or up with ``round_up`` (how long until)."""
    seconds = max(0.0, delta.total_seconds())
    minutes = int(-(-seconds // 60) if round_up else seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"
