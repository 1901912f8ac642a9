"""Proposals: an agent proposes a new or changed page, phase or task; a person accepts
(applying it to its target) or dismisses it.

Accepting records a change set holding every record it created or changed, with the
values before (``change_sets``), so that ``change_set_revert`` can put the database back
exactly; the feed gets an event for each of those records (``change_set_events``: a
``task.created``, a ``dependency.added``, …), ending with ``proposal.accepted``.

Every flow takes its locks in one order: initiative, then proposal, then the
records it applies to (as ``core.services`` does), so an accept and a lifecycle
transition on the same records wait for each other instead of deadlocking.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from typing_extensions import Unpack

from agents.repositories import AgentRepository
from core.actors import Actor, require_person
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.events import event_record
from core.models import (
    Initiative,
    InitiativeStatus,
    Page,
    Phase,
    PhaseStatus,
    Task,
    TaskCategory,
    TaskPriority,
    TaskType,
)
from core.repositories import (
    DependencyRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    TaskRepository,
    check_choice,
    require_text,
)
from core.services.feed import apply_update, record_all
from core.tiptap import markdown_to_tiptap_json
from reviews.models import ChangeSet, ChangeSetSource, Proposal, ProposalStatus, ProposalTargetType
from reviews.repositories import (
    TARGET_REPOSITORIES,
    ChangeSetRepository,
    ProposalChanges,
    ProposalRepository,
)
from reviews.services.change_sets import PROPOSALS, ChangeRecorder, change_set_events, snapshot

proposals = ProposalRepository()
change_sets = ChangeSetRepository()
pages = PageRepository()
phases = PhaseRepository()
tasks = TaskRepository()
agents = AgentRepository()
initiatives = InitiativeRepository()


# --- proposing -------------------------------------------------------------------------


@transaction.atomic
def proposal_create(
    *,
    agent_id: str,
    initiative_id: str,
    target_type: str,
    title: str,
    target_id: str | None = None,
    summary: str | None = None,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
    sort_order: int = 0,
) -> Proposal:
    """An agent proposes a new (``target_id`` None) or changed page, phase or task.

    The target and the shape of ``metadata`` are checked now, so an agent learns at
    once what is wrong; what the metadata names (a phase, dependencies) is checked
    again when a person accepts, since it may change in between.
    """
    check_choice(ProposalTargetType, target_type, "target_type")
    agents.require(agent_id)
    initiatives.require(initiative_id)
    title = require_text(title, "title").strip()
    _Metadata(metadata, target_type=target_type, title=title).check_shape()
    proposal = proposals.create(
        agent_id=agent_id,
        initiative_id=initiative_id,
        target_type=target_type,
        target_id=target_id,
        title=title,
        summary=summary,
        content=content,
        metadata=metadata,
        sort_order=sort_order,
    )
    record_all(PROPOSALS.created(snapshot(proposal)))
    return proposal


@transaction.atomic
def proposal_update(*, proposal_id: str, **changes: Unpack[ProposalChanges]) -> Proposal:
    """A person edits a pending proposal's title, summary, content, metadata or sort
    order, with the checks of ``proposal_create``; an accepted or dismissed proposal is
    history (Conflict ``proposal_not_pending``). Records ``proposal.updated`` with the
    fields that changed (nothing when none did)."""
    proposal = _lock_pending(proposal_id)
    if "title" in changes:
        changes["title"] = require_text(changes["title"], "title").strip()
    if "metadata" in changes:
        _Metadata(
            changes["metadata"], target_type=proposal.target_type, title=proposal.title
        ).check_shape()
    return apply_update(PROPOSALS, proposals, proposal, changes)


@transaction.atomic
def proposal_delete(*, proposal_id: str) -> None:
    """Delete a proposal, in any status (``proposal_not_found`` when there is none; a
    change set that accepted it stays, unlinked, and still reverts); records
    ``proposal.deleted``."""
    initiatives.lock_many([proposals.initiative_id_of(proposal_id)])
    proposal = proposals.get_for_update(proposal_id)
    events = PROPOSALS.deleted(snapshot(proposal))
    proposals.delete(proposal.pk)
    record_all(events)


# --- deciding --------------------------------------------------------------------------


@transaction.atomic
def proposal_accept(*, proposal_id: str, actor: Actor | None = None) -> ChangeSet:
    """A person applies a pending proposal to its target; returns the change set that
    records it.

    Pages and phases get the markdown ``content`` as a Tiptap document; tasks keep it as
    their description. ``metadata`` supplies what the target needs (a task's phase,
    category, type, priority, order and dependencies; a page's parent; a phase's
    dependencies). A proposal that is not pending, or whose target is gone, is refused
    and nothing is written; so is any ``actor`` but a person (403 ``person_required``).
    """
    require_person(actor, "accept a proposal")
    return _accept(_lock_pending(proposal_id))


@transaction.atomic
def proposal_dismiss(*, proposal_id: str, actor: Actor | None = None) -> Proposal:
    """A person marks a pending proposal dismissed (exactly once); nothing else changes.
    Any ``actor`` but a person is refused (403 ``person_required``)."""
    require_person(actor, "dismiss a proposal")
    proposal = proposals.dismiss(proposal_id)
    _record_dismissed(proposal)
    return proposal


@transaction.atomic
def proposal_accept_all(*, agent_id: str, actor: Actor | None = None) -> list[ChangeSet]:
    """A person accepts every pending proposal of an agent, in order, all or nothing.

    If one proposal is refused, none is applied, and the error names the proposal in
    ``details['proposal_id']``. Any ``actor`` but a person is refused (403
    ``person_required``).
    """
    require_person(actor, "accept proposals")
    applied = []
    for proposal in _lock_pending_of_agent(agent_id):
        try:
            applied.append(_accept(proposal))
        except DomainError as error:
            error.details = {**error.details, "proposal_id": proposal.pk}
            error.message = f"Proposal '{proposal.title}' could not be applied: {error.message}"
            error.args = (error.message,)
            raise
    return applied


@transaction.atomic
def proposal_dismiss_all(*, agent_id: str, actor: Actor | None = None) -> int:
    """A person dismisses every pending proposal of an agent in one statement; returns
    how many. Any ``actor`` but a person is refused (403 ``person_required``)."""
    require_person(actor, "dismiss proposals")
    pending = _lock_pending_of_agent(agent_id)
    dismissed = proposals.dismiss_pending_of_agent(agent_id)
    for proposal in pending:
        _record_dismissed(proposal)
    return dismissed


def _lock_pending(proposal_id: str) -> Proposal:
    """Lock the proposal's initiative, then the proposal, which must be pending."""
    initiatives.lock_many([proposals.initiative_id_of(proposal_id)])
    proposal = proposals.get_for_update(proposal_id)
    if proposal.status != ProposalStatus.PENDING:
        raise proposals.not_pending(proposal)
    return proposal


