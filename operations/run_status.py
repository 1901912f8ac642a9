"""Runs as people watch them: the ``runs``, ``budgets`` and ``queue`` sections of
``gather_status`` (so of ``cw_status`` and of the admin's dashboard).

- ``runs``: the runs in flight (live: outcome ``running``), the lost ones (live, their
  heartbeat deadline passed, not swept yet: the sweep's own rule, ``HeartbeatDeadline``)
  and the runs that ended ``lost`` or ``crashed`` in the last ``RECENT_FAILURES``, each
  with its task, initiative, agent, account and runner (``name@host``), so a person sees
  which runner died;
- ``budgets``: every active budget with its scope named (an initiative's, phase's or
  task's name, an account's email, "everything"), what it spent over its window
  (``budget_states``, one query for all of them) against its limit, and its state
  (``ok``, ``warning`` once ``warn_percent`` is reached, ``spent``), the spent ones first;
- ``queue``: the ready ``auto`` tasks and how many of them wait whoever asks, held back
  by a limit on live runs (the overall one, or their initiative's) or a spent budget on
  everything or their initiative. Phase and task budgets, back-off and accounts hold
  tasks back too; they are not counted here (a spent phase or task budget is listed in
  ``budgets``), to keep the section a handful of grouped counts: the ready tasks of the
  initiatives that have a limit or a spent budget (``find_ready_per_initiative``), their
  limits (``max_live_by_scope``) and their live runs (``live_counts``).

Every section costs a fixed number of queries whatever the number of runs, budgets and
tasks. With an initiative in focus the runs are that initiative's; budgets and the queue,
like accounts, belong to the installation and are shown whole.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from agents.models import Budget, BudgetMetric, LimitScope, Run, RunOutcome, UsageScope
from agents.repositories import BudgetRepository, RunLimitRepository, RunRepository
from agents.services.runs import BudgetState, budget_states
from core.repositories import MAX_PAGE_SIZE, TaskRepository
from core.text import shorten

#: How far back the runs that ended lost or crashed are listed.
RECENT_FAILURES = timedelta(hours=24)
#: The outcomes that say a runner or its agent died.
DIED_OUTCOMES = (RunOutcome.LOST, RunOutcome.CRASHED)
#: The longest error shown for a run that ended.
ERROR_LENGTH = 200
#: A budget's state, in the order they are listed.
BUDGET_STATES = ("spent", "warning", "ok")

runs = RunRepository()
budgets = BudgetRepository()
run_limits = RunLimitRepository()
tasks = TaskRepository()


def runs_section(now: datetime, *, limit: int, initiative_id: str | None) -> dict[str, Any]:
    """The runs in flight, the lost ones not swept yet, and those that ended lost or
    crashed since ``now - RECENT_FAILURES`` (five queries)."""
    live, lost = runs.count_live_and_lost(now, initiative_id=initiative_id)
    since = now - RECENT_FAILURES
    died = runs.find_ended_page(
        DIED_OUTCOMES, since=since, limit=limit, initiative_id=initiative_id
    )
    return {
        "in_flight": {
            "total": live,
            "items": [
                _run_item(run, now)
                for run in runs.find_live_listing(limit=limit, initiative_id=initiative_id)
            ],
        },
        "lost": {
            "total": lost,
            "items": [
                _run_item(run, now)
                for run in runs.find_lost_listing(now, limit=limit, initiative_id=initiative_id)
            ],
        },
        "died": {
            "since": _iso(since),
            "total": died.total,
            "items": [_run_item(run, now) for run in died.items],
        },
    }


def budgets_and_queue(now: datetime, *, limit: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``budgets`` and ``queue`` sections, which share the budgets' spending and
    the names of their scopes (nine queries at most)."""
    found = budgets.find_active()
    states = budget_states(found, now) if found else []
    spent_initiatives = {
        state.scope_id
        for state in states
        if state.spent_out and state.scope_type == UsageScope.INITIATIVE
    }
    # The initiatives that may hold their ready tasks back: those with a limit on their
    # live runs, and those whose budget is spent.
    limited = run_limits.find_page(scope_type=LimitScope.INITIATIVE, limit=MAX_PAGE_SIZE)
    candidates = sorted({row.scope_id for row in limited.items} | spent_initiatives)
    names = budgets.scope_names(
        [(state.scope_type, state.scope_id) for state in states]
        + [(UsageScope.INITIATIVE, id) for id in candidates]
    )
    budget_section = _budgets_section(found, states, names, limit)
    queue = _queue_section(
        states,
        candidates,
        spent_initiatives,
        {id: names.get((UsageScope.INITIATIVE, id)) for id in candidates},
        limit,
    )
    return budget_section, queue


# --- budgets ---------------------------------------------------------------------------


def budget_state(state: BudgetState) -> str:
    """``spent`` once the limit is reached, ``warning`` once ``warn_percent`` of it is,
    else ``ok``."""
    if state.spent_out:
        return "spent"
    return "warning" if state.warn_reached else "ok"


def _budgets_section(
    found: list[Budget],
    states: list[BudgetState],
    names: dict[tuple[str, str], str],
    limit: int,
) -> dict[str, Any]:
    items = [
        _budget_item(budget, state, names) for budget, state in zip(found, states, strict=True)
    ]
    items.sort(key=lambda item: (BUDGET_STATES.index(item["state"]), -item["percent"]))
    return {
        "total": len(items),
        "spent": sum(1 for item in items if item["state"] == "spent"),
        "warning": sum(1 for item in items if item["state"] == "warning"),
        "items": items[:limit],
    }


