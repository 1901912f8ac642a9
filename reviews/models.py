"""What people decide on: proposals, review comments, chat sessions and change sets.

As in ``core.models``: every constraint has a code and a message in words, and fields
carry the validators of what they hold.
"""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from agents.models import Agent
from core.models import (
    CreatedModel,
    Initiative,
    Phase,
    Project,
    Task,
    TimestampedModel,
    enum_check,
)
from core.text import shorten
from core.validators import (
    NAME_MAX_LENGTH,
    NAME_VALIDATORS,
    PATH_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    path_length,
    text_length,
)

#: How many characters of a title or a name a record's label shows.
LABEL_LENGTH = 60


class ProposalTargetType(models.TextChoices):
    PAGE = "page", "Page"
    PHASE = "phase", "Phase"
    TASK = "task", "Task"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class Proposal(TimestampedModel):
    """An agent's proposed new or changed page, phase or task (``target_id`` null = create)."""

    # Both served by the (…, status) indexes below, not by second, automatic ones.
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="proposals", db_index=False
    )
    initiative = models.ForeignKey(
        Initiative, on_delete=models.CASCADE, related_name="proposals", db_index=False
    )
    target_type = models.CharField(max_length=8, choices=ProposalTargetType.choices)
    target_id = models.CharField(max_length=22, null=True, blank=True)
    title = models.TextField(max_length=NAME_MAX_LENGTH, validators=NAME_VALIDATORS)
    summary = models.TextField(
        null=True, blank=True, max_length=TEXT_MAX_LENGTH, validators=[text_length]
    )
    content = models.TextField(
        null=True,
        blank=True,
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length],
        help_text="Markdown.",
    )
    metadata = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=10,
        choices=ProposalStatus.choices,
        default=ProposalStatus.PENDING,
        db_default=ProposalStatus.PENDING,
    )
    sort_order = models.IntegerField(default=0, db_default=0, validators=[MinValueValidator(0)])

    class Meta:
        db_table = "proposals"
        ordering = ["sort_order", "created_at", "id"]
        indexes = [
            models.Index(fields=["agent", "status"], name="proposals_agent_status_idx"),
            models.Index(fields=["initiative", "status"], name="proposals_initiative_idx"),
        ]
        constraints = [
            enum_check("proposals", "target_type", ProposalTargetType),
            enum_check("proposals", "status", ProposalStatus),
        ]

    def __str__(self) -> str:
        """``Split the auth task (update task, pending)``."""
        change = "update" if self.target_id else "new"
        title = shorten(self.title, LABEL_LENGTH)
        return f"{title} ({change} {self.target_type}, {self.status})"


class ReviewLineType(models.TextChoices):
    ADDED = "added", "Added"
    REMOVED = "removed", "Removed"
    CONTEXT = "context", "Context"


class ReviewComment(TimestampedModel):
    """An inline comment on a phase's diff."""

    phase = models.ForeignKey(
        Phase,
        on_delete=models.CASCADE,
        related_name="review_comments",
        db_index=False,  # review_comments_phase_idx (phase, resolved) serves it
    )
    file_path = models.TextField(max_length=PATH_MAX_LENGTH, validators=[path_length])
    line_number = models.IntegerField(help_text="New-side line, or old-side for removals.")
    line_type = models.CharField(max_length=8, choices=ReviewLineType.choices)
    body = models.TextField(max_length=TEXT_MAX_LENGTH, validators=[text_length])
    author = models.CharField(max_length=255, default="you", db_default="you")
    resolved = models.BooleanField(default=False, db_default=False)
    project = models.ForeignKey(
        Project,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="review_comments",
        help_text="The repository whose diff the line is in (a phase may change several).",
    )
    line_text = models.TextField(
        null=True,
        blank=True,
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length],
        help_text="The line as it read when the comment was written: a comment whose line "
        "reads otherwise in today's diff is outdated.",
    )
    hunk = models.TextField(
        null=True,
        blank=True,
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length],
        help_text="The lines of the diff around it when written, quoted in the review brief.",
    )
    addressed_by = models.ForeignKey(
        Task,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="addressed_review_comments",
        help_text="The rework task it was handed to by 'Request changes': completing that "
        "task resolves it.",
    )

    class Meta:
        db_table = "review_comments"
        ordering = ["file_path", "line_number", "created_at", "id"]
        indexes = [models.Index(fields=["phase", "resolved"], name="review_comments_phase_idx")]
        constraints = [
            enum_check("review_comments", "line_type", ReviewLineType),
            models.CheckConstraint(
                condition=Q(line_number__gte=1),
                name="review_comments_line_number_positive",
                # The code ReviewCommentRepository.create gives the same refusal.
                violation_error_code="invalid_line_number",
                violation_error_message="The line number must be a whole number of at least 1.",
            ),
        ]

    def __str__(self) -> str:
        """``src/auth.py:42 — Rename this…``."""
        return f"{self.file_path}:{self.line_number} — {shorten(self.body, 40)}"


class ChatTargetType(models.TextChoices):
    PHASE = "phase", "Phase"
    TASK = "task", "Task"


class ChatSessionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class ChatSession(TimestampedModel):
    """A person's iterative refinement of one phase or task with an agent."""

    target_type = models.CharField(max_length=8, choices=ChatTargetType.choices)
    target_id = models.CharField(max_length=22)
    initiative = models.ForeignKey(
        Initiative,
        on_delete=models.CASCADE,
        related_name="chat_sessions",
        db_index=False,  # the seed's chat_sessions_initiative_idx is the index
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="chat_sessions"
    )
    #: The name of the phase or task, when a list annotated it (see ``__str__``).
    target_name: str | None

    status = models.CharField(
        max_length=8,
        choices=ChatSessionStatus.choices,
        default=ChatSessionStatus.ACTIVE,
        db_default=ChatSessionStatus.ACTIVE,
    )

    class Meta:
        db_table = "chat_sessions"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="chat_sessions_target_idx"),
            models.Index(fields=["initiative"], name="chat_sessions_initiative_idx"),
        ]
        constraints = [
            enum_check("chat_sessions", "target_type", ChatTargetType),
            enum_check("chat_sessions", "status", ChatSessionStatus),
            models.UniqueConstraint(
                fields=["target_type", "target_id"],
                condition=Q(status=ChatSessionStatus.ACTIVE),
                name="chat_sessions_one_active_per_target",
                violation_error_code="chat_session_already_active",
                violation_error_message=(
                    "This phase or task already has an active chat session; close it first."
                ),
            ),
        ]

    def __str__(self) -> str:
        """``Chat on task 'Add login'`` (``(closed)`` once closed). The target's name is
        read once, unless a list annotated its rows with ``target_name``."""
        if not hasattr(self, "target_name"):
            model = Phase if self.target_type == ChatTargetType.PHASE else Task
            self.target_name = (
                model._default_manager.filter(pk=self.target_id)
                .values_list("name", flat=True)
                .first()
            )
        name = shorten(self.target_name or self.target_id, LABEL_LENGTH)
        closed = " (closed)" if self.status == ChatSessionStatus.CLOSED else ""
        return f"Chat on {self.target_type} '{name}'{closed}"


class ChangeSetSource(models.TextChoices):
    PROPOSAL = "proposal", "Accepted proposal"
    CHAT = "chat", "Chat edit"


class ChangeSetStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    REVERTED = "reverted", "Reverted"


class ChangeSet(TimestampedModel):
    """A group of record changes applied together, and revertible together."""

    initiative = models.ForeignKey(Initiative, on_delete=models.CASCADE, related_name="change_sets")
    source = models.CharField(max_length=10, choices=ChangeSetSource.choices)
    proposal = models.ForeignKey(
        Proposal, on_delete=models.SET_NULL, null=True, blank=True, related_name="change_sets"
    )
    chat_session = models.ForeignKey(
        ChatSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="change_sets"
    )
    description = models.TextField(
        blank=True,
        default="",
        db_default="",
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length],
    )
    status = models.CharField(
        max_length=10,
        choices=ChangeSetStatus.choices,
        default=ChangeSetStatus.APPLIED,
        db_default=ChangeSetStatus.APPLIED,
    )
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "change_sets"
        ordering = ["-created_at", "id"]
        constraints = [
            enum_check("change_sets", "source", ChangeSetSource),
            enum_check("change_sets", "status", ChangeSetStatus),
        ]

    def __str__(self) -> str:
        """``Change set from proposal 'Add login' (applied)``; a chat edit's says what
        the edit was."""
        if self.proposal_id is not None and self.proposal is not None:
            origin = f"proposal '{shorten(self.proposal.title, LABEL_LENGTH)}'"
        elif self.source == ChangeSetSource.CHAT:
            origin = "a chat edit"
            if self.description:
                origin += f": {shorten(self.description, LABEL_LENGTH)}"
        else:
            origin = shorten(self.description, LABEL_LENGTH) or "a proposal since deleted"
        return f"Change set from {origin} ({self.status})"


class ChangeAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"


class ChangeSetEntry(CreatedModel):
    """One record a change set created, updated or deleted, with its values before and after.

    ``before`` is null for a create and ``after`` null for a delete; both hold the
    record's field values by column name, so a revert can restore them exactly.
    """

    change_set = models.ForeignKey(ChangeSet, on_delete=models.CASCADE, related_name="entries")
    entity_type = models.CharField(max_length=32, help_text="Table name, e.g. tasks.")
    entity_id = models.CharField(max_length=22)
    action = models.CharField(max_length=8, choices=ChangeAction.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    sort_order = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "change_set_entries"
        verbose_name_plural = "change set entries"
        ordering = ["change_set", "sort_order"]
        indexes = [
            models.Index(fields=["entity_type", "entity_id"], name="change_entries_entity_idx")
        ]
        constraints = [enum_check("change_set_entries", "action", ChangeAction)]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type} {self.entity_id}"


class ChatRole(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    SYSTEM = "system", "System"


class ChatMessage(CreatedModel):
    chat_session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,  # chat_messages_session_idx (chat_session, created_at) serves it
    )
    role = models.CharField(max_length=10, choices=ChatRole.choices)
    content = models.TextField(max_length=TEXT_MAX_LENGTH, validators=[text_length])
    change_set = models.ForeignKey(
        ChangeSet, on_delete=models.SET_NULL, null=True, blank=True, related_name="chat_messages"
    )

    class Meta:
        db_table = "chat_messages"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["chat_session", "created_at"], name="chat_messages_session_idx")
        ]
        constraints = [enum_check("chat_messages", "role", ChatRole)]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
