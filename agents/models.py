"""Agents and what they produce: provider accounts, log chunks, messages, conversations.

As in ``core.models``: every constraint has a code and a message in words, uniqueness is
a named constraint, and fields carry the validators of what they hold.
"""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Now
from django.utils import timezone

from agents.secrets import EncryptedTextField
from core.models import (
    Initiative,
    Phase,
    Task,
    TimestampedModel,
    enum_check,
)
from core.text import shorten
from core.validators import (
    PATH_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    path_length,
    text_length,
    validate_json,
    validate_jsonl,
)

#: The most characters of a message or question a record's label shows.
LABEL_WIDTH = 60


def one_line(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with ``…``: a long message or
    question in a list, a dropdown or a refusal."""
    return shorten(text, width)


class Account(TimestampedModel):
    """A provider login the orchestrator rotates through round-robin.

    One row per real login: a provider has each email once, compared without regard to
    case (``a@x.com`` and ``A@x.com`` are one mailbox), so round-robin never hands the
    same login out twice as often as the others.
    """

    email = models.EmailField(max_length=320)
    provider = models.CharField(max_length=64, default="claude", db_default="claude")
    config_json = EncryptedTextField(
        null=True, blank=True, help_text="Serialized .claude.json, encrypted at rest."
    )
    credentials = EncryptedTextField(
        null=True, blank=True, help_text="Serialized .credentials.json, encrypted at rest."
    )
    is_exhausted = models.BooleanField(default=False, db_default=False)
    exhausted_until = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    sort_order = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "accounts"
        ordering = ["provider", "sort_order", "created_at", "id"]
        indexes = [
            models.Index(
                fields=["provider", "is_exhausted", "last_used_at"],
                name="accounts_rotation_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                "provider",
                Lower("email"),
                name="accounts_provider_email_unique",
                violation_error_code="account_email_taken",
                violation_error_message=(
                    "An account with this provider and email already exists (emails "
                    "compare without regard to case)."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.provider})"


class AgentStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    RUNNING = "running", "Running"
    WAITING_FOR_INPUT = "waiting_for_input", "Waiting for input"
    STOPPED = "stopped", "Stopped"
    CRASHED = "crashed", "Crashed"


class AgentMode(models.TextChoices):
    EXECUTE = "execute", "Execute"
    DISCUSS = "discuss", "Discuss"
    PLAN = "plan", "Plan"
    DETAIL = "detail", "Detail"
    REFINE = "refine", "Refine"


class Agent(TimestampedModel):
    name = models.CharField(max_length=100, help_text="Adjective-animal alias.")
    task = models.ForeignKey(
        Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="agents"
    )
    initiative = models.ForeignKey(
        Initiative, on_delete=models.SET_NULL, null=True, blank=True, related_name="agents"
    )
    session_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="CLI session id, for resume."
    )
    worktree_id = models.CharField(max_length=1024, help_text="Path to the agent's git worktree.")
    provider = models.CharField(max_length=64, default="claude", db_default="claude")
    account = models.ForeignKey(
        Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="agents"
    )
    status = models.CharField(
        max_length=20,
        choices=AgentStatus.choices,
        default=AgentStatus.IDLE,
        db_default=AgentStatus.IDLE,
    )
    mode = models.CharField(
        max_length=10,
        choices=AgentMode.choices,
        default=AgentMode.EXECUTE,
        db_default=AgentMode.EXECUTE,
    )
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    output_file_path = models.TextField(
        null=True, blank=True, max_length=PATH_MAX_LENGTH, validators=[path_length]
    )
    result = models.TextField(
        null=True,
        blank=True,
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length, validate_json],
        help_text="JSON.",
    )
    pending_questions = models.TextField(
        null=True,
        blank=True,
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length, validate_json],
        help_text="JSON.",
    )
    user_dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agents"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status"], name="agents_status_idx"),
            models.Index(fields=["session_id"], name="agents_session_id_idx"),
        ]
        constraints = [
            enum_check("agents", "status", AgentStatus),
            enum_check("agents", "mode", AgentMode),
            models.UniqueConstraint(
                fields=["name"],
                name="agents_name_unique",
                # The code AgentRepository.create retries a generated name on.
                violation_error_code="agent_name_taken",
                violation_error_message="An agent with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display().lower()})"


class AgentLogChunk(models.Model):
    """A raw JSONL chunk of an agent's output.

    ``agent_id`` is deliberately not a foreign key, so logs survive their agent's
    deletion. The key is an auto-incrementing integer (DOMAIN.md's event-log
    exception): it orders chunks exactly as they were written and is the cursor for
    paging, which a random text id could not be.
    """

    id = models.BigAutoField(primary_key=True)
    agent_id = models.CharField(max_length=22)
    agent_name = models.CharField(max_length=100, help_text="Snapshot of the name, for display.")
    session_number = models.IntegerField(
        default=1, db_default=1, help_text="1 on spawn, +1 on each resume."
    )
    content = models.TextField(
        max_length=TEXT_MAX_LENGTH,
        validators=[text_length, validate_jsonl],
        help_text="JSON Lines: one JSON document a line.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_default=Now(), editable=False)

    class Meta:
        db_table = "agent_log_chunks"
        ordering = ["id"]
        indexes = [
            # Serves both "chunks of an agent" and the ordered, cursor-paged read.
            models.Index(fields=["agent_id", "id"], name="agent_log_chunks_agent_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_name}, session {self.session_number}, chunk {self.id}"


class ParticipantType(models.TextChoices):
    AGENT = "agent", "Agent"
    USER = "user", "User"


class MessageType(models.TextChoices):
    QUESTION = "question", "Question"
    INFO = "info", "Info"
    ERROR = "error", "Error"
    RESPONSE = "response", "Response"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READ = "read", "Read"
    RESPONDED = "responded", "Responded"


class Message(TimestampedModel):
    """A message between an agent and a person, threaded through ``parent_message``.

    ``sender_id``/``recipient_id`` name an agent id when the type is ``agent`` and a
    user's id (or nothing, for "the team") when it is ``user``, so they are not
    foreign keys.
    """

    sender_type = models.CharField(max_length=8, choices=ParticipantType.choices)
    sender_id = models.CharField(max_length=64, null=True, blank=True)
    recipient_type = models.CharField(max_length=8, choices=ParticipantType.choices)
    recipient_id = models.CharField(max_length=64, null=True, blank=True)
    type = models.CharField(
        max_length=10,
        choices=MessageType.choices,
        default=MessageType.INFO,
        db_default=MessageType.INFO,
    )
    content = models.TextField(max_length=TEXT_MAX_LENGTH, validators=[text_length])
    requires_response = models.BooleanField(default=False, db_default=False)
    status = models.CharField(
        max_length=10,
        choices=MessageStatus.choices,
        default=MessageStatus.PENDING,
        db_default=MessageStatus.PENDING,
    )
    parent_message = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )

    class Meta:
        db_table = "messages"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["recipient_type", "status"], name="messages_recipient_idx"),
            models.Index(fields=["sender_type", "sender_id"], name="messages_sender_idx"),
        ]
        constraints = [
            enum_check("messages", "sender_type", ParticipantType),
            enum_check("messages", "recipient_type", ParticipantType),
            enum_check("messages", "type", MessageType),
            enum_check("messages", "status", MessageStatus),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} from {self._sender_words()}: {one_line(self.content)}"

    def _sender_words(self) -> str:
        if self.sender_type != ParticipantType.AGENT:
            return "a person"
        # The admin's and ``MessageRepository.awaiting_person``'s querysets annotate the
        # sender's name; otherwise it is looked up once.
        if "sender_name" not in self.__dict__:
            self.__dict__["sender_name"] = (
                Agent._default_manager.filter(pk=self.sender_id)
                .values_list("name", flat=True)
                .first()
            )
        return self.__dict__["sender_name"] or "an agent"


class ConversationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ANSWERED = "answered", "Answered"


class Conversation(TimestampedModel):
    """One agent's question to another, answered exactly once."""

    # Both served by the seed's named indexes below, not by second, automatic ones.
    from_agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="conversations_sent", db_index=False
    )
    to_agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="conversations_received", db_index=False
    )
    initiative = models.ForeignKey(
        Initiative, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    phase = models.ForeignKey(
        Phase, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task = models.ForeignKey(
        Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    question = models.TextField(max_length=TEXT_MAX_LENGTH, validators=[text_length])
    answer = models.TextField(
        null=True, blank=True, max_length=TEXT_MAX_LENGTH, validators=[text_length]
    )
    status = models.CharField(
        max_length=10,
        choices=ConversationStatus.choices,
        default=ConversationStatus.PENDING,
        db_default=ConversationStatus.PENDING,
    )

    class Meta:
        db_table = "conversations"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["to_agent", "status"], name="conversations_to_status_idx"),
            models.Index(fields=["from_agent"], name="conversations_from_idx"),
        ]
        constraints = [
            enum_check("conversations", "status", ConversationStatus),
            models.CheckConstraint(
                condition=Q(status=ConversationStatus.PENDING) | Q(answer__isnull=False),
                name="conversations_answered_has_answer",
                violation_error_code="conversation_answer_missing",
                violation_error_message="An answered conversation must have an answer.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_agent.name} asks {self.to_agent.name}: {one_line(self.question)}"