def _lock_pending_of_agent(agent_id: str) -> list[Proposal]:
    """Lock the initiatives of an agent's pending proposals, then those proposals (in
    the order they are applied)."""
    agents.require(agent_id)
    pending = proposals.find_by_agent_id_and_status(agent_id, ProposalStatus.PENDING)
    initiatives.lock_many({proposal.initiative_id for proposal in pending})
    return proposals.lock_pending_of_agent(agent_id)


def _accept(proposal: Proposal) -> ChangeSet:
    """Apply a pending proposal whose initiative and row the caller has locked."""
    recorder = ChangeRecorder()
    _apply(_plan(proposal, lock=True), recorder)
    before = snapshot(proposal)
    recorder.updated(proposals.accept(proposal), before)
    change_set = change_sets.create(
        initiative_id=proposal.initiative_id,
        source=ChangeSetSource.PROPOSAL,
        proposal_id=proposal.pk,
        description=f"Accepted {proposal.target_type} proposal '{proposal.title}'",
        entries=recorder.entries,
    )
    # One event per entry, in order; the proposal's own entry (last) is
    # ``proposal.accepted``.
    record_all(change_set_events(change_set.pk, recorder.entries))
    return change_set


def _record_dismissed(proposal: Proposal) -> None:
    event_record(
        "proposal.dismissed",
        subject_type="proposal",
        subject_id=proposal.pk,
        initiative_id=proposal.initiative_id,
    )


