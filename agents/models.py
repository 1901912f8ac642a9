"""Agents and what they produce: provider accounts, log chunks, messages, conversations,
and their runs: each attempt at a task, its git commits, the usage it reported, and the
budgets and limits that bound them (issue 21).

As in ``core.models``: every constraint has a code and a message in words, uniqueness is
a named constraint, and fields carry the validators of what they hold.
"""

from datetime import UTC, datetime

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Mod, Now
from django.db.models.lookups import Exact
from django.utils import timezone

from agents.secrets import EncryptedTextField
from core.models import (
    Initiative,
    Phase,
    Project,
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
    validate_git_commit,
    validate_json,
    validate_one_line,
)

#: The most characters of a message or question a record's label shows.
LABEL_WIDTH = 60


def one_line(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with ``…``: a long message or
    question in a list, a dropdown or a refusal."""
    return shorten(text, width)


class Provider(models.TextChoices):
    """The coding CLIs cw knows to rotate accounts for and run agents with: the ones a
    runner's ``[agents.<provider>]`` table may name. An account of any other provider
    would never be claimed (``clod`` would silently leave the rotation), so the services
    refuse it (``invalid_provider``) and the admin offers these only. The set is open
    (a runner may run any CLI), so the column is not an enum the database pins: adding
    a provider is adding it here, with no migration, and a row written before the rule
    stays readable (its form asks for a known provider)."""

    CLAUDE = "claude", "Claude Code"
    CODEX = "codex", "Codex CLI"
    GEMINI = "gemini", "Gemini CLI"


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
    sort_order = models.IntegerField(default=0, db_default=0, validators=[MinValueValidator(0)])

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
    name = models.CharField(
        max_length=100, validators=[validate_one_line], help_text="Adjective-animal alias."
    )
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
    """A chunk of an agent's output, as it printed it: any text (usually JSON Lines,
    Claude Code's ``stream-json``, but a line of plain text is kept as well). NUL and
    lone surrogates are stored escaped (``core.text.storable_text``).

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
        validators=[text_length],
        help_text="What the agent printed: any text, usually JSON Lines.",
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


# --- runs: every attempt at a task ------------------------------------------------------


class RunOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CRASHED = "crashed", "Crashed"
    LOST = "lost", "Lost (no heartbeat)"
    STOPPED = "stopped", "Stopped"
    BUDGET_STOPPED = "budget_stopped", "Stopped by a budget"
    CANCELLED = "cancelled", "Cancelled"


#: The bounds of a run's heartbeat timeout, in seconds: from 10 seconds to a day.
HEARTBEAT_TIMEOUT_SECONDS = (10, 86_400)

#: The usage totals a run, a usage report and a usage bucket each keep: tokens of the four
#: kinds a provider reports, and the cost in millionths of a US dollar (integers, so sums
#: are exact on both databases).
USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
)


def usage_field(help_text: str = "") -> models.BigIntegerField:
    """One usage total: a count from 0, 0 until something is reported."""
    return models.BigIntegerField(
        default=0, db_default=0, validators=[MinValueValidator(0)], help_text=help_text
    )


def usage_non_negative(table: str) -> models.CheckConstraint:
    """The database's refusal of a negative usage total of ``table``."""
    return models.CheckConstraint(
        condition=Q(**{f"{name}__gte": 0 for name in USAGE_FIELDS}),
        name=f"{table}_usage_non_negative",
        # The code UsageRepository.record gives the same refusal.
        violation_error_code="invalid_usage",
        violation_error_message=(
            "Token counts and cost are whole numbers of at least 0; one usage report "
            "carries at most 10^12 of each, and names only its model and those counts."
        ),
    )


