"""What may happen to planning records: the task, phase and initiative lifecycles.

Every public ``<entity>_<action>`` function here is one transaction, takes keyword-only
arguments, records its events (``task.started``, ``phase.status_changed`` with ``from``
and ``to``, …) in the same transaction, after its writes, and raises a
``core.errors.DomainError`` with a stable code when a transition is not allowed. The
admin, the API and the management commands all call these; none of them changes a
status on its own. (``lock_task_with_parents``, ``lock_phase_with_initiative``,
``task_return_to_queue`` and ``phase_reopen_for_changes`` are building blocks for other
apps' services and run inside their caller's transaction.)

Task-level approval does not exist: tasks complete directly, and what happens when a
phase's last task completes is decided by the initiative's ``execution_mode``. Approving
a plan, a phase review or an initiative, and starting or completing a checkpoint, are
people's gates (``core.actors.require_person``).

Concurrency: a transition locks the rows it reads before deciding (initiative, then
phase, then task: always in that order, so two transitions cannot deadlock). On
PostgreSQL these are row locks; SQLite's immediate transactions serialize writers.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from core.actors import Actor, require_person
from core.errors import TransitionNotAllowed
from core.events import event_record
from core.models import (
    ExecutionMode,
    Initiative,
    InitiativeStatus,
    Phase,
    PhaseStatus,
    Task,
    TaskStatus,
)
from core.repositories import (
    InitiativeRepository,
    PhaseRepository,
    TaskRepository,
    topological_order,
)
from core.services.feed import INITIATIVES, apply_update
from core.signals import task_completed

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()


def _record_task(kind: str, task: Task, **data: Any) -> None:
    event_record(
        kind, subject_type="task", subject_id=task.pk, initiative_id=task.initiative_id, data=data
    )


def _record_phase_status(phase: Phase, before: str) -> None:
    event_record(
        "phase.status_changed",
        subject_type="phase",
        subject_id=phase.pk,
        initiative_id=phase.initiative_id,
        data={"from": before, "to": phase.status},
    )


def _set_phase_status(phase: Phase, status: str) -> None:
    """Move a locked phase to ``status`` and record ``phase.status_changed``."""
    before = phase.status
    phases.set_status(phase, status)
    _record_phase_status(phase, before)


def _set_initiative_status(initiative: Initiative, status: str) -> None:
    """Move a locked initiative to ``status`` and record ``initiative.status_changed``."""
    before = initiative.status
    initiatives.set_status(initiative, status)
    event_record(
        "initiative.status_changed",
        subject_type="initiative",
        subject_id=initiative.pk,
        initiative_id=initiative.pk,
        data={"from": before, "to": initiative.status},
    )


def _refuse(kind: str, record: Any, action: str, allowed: Sequence[str]) -> TransitionNotAllowed:
    return TransitionNotAllowed(
        f"Cannot {action} {kind} '{record}': it is {record.status}; "
        f"only a {kind} that is {' or '.join(allowed)} can be.",
        details={"id": record.pk, "status": record.status, "allowed_from": allowed},
    )


def lock_task_with_parents(task_id: str) -> tuple[Task, Phase | None, Initiative | None]:
    """Lock a task's initiative, phase and the task itself, in that order.

    The parents are read before they are locked; should the task have moved to another
    phase in between, the locks are taken again for where it is now.
    """
    task = tasks.get(task_id)
    while True:
        initiative = initiatives.get_for_update(task.initiative_id) if task.initiative_id else None
        phase = phases.get_for_update(task.phase_id) if task.phase_id else None
        locked = tasks.get_for_update(task_id)
        if (locked.phase_id, locked.initiative_id) == (task.phase_id, task.initiative_id):
            return locked, phase, initiative
        task = locked


def lock_phase_with_initiative(phase_id: str) -> tuple[Phase, Initiative]:
    """Lock a phase's initiative then the phase (the order every transition uses)."""
    initiative = initiatives.get_for_update(phases.initiative_id_of(phase_id))
    return phases.get_for_update(phase_id), initiative


