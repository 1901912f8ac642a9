"""The reviews' admin: every add and change form saves through the service or repository
the API uses, so a person meets the same rules; statuses change only through actions and
through the buttons on a record's page (accept or dismiss a proposal, resolve a review
comment, revert a change set), which call the same services; change sets and their
entries are read-only history.

A pending proposal's page previews what accepting it would do to the current records
(``proposal_preview``, the accept's own rules without writing): the before and after of
each field an update changes, or what a create adds and where.
"""

from typing import Any, cast

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db import models
from django.db.models import Case, OuterRef, Subquery, Value, When
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.actors import Actor
from core.admin import PlanChoicesAdmin
from core.admin.markdown import as_markdown, rendered
from core.admin.readable import READABLE_CSS, json_readable
from core.admin_base import (
    Button,
    ButtonsAdmin,
    ServiceAdmin,
    Writes,
    admin_link,
    change_url,
    dry_run_refusal,
    service_action,
)
from core.models import Initiative, Page, Phase, Task
from core.repositories import (
    DependencyRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    Repository,
    TaskRepository,
)
from core.text import shorten
from reviews import services
from reviews.change_set_words import describe_entries
from reviews.models import (
    LABEL_LENGTH,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetStatus,
    ChatMessage,
    ChatSession,
    ChatTargetType,
    Proposal,
    ProposalStatus,
    ProposalTargetType,
    ReviewComment,
)
from reviews.repositories import (
    TARGET_REPOSITORIES,
    ChangeSetRepository,
    ChatSessionRepository,
    ReviewCommentRepository,
)
from reviews.services.proposals import ProposalPlan, ProposalPreview, proposal_preview
from reviews.text_diff import text_diff_html

sessions = ChatSessionRepository()
comments = ReviewCommentRepository()
change_sets = ChangeSetRepository()

#: What a preview names by id, and where to find it.
_RECORDS: dict[type[models.Model], Repository[Any]] = {
    Initiative: InitiativeRepository(),
    Page: PageRepository(),
    Phase: PhaseRepository(),
    Task: TaskRepository(),
}
_TARGET_MODELS: dict[str, type[Page | Phase | Task]] = {
    ProposalTargetType.PAGE: Page,
    ProposalTargetType.PHASE: Phase,
    ProposalTargetType.TASK: Task,
}


def truncated(text: str | None) -> str:
    """A title or a text cut to what a list shows."""
    return shorten(text, LABEL_LENGTH)


# --- proposals -------------------------------------------------------------------------------


def _accept(request: HttpRequest, proposal: Proposal) -> SafeString:
    change_set = services.proposal_accept(proposal_id=proposal.pk, actor=Actor.person(request.user))
    return format_html(
        "Accepted “{}”: what it changed is {}, which can be reverted.",
        truncated(proposal.title),
        admin_link(change_set),
    )


def _dismiss(request: HttpRequest, proposal: Proposal) -> str:
    services.proposal_dismiss(proposal_id=proposal.pk, actor=Actor.person(request.user))
    return f"Dismissed “{truncated(proposal.title)}”."


def _pending(proposal: Proposal) -> bool:
    return proposal.status == ProposalStatus.PENDING


def _preview(proposal: Proposal) -> ProposalPreview:
    """The proposal's preview, worked out once for its page and its Accept button."""
    found = proposal.__dict__.get("_cw_preview")
    if found is None:
        found = proposal.__dict__["_cw_preview"] = proposal_preview(proposal_id=proposal.pk)
    return found


def _accept_refusal(proposal: Proposal) -> str | None:
    refusal = _preview(proposal).refusal
    return None if refusal is None else refusal.message