class Run(TimestampedModel):
    """One attempt at one task by one agent session.

    A task's history is its runs, numbered by ``attempt`` from 1: a retry is a new run,
    never an overwrite. A run is *live* while its outcome is ``running``; a task and an
    agent hold at most one live run each, and ``ended_at`` is set exactly once the run
    has ended. The usage totals are the sums of the run's usage reports (``RunUsage``),
    kept current as they arrive. A failed run counts against its initiative's
    ``max_attempts`` until a person requeues its task (``attempts_reset_at``).
    """

    # Indexed by runs_task_attempt_unique (task, attempt), not by a second index.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs", db_index=False)
    agent = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    # Indexed by runs_account_live_idx (account, outcome).
    account = models.ForeignKey(
        Account,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
        db_index=False,
    )
    attempt = models.IntegerField(
        validators=[MinValueValidator(1)], help_text="1 for a task's first run, +1 for each retry."
    )
    session_number = models.IntegerField(
        default=1,
        db_default=1,
        validators=[MinValueValidator(1)],
        help_text="The agent's session: 1 on spawn, +1 on each resume.",
    )
    runner_name = models.CharField(max_length=255, help_text="The runner that holds the run.")
    runner_host = models.CharField(max_length=255, help_text="The machine the runner runs on.")
    pid = models.IntegerField(null=True, blank=True)
    worktree_path = models.TextField(
        null=True, blank=True, max_length=PATH_MAX_LENGTH, validators=[path_length]
    )
    session_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="The agent CLI's session id, for resume."
    )
    started_at = models.DateTimeField(default=timezone.now, db_default=Now())
    heartbeat_at = models.DateTimeField(default=timezone.now, db_default=Now())
    ended_at = models.DateTimeField(null=True, blank=True)
    heartbeat_timeout_seconds = models.IntegerField(
        default=120,
        db_default=120,
        validators=[
            MinValueValidator(HEARTBEAT_TIMEOUT_SECONDS[0]),
            MaxValueValidator(HEARTBEAT_TIMEOUT_SECONDS[1]),
        ],
        help_text="A live run whose last heartbeat is older than this is lost.",
    )
    outcome = models.CharField(
        max_length=16,
        choices=RunOutcome.choices,
        default=RunOutcome.RUNNING,
        db_default=RunOutcome.RUNNING,
    )
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(
        null=True, blank=True, max_length=TEXT_MAX_LENGTH, validators=[text_length]
    )
    summary = models.TextField(
        null=True, blank=True, max_length=TEXT_MAX_LENGTH, validators=[text_length]
    )
    input_tokens = usage_field()
    output_tokens = usage_field()
    cache_read_tokens = usage_field()
    cache_write_tokens = usage_field()
    cost_micros = usage_field("Cost in millionths of a US dollar.")
    attempts_reset_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When a person requeued its task with fresh attempts: a failure before then "
            "no longer counts against the initiative's max_attempts, nor holds the task back."
        ),
    )

    class Meta:
        db_table = "runs"
        ordering = ["started_at", "id"]
        indexes = [
            # The sweep: live runs, the longest silent first.
            models.Index(fields=["outcome", "heartbeat_at"], name="runs_sweep_idx"),
            # Live runs per account and per runner, for their limits.
            models.Index(fields=["account", "outcome"], name="runs_account_live_idx"),
            models.Index(fields=["runner_name", "outcome"], name="runs_runner_live_idx"),
        ]
        constraints = [
            enum_check("runs", "outcome", RunOutcome),
            models.UniqueConstraint(
                fields=["task", "attempt"],
                name="runs_task_attempt_unique",
                violation_error_code="run_attempt_taken",
                violation_error_message="This task already has a run with this attempt number.",
            ),
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(outcome=RunOutcome.RUNNING),
                name="runs_one_live_run_per_task",
                violation_error_code="task_has_live_run",
                violation_error_message="This task already has a live run.",
            ),
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(outcome=RunOutcome.RUNNING),
                name="runs_one_live_run_per_agent",
                violation_error_code="agent_has_live_run",
                violation_error_message="This agent already holds a live run.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(outcome=RunOutcome.RUNNING, ended_at__isnull=True)
                    | (~Q(outcome=RunOutcome.RUNNING) & Q(ended_at__isnull=False))
                ),
                name="runs_ended_exactly_when_over",
                violation_error_code="invalid_ended_at",
                violation_error_message=(
                    "A running run has no end time, and a run that is over has one."
                ),
            ),
            models.CheckConstraint(
                condition=Q(attempt__gte=1),
                name="runs_attempt_positive",
                violation_error_code="invalid_attempt",
                violation_error_message="The attempt number must be a whole number of at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(session_number__gte=1),
                name="runs_session_number_positive",
                violation_error_code="invalid_session_number",
                # The code a log chunk's session number is refused with, too.
                violation_error_message=(
                    "A session number must be a whole number from 1 to 2147483647."
                ),
            ),
            models.CheckConstraint(
                condition=Q(
                    heartbeat_timeout_seconds__gte=HEARTBEAT_TIMEOUT_SECONDS[0],
                    heartbeat_timeout_seconds__lte=HEARTBEAT_TIMEOUT_SECONDS[1],
                ),
                name="runs_heartbeat_timeout_in_range",
                violation_error_code="invalid_heartbeat_timeout_seconds",
                violation_error_message=(
                    f"The heartbeat timeout must be a whole number of seconds from "
                    f"{HEARTBEAT_TIMEOUT_SECONDS[0]} to {HEARTBEAT_TIMEOUT_SECONDS[1]:,} (a day)."
                ),
            ),
            usage_non_negative("runs"),
        ]

    def __str__(self) -> str:
        """``attempt 2 of Add the login form (running)``."""
        task = one_line(self.task.name) if self.task_id else "a task"
        return f"attempt {self.attempt} of {task} ({self.get_outcome_display().lower()})"

    @property
    def is_live(self) -> bool:
        return self.outcome == RunOutcome.RUNNING