# --- tasks -----------------------------------------------------------------------------


def task_is_ready(*, task: Task) -> bool:
    return tasks.is_ready(task)


@transaction.atomic
def task_start(*, task_id: str, actor: Actor | None = None) -> Task:
    """Start a ready task; its phase moves to in_progress if approved. An ``auto`` task
    is started by anyone (an agent, as a rule); a ``checkpoint:*`` task only by a person
    (``actor``), like its completion: 403 ``person_required`` otherwise."""
    task, phase, _initiative = lock_task_with_parents(task_id)
    if task.is_checkpoint:
        require_person(actor, f"start the checkpoint '{task}'")
    if task.status != TaskStatus.PENDING:
        raise _refuse("task", task, "start", [TaskStatus.PENDING])
    _require_ready(task)
    if phase is not None and phase.status == PhaseStatus.APPROVED:
        _set_phase_status(phase, PhaseStatus.IN_PROGRESS)
    tasks.set_status(task, TaskStatus.IN_PROGRESS)
    _record_task("task.started", task)
    return task


def _status_words(record: Task | Phase | Initiative) -> str:
    return record.get_status_display().lower()


def task_waiting_for(*, task: Task) -> list[str]:
    """What keeps ``task`` out of the ready queue, in words, one reason a line: each
    task it depends on that is not completed (with its status), its phase when its plan
    is not approved or it is not in progress, each phase that phase depends on that is
    not completed, and its initiative when archived. Empty when nothing does (a
    constant number of queries, whatever the plan's size)."""
    reasons: list[str] = []
    open_tasks = [t for t in tasks.get_dependencies(task.pk) if t.status != TaskStatus.COMPLETED]
    if open_tasks:
        names = ", ".join(f"'{t}' ({_status_words(t)})" for t in open_tasks)
        reasons.append(f"it waits for the task{'s' if len(open_tasks) > 1 else ''} {names}")
    phase = phases.find_by_id(task.phase_id) if task.phase_id else None
    if phase is not None:
        if phase.status == PhaseStatus.PENDING:
            reasons.append(f"the plan of its phase '{phase}' is not approved yet")
        elif phase.status not in (PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS):
            reasons.append(f"its phase '{phase}' is {_status_words(phase)}")
        open_phases = [
            p for p in phases.get_dependencies(phase.pk) if p.status != PhaseStatus.COMPLETED
        ]
        if open_phases:
            names = ", ".join(f"'{p}' ({_status_words(p)})" for p in open_phases)
            reasons.append(
                f"its phase '{phase}' waits for the phase{'s' if len(open_phases) > 1 else ''} "
                f"{names}"
            )
    initiative = initiatives.find_by_id(task.initiative_id) if task.initiative_id else None
    if initiative is not None and initiative.status == InitiativeStatus.ARCHIVED:
        reasons.append(f"its initiative '{initiative}' is archived")
    return reasons


def task_not_ready_reason(*, task: Task) -> str | None:
    """Why ``task`` cannot be started (or a checkpoint completed) now because it is not
    ready, in the words ``task_start`` refuses with; None when it is ready."""
    if task_is_ready(task=task):
        return None
    reasons = task_waiting_for(task=task)
    if not reasons:
        return f"Task '{task}' is not ready."
    return f"Task '{task}' is not ready: {'; '.join(reasons)}."


def _require_ready(task: Task) -> None:
    reason = task_not_ready_reason(task=task)
    if reason is not None:
        raise TransitionNotAllowed(reason, code="task_not_ready", details={"id": task.pk})