class ProposalPreviewPanel:
    """A proposal's preview in words for its page: the rows of a before/after table (an
    update) or of what is created (a create), each value readable (a Tiptap document as
    its markdown, a choice by its label, an id by the record's name, linked).

    A changed text (a name, a title, a description, a page's content) is shown as its
    difference, word by word (``reviews.text_diff``), and a page's or phase's new
    content also as it will read (``core.tiptap.tiptap_to_html``)."""

    def __init__(self, plan: ProposalPlan) -> None:
        self.plan = plan
        self.model = _TARGET_MODELS[plan.proposal.target_type]

    @property
    def target(self) -> SafeString | None:
        return None if self.plan.target is None else admin_link(self.plan.target)

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        return [
            (
                self.label(change.field),
                self.readable(change.field, change.before),
                self.readable(change.field, change.after),
            )
            for change in self.plan.changes
        ]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The changes as the page shows them: ``label``, ``before`` and ``after``
        (readable), ``diff`` (a text's difference as HTML, else None) and ``rendered``
        (a document's new content as HTML, else None)."""
        rows = []
        for change in self.plan.changes:
            before = self.readable(change.field, change.before)
            after = self.readable(change.field, change.after)
            text = self.is_text(change.field)
            rows.append(
                {
                    "label": self.label(change.field),
                    "before": before,
                    "after": after,
                    "diff": text_diff_html(
                        "" if change.before is None else before,
                        "" if change.after is None else after,
                    )
                    if text
                    else None,
                    "rendered": rendered(change.after) if self.is_document(change.field) else None,
                }
            )
        return rows

    def is_text(self, name: str) -> bool:
        """Whether the field holds text a person writes (not a choice or a relation)."""
        field = self.field(name)
        return isinstance(field, models.TextField | models.CharField) and not field.choices

    def is_document(self, name: str) -> bool:
        return name == "content" and self.model in (Page, Phase)

    @property
    def created(self) -> list[tuple[str, Any]]:
        if self.plan.target is not None:
            return []
        return [
            (
                self.label(name),
                rendered(value) if self.is_document(name) else self.readable(name, value),
            )
            for name, value in self.plan.values.items()
            if name != "initiative_id" and (value is not None or name == "parent_page_id")
        ]

    @property
    def dependencies(self) -> list[SafeString]:
        """The records the target comes to depend on (not those it depends on already)."""
        ids = self.plan.dependencies
        repository = TARGET_REPOSITORIES[self.plan.proposal.target_type]
        target = self.plan.target
        if target is not None and ids and isinstance(repository, DependencyRepository):
            existing = repository.get_dependency_ids([target.pk])[target.pk]
            ids = [pk for pk in ids if pk not in existing]
        if not ids:
            return []
        found = {record.pk: record for record in repository.find_by_ids(ids)}
        return [
            admin_link(found[pk]) if pk in found else format_html("'{}' (not found)", pk)
            for pk in ids
        ]

    def field(self, name: str) -> models.Field:
        return cast(models.Field, self.model._meta.get_field(name))

    def label(self, name: str) -> str:
        field = self.field(name)
        return str(field.verbose_name).capitalize().removesuffix(" id")

    def readable(self, name: str, value: Any) -> Any:
        field = self.field(name)
        if value is None:
            if name == "parent_page_id":
                return "The initiative's root page (created with it if there is none)"
            return "—"
        if isinstance(field, models.ForeignKey):
            records = _RECORDS.get(cast(type[models.Model], field.related_model))
            found = None if records is None else records.find_by_id(value)
            return admin_link(found) if found is not None else f"'{value}' (not found)"
        if field.choices:
            return dict(field.flatchoices).get(value, value)
        if self.is_document(name):
            return as_markdown(value)
        return value


@admin.register(Proposal)
class ProposalAdmin(ButtonsAdmin, ServiceAdmin):
    """Saved through ``proposal_create`` / ``proposal_update`` (a target of the proposal's
    initiative, metadata that is a JSON object of the right shape); accepted and
    dismissed through the buttons on its page (which preview the change) and the
    actions, after which a proposal is history."""

    writes = Writes(
        "proposal_id",
        create=services.proposal_create,
        update=services.proposal_update,
        delete=services.proposal_delete,
    )
    list_display = ("short_title", "change", "status", "agent", "initiative", "created_at")
    list_filter = (
        "status",
        "target_type",
        ("agent", admin.RelatedOnlyFieldListFilter),
        ("initiative", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("title", "summary")
    list_select_related = ("agent", "initiative")
    autocomplete_fields = ("agent", "initiative")
    date_hierarchy = "created_at"
    buttons = (
        Button(
            "accept", "Accept", _accept, shown=_pending, style="default", refusal=_accept_refusal
        ),
        Button(
            "dismiss",
            "Dismiss",
            _dismiss,
            shown=_pending,
            confirm="Dismiss the proposal '{record.title}'? Nothing it proposes will be "
            "applied, and a dismissed proposal cannot be accepted any more.",
        ),
    )
    actions = (
        service_action(
            services.proposal_accept,
            id_argument="proposal_id",
            description="Accept",
            pass_actor=True,
        ),
        service_action(
            services.proposal_dismiss,
            id_argument="proposal_id",
            description="Dismiss",
            pass_actor=True,
        ),
    )
    #: Who proposes what, for which initiative: fixed once proposed.
    fixed_fields = ("agent", "initiative", "target_type", "target_id")

    class Media:
        css = {"all": (READABLE_CSS,)}

    @admin.display(description="title", ordering="title")
    def short_title(self, proposal: Proposal) -> str:
        return truncated(proposal.title)

    @admin.display(description="proposes", ordering="target_type")
    def change(self, proposal: Proposal) -> str:
        return f"{'an update to a' if proposal.target_id else 'a new'} {proposal.target_type}"

    @admin.display(description="change sets")
    def change_set_links(self, proposal: Proposal) -> SafeString | str:
        found = change_sets.find_by_proposal_id(proposal.pk)
        if not found:
            return "—"
        return format_html(
            "<br>".join(["{}"] * len(found)), *(admin_link(change_set) for change_set in found)
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("status",)
        return ("status", *self.fixed_fields, "change_set_links", "metadata_in_words")

    def get_fields(self, request, obj=None):
        # The metadata in words sits where its JSON is; a decided proposal (read-only)
        # shows the words alone.
        fields = [name for name in super().get_fields(request, obj) if name != "metadata_in_words"]
        if obj is None or "metadata" not in fields:
            return fields
        at = fields.index("metadata")
        if obj.status == ProposalStatus.PENDING:
            return [*fields[: at + 1], "metadata_in_words", *fields[at + 1 :]]
        return [*fields[:at], "metadata_in_words", *fields[at + 1 :]]

    @admin.display(description="metadata in words")
    def metadata_in_words(self, proposal: Proposal) -> SafeString:
        return json_readable(proposal.metadata)

    def has_change_permission(self, request, obj=None) -> bool:
        pending = obj is None or obj.status == ProposalStatus.PENDING
        return pending and super().has_change_permission(request, obj)

    def has_button_permission(self, request, record) -> bool:
        # A decided proposal is history, yet a button pressed on a page left open says
        # in words why it is refused (the services' refusal) rather than "forbidden".
        return self.has_change_permission(request)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.status == ProposalStatus.PENDING:
            preview = _preview(obj)
            context["proposal_refusal"] = preview.refusal and preview.refusal.message
            context["proposal_preview"] = preview.plan and ProposalPreviewPanel(preview.plan)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def write(self, form) -> Proposal:
        data = form.cleaned_data
        if not form.instance._state.adding:
            editable = {"title", "summary", "content", "metadata", "sort_order"}
            changes = {name: data[name] for name in form.changed_data if name in editable}
            return services.proposal_update(proposal_id=form.instance.pk, **changes)
        return services.proposal_create(
            agent_id=data["agent"].pk,
            initiative_id=data["initiative"].pk,
            target_type=data["target_type"],
            target_id=data.get("target_id") or None,
            title=data["title"],
            summary=data.get("summary"),
            content=data.get("content"),
            metadata=data.get("metadata"),
            sort_order=data.get("sort_order") or 0,
        )


# --- review comments -------------------------------------------------------------------------


def _resolve(request: HttpRequest, comment: ReviewComment) -> str:
    services.review_comment_resolve(comment_id=comment.pk)
    return f"Resolved “{comment}”."


def _unresolve(request: HttpRequest, comment: ReviewComment) -> str:
    services.review_comment_unresolve(comment_id=comment.pk)
    return f"Reopened “{comment}”: it is unresolved again."


@admin.register(ReviewComment)
class ReviewCommentAdmin(ButtonsAdmin, PlanChoicesAdmin):
    """Added through ``review_comment_create`` and changed through
    ``review_comment_update`` (one-line file path, line number of at least 1, …);
    resolved and reopened through the button on its page and the actions."""

    writes = Writes(
        "comment_id",
        create=services.review_comment_create,
        update=services.review_comment_update,
        delete=services.review_comment_delete,
    )
    list_display = ("location", "line", "short_body", "author", "resolved", "phase")
    list_filter = (("phase", admin.RelatedOnlyFieldListFilter), "resolved", "line_type")
    search_fields = ("file_path", "body")
    list_select_related = ("phase", "phase__initiative")
    autocomplete_fields = ("phase", "project")
    date_hierarchy = "created_at"
    buttons = (
        Button(
            "resolve",
            "Resolve",
            _resolve,
            shown=lambda comment: not comment.resolved,
            style="default",
        ),
        Button(
            "unresolve",
            "Unresolve",
            _unresolve,
            shown=lambda comment: comment.resolved,
            style="default",
        ),
    )
    actions = (
        service_action(
            services.review_comment_resolve, id_argument="comment_id", description="Resolve"
        ),
        service_action(
            services.review_comment_unresolve, id_argument="comment_id", description="Unresolve"
        ),
    )

    @admin.display(description="where", ordering="file_path")
    def location(self, comment: ReviewComment) -> str:
        return f"{comment.file_path}:{comment.line_number}"

    @admin.display(description="line", ordering="line_type")
    def line(self, comment: ReviewComment) -> str:
        """The line type in words: which side of the diff the line number counts on."""
        return {
            "added": "an added line (new side)",
            "removed": "a removed line (old side)",
            "context": "an unchanged line",
        }.get(comment.line_type, comment.line_type)

    @admin.display(description="comment")
    def short_body(self, comment: ReviewComment) -> str:
        return truncated(comment.body)

    def get_readonly_fields(self, request, obj=None):
        kept = ("line_text", "hunk", "addressed_by")  # what the review page kept of the diff
        if obj:
            return ("resolved", "phase", "project", "location", "line", *kept)
        return ("resolved", *kept)

    def write(self, form) -> ReviewComment:
        data = form.cleaned_data
        if not form.instance._state.adding:
            editable = {"file_path", "line_number", "line_type", "body", "author"}
            changes = {name: data[name] for name in form.changed_data if name in editable}
            return services.review_comment_update(comment_id=form.instance.pk, **changes)
        # Not read from the mirror here: the admin saves inside a transaction, which a
        # git process must never hold. Lines are commented on from the review page.
        return services.review_comment_create(
            phase_id=data["phase"].pk,
            file_path=data["file_path"],
            line_number=data["line_number"],
            line_type=data["line_type"],
            body=data["body"],
            author=data.get("author") or "you",
            project_id=data["project"].pk if data.get("project") else None,
        )


# --- chat sessions and messages ----------------------------------------------------------


def with_target_names(queryset: models.QuerySet, *, prefix: str = "", name: str = "target_name"):
    """``queryset`` with the name of each chat session's phase or task annotated as
    ``name`` (``prefix`` leads from the queryset's model to the session), so that labels
    in words cost no query per row."""

    def name_of(model: type[Phase | Task]) -> Subquery:
        rows = model._default_manager.filter(pk=OuterRef(f"{prefix}target_id"))
        return Subquery(rows.values("name")[:1])

    return queryset.annotate(
        **{
            name: Case(
                When(**{f"{prefix}target_type": ChatTargetType.PHASE}, then=name_of(Phase)),
                When(**{f"{prefix}target_type": ChatTargetType.TASK}, then=name_of(Task)),
                default=Value(None),
                output_field=models.TextField(),
            )
        }
    )


@admin.register(ChatSession)
class ChatSessionAdmin(ServiceAdmin):
    """Opened through ``chat_session_create`` (a target of the initiative, at most one
    active session per target); only its agent is edited (``chat_session_update``);
    closed through the action."""

    writes = Writes(
        "session_id",
        create=services.chat_session_create,
        update=services.chat_session_update,
        delete=services.chat_session_delete,
    )
    list_display = ("__str__", "status", "initiative", "agent", "created_at")
    list_filter = (
        "status",
        "target_type",
        ("initiative", admin.RelatedOnlyFieldListFilter),
        ("agent", admin.RelatedOnlyFieldListFilter),
    )
    #: ``target_name`` is annotated by ``get_queryset``: a session is found by its
    #: phase's or task's name.
    search_fields = ("target_name", "target_id", "initiative__name")
    list_select_related = ("initiative", "agent")
    autocomplete_fields = ("initiative", "agent")
    date_hierarchy = "created_at"
    actions = (
        service_action(services.chat_session_close, id_argument="session_id", description="Close"),
    )

    def get_queryset(self, request):
        return with_target_names(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return ("status", "target_type", "target_id", "initiative") if obj else ("status",)

    def write(self, form) -> ChatSession:
        data = form.cleaned_data
        if not form.instance._state.adding:
            if "agent" not in form.changed_data:
                return sessions.get(form.instance.pk)
            return services.chat_session_update(
                session_id=form.instance.pk,
                agent_id=data["agent"].pk if data.get("agent") else None,
            )
        return services.chat_session_create(
            target_type=data["target_type"],
            target_id=data["target_id"],
            initiative_id=data["initiative"].pk,
            agent_id=data["agent"].pk if data.get("agent") else None,
        )


@admin.register(ChatMessage)
class ChatMessageAdmin(ServiceAdmin):
    """Added through ``chat_message_post`` (an active session, a change set of the
    session's initiative on an assistant message); a transcript, so never edited."""

    writes = Writes(
        "message_id", create=services.chat_message_post, delete=services.chat_message_delete
    )
    list_display = ("__str__", "role", "session", "change_set", "created_at")
    list_filter = ("role",)
    search_fields = ("content",)
    list_select_related = ("chat_session", "change_set", "change_set__proposal")
    autocomplete_fields = ("chat_session", "change_set")
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return with_target_names(
            super().get_queryset(request), prefix="chat_session__", name="session_target_name"
        )

    @admin.display(description="chat session", ordering="chat_session")
    def session(self, message: ChatMessage) -> str:
        session = message.chat_session
        session.target_name = getattr(message, "session_target_name", None)
        return str(session)

    def write(self, form) -> ChatMessage:
        data = form.cleaned_data
        return services.chat_message_post(
            session_id=data["chat_session"].pk,
            role=data["role"],
            content=data["content"],
            change_set_id=data["change_set"].pk if data.get("change_set") else None,
        )


# --- change sets: history ----------------------------------------------------------------


class ChangeSetEntryInline(admin.TabularInline):
    model = ChangeSetEntry
    extra = 0
    can_delete = False
    fields = ("entity_type", "entity_id", "action", "before", "after")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _revert(request: HttpRequest, change_set: ChangeSet) -> str:
    reverted = services.change_set_revert(change_set_id=change_set.pk)
    return f"Reverted: {reverted}."


@admin.register(ChangeSet)
class ChangeSetAdmin(ButtonsAdmin):
    """History that ``change_set_revert`` relies on: written only by the services, never
    added or edited here (not even moved to another initiative); reverted by the button
    on its page and the action."""

    list_display = ("__str__", "source", "status", "initiative", "created_at", "reverted_at")
    list_filter = ("status", "source", ("initiative", admin.RelatedOnlyFieldListFilter))
    search_fields = ("description", "proposal__title")
    list_select_related = ("initiative", "proposal")
    date_hierarchy = "created_at"
    inlines = (ChangeSetEntryInline,)
    buttons = (
        Button(
            "revert",
            "Revert",
            _revert,
            shown=lambda change_set: change_set.status == ChangeSetStatus.APPLIED,
            style="default",
            refusal=lambda change_set: dry_run_refusal(
                services.change_set_revert, change_set_id=change_set.pk
            ),
            confirm="Revert this change set ({record})? The records it changed go back to "
            "what they were before it, and what it created is deleted.",
        ),
    )
    actions = (
        service_action(
            services.change_set_revert, id_argument="change_set_id", description="Revert"
        ),
    )

    def get_queryset(self, request):
        # Its label names the proposal (autocomplete and change pages included); the
        # list then keeps this select_related instead of its list_select_related.
        return super().get_queryset(request).select_related(*self.list_select_related)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            entries = change_sets.find_entries(obj.pk, newest_first=False)
            context["entry_lines"] = [
                {
                    "text": line.text,
                    "url": None if line.model is None else change_url(line.model, line.record_id),
                }
                for line in describe_entries(entries)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_button_permission(self, request, record) -> bool:
        # Its form is read-only history; reverting it is for whoever may change them.
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")


@admin.register(ChangeSetEntry)
class ChangeSetEntryAdmin(admin.ModelAdmin):
    """Entries are history, written once with their change set: read-only here."""

    list_display = ("__str__", "change_set", "entity_type", "entity_id", "action", "created_at")
    list_filter = ("entity_type", "action")
    search_fields = ("entity_id",)
    list_select_related = ("change_set", "change_set__proposal")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