class RunCommit(TimestampedModel):
    """The git commit a run started from and ended at, in one project of its initiative."""

    # Indexed as the leading column of the unique pair below.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="commits", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="run_commits")
    start_commit = models.CharField(
        max_length=64, null=True, blank=True, validators=[validate_git_commit]
    )
    end_commit = models.CharField(
        max_length=64, null=True, blank=True, validators=[validate_git_commit]
    )

    class Meta:
        db_table = "run_commits"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "project"],
                name="run_commits_run_project_unique",
                violation_error_code="run_commit_taken",
                violation_error_message="This run already has its commits in this project.",
            ),
        ]

    def __str__(self) -> str:
        start = (self.start_commit or "?")[:12]
        end = (self.end_commit or "…")[:12]
        return f"{self.project.name}: {start} → {end}"


class RunUsage(models.Model):
    """One usage report of a run, for one model, as the runner sent it.

    Append-only and many per run, so its key is an auto-incrementing integer, like the
    log's chunks. Its sums live in the run's totals and in ``UsageBucket``, which
    budgets read: nothing sums these rows on a hot path.
    """

    id = models.BigAutoField(primary_key=True)
    # Indexed by run_usage_run_idx (run, reported_at).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="usage", db_index=False)
    model = models.CharField(max_length=255, blank=True, default="", db_default="")
    input_tokens = usage_field()
    output_tokens = usage_field()
    cache_read_tokens = usage_field()
    cache_write_tokens = usage_field()
    cost_micros = usage_field("Cost in millionths of a US dollar.")
    reported_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "run_usage"
        verbose_name_plural = "run usage"
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "reported_at"], name="run_usage_run_idx")]
        constraints = [usage_non_negative("run_usage")]

    def __str__(self) -> str:
        tokens = self.input_tokens + self.output_tokens
        model = self.model or "an unnamed model"
        return f"{tokens:,} tokens of {model} at {self.reported_at:%Y-%m-%d %H:%M}"


class UsageScope(models.TextChoices):
    ALL = "all", "Everything"
    INITIATIVE = "initiative", "Initiative"
    PHASE = "phase", "Phase"
    TASK = "task", "Task"
    ACCOUNT = "account", "Account"