@transaction.atomic
def task_complete(*, task_id: str, summary: str | None = None, actor: Actor | None = None) -> Task:
    """Complete a task; when it is its phase's last, run the phase completion flow.

    An ``auto`` task must be in progress. A ``checkpoint:*`` task is completed only by
    a person (``actor``), once it is ready, from pending or in progress.
    """
    task, phase, initiative = lock_task_with_parents(task_id)
    if task.is_checkpoint:
        require_person(actor, f"complete the checkpoint '{task}'")
        allowed = [TaskStatus.PENDING, TaskStatus.IN_PROGRESS]
        if task.status not in allowed:
            raise _refuse("task", task, "complete", allowed)
        if task.status == TaskStatus.PENDING:
            _require_ready(task)
    elif task.status != TaskStatus.IN_PROGRESS:
        raise _refuse("task", task, "complete", [TaskStatus.IN_PROGRESS])
    tasks.set_status(task, TaskStatus.COMPLETED, summary=summary)
    _record_task("task.completed", task, summary=task.summary)
    task_completed.send(sender=Task, task=task)
    if phase is not None and phase.status == PhaseStatus.APPROVED:
        _set_phase_status(phase, PhaseStatus.IN_PROGRESS)
    if phase is not None:
        _finish_phase_if_done(phase, initiative)
    return task


@transaction.atomic
def task_block(*, task_id: str) -> Task:
    """Block a pending or in-progress task; unblocking returns it to that status."""
    task, _phase, _initiative = lock_task_with_parents(task_id)
    before = task.status
    _block(task, tasks, "task", [TaskStatus.PENDING, TaskStatus.IN_PROGRESS])
    _record_task("task.blocked", task, **{"from": before})
    return task


@transaction.atomic
def task_unblock(*, task_id: str) -> Task:
    """Return a blocked task to the status it was blocked from."""
    task, _phase, _initiative = lock_task_with_parents(task_id)
    _unblock(task, tasks, "task")
    _record_task("task.unblocked", task, to=task.status)
    return task


@transaction.atomic
def task_return(
    *, task_id: str, outcome: str, failures: list[dict[str, Any]] | None = None
) -> Task:
    """Return an in-progress task whose run ended without success (``outcome``): to
    ``pending``, the ready queue's, when ``failures`` is None; else to ``blocked`` with
    ``failures`` (its failed attempts, for a person) on its ``task.blocked`` event.

    A task blocked this way unblocks to ``pending``: nothing runs it any more. Records
    ``task.requeued`` (``from``, ``outcome``) or ``task.blocked`` (``from``, ``reason``,
    ``failures``). Only the run services call this, after ending the task's live run.
    """
    task, _phase, _initiative = lock_task_with_parents(task_id)
    if task.status != TaskStatus.IN_PROGRESS:
        raise _refuse("task", task, "return to the queue", [TaskStatus.IN_PROGRESS])
    if failures is None:
        tasks.set_status(task, TaskStatus.PENDING)
        _record_task("task.requeued", task, outcome=outcome, **{"from": TaskStatus.IN_PROGRESS})
    else:
        tasks.set_status(task, TaskStatus.BLOCKED, blocked_from_status=TaskStatus.PENDING)
        _record_task(
            "task.blocked",
            task,
            reason="attempts_spent",
            failures=failures,
            **{"from": TaskStatus.IN_PROGRESS},
        )
    return task


#: Where a person's requeue takes a task from: blocked (its attempts spent, or by a
#: person), or in progress with nothing running it (its run's agent never reported back).
REQUEUE_FROM = (TaskStatus.BLOCKED, TaskStatus.IN_PROGRESS)


def task_return_to_queue(*, task: Task, attempts_reset: int) -> Task:
    """Send a locked task a person requeues back to the ready queue (``pending``), from
    ``REQUEUE_FROM`` (else ``transition_not_allowed`` with ``allowed_from``); records
    ``task.requeued`` (``from``, ``attempts_reset``: the failed runs that no longer count).

    A building block of the agents app's ``task_requeue``, which holds the task's lock
    (``lock_task_with_parents``) in its transaction, has checked that no run is live
    (core knows no runs) and set the failed ones aside.
    """
    if task.status not in REQUEUE_FROM:
        raise _refuse("task", task, "requeue", list(REQUEUE_FROM))
    before = task.status
    tasks.set_status(task, TaskStatus.PENDING)
    _record_task("task.requeued", task, attempts_reset=attempts_reset, **{"from": before})
    return task


