"""What people decide on: proposals (accept, dismiss, revert) and phase review.

Each function is one transaction with keyword-only arguments and raises the domain
errors of ``core.errors`` with stable codes. Accepting a proposal applies it to its
target and records a change set holding every record it created or changed, with the
values before, so that ``change_set_revert`` can put the database back exactly.
"""

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.utils.dateparse import parse_datetime

from agents.repositories import AgentRepository
from core.errors import Conflict, DomainError, InvalidInput, NotFound
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
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    TaskRepository,
    check_choice,
    require_text,
)
from core.services import lock_phase_with_initiative, phase_reopen_for_changes
from reviews.models import (
    ChangeAction,
    ChangeSet,
    ChangeSetSource,
    ChangeSetStatus,
    ChatSession,
    ChatTargetType,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
    ReviewLineType,
)
from reviews.repositories import (
    ChangeSetRepository,
    ProposalRepository,
    ReviewCommentRepository,
)
from reviews.tiptap import markdown_to_tiptap_json

proposals = ProposalRepository()
change_sets = ChangeSetRepository()
review_comments = ReviewCommentRepository()
pages = PageRepository()
phases = PhaseRepository()
tasks = TaskRepository()
agents = AgentRepository()
initiatives = InitiativeRepository()


# --- snapshots: a record's column values, JSON-safe, and back ----------------------------


def snapshot(record: models.Model) -> dict[str, Any]:
    """Every column of ``record`` by column name, as JSON-safe values."""
    values: dict[str, Any] = {}
    for field in record._meta.concrete_fields:
        value = getattr(record, field.attname)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        values[field.column] = value
    return values