#: The length of a usage bucket: usage is summed per scope and per 10 minutes.
USAGE_BUCKET_SECONDS = 600
#: The ``bucket_start`` of a scope's all-time row (the sum of every bucket).
ALL_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def scope_id_matches_type(table: str, all_scope: str) -> models.CheckConstraint:
    """A scope of everything has no id; any other scope names its record."""
    return models.CheckConstraint(
        condition=Q(scope_type=all_scope, scope_id="")
        | (~Q(scope_type=all_scope) & ~Q(scope_id="")),
        name=f"{table}_scope_id_matches_type",
        violation_error_code="invalid_scope_id",
        violation_error_message=(
            "A scope of everything has no id; any other scope names its record."
        ),
    )


class UsageBucket(models.Model):
    """Usage summed for one scope over one 10-minute bucket (UTC), or over all time
    (``bucket_start`` = ``ALL_TIME``), so a budget over all time or a rolling window
    reads a bounded number of rows, never the usage reports."""

    scope_type = models.CharField(max_length=16, choices=UsageScope.choices)
    scope_id = models.CharField(max_length=64, blank=True, help_text="Empty for everything.")
    bucket_start = models.DateTimeField(
        help_text="The start of the 10-minute bucket, UTC; 1970-01-01 for all time."
    )
    input_tokens = usage_field()
    output_tokens = usage_field()
    cache_read_tokens = usage_field()
    cache_write_tokens = usage_field()
    cost_micros = usage_field("Cost in millionths of a US dollar.")

    class Meta:
        db_table = "usage_buckets"
        ordering = ["scope_type", "scope_id", "bucket_start"]
        constraints = [
            enum_check("usage_buckets", "scope_type", UsageScope),
            models.UniqueConstraint(
                fields=["scope_type", "scope_id", "bucket_start"],
                name="usage_buckets_scope_bucket_unique",
                violation_error_code="usage_bucket_taken",
                violation_error_message="This scope already has a row for this bucket.",
            ),
            scope_id_matches_type("usage_buckets", UsageScope.ALL),
            usage_non_negative("usage_buckets"),
        ]

    def __str__(self) -> str:
        when = (
            "all time" if self.bucket_start == ALL_TIME else f"{self.bucket_start:%Y-%m-%d %H:%M}"
        )
        scope = self.scope_type if not self.scope_id else f"{self.scope_type} {self.scope_id}"
        return f"usage of {scope}, {when}"


class BudgetMetric(models.TextChoices):
    TOKENS = "tokens", "Tokens (input, output, cache read and cache write)"
    COST = "cost", "Cost (millionths of a US dollar)"


#: The bounds of a budget's rolling window, in seconds: from one usage bucket (10
#: minutes) to a year, a whole number of buckets.
BUDGET_WINDOW_SECONDS = (USAGE_BUCKET_SECONDS, 31_536_000)