def _block(
    record: Task | Phase,
    repository: TaskRepository | PhaseRepository,
    kind: str,
    allowed: list[str],
) -> None:
    """Block a locked task or phase, remembering where it was (one rule for both)."""
    if record.status not in allowed:
        raise _refuse(kind, record, "block", allowed)
    repository.set_status(record, "blocked", blocked_from_status=record.status)  # type: ignore[arg-type]


def _unblock(record: Task | Phase, repository: TaskRepository | PhaseRepository, kind: str) -> None:
    """Return a locked, blocked task or phase to exactly the status it was blocked from."""
    if record.status != "blocked":
        raise _refuse(kind, record, "unblock", ["blocked"])
    repository.set_status(record, record.blocked_from_status or "pending")  # type: ignore[arg-type]


def _open_children_refusal(
    record: Phase | Initiative, kind: str, children: str, open_count: int
) -> TransitionNotAllowed | None:
    if not open_count:
        return None
    return TransitionNotAllowed(
        f"{kind.capitalize()} '{record}' still has {open_count} {children[:-1]}(s) that "
        "are not completed.",
        code=f"{kind}_{children}_incomplete",
        details={"id": record.pk, f"open_{children}": open_count},
    )


def _refuse_open_children(
    record: Phase | Initiative, kind: str, children: str, open_count: int
) -> None:
    """Refuse to finish ``record`` while ``open_count`` of its ``children`` are not
    completed (``phase_tasks_incomplete``, ``initiative_phases_incomplete``)."""
    refusal = _open_children_refusal(record, kind, children, open_count)
    if refusal is not None:
        raise refusal


@dataclass(frozen=True)
class TaskContextEntry:
    task_id: str
    name: str
    summary: str | None


def task_context(*, task_id: str) -> list[TaskContextEntry]:
    """Summaries of every task ``task_id`` depends on, directly or not, in dependency order.

    Computed on read (never copied), in three queries whatever the graph's size.
    """
    task = tasks.get(task_id)
    edges = tasks.dependency_edges(task.initiative_id)
    graph: dict[str, list[str]] = {}
    for node, depends_on in edges:
        graph.setdefault(node, []).append(depends_on)
    ancestors: set[str] = set()
    stack = list(graph.get(task.pk, []))
    while stack:
        node = stack.pop()
        if node not in ancestors:
            ancestors.add(node)
            stack.extend(graph.get(node, []))
    rows = {t.pk: t for t in tasks.find_by_ids(list(ancestors))}
    ordered = topological_order(rows, edges)
    return [TaskContextEntry(pk, rows[pk].name, rows[pk].summary) for pk in ordered]


def task_list_ready(
    *, initiative_id: str | None = None, limit: int | None = None, max_bytes: int | None = None
) -> list[Task]:
    """The ``auto`` tasks an agent may take now, highest priority then oldest first (at
    most ``limit``, and ``max_bytes`` of their texts: see ``TaskRepository.find_ready``)."""
    return tasks.find_ready(initiative_id=initiative_id, limit=limit, max_bytes=max_bytes)


def task_list_waiting_checkpoints(
    *, initiative_id: str | None = None, limit: int | None = None
) -> list[Task]:
    """The checkpoint tasks that are ready and wait for a person."""
    return tasks.find_ready(initiative_id=initiative_id, checkpoints=True, limit=limit)


# --- phases ----------------------------------------------------------------------------


@transaction.atomic
def phase_approve_plan(*, phase_id: str, actor: Actor | None = None) -> Phase:
    """A person approves a pending phase's plan; its tasks may then start."""
    require_person(actor, "approve a phase's plan")
    phase, _initiative = lock_phase_with_initiative(phase_id)
    if phase.status != PhaseStatus.PENDING:
        raise _refuse("phase", phase, "approve the plan of", [PhaseStatus.PENDING])
    _set_phase_status(phase, PhaseStatus.APPROVED)
    return phase