# --- metadata --------------------------------------------------------------------------


class _Metadata:
    """Typed reads of a proposal's ``metadata``, refusing values of the wrong shape
    (``invalid_metadata``, naming the key in ``details``)."""

    def __init__(
        self, values: Any, *, target_type: str, title: str, proposal_id: str | None = None
    ) -> None:
        self.target_type = target_type
        self.title = title
        self.proposal_id = proposal_id
        if values is not None and not isinstance(values, dict):
            raise self.invalid("metadata", "must be a JSON object")
        self.values: dict[str, Any] = values or {}

    @classmethod
    def of(cls, proposal: Proposal) -> "_Metadata":
        return cls(
            proposal.metadata,
            target_type=proposal.target_type,
            title=proposal.title,
            proposal_id=proposal.pk,
        )

    def invalid(self, key: str, problem: str) -> InvalidInput:
        where = "metadata" if key == "metadata" else f"metadata.{key}"
        return InvalidInput(
            f"Proposal '{self.title}': {where} {problem}.",
            code="invalid_metadata",
            details={"id": self.proposal_id, "key": key},
        )

    def check_shape(self) -> None:
        """Refuse values of the wrong type or outside their enum, without touching the
        database (what ids name is checked when the proposal is applied)."""
        if self.target_type == ProposalTargetType.TASK:
            self.choice("category", TaskCategory)
            self.choice("type", TaskType)
            self.choice("priority", TaskPriority)
            self.integer("order")
            self.text("phase_id")
            self.text("parent_task_id")
            self.ids("dependencies")
        elif self.target_type == ProposalTargetType.PAGE:
            self.text("parent_page_id")
            self.integer("sort_order")
        else:
            self.ids("dependencies")

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is not None and not isinstance(value, str):
            raise self.invalid(key, "must be a string")
        return value

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.invalid(key, "must be an integer")
        return value

    def choice(self, key: str, choices: type[models.TextChoices]) -> str | None:
        value = self.text(key)
        if value is not None and value not in choices.values:
            raise self.invalid(key, f"must be one of {', '.join(choices.values)}")
        return value

    def ids(self, key: str) -> list[str]:
        value = self.values.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.invalid(key, "must be a list of ids")
        return list(dict.fromkeys(value))


# --- planning and applying to the target -----------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field of the target an update changes: its current and its proposed value."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ProposalPlan:
    """What accepting a proposal does, worked out from the proposal, its metadata and
    the current records before anything is written.

    ``values`` are, for an update, the fields it sets on ``target`` (None: the record
    keeps its value); for a create (``target`` None), the values the record is created
    with (a page's ``parent_page_id`` None: under the initiative's root page, created
    with it when there is none yet). ``dependencies`` are the ids the new or changed
    phase or task comes to depend on (the ones it depends on already are kept).
    """

    proposal: Proposal
    target: Page | Phase | Task | None
    values: dict[str, Any]
    dependencies: list[str]

    @property
    def changes(self) -> list[FieldChange]:
        """For an update, each field whose value the accept would change."""
        if self.target is None:
            return []
        return [
            FieldChange(name, getattr(self.target, name), value)
            for name, value in self.values.items()
            if value is not None and not _same_value(name, getattr(self.target, name), value)
        ]


@dataclass(frozen=True)
class ProposalPreview:
    """What accepting a proposal would do now (``plan``), or the refusal the accept
    would give (``refusal``): exactly one of the two is set."""

    proposal: Proposal
    plan: ProposalPlan | None
    refusal: DomainError | None