class Budget(TimestampedModel):
    """A cap on what runs may spend in a scope (everything, an initiative, a phase, a task
    or an account), in tokens or in cost, over all time or a rolling window, with a
    warning once ``warn_percent`` of it is spent."""

    scope_type = models.CharField(max_length=16, choices=UsageScope.choices)
    scope_id = models.CharField(
        max_length=64, blank=True, help_text="Empty for everything; else the record's id."
    )
    metric = models.CharField(max_length=8, choices=BudgetMetric.choices)
    limit = models.BigIntegerField(
        validators=[MinValueValidator(1)],
        help_text="Tokens, or millionths of a US dollar, per window.",
    )
    window_seconds = models.IntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(BUDGET_WINDOW_SECONDS[0]),
            MaxValueValidator(BUDGET_WINDOW_SECONDS[1]),
        ],
        help_text="A rolling window (a multiple of 600 seconds); empty for all time.",
    )
    warn_percent = models.IntegerField(
        default=80,
        db_default=80,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Warn once this share of the limit is spent.",
    )
    active = models.BooleanField(default=True, db_default=True)
    note = models.CharField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        db_table = "budgets"
        ordering = ["scope_type", "scope_id", "created_at", "id"]
        indexes = [models.Index(fields=["scope_type", "scope_id"], name="budgets_scope_idx")]
        constraints = [
            enum_check("budgets", "scope_type", UsageScope),
            enum_check("budgets", "metric", BudgetMetric),
            scope_id_matches_type("budgets", UsageScope.ALL),
            models.CheckConstraint(
                condition=Q(limit__gte=1),
                name="budgets_limit_positive",
                violation_error_code="invalid_budget_limit",
                violation_error_message="A budget's limit must be a whole number of at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__isnull=True)
                | (
                    Q(
                        window_seconds__gte=BUDGET_WINDOW_SECONDS[0],
                        window_seconds__lte=BUDGET_WINDOW_SECONDS[1],
                    )
                    & Q(Exact(Mod("window_seconds", USAGE_BUCKET_SECONDS), 0))
                ),
                name="budgets_window_in_buckets",
                violation_error_code="invalid_window_seconds",
                violation_error_message=(
                    "A budget's window must be empty (all time) or a whole number of "
                    "10-minute buckets (600 seconds) from 10 minutes to a year."
                ),
            ),
            models.CheckConstraint(
                condition=Q(warn_percent__gte=1, warn_percent__lte=100),
                name="budgets_warn_percent_in_range",
                violation_error_code="invalid_warn_percent",
                violation_error_message="The warning threshold must be a percentage from 1 to 100.",
            ),
        ]

    def __str__(self) -> str:
        """``1,000,000 tokens over 5 hours on initiative <id>``."""
        amount = (
            f"{self.limit:,} tokens"
            if self.metric == BudgetMetric.TOKENS
            else (f"${self.limit / 1_000_000:,.2f}")
        )
        window = "all time" if self.window_seconds is None else _duration(self.window_seconds)
        scope = (
            "everything"
            if self.scope_type == UsageScope.ALL
            else (f"{self.scope_type} {self.scope_id}")
        )
        return f"{amount} over {window} on {scope}"


def _duration(seconds: int) -> str:
    """``5 hours``, ``7 days``, ``90 minutes``: the largest unit that divides exactly."""
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


class LimitScope(models.TextChoices):
    ALL = "all", "Everything"
    INITIATIVE = "initiative", "Initiative"
    ACCOUNT = "account", "Account"
    RUNNER = "runner", "Runner"


class RunLimit(TimestampedModel):
    """The most runs live at once: overall, in an initiative, on an account or on a
    runner (named by ``scope_id``: an id, or the runner's name)."""

    scope_type = models.CharField(max_length=16, choices=LimitScope.choices)
    scope_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="Empty for everything; an initiative's or account's id, or a runner's name.",
    )
    max_live = models.IntegerField(
        validators=[MinValueValidator(0)], help_text="0 holds every new run back."
    )

    class Meta:
        db_table = "run_limits"
        ordering = ["scope_type", "scope_id"]
        constraints = [
            enum_check("run_limits", "scope_type", LimitScope),
            models.UniqueConstraint(
                fields=["scope_type", "scope_id"],
                name="run_limits_scope_unique",
                violation_error_code="run_limit_taken",
                violation_error_message="This scope already has a limit; change that one.",
            ),
            scope_id_matches_type("run_limits", LimitScope.ALL),
            models.CheckConstraint(
                condition=Q(max_live__gte=0),
                name="run_limits_max_live_non_negative",
                violation_error_code="invalid_max_live",
                violation_error_message=(
                    "The most live runs must be a whole number of at least 0."
                ),
            ),
        ]

    def __str__(self) -> str:
        scope = (
            "in all"
            if self.scope_type == LimitScope.ALL
            else (f"on {self.scope_type} {self.scope_id}")
        )
        return f"at most {self.max_live} live runs {scope}"