def _dependencies_refusal(phase: Phase, action: str) -> TransitionNotAllowed | None:
    waiting_for = [
        p for p in phases.get_dependencies(phase.pk) if p.status != PhaseStatus.COMPLETED
    ]
    if not waiting_for:
        return None
    names = ", ".join(f"'{p}'" for p in waiting_for)
    return TransitionNotAllowed(
        f"Phase '{phase}' cannot {action} before {names} completed.",
        code="phase_dependencies_incomplete",
        details={"id": phase.pk, "waiting_for": [p.pk for p in waiting_for]},
    )


def _require_dependencies_completed(phase: Phase, action: str) -> None:
    refusal = _dependencies_refusal(phase, action)
    if refusal is not None:
        raise refusal


def phase_refusal(*, phase: Phase, action: str) -> str | None:
    """Why ``phase_<action>`` (``start``, ``complete`` or ``approve``) would refuse
    ``phase`` now for a reason other than its status (phases it depends on not
    completed, tasks of its own not completed), in the service's words; else None."""
    refusals: list[TransitionNotAllowed | None] = []
    if action in ("complete", "approve"):
        refusals.append(_open_children_refusal(phase, "phase", "tasks", tasks.count_open(phase.pk)))
    if action in ("start", "complete"):
        refusals.append(_dependencies_refusal(phase, action))
    return next((refusal.message for refusal in refusals if refusal is not None), None)