def _restorable(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """``snapshot`` values turned back into attribute values for ``model``."""
    by_column = {field.column: field for field in model._meta.concrete_fields}
    restored = {}
    for column, value in values.items():
        field = by_column[column]
        if isinstance(field, models.DateTimeField) and isinstance(value, str):
            value = parse_datetime(value)
        restored[field.attname] = value
    return restored


def _same_state(current: dict[str, Any], recorded: dict[str, Any] | None) -> bool:
    """Equal but for ``updated_at`` (a save that changed nothing is not a change)."""
    if recorded is None:
        return False
    ignore = {"updated_at"}
    return {k: v for k, v in current.items() if k not in ignore} == {
        k: v for k, v in recorded.items() if k not in ignore
    }


class _Recorder:
    """Collects the change-set entries of one operation, in the order they happened."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def created(self, record: models.Model) -> None:
        self.entries.append(self._entry(record, ChangeAction.CREATE, None, snapshot(record)))

    def updated(self, record: models.Model, before: dict[str, Any]) -> None:
        self.entries.append(self._entry(record, ChangeAction.UPDATE, before, snapshot(record)))

    @staticmethod
    def _entry(record, action, before, after) -> dict[str, Any]:
        return {
            "entity_type": record._meta.db_table,
            "entity_id": str(record.pk),
            "action": action,
            "before": before,
            "after": after,
        }


# --- proposals -------------------------------------------------------------------------


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
    agents.get(agent_id)
    initiatives.get(initiative_id)
    require_text(title, "title")
    proposal = Proposal(
        agent_id=agent_id,
        initiative_id=initiative_id,
        target_type=target_type,
        target_id=target_id,
        title=title.strip(),
        summary=summary,
        content=content,
        metadata=metadata,
        sort_order=sort_order,
    )
    _Metadata(proposal).check_shape()
    if target_id is not None:
        target = _TARGET_REPOSITORIES[target_type].find_by_id(target_id)
        if target is None:
            raise NotFound(
                f"There is no {target_type} '{target_id}' to change.",
                code="proposal_target_missing",
                details={"target_type": target_type, "target_id": target_id},
            )
        _require_same_initiative(target, target_type, initiative_id)
    return proposals._insert(proposal)


_TARGET_REPOSITORIES = {
    ProposalTargetType.PAGE: pages,
    ProposalTargetType.PHASE: phases,
    ProposalTargetType.TASK: tasks,
}


def _target_of(target_type: str, target_id: str, initiative_id: str) -> models.Model:
    """The proposal's target, locked; gone since proposing is a conflict, not a 404."""
    try:
        target = _TARGET_REPOSITORIES[target_type].get_for_update(target_id)
    except NotFound:
        raise Conflict(
            f"The {target_type} this proposal changes ('{target_id}') no longer exists.",
            code="proposal_target_deleted",
            details={"target_type": target_type, "target_id": target_id},
        ) from None
    _require_same_initiative(target, target_type, initiative_id)
    return target


def _require_same_initiative(target: models.Model, target_type: str, initiative_id: str) -> None:
    if target.initiative_id != initiative_id:
        raise InvalidInput(
            f"The {target_type} '{target.pk}' belongs to another initiative.",
            code="proposal_target_elsewhere",
            details={"target_type": target_type, "target_id": target.pk},
        )


def _lock_initiatives(records: models.QuerySet) -> None:
    """Lock the initiatives of ``records`` (in id order) before anything else.

    Every flow takes initiative, then proposal, then phase, then task locks, so a
    proposal being applied and a lifecycle transition on the same records wait for
    each other instead of deadlocking.
    """
    ids = sorted(set(records.values_list("initiative_id", flat=True)))
    list(Initiative.objects.select_for_update().filter(pk__in=ids).order_by("pk"))


def _lock_pending(proposal_id: str) -> Proposal:
    proposal = proposals.get_for_update(proposal_id)
    if proposal.status != ProposalStatus.PENDING:
        raise Conflict(
            f"Proposal '{proposal}' is already {proposal.status}.",
            code="proposal_not_pending",
            details={"id": proposal.pk, "status": proposal.status},
        )
    return proposal


class _Metadata:
    """Typed reads of a proposal's ``metadata``, refusing values of the wrong shape."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.values = proposal.metadata or {}
        if not isinstance(self.values, dict):
            raise self._invalid("metadata", "must be a JSON object")

    def _invalid(self, key: str, problem: str) -> InvalidInput:
        return InvalidInput(
            f"Proposal '{self.proposal}': metadata.{key} {problem}.",
            code="proposal_metadata_invalid",
            details={"id": self.proposal.pk, "key": key},
        )

    def check_shape(self) -> None:
        """Refuse values of the wrong type or outside their enum, without touching the
        database (what ids name is checked when the proposal is applied)."""
        target_type = self.proposal.target_type
        if target_type == ProposalTargetType.TASK:
            self.choice("category", TaskCategory)
            self.choice("type", TaskType)
            self.choice("priority", TaskPriority)
            self.integer("order")
            self.text("phase_id")
            self.text("parent_task_id")
            self.ids("dependencies")
        elif target_type == ProposalTargetType.PAGE:
            self.text("parent_page_id")
            self.integer("sort_order")
        else:
            self.ids("dependencies")

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is not None and not isinstance(value, str):
            raise self._invalid(key, "must be a string")
        return value

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._invalid(key, "must be an integer")
        return value

    def choice(self, key: str, choices: type[models.TextChoices]) -> str | None:
        value = self.text(key)
        if value is not None and value not in choices.values:
            raise self._invalid(key, f"must be one of {', '.join(choices.values)}")
        return value

    def ids(self, key: str) -> list[str]:
        value = self.values.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._invalid(key, "must be a list of ids")
        return list(dict.fromkeys(value))


def _apply_update(record: models.Model, recorder: _Recorder, repository, **fields: Any) -> None:
    fields = {name: value for name, value in fields.items() if value is not None}
    before = snapshot(record)
    repository.update(record, **fields)
    recorder.updated(record, before)


def _add_dependencies(repository, record, depends_on: list[str], recorder: _Recorder) -> None:
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


def _root_page(initiative: Initiative, recorder: _Recorder) -> Page:
    root = pages.find_root_page(initiative.pk)
    if root is not None:
        return root
    try:
        root = pages.create(initiative_id=initiative.pk, title=initiative.name)
    except Conflict:
        # Created meanwhile by someone else: theirs, not part of this change set.
        return pages.find_root_page(initiative.pk)
    recorder.created(root)
    return root


def _apply_page(proposal: Proposal, meta: _Metadata, recorder: _Recorder) -> models.Model:
    content = _tiptap_content(proposal)
    if proposal.target_id:
        page = _target_of(proposal.target_type, proposal.target_id, proposal.initiative_id)
        _apply_update(page, recorder, pages, title=proposal.title, content=content)
        return page
    parent_id = meta.text("parent_page_id")
    if parent_id is None:
        parent_id = _root_page(proposal.initiative, recorder).pk
    elif not Page.objects.filter(pk=parent_id, initiative_id=proposal.initiative_id).exists():
        raise meta._invalid("parent_page_id", "must name a page of this initiative")
    page = pages.create(
        initiative_id=proposal.initiative_id,
        parent_page_id=parent_id,
        title=proposal.title,
        content=content,
        sort_order=meta.integer("sort_order") or 0,
    )
    recorder.created(page)
    return page


def _apply_phase(proposal: Proposal, meta: _Metadata, recorder: _Recorder) -> models.Model:
    content = _tiptap_content(proposal)
    depends_on = meta.ids("dependencies")
    if proposal.target_id is None:
        _require_open_initiative(proposal.initiative)
    if proposal.target_id:
        phase = _target_of(proposal.target_type, proposal.target_id, proposal.initiative_id)
        _apply_update(phase, recorder, phases, name=proposal.title, content=content)
    else:
        phase = phases.create(
            initiative_id=proposal.initiative_id, name=proposal.title, content=content
        )
        recorder.created(phase)
    _add_dependencies(phases, phase, depends_on, recorder)
    return phase


def _apply_task(proposal: Proposal, meta: _Metadata, recorder: _Recorder) -> models.Model:
    fields = {
        "category": meta.choice("category", TaskCategory),
        "type": meta.choice("type", TaskType),
        "priority": meta.choice("priority", TaskPriority),
        "order": meta.integer("order"),
    }
    depends_on = meta.ids("dependencies")
    if proposal.target_id:
        task = _target_of(proposal.target_type, proposal.target_id, proposal.initiative_id)
        _apply_update(
            task, recorder, tasks, name=proposal.title, description=proposal.content, **fields
        )
    else:
        phase_id = meta.text("phase_id")
        if phase_id is not None:
            phase = Phase.objects.filter(pk=phase_id, initiative_id=proposal.initiative_id).first()
            if phase is None:
                raise meta._invalid("phase_id", "must name a phase of this initiative")
            _require_open_phase(phase)
        else:
            _require_open_initiative(proposal.initiative)
        task = tasks.create(
            initiative_id=proposal.initiative_id,
            phase_id=phase_id,
            parent_task_id=meta.text("parent_task_id"),
            name=proposal.title,
            description=proposal.content,
            **{name: value for name, value in fields.items() if value is not None},
        )
        recorder.created(task)
    _add_dependencies(tasks, task, depends_on, recorder)
    return task


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


_APPLIERS = {
    ProposalTargetType.PAGE: _apply_page,
    ProposalTargetType.PHASE: _apply_phase,
    ProposalTargetType.TASK: _apply_task,
}


def _accept(proposal: Proposal) -> ChangeSet:
    """Apply a pending proposal whose initiative the caller has locked."""
    recorder = _Recorder()
    _APPLIERS[proposal.target_type](proposal, _Metadata(proposal), recorder)
    before = snapshot(proposal)
    proposals.update(proposal, status=ProposalStatus.ACCEPTED)
    recorder.updated(proposal, before)
    return change_sets.create(
        initiative_id=proposal.initiative_id,
        source=ChangeSetSource.PROPOSAL,
        proposal_id=proposal.pk,
        description=f"Accepted {proposal.target_type} proposal '{proposal.title}'",
        entries=recorder.entries,
    )


@transaction.atomic
def proposal_accept(*, proposal_id: str) -> ChangeSet:
    """Apply a pending proposal to its target and return the change set that records it.

    Pages and phases get the markdown ``content`` as a Tiptap document; tasks keep it as
    their description. ``metadata`` supplies what the target needs (a task's phase,
    category, type, priority, order and dependencies; a page's parent; a phase's
    dependencies). A proposal that is not pending, or whose target is gone, is refused
    and nothing is written.
    """
    _lock_initiatives(Proposal.objects.filter(pk=proposal_id))
    return _accept(_lock_pending(proposal_id))


@transaction.atomic
def proposal_dismiss(*, proposal_id: str) -> Proposal:
    """Mark a pending proposal dismissed; nothing else changes."""
    proposal = _lock_pending(proposal_id)
    return proposals.update(proposal, status=ProposalStatus.DISMISSED)


def _pending_of_agent(agent_id: str) -> list[Proposal]:
    agents.get(agent_id)
    pending = Proposal.objects.filter(agent_id=agent_id, status=ProposalStatus.PENDING)
    _lock_initiatives(pending)
    # Locked in the order they are applied (the model's ordering: sort_order, age).
    return list(pending.select_for_update())


@transaction.atomic
def proposal_accept_all(*, agent_id: str) -> list[ChangeSet]:
    """Accept every pending proposal of an agent, in order, all or nothing.

    If one proposal is refused, none is applied, and the error names the proposal in
    ``details['proposal_id']``.
    """
    applied = []
    for proposal in _pending_of_agent(agent_id):
        try:
            applied.append(_accept(proposal))
        except DomainError as error:
            error.details = {**error.details, "proposal_id": proposal.pk}
            error.message = f"Proposal '{proposal}' could not be applied: {error.message}"
            error.args = (error.message,)
            raise
    return applied


@transaction.atomic
def proposal_dismiss_all(*, agent_id: str) -> int:
    """Dismiss every pending proposal of an agent in one statement; returns how many."""
    _pending_of_agent(agent_id)
    return proposals.update_many_by_agent_id(
        agent_id, status=ProposalStatus.DISMISSED, only_status=ProposalStatus.PENDING
    )


# --- reverting change sets ------------------------------------------------------------


def _model_for_table(table: str) -> type[models.Model]:
    for model in apps.get_models():
        if model._meta.db_table == table:
            return model
    raise InvalidInput(f"Unknown table '{table}' in a change set.", code="change_set_invalid")


def _references_to(record: models.Model) -> list[tuple[str, str]]:
    """Every row that points at ``record``, as (table, id): through a foreign key (hidden
    reverse relations such as a conversation's task included), and the chat sessions
    whose target it is (``target_id`` is not a foreign key)."""
    references = []
    for relation in record._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete) or relation.many_to_many:
            continue  # only reverse foreign keys; through models are seen as such
        related = relation.related_model
        ids = related._default_manager.filter(**{relation.field.name: record.pk}).values_list(
            "pk", flat=True
        )
        references += [(related._meta.db_table, str(pk)) for pk in ids]
    target_type = {Phase: ChatTargetType.PHASE, Task: ChatTargetType.TASK}.get(type(record))
    if target_type is not None:
        sessions = ChatSession.objects.filter(target_type=target_type, target_id=record.pk)
        references += [
            (ChatSession._meta.db_table, pk) for pk in sessions.values_list("pk", flat=True)
        ]
    return references


@transaction.atomic
def change_set_revert(*, change_set_id: str) -> ChangeSet:
    """Restore exactly the values before a change set (deleting what it created).

    Refused, with nothing written, when the change set is already reverted or when a
    record it touched was changed (or deleted) since. A proposal it accepted goes back
    to pending.
    """
    _lock_initiatives(ChangeSet.objects.filter(pk=change_set_id))
    change_set = change_sets.get_for_update(change_set_id)
    if change_set.status != ChangeSetStatus.APPLIED:
        raise Conflict(
            f"Change set '{change_set_id}' is already reverted.",
            code="change_set_already_reverted",
            details={"id": change_set_id},
        )
    entries = list(change_set.entries.order_by("-sort_order"))
    current: dict[tuple[str, str], models.Model | None] = {}
    by_table: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_table[entry.entity_type].append(entry.entity_id)
    for table, ids in by_table.items():
        model = _model_for_table(table)
        found = {str(r.pk): r for r in model.objects.select_for_update().filter(pk__in=ids)}
        for pk in ids:
            current[(table, pk)] = found.get(pk)

    changed = []
    for entry in entries:
        record = current[(entry.entity_type, entry.entity_id)]
        if record is None and entry.entity_type == Proposal._meta.db_table:
            continue  # the proposal went with its agent; the planning changes still revert
        if entry.action == ChangeAction.DELETE:
            if record is not None:
                changed.append((entry.entity_type, entry.entity_id))
        elif record is None or not _same_state(snapshot(record), entry.after):
            changed.append((entry.entity_type, entry.entity_id))
    # Deleting what the change set created must not take anything else with it: work
    # added since under a created record (a task in a created phase, a page under a
    # created page, an edge to a created task) would cascade away or lose its link.
    touched = set(current)
    for entry in entries:
        record = current[(entry.entity_type, entry.entity_id)]
        if entry.action == ChangeAction.CREATE and record is not None:
            changed += [ref for ref in _references_to(record) if ref not in touched]
    if changed:
        names = ", ".join(f"{table} '{pk}'" for table, pk in changed)
        raise Conflict(
            f"Cannot revert: {names} changed since this change set was applied.",
            code="change_set_stale",
            details={
                "id": change_set_id,
                "changed": [{"table": table, "id": pk} for table, pk in changed],
            },
        )

    for entry in entries:
        model = _model_for_table(entry.entity_type)
        if entry.action == ChangeAction.CREATE:
            model.objects.filter(pk=entry.entity_id).delete()
        elif entry.action == ChangeAction.UPDATE:
            model.objects.filter(pk=entry.entity_id).update(**_restorable(model, entry.before))
        else:
            model(**_restorable(model, entry.before)).save(force_insert=True)
    return change_sets.mark_reverted(change_set_id)


# --- review ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewBrief:
    phase_id: str
    unresolved: int
    markdown: str


def phase_review_brief(*, phase_id: str) -> ReviewBrief:
    """The phase's unresolved review comments as markdown an agent can act on.

    Grouped by file (in path order), each file's comments ordered by line.
    """
    phase = phases.get(phase_id)
    comments = review_comments.find_by_phase_id(phase_id, unresolved_only=True)
    return ReviewBrief(phase.pk, len(comments), _render_brief(phase, comments))


def _render_brief(phase: Phase, comments: list[ReviewComment]) -> str:
    if not comments:
        return f'# Review of phase "{phase.name}"\n\nNo unresolved review comments.\n'
    by_file: dict[str, list[ReviewComment]] = defaultdict(list)
    for comment in comments:
        by_file[comment.file_path].append(comment)
    files = sorted(by_file)
    lines = [
        f'# Review of phase "{phase.name}"',
        "",
        f"{len(comments)} unresolved comment{'s' if len(comments) != 1 else ''} in "
        f"{len(files)} file{'s' if len(files) != 1 else ''}. Address each one, then "
        "complete this task with a summary of what you changed.",
    ]
    side = {
        ReviewLineType.ADDED: "added line",
        ReviewLineType.REMOVED: "removed line (old side)",
        ReviewLineType.CONTEXT: "unchanged line",
    }
    for path in files:
        lines += ["", f"## {_code_span(path)}", ""]
        for comment in sorted(by_file[path], key=lambda c: (c.line_number, c.created_at, c.pk)):
            body = comment.body.strip().replace("\n", "\n  ")
            lines.append(
                f"- **Line {comment.line_number}** ({side[comment.line_type]}, "
                f"{comment.author}): {body}"
            )
    return "\n".join(lines) + "\n"


def _code_span(text: str) -> str:
    """``text`` as a markdown code span, fenced with more backticks than it contains."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{padding}{text}{padding}{ticks}"


@transaction.atomic
def phase_request_changes(*, phase_id: str) -> Task:
    """Turn a phase's unresolved review comments into one ``review`` task and reopen it.

    The phase (pending review) goes back to in progress with a new high-priority
    ``review`` task whose description is the review brief; the comments it carries are
    marked resolved, so the next review starts from what is new. Refused when there is
    no unresolved comment: a person writes what to change first.
    """
    phase, _initiative = lock_phase_with_initiative(phase_id)
    comments = review_comments.find_by_phase_id(phase_id, unresolved_only=True)
    if not comments and phase.status == PhaseStatus.PENDING_REVIEW:
        raise InvalidInput(
            f"Phase '{phase}' has no unresolved review comments: add the changes you want "
            "as comments first, or approve the phase.",
            code="review_no_comments",
            details={"id": phase.pk},
        )
    phase_reopen_for_changes(phase=phase)
    task = tasks.create(
        phase_id=phase.pk,
        name=f"Address review comments on '{phase.name}'",
        description=_render_brief(phase, comments),
        category=TaskCategory.REVIEW,
        type=TaskType.AUTO,
        priority=TaskPriority.HIGH,
    )
    review_comments._update_many(
        ReviewComment.objects.filter(pk__in=[c.pk for c in comments]), resolved=True
    )
    return task