def proposal_preview(*, proposal_id: str) -> ProposalPreview:
    """What accepting the proposal would do as things stand, worked out by the same
    rules as ``proposal_accept`` without writing or locking anything (NotFound when
    there is no such proposal). A refusal the accept would give now (not pending,
    target gone, metadata naming what is not there) is returned, not raised; one only
    the writes find (a dependency cycle) shows when accepting."""
    proposal = proposals.get(proposal_id)
    try:
        if proposal.status != ProposalStatus.PENDING:
            raise proposals.not_pending(proposal)
        return ProposalPreview(proposal, _plan(proposal, lock=False), None)
    except DomainError as error:
        return ProposalPreview(proposal, None, error)


def _plan(proposal: Proposal, *, lock: bool) -> ProposalPlan:
    """The proposal's plan; with ``lock``, its target is locked for the writes to come."""
    return _PLANNERS[proposal.target_type](proposal, _Metadata.of(proposal), lock)


def _apply(plan: ProposalPlan, recorder: ChangeRecorder) -> models.Model:
    """Write ``plan`` (planned under lock) and record each write in ``recorder``."""
    proposal = plan.proposal
    repository = TARGET_REPOSITORIES[proposal.target_type]
    record: models.Model
    if plan.target is not None:
        record = plan.target
        _apply_update(record, recorder, repository, **plan.values)
    else:
        values = dict(plan.values)
        if proposal.target_type == ProposalTargetType.PAGE and values["parent_page_id"] is None:
            initiative = initiatives.get(proposal.initiative_id)
            values["parent_page_id"] = _root_page(initiative, recorder).pk
        record = repository.create(**values)
        recorder.created(record)
    if isinstance(repository, DependencyRepository):
        _add_dependencies(repository, record, plan.dependencies, recorder)
    return record


def _target_of(proposal: Proposal, *, lock: bool) -> Any:
    """The proposal's target (locked with ``lock``); gone since proposing is a conflict,
    not a 404."""
    target_type, target_id = proposal.target_type, str(proposal.target_id)
    repository = TARGET_REPOSITORIES[target_type]
    try:
        target = repository.get_for_update(target_id) if lock else repository.get(target_id)
    except NotFound:
        raise Conflict(
            f"The {target_type} this proposal changes ('{target_id}') no longer exists.",
            code="proposal_target_deleted",
            details={"target_type": target_type, "target_id": target_id},
        ) from None
    proposals.check_target(target_type, target_id, proposal.initiative_id)
    return target


#: The fields holding a Tiptap document as JSON text, compared as documents.
_TIPTAP_FIELDS = frozenset({"content"})


def _same_value(field: str, current: Any, proposed: Any) -> bool:
    if current == proposed:
        return True
    if field in _TIPTAP_FIELDS and isinstance(current, str) and isinstance(proposed, str):
        try:
            return bool(json.loads(current) == json.loads(proposed))
        except ValueError:
            return False
    return False


def _apply_update(
    record: Any,
    recorder: ChangeRecorder,
    repository: PageRepository | PhaseRepository | TaskRepository,
    **fields: Any,
) -> None:
    """Set the fields the proposal gives (None: keep what the record has) and record it."""
    changes: dict[str, Any] = {name: value for name, value in fields.items() if value is not None}
    before = snapshot(record)
    repository.update(record, **changes)
    recorder.updated(record, before)


def _add_dependencies(
    repository: DependencyRepository[Any],
    record: models.Model,
    depends_on: list[str],
    recorder: ChangeRecorder,
) -> None:
    existing = set(repository.get_dependency_ids([record.pk])[record.pk])
    for depends_on_id in depends_on:
        if depends_on_id not in existing:
            recorder.created(repository.create_dependency(record.pk, depends_on_id))


def _tiptap_content(proposal: Proposal) -> str | None:
    """The proposal's markdown as a Tiptap document; None when it proposes no content
    (an update then keeps the content it has)."""
    if proposal.content is None:
        return None
    return markdown_to_tiptap_json(proposal.content)


def _root_page(initiative: Initiative, recorder: ChangeRecorder) -> Page:
    root = pages.find_root_page(initiative.pk)
    if root is not None:
        return root
    try:
        root = pages.create(initiative_id=initiative.pk, title=initiative.name)
    except Conflict:
        # Created meanwhile by someone else: theirs, not part of this change set.
        root = pages.find_root_page(initiative.pk)
        if root is None:
            raise
        return root
    recorder.created(root)
    return root