@transaction.atomic
def phase_start(*, phase_id: str) -> Phase:
    """Move an approved phase to in progress; refused while a phase it depends on is open."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    if phase.status != PhaseStatus.APPROVED:
        raise _refuse("phase", phase, "start", [PhaseStatus.APPROVED])
    _require_dependencies_completed(phase, "start")
    _set_phase_status(phase, PhaseStatus.IN_PROGRESS)
    return phase


@transaction.atomic
def phase_block(*, phase_id: str) -> Phase:
    """Block any phase that is not completed; unblocking returns it to where it was."""
    phase, _initiative = lock_phase_with_initiative(phase_id)
    allowed = [s for s in PhaseStatus.values if s not in ("completed", "blocked")]
    before = phase.status
    _block(phase, phases, "phase", allowed)
    _record_phase_status(phase, before)
    return phase


@transaction.atomic
def phase_unblock(*, phase_id: str) -> Phase:
    """Return a blocked phase to where it was; finish it if its tasks all completed."""
    phase, initiative = lock_phase_with_initiative(phase_id)
    before = phase.status
    _unblock(phase, phases, "phase")
    _record_phase_status(phase, before)
    # Tasks already under way may have finished while the phase was blocked.
    _finish_phase_if_done(phase, initiative)
    return phase


@transaction.atomic
def phase_complete(*, phase_id: str) -> Phase:
    """Run the completion flow for an approved or in-progress phase whose tasks are all
    completed.

    Completing a phase's last task does this on its own; this is for a phase that was
    started with no tasks, or whose remaining tasks were deleted.
    """
    phase, initiative = lock_phase_with_initiative(phase_id)
    if phase.status not in (PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS):
        raise _refuse("phase", phase, "complete", [PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS])
    _require_no_open_tasks(phase)
    _require_dependencies_completed(phase, "complete")
    _finish_phase(phase, initiative)
    return phase


def _require_no_open_tasks(phase: Phase) -> None:
    _refuse_open_children(phase, "phase", "tasks", tasks.count_open(phase.pk))


@transaction.atomic
def phase_approve(*, phase_id: str, actor: Actor | None = None) -> Phase:
    """A person approves a phase waiting for review: it becomes completed."""
    require_person(actor, "approve a phase's review")
    phase, initiative = lock_phase_with_initiative(phase_id)
    if phase.status != PhaseStatus.PENDING_REVIEW:
        raise _refuse("phase", phase, "approve", [PhaseStatus.PENDING_REVIEW])
    _require_no_open_tasks(phase)
    _set_phase_status(phase, PhaseStatus.COMPLETED)
    _finish_initiative_if_done(initiative)
    return phase


def phase_reopen_for_changes(*, phase: Phase) -> Phase:
    """Put a phase in review back in progress (the reviews app adds the review task).

    The caller holds the phase's lock inside its own transaction.
    """
    if phase.status != PhaseStatus.PENDING_REVIEW:
        raise _refuse("phase", phase, "request changes on", [PhaseStatus.PENDING_REVIEW])
    _set_phase_status(phase, PhaseStatus.IN_PROGRESS)
    return phase


def _finish_phase_if_done(phase: Phase, initiative: Initiative | None) -> None:
    """Finish an in-progress phase once it has tasks and all of them are completed."""
    if phase.status != PhaseStatus.IN_PROGRESS:
        return
    total, open_tasks = tasks.count_in_phase(phase.pk)
    if total and not open_tasks:
        _finish_phase(phase, initiative)


def _finish_phase(phase: Phase, initiative: Initiative | None) -> None:
    initiative = initiative or initiatives.get(phase.initiative_id)
    if initiative.execution_mode == ExecutionMode.YOLO:
        _set_phase_status(phase, PhaseStatus.COMPLETED)
        _finish_initiative_if_done(initiative)
    else:
        _set_phase_status(phase, PhaseStatus.PENDING_REVIEW)


def _finish_initiative_if_done(initiative: Initiative) -> None:
    if initiative.status != InitiativeStatus.ACTIVE:
        return
    if phases.count_open(initiative.pk):
        return
    if initiative.execution_mode == ExecutionMode.YOLO:
        _set_initiative_status(initiative, InitiativeStatus.COMPLETED)
    else:
        _set_initiative_status(initiative, InitiativeStatus.PENDING_REVIEW)


# --- initiatives -----------------------------------------------------------------------


@transaction.atomic
def initiative_approve(*, initiative_id: str, actor: Actor | None = None) -> Initiative:
    """A person approves an initiative whose phases are all completed and reviewed."""
    require_person(actor, "approve an initiative")
    initiative = initiatives.get_for_update(initiative_id)
    if initiative.status != InitiativeStatus.PENDING_REVIEW:
        raise _refuse("initiative", initiative, "approve", [InitiativeStatus.PENDING_REVIEW])
    _refuse_open_children(initiative, "initiative", "phases", phases.count_open(initiative.pk))
    _set_initiative_status(initiative, InitiativeStatus.COMPLETED)
    return initiative


def initiative_approve_refusal(*, initiative: Initiative) -> str | None:
    """Why ``initiative_approve`` would refuse ``initiative`` now for a reason other than
    its status (phases not completed), in the service's words; else None."""
    refusal = _open_children_refusal(
        initiative, "initiative", "phases", phases.count_open(initiative.pk)
    )
    return None if refusal is None else refusal.message


@transaction.atomic
def initiative_archive(*, initiative_id: str) -> Initiative:
    """Archive an initiative in any other status (its tasks are never ready again)."""
    initiative = initiatives.get_for_update(initiative_id)
    if initiative.status == InitiativeStatus.ARCHIVED:
        raise _refuse(
            "initiative", initiative, "archive", ["active", "pending_review", "completed"]
        )
    _set_initiative_status(initiative, InitiativeStatus.ARCHIVED)
    return initiative


@transaction.atomic
def initiative_set_execution_mode(*, initiative_id: str, execution_mode: str) -> Initiative:
    """Switch how the initiative's finished phases are handled (``yolo`` or
    ``review_per_phase``); an unknown mode is ``invalid_execution_mode``. Records
    ``initiative.execution_mode_changed`` (nothing when the mode was already so)."""
    return apply_update(
        INITIATIVES,
        initiatives,
        initiatives.get_for_update(initiative_id),
        {"execution_mode": execution_mode},
    )