def _budget_item(
    budget: Budget, state: BudgetState, names: dict[tuple[str, str], str]
) -> dict[str, Any]:
    return {
        "id": budget.pk,
        "scope_type": state.scope_type,
        "scope_id": state.scope_id,
        "scope_name": scope_name(state.scope_type, state.scope_id, names),
        "metric": state.metric,
        "window_seconds": state.window_seconds,
        "limit": state.limit,
        "spent": state.spent,
        "percent": state.spent * 100 // state.limit,
        "warn_percent": state.warn_percent,
        "state": budget_state(state),
        "note": budget.note,
    }


def scope_name(scope_type: str, scope_id: str, names: dict[tuple[str, str], str]) -> str:
    """A budget's scope in words: ``everything``, or the record's name (its id when the
    record is gone)."""
    if scope_type == UsageScope.ALL:
        return "everything"
    return names.get((scope_type, scope_id)) or f"{scope_id} (deleted)"


# --- the queue -------------------------------------------------------------------------


def _queue_section(
    states: list[BudgetState],
    candidates: list[str],
    spent_initiatives: set[str],
    names: dict[str, str | None],
    limit: int,
) -> dict[str, Any]:
    ready = tasks.count_ready()
    max_live = run_limits.max_live_by_scope(initiative_ids=candidates)
    live = runs.live_counts(initiative_ids=candidates)
    ready_by_initiative = (
        tasks.find_ready_per_initiative(candidates, limit=1)[0] if candidates and ready else {}
    )
    overall_max = max_live.get((LimitScope.ALL, ""))
    overall_full = overall_max is not None and live.overall >= overall_max
    everything_spent = any(s.spent_out and s.scope_type == UsageScope.ALL for s in states)

    rows: list[dict[str, Any]] = []
    for id in candidates:
        initiative_max = max_live.get((LimitScope.INITIATIVE, id))
        at_limit = initiative_max is not None and live.by_initiative[id] >= initiative_max
        rows.append(
            {
                "id": id,
                "name": names.get(id),
                "ready": ready_by_initiative.get(id, 0),
                "live": live.by_initiative[id],
                "max_live": initiative_max,
                "at_limit": at_limit,
                "budget_spent": id in spent_initiatives,
            }
        )
    held = [row for row in rows if row["at_limit"] or row["budget_spent"]]
    held_back = ready if overall_full or everything_spent else sum(r["ready"] for r in held)
    # The initiatives that hold tasks back first, then those with the most ready.
    rows.sort(
        key=lambda r: (not (r["at_limit"] or r["budget_spent"]), -r["ready"], r["name"] or "")
    )
    return {
        "ready": ready,
        "held_back": held_back,
        "overall": {"live": live.overall, "max_live": overall_max, "full": overall_full},
        "everything_spent": everything_spent,
        "other_budgets_spent": sum(
            1 for s in states if s.spent_out and s.scope_type in (UsageScope.PHASE, UsageScope.TASK)
        ),
        "initiatives": {"total": len(rows), "items": rows[:limit]},
    }


# --- items -----------------------------------------------------------------------------


def _run_item(run: Run, now: datetime) -> dict[str, Any]:
    task = run.task
    initiative = task.initiative
    deadline = run.heartbeat_at + timedelta(seconds=run.heartbeat_timeout_seconds)
    return {
        "id": run.pk,
        "attempt": run.attempt,
        "outcome": run.outcome,
        "task_id": task.pk,
        "task_name": task.name,
        "initiative_id": initiative.pk if initiative is not None else None,
        "initiative_name": initiative.name if initiative is not None else None,
        "agent_id": run.agent_id,
        "agent_name": run.agent.name if run.agent is not None else None,
        "account_id": run.account_id,
        "account_email": run.account.email if run.account is not None else None,
        "runner": f"{run.runner_name}@{run.runner_host}",
        "pid": run.pid,
        "started_at": _iso(run.started_at),
        "heartbeat_at": _iso(run.heartbeat_at),
        "heartbeat_deadline": _iso(deadline),
        "overdue": run.is_live and deadline < now,
        "ended_at": _iso(run.ended_at),
        "exit_code": run.exit_code,
        "error": shorten(run.error, ERROR_LENGTH) if run.error else None,
        "tokens": run.input_tokens
        + run.output_tokens
        + run.cache_read_tokens
        + run.cache_write_tokens,
        "cost_micros": run.cost_micros,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- in words (for both screens) -------------------------------------------------------


def window_words(seconds: int | None) -> str:
    """A budget's window: ``all time``, or ``over 5 hours`` (the largest unit that
    divides it exactly)."""
    if seconds is None:
        return "all time"
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"over {count} {unit}{'s' if count != 1 else ''}"
    return f"over {seconds} seconds"


def dollars(micros: int) -> str:
    """Micro-dollars as ``$1,234.56``; an amount under a cent but not nothing is
    ``<$0.01``."""
    if 0 < micros < 10_000:
        return "<$0.01"
    return f"${micros / 1_000_000:,.2f}"


def amount(metric: str, value: int) -> str:
    """``1,500 tokens`` or ``$0.25``."""
    return dollars(value) if metric == BudgetMetric.COST else f"{value:,} tokens"


def spent_of_limit(item: Mapping[str, Any]) -> str:
    """A budget item's spending against its limit: ``900 of 1,000 tokens (90%)``."""
    if item["metric"] == BudgetMetric.COST:
        figures = f"{dollars(item['spent'])} of {dollars(item['limit'])}"
    else:
        figures = f"{item['spent']:,} of {item['limit']:,} tokens"
    return f"{figures} ({item['percent']}%)"
