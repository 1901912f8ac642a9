"""What people may do to the caps on runs (issue 21): set, raise, lower or lift a budget
(``budget_*``) and set, change or lift a limit on live runs (``run_limit_*``).

These are people's gates: each refuses anyone but a person (403 ``person_required``),
validates through the repositories (a scope naming no record, a limit below zero, a
window that is not whole 10-minute buckets: 400 with the repository's code, nothing
written), and records its event (``budget.created`` … ``run_limit.deleted``) with its
actor in the same transaction. A change applies from the next take-next or heartbeat.
"""

from typing import Any

from django.db import transaction
from typing_extensions import Unpack

from agents.models import Budget, RunLimit
from agents.repositories import (
    BudgetChanges,
    BudgetFields,
    BudgetRepository,
    RunLimitRepository,
)
from core.actors import Actor, require_person
from core.events import event_record

budgets = BudgetRepository()
limits = RunLimitRepository()


def _scope(record: Budget | RunLimit) -> dict[str, Any]:
    return {"scope_type": record.scope_type, "scope_id": record.scope_id}


@transaction.atomic
def budget_create(*, actor: Actor | None, **fields: Unpack[BudgetFields]) -> Budget:
    """A person caps a scope's spending; records ``budget.created``."""
    require_person(actor, "set a budget")
    budget = budgets.create(**fields)
    event_record(
        "budget.created",
        subject_type="budget",
        subject_id=budget.pk,
        data={**_scope(budget), "metric": budget.metric, "limit": budget.limit},
    )
    return budget


@transaction.atomic
def budget_update(
    *, budget_id: str, actor: Actor | None, **changes: Unpack[BudgetChanges]
) -> Budget:
    """A person raises, lowers or switches off a budget, or changes its window, threshold
    or note (its scope and metric are fixed); records ``budget.updated`` with the fields
    whose values changed."""
    require_person(actor, "change a budget")
    before = budgets.get_for_update(budget_id)
    changed = sorted(name for name, value in changes.items() if getattr(before, name) != value)
    budget = budgets.update(before, **changes)
    event_record(
        "budget.updated", subject_type="budget", subject_id=budget.pk, data={"fields": changed}
    )
    return budget


@transaction.atomic
def budget_delete(*, budget_id: str, actor: Actor | None) -> None:
    """A person lifts a budget; records ``budget.deleted`` with what it capped."""
    require_person(actor, "lift a budget")
    budget = budgets.get_for_update(budget_id)
    budgets.delete(budget.pk)
    event_record(
        "budget.deleted",
        subject_type="budget",
        subject_id=budget.pk,
        data={**_scope(budget), "metric": budget.metric, "limit": budget.limit},
    )


@transaction.atomic
def run_limit_create(
    *, actor: Actor | None, scope_type: str, max_live: int, scope_id: str = ""
) -> RunLimit:
    """A person caps the live runs of a scope (one limit per scope, ``run_limit_taken``);
    records ``run_limit.created``."""
    require_person(actor, "set a limit")
    limit = limits.create(scope_type=scope_type, scope_id=scope_id, max_live=max_live)
    event_record(
        "run_limit.created",
        subject_type="run_limit",
        subject_id=limit.pk,
        data={**_scope(limit), "max_live": limit.max_live},
    )
    return limit


@transaction.atomic
def run_limit_update(*, run_limit_id: str, actor: Actor | None, max_live: int) -> RunLimit:
    """A person changes the most live runs of a limit's scope (runs already live are
    not stopped; no new one starts over it); records ``run_limit.updated``."""
    require_person(actor, "change a limit")
    before = limits.get_for_update(run_limit_id)
    was = before.max_live
    limit = limits.update(before, max_live=max_live)
    event_record(
        "run_limit.updated",
        subject_type="run_limit",
        subject_id=limit.pk,
        data={"from": was, "to": limit.max_live},
    )
    return limit


@transaction.atomic
def run_limit_delete(*, run_limit_id: str, actor: Actor | None) -> None:
    """A person lifts a limit; records ``run_limit.deleted`` with what it capped."""
    require_person(actor, "lift a limit")
    limit = limits.get_for_update(run_limit_id)
    limits.delete(limit.pk)
    event_record(
        "run_limit.deleted",
        subject_type="run_limit",
        subject_id=limit.pk,
        data={**_scope(limit), "max_live": limit.max_live},
    )