def _plan_page(proposal: Proposal, meta: _Metadata, lock: bool) -> ProposalPlan:
    values: dict[str, Any] = {"title": proposal.title, "content": _tiptap_content(proposal)}
    if proposal.target_id:
        return ProposalPlan(proposal, _target_of(proposal, lock=lock), values, [])
    parent_id = meta.text("parent_page_id")
    if parent_id is None:
        root = pages.find_root_page(proposal.initiative_id)
        parent_id = None if root is None else root.pk
    elif pages.find_in_initiative(parent_id, proposal.initiative_id) is None:
        raise meta.invalid("parent_page_id", "must name a page of this initiative")
    values = {
        "initiative_id": proposal.initiative_id,
        "parent_page_id": parent_id,
        **values,
        "sort_order": meta.integer("sort_order") or 0,
    }
    return ProposalPlan(proposal, None, values, [])


def _plan_phase(proposal: Proposal, meta: _Metadata, lock: bool) -> ProposalPlan:
    values: dict[str, Any] = {"name": proposal.title, "content": _tiptap_content(proposal)}
    depends_on = meta.ids("dependencies")
    if proposal.target_id:
        return ProposalPlan(proposal, _target_of(proposal, lock=lock), values, depends_on)
    _require_open_initiative(initiatives.get(proposal.initiative_id))
    return ProposalPlan(
        proposal, None, {"initiative_id": proposal.initiative_id, **values}, depends_on
    )


def _plan_task(proposal: Proposal, meta: _Metadata, lock: bool) -> ProposalPlan:
    fields: dict[str, Any] = {
        "category": meta.choice("category", TaskCategory),
        "type": meta.choice("type", TaskType),
        "priority": meta.choice("priority", TaskPriority),
        "order": meta.integer("order"),
    }
    depends_on = meta.ids("dependencies")
    values: dict[str, Any] = {"name": proposal.title, "description": proposal.content}
    if proposal.target_id:
        target = _target_of(proposal, lock=lock)
        return ProposalPlan(proposal, target, {**values, **fields}, depends_on)
    phase_id = meta.text("phase_id")
    if phase_id is not None:
        phase = phases.find_in_initiative(phase_id, proposal.initiative_id)
        if phase is None:
            raise meta.invalid("phase_id", "must name a phase of this initiative")
        _require_open_phase(phase)
    else:
        _require_open_initiative(initiatives.get(proposal.initiative_id))
    given = {name: value for name, value in fields.items() if value is not None}
    values = {
        "initiative_id": proposal.initiative_id,
        "phase_id": phase_id,
        "parent_task_id": meta.text("parent_task_id"),
        **values,
        **given,
    }
    return ProposalPlan(proposal, None, values, depends_on)


def _require_open_phase(phase: Phase) -> None:
    """New work goes into a phase that is still being worked on; a phase in review
    takes changes through request-changes, and a completed phase takes none."""
    if phase.status in (PhaseStatus.PENDING_REVIEW, PhaseStatus.COMPLETED):
        raise Conflict(
            f"Phase '{phase}' is {phase.status}: it takes no new tasks. Request changes "
            "on it (in review), or propose the task in another phase.",
            code="phase_closed",
            details={"phase_id": phase.pk, "status": phase.status},
        )


def _require_open_initiative(initiative: Initiative) -> None:
    if initiative.status != InitiativeStatus.ACTIVE:
        raise Conflict(
            f"Initiative '{initiative}' is {initiative.status}: it takes no new phases or tasks.",
            code="initiative_closed",
            details={"initiative_id": initiative.pk, "status": initiative.status},
        )


_PLANNERS: dict[str, Callable[[Proposal, _Metadata, bool], ProposalPlan]] = {
    ProposalTargetType.PAGE: _plan_page,
    ProposalTargetType.PHASE: _plan_phase,
    ProposalTargetType.TASK: _plan_task,
}
