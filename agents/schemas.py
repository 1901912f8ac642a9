"""Input, output and patch schemas of the agents API: accounts, agents, logs, messages
and conversations.

Secrets (``config_json``, ``credentials``) are write-only: no output schema has them
except ``AccountClaimOut``, which only the claim endpoint returns.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    WithJsonSchema,
    field_validator,
)

from agents.logformat import RecordKind
from agents.models import (
    BUDGET_WINDOW_SECONDS,
    HEARTBEAT_TIMEOUT_SECONDS,
    USAGE_BUCKET_SECONDS,
    AgentMode,
    AgentStatus,
    BudgetMetric,
    ConversationStatus,
    LimitScope,
    MessageStatus,
    MessageType,
    ParticipantType,
    Provider,
    RunOutcome,
    UsageScope,
)
from agents.repositories.runs import MAX_BUDGET_LIMIT, MAX_REPORTED, MAX_USAGE_BATCH
from agents.services.attempts import (
    ATTEMPT_TEXT_CHARS,
    LOG_LINE_CHARS,
    LOG_TAIL_CHARS,
    LOG_TAIL_LINES,
    MAX_ATTEMPTS_LISTED,
)
from agents.services.logs import MAX_LOG_BATCH
from agents.services.take_next import DEFAULT_HEARTBEAT_TIMEOUT, MAX_PROVIDERS
from core.live import MAX_WAIT_SECONDS
from core.repositories.pagination import DEFAULT_KEYSET_PAGE_SIZE, MAX_KEYSET_PAGE_SIZE
from core.schemas import (
    PAGE_BYTES,
    FromRecord,
    Id,
    InputSchema,
    Int32,
    NameText,
    NonBlankText,
    OrderInt32,
    PageParams,
    TaskOut,
    Text,
)
from core.schemas.base import (
    JSON_RULES,
    NO_NUL_PATTERN,
    RAW_NOT_BLANK_PATTERN,
    TEXT_NOT_BLANK_PATTERN,
    DateTimeText,
    Documented,
    PositiveInt32,
    _integral_float_to_int,
)
from core.schemas.base import JsonValue as BaseJsonValue
from core.validators import TEXT_MAX_LENGTH

#: An email address as Django's ``validate_email`` takes it (``invalid_email`` otherwise):
#: the document says ``format: email``, which every address it accepts meets.
Email = Annotated[NonBlankText, Field(min_length=3, max_length=320), Documented(format="email")]

#: A secret: JSON text (400 ``invalid_json`` otherwise), which the document says with
#: ``contentMediaType`` (JSON Schema has no way to check it).
JsonText = Annotated[
    Text,
    Documented(
        content_media_type="application/json",
        description="JSON text (400 `invalid_json` otherwise).",
    ),
]

#: What the document says of a provider: one cw knows (``agents.models.Provider``).
PROVIDER_DESCRIPTION = "One of the providers cw knows to run (`agents.models.Provider`)."

#: The default of a patch field that may be left out but never sent as ``null``: the
#: field stays required-when-sent (not Optional), and a patch applies only the fields set.
NOT_SENT: Any = None


class AccountIn(InputSchema):
    email: Email
    provider: Provider = Field(Provider.CLAUDE, description=PROVIDER_DESCRIPTION)
    config_json: JsonText | None = Field(
        None, description="Serialized .claude.json (write-only; stored encrypted)."
    )
    credentials: JsonText | None = Field(
        None, description="Serialized .credentials.json (write-only; stored encrypted)."
    )
    sort_order: OrderInt32 = 0


class AccountPatch(InputSchema):
    """Only the fields sent change; send ``null`` for a secret to clear it."""

    email: Email = NOT_SENT
    provider: Provider = Field(NOT_SENT, description=PROVIDER_DESCRIPTION)
    config_json: JsonText | None = None
    credentials: JsonText | None = None
    sort_order: OrderInt32 = NOT_SENT


class AccountOut(Schema):
    id: str
    email: str
    provider: str
    has_config: bool = Field(description="Whether config_json is set (never its value).")
    has_credentials: bool = Field(description="Whether credentials are set (never their value).")
    is_exhausted: bool
    exhausted_until: datetime | None
    last_used_at: datetime | None
    sort_order: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_has_config(obj) -> bool:
        return _is_set(obj, "config_json", "config_is_set")

    @staticmethod
    def resolve_has_credentials(obj) -> bool:
        return _is_set(obj, "credentials", "credentials_are_set")


def _is_set(account, field: str, annotation: str) -> bool:
    """Whether a secret is set, without loading it.

    A value set in this request (or loaded by a claim) is in the instance's ``__dict__``;
    otherwise the repository's queryset annotated the answer and left the column unread.
    """
    if field in account.__dict__:
        return account.__dict__[field] is not None
    return getattr(account, annotation)


class AccountClaimOut(AccountOut):
    """A claimed account, with the secrets the agent needs to run under it."""

    config_json: str | None
    credentials: str | None


class AccountClaimIn(InputSchema):
    provider: NonBlankText = Field("claude", max_length=64)


class AccountExhaustIn(InputSchema):
    until: DateTimeText = Field(
        description=(
            "When the account may be used again (with a zone). A time more than a year "
            "away parks it for a year; a time already past leaves it available at once "
            "(released, if it was parked)."
        )
    )


class ReleasedOut(Schema):
    released: int


# --- agents --------------------------------------------------------------------------------

#: Any JSON value from a client (stored as JSON text), storable on both databases.
JsonValue = BaseJsonValue


#: Text a client writes into a long text column (at most 1,000,000 characters).
def _refuse_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: A message, question or answer: kept as sent (its white space is the sender's), refused
#: when blank (to Python's ``strip``, as the repositories' ``require_text``), its length
#: counted as sent, as the document's ``maxLength`` counts it.
LongText = Annotated[
    Text,
    Field(min_length=1, max_length=TEXT_MAX_LENGTH),
    AfterValidator(_refuse_blank),
    Documented(pattern=TEXT_NOT_BLANK_PATTERN),
]

AGENT_NAME_MAX_LENGTH = 100


#: The longest path of an agent's worktree (its column's width).
AGENT_WORKTREE_MAX_LENGTH = 1024


class AgentRegisterIn(InputSchema):
    worktree_id: NonBlankText = Field(
        max_length=AGENT_WORKTREE_MAX_LENGTH, description="Path to the agent's git worktree."
    )
    name: NameText | None = Field(
        None,
        max_length=AGENT_NAME_MAX_LENGTH,
        description="Unique name; generated (``brave-otter``) when absent.",
    )
    provider: Provider = Field(Provider.CLAUDE, description=PROVIDER_DESCRIPTION)
    mode: AgentMode | None = Field(None, description="Defaults to execute.")
    task_id: Id | None = Field(None, description="The task it works on.")
    initiative_id: Id | None = Field(None, description="Defaults to the task's initiative.")
    claim_account: bool = Field(
        False,
        description=(
            "Claim the provider's next available account in the same call and answer it "
            "with its secrets: a tool's token only (a person gets 403 tool_token_required)."
        ),
    )


class AgentOut(FromRecord):
    id: str
    name: str
    task_id: str | None
    initiative_id: str | None
    session_id: str | None
    worktree_id: str
    provider: str
    account_id: str | None
    status: AgentStatus
    mode: AgentMode
    pid: int | None
    exit_code: int | None
    output_file_path: str | None
    result: Any = Field(description="What the agent produced (JSON), or null.")
    pending_questions: Any = Field(description="Its open questions (JSON), or null.")
    user_dismissed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_validator("result", "pending_questions", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class AgentRegisteredOut(Schema):
    agent: AgentOut
    account: AccountClaimOut | None = Field(
        None, description="The account claimed for it, with its secrets (tools only)."
    )


class AgentRunningIn(InputSchema):
    pid: Int32 | None = None
    session_id: NonBlankText | None = Field(None, max_length=255, description="CLI session id.")


class AgentWaitingIn(InputSchema):
    pending_questions: JsonValue = Field(
        description=f"The questions it waits on (JSON). {JSON_RULES}"
    )


class AgentFinishedIn(InputSchema):
    exit_code: Int32 | None = None
    result: JsonValue = Field(None, description=f"What it produced (JSON). {JSON_RULES}")


# --- logs ----------------------------------------------------------------------------------


#: The content of a log chunk: any text the agent printed, not blank. NUL and lone
#: surrogates are taken and stored escaped (``core.text.storable_text``), not refused.
RawLogText = Annotated[
    str,
    Field(min_length=1, max_length=TEXT_MAX_LENGTH),
    AfterValidator(_refuse_blank),
    Documented(pattern=RAW_NOT_BLANK_PATTERN),
]


class LogChunkIn(InputSchema):
    content: RawLogText = Field(
        description=(
            "What the agent printed: any text, usually JSON Lines (Claude Code's "
            "`stream-json`), plain lines too; not blank. NUL is stored as `\\x00` and a "
            "lone surrogate as `\\udXXX`."
        )
    )
    session_number: PositiveInt32 = Field(1, description="1 on spawn, +1 on each resume.")


class LogAppendedOut(Schema):
    count: int = Field(description="How many chunks were appended.")
    ids: list[int] = Field(
        description=(
            "The ids of exactly the chunks appended, in the batch's order (ascending). "
            "Other agents' chunks may take ids between them."
        )
    )
    first_id: int = Field(
        description=(
            "The first of `ids`. Kept for older clients: the range `first_id..last_id` "
            "may include other agents' chunks, so use `ids`."
        )
    )
    last_id: int = Field(description="The last of `ids` (see `first_id`).")


class LogChunkOut(FromRecord):
    id: int = Field(description="Position in write order; the cursor.")
    agent_id: str
    agent_name: str
    session_number: int
    content: str
    created_at: datetime


class LogPageOut(Schema):
    items: list[LogChunkOut] = Field(
        description=(
            f"The chunks after the cursor, oldest first: at most `limit`, and at most "
            f"{PAGE_BYTES} of content (the page stops before the chunk that would pass "
            "it; it holds one chunk at least)."
        )
    )
    next_after: int | None = Field(
        description="The last item's id, or the ``after`` given when the page is empty: "
        "the ``after`` of the next page."
    )
    more: bool = Field(
        description=(
            "True when there may be chunks after this page (it holds `limit` chunks, or "
            "stopped at the byte cap): read on with `next_after`. False: the log ended "
            "within this page."
        )
    )


class LogFollowParams(Schema):
    after: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="The id of the last chunk seen; `Last-Event-ID` wins.",
    )
    session_number: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this session.")


class QuestionFollowParams(Schema):
    after: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description=(
            "The event-feed id of the last question seen; `Last-Event-ID` wins. Without "
            "either, the stream starts with the questions pending now."
        ),
    )


class LogRecordOut(Schema):
    """One record of an agent's output as a person reads it: a JSON line of Claude
    Code's ``stream-json`` by its kind, any other line as plain ``text``."""

    chunk_id: int = Field(description="The chunk it is read from (the log's cursor).")
    session_number: int
    created_at: datetime
    kind: RecordKind = Field(
        description=(
            "`text` for a line that is not JSON (printed as it is); `other` for JSON of a "
            "record type not known."
        )
    )
    label: str = Field(description="What a person calls it (`Assistant`, `Bash`, `Output`…).")
    summary: str = Field(description="The record in one line.")
    text: str | None = Field(None, description="What the assistant said, or the plain line.")
    body: str | None = Field(None, description="A tool's output or input, cut at 4,000.")
    omitted: int | None = Field(None, description="Characters of `body` left out.")
    lines: int | None = Field(None, description="Lines of a tool's output.")
    tool: str | None = Field(None, description="The tool called.")
    input: str | None = Field(None, description="The tool call's most telling input.")
    subtype: str | None = None
    facts: list[str] | None = Field(None, description="A result's duration, cost, turns.")
    is_error: bool | None = None
    turns: int | None = None


class LogRecordsPageOut(Schema):
    items: list[LogRecordOut] = Field(
        description="The records of the page's chunks, in order (a chunk may hold several)."
    )
    next_after: int | None = Field(
        description="The last chunk's id, or the ``after`` given when the page is empty."
    )
    more: bool = Field(description="Whether chunks follow this page.")


class LogReadParams(Schema):
    after: int | None = Field(
        None, ge=0, le=2**63 - 1, description="The id of the last chunk seen."
    )
    limit: int = Field(
        DEFAULT_KEYSET_PAGE_SIZE,
        ge=1,
        le=MAX_KEYSET_PAGE_SIZE,
        description=(
            f"Chunks per page (at most {MAX_KEYSET_PAGE_SIZE}). A page also holds at most "
            f"{PAGE_BYTES} of content, so it may hold fewer chunks: `more` says so."
        ),
    )
    session_number: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this session.")


class LogSessionParams(Schema):
    session_number: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this session.")


class LogSessionsOut(Schema):
    count: int = Field(description="The highest session number (0 without a log).")


#: The OpenAPI request body of an append: a JSON array or NDJSON text.
LOG_APPEND_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        f"At most {MAX_LOG_BATCH} chunks and 2.5 MB: a JSON array of chunks, or NDJSON "
        "text (each line one chunk; its session from `?session_number=`)."
    ),
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LOG_BATCH,
                # A chunk refused otherwise than by a field with a code of its own.
                "items": {**LogChunkIn.model_json_schema(), "x-error-code": "invalid_log_chunk"},
            }
        },
        "application/x-ndjson": {
            "schema": {
                "type": "string",
                "description": (
                    "What the agent printed, one chunk a line (blank lines skipped): any "
                    "text; bytes that are not UTF-8 are stored as `\\xNN`, NUL as `\\x00`."
                ),
            }
        },
    },
}


# --- messages ------------------------------------------------------------------------------


def _names_the_agent(role: str) -> dict[str, Any]:
    """JSON Schema: a message whose ``<role>_type`` is ``agent`` names it in ``<role>_id``."""
    return {
        "if": {"properties": {f"{role}_type": {"const": "agent"}}, "required": [f"{role}_type"]},
        "then": {"required": [f"{role}_id"], "properties": {f"{role}_id": {"type": "string"}}},
    }


#: What the document says of a sender's or recipient's id.
PARTICIPANT_ID = (
    "With type `agent`: the id of an existing agent, required (400 "
    "`message_{role}_required` when left out, 404 `agent_not_found` when it names no "
    "agent). With type `user`: the id of an existing person (404 `person_not_found` "
    "otherwise), or null for the team."
)


class MessageIn(InputSchema):
    # A message from or to an agent names it (400 message_sender_required or
    # message_recipient_required otherwise).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"allOf": [_names_the_agent("sender"), _names_the_agent("recipient")]},
    )

    sender_type: ParticipantType
    sender_id: Id | None = Field(None, description=PARTICIPANT_ID.format(role="sender"))
    recipient_type: ParticipantType
    recipient_id: Id | None = Field(None, description=PARTICIPANT_ID.format(role="recipient"))
    type: MessageType = MessageType.INFO
    content: LongText
    requires_response: bool = False


class MessageReplyIn(InputSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_names_the_agent("sender"))

    sender_type: ParticipantType
    sender_id: Id | None = Field(None, description=PARTICIPANT_ID.format(role="sender"))
    content: LongText


class MessageOut(FromRecord):
    id: str
    sender_type: ParticipantType
    sender_id: str | None
    recipient_type: ParticipantType
    recipient_id: str | None
    type: MessageType
    content: str
    requires_response: bool
    status: MessageStatus
    parent_message_id: str | None
    created_at: datetime
    updated_at: datetime


# --- conversations -------------------------------------------------------------------------


class ConversationIn(InputSchema):
    from_agent_id: Id
    to_agent_id: Id
    question: LongText
    initiative_id: Id | None = None
    phase_id: Id | None = None
    task_id: Id | None = None


class ConversationAnswerIn(InputSchema):
    answer: LongText


class ConversationOut(FromRecord):
    id: str
    from_agent_id: str
    to_agent_id: str
    initiative_id: str | None
    phase_id: str | None
    task_id: str | None
    question: str
    answer: str | None
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime


class PendingQuestionsParams(Schema):
    wait: float = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        allow_inf_nan=False,
        description=(
            f"Seconds to wait for a question when none is pending (at most "
            f"{MAX_WAIT_SECONDS}); the answer comes as soon as one arrives."
        ),
    )


# --- runs ----------------------------------------------------------------------------------

#: A count one usage report carries (tokens of one kind, or micro-dollars): a whole
#: number (``12`` or ``12.0``, as ``Int32``) from 0 to 10^12.
UsageCount = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_REPORTED),
    BeforeValidator(_integral_float_to_int),
]
#: A full git commit name: 40 or 64 lower-case hex digits (an abbreviation names no
#: commit for good), as ``core.validators.validate_git_commit`` takes it.
GIT_COMMIT_PATTERN = "^[0-9a-f]{40}([0-9a-f]{24})?$"
GitCommit = Annotated[str, Field(pattern=GIT_COMMIT_PATTERN)]
#: Project id → commit. The schema states the rule for every key (``propertyNames``:
#: an id, no NUL) and every value, so a key the server refuses is one the schema
#: forbids (pydantic alone would document the key's pattern as ``patternProperties``,
#: which leaves other keys open).
CommitsByProject = Annotated[
    dict[Id, GitCommit],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"maxLength": 64, "pattern": NO_NUL_PATTERN},
            "additionalProperties": {"type": "string", "pattern": GIT_COMMIT_PATTERN},
        }
    ),
]
#: The outcomes a runner finishes a run with (the others are cw's decisions).
FinishOutcome = Literal["succeeded", "failed", "crashed", "stopped"]
#: The name of a runner or of its host.
RunnerName = Annotated[NonBlankText, Field(max_length=255)]


class UsageIn(InputSchema):
    """One usage report for one model: counts since the previous report."""

    model: Text = Field("", max_length=255, description="The model the usage is of.")
    input_tokens: UsageCount = 0
    output_tokens: UsageCount = 0
    cache_read_tokens: UsageCount = 0
    cache_write_tokens: UsageCount = 0
    cost_micros: UsageCount = Field(0, description="Cost in millionths of a US dollar.")


#: A batch of usage reports (what one heartbeat or finish carries).
UsageBatch = Annotated[list[UsageIn], Field(max_length=MAX_USAGE_BATCH)]


class TakeNextIn(InputSchema):
    runner_name: RunnerName = Field(description="The runner asking; it holds the run.")
    runner_host: RunnerName = Field(description="The machine the runner runs on.")
    providers: list[Annotated[NonBlankText, Field(max_length=64)]] = Field(
        min_length=1,
        max_length=MAX_PROVIDERS,
        description=(
            "The providers the runner can run, in its order of preference; each needs an "
            "account in cw (400 `unknown_provider` otherwise)."
        ),
    )
    heartbeat_timeout_seconds: (
        Annotated[
            int,
            Field(strict=True, ge=HEARTBEAT_TIMEOUT_SECONDS[0], le=HEARTBEAT_TIMEOUT_SECONDS[1]),
            BeforeValidator(_integral_float_to_int),
        ]
        | None
    ) = Field(
        None,
        description=(
            f"The run is lost when no heartbeat came for this long (default "
            f"{DEFAULT_HEARTBEAT_TIMEOUT})."
        ),
    )
    wait: float = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        allow_inf_nan=False,
        description=(
            f"Seconds to wait for a task when nothing fits now (at most {MAX_WAIT_SECONDS}); "
            "the answer comes as soon as one does."
        ),
    )


class RunOut(FromRecord):
    id: str
    task_id: str
    agent_id: str | None
    account_id: str | None
    attempt: int = Field(description="1 for the task's first run, +1 for each retry.")
    session_number: int
    runner_name: str
    runner_host: str
    pid: int | None
    worktree_path: str | None
    session_id: str | None
    started_at: datetime
    heartbeat_at: datetime
    ended_at: datetime | None
    heartbeat_timeout_seconds: int
    outcome: RunOutcome
    exit_code: int | None
    error: str | None
    summary: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_micros: int = Field(description="Cost in millionths of a US dollar.")
    created_at: datetime
    updated_at: datetime


class RunCommitOut(FromRecord):
    """Where a run started and ended in one project of its initiative."""

    project_id: str
    start_commit: str | None
    end_commit: str | None


class RunDetailOut(RunOut):
    """A run with the commits it recorded (start and end, per project)."""

    commits: list[RunCommitOut] = Field(
        description="Per project: the commit the run started from and the one it ended at."
    )

    @field_validator("commits", mode="before")
    @classmethod
    def _all_commits(cls, value: Any) -> Any:
        return list(value.all()) if hasattr(value, "all") else value


class RunAttemptOut(Schema):
    """An earlier attempt at a task, as the next attempt is told about it."""

    run_id: str
    attempt: int = Field(description="1 for the task's first run, +1 for each retry.")
    outcome: RunOutcome
    exit_code: int | None
    error: str | None = Field(
        max_length=ATTEMPT_TEXT_CHARS,
        description=f"Why it ended, its first {ATTEMPT_TEXT_CHARS:,} characters (then …).",
    )
    summary: str | None = Field(
        max_length=ATTEMPT_TEXT_CHARS,
        description=f"What it reported, its first {ATTEMPT_TEXT_CHARS:,} characters.",
    )
    started_at: datetime
    ended_at: datetime | None
    log_tail: list[Annotated[str, Field(max_length=LOG_LINE_CHARS)]] = Field(
        max_length=LOG_TAIL_LINES,
        description=(
            f"The last non-blank lines its agent printed in this run's session: at most "
            f"{LOG_TAIL_LINES} lines from the log's last {LOG_TAIL_CHARS:,} characters, "
            f"each at most {LOG_LINE_CHARS} (a longer line keeps its end, after …)."
        ),
    )


#: A task's earlier attempts: its last ones that are over, oldest first.
RunAttempts = Annotated[list[RunAttemptOut], Field(max_length=MAX_ATTEMPTS_LISTED)]


class TakeNextOut(Schema):
    task: TaskOut
    agent: AgentOut
    run: RunOut
    run_token: str = Field(
        description=(
            "The run's own API token in clear, given once (only its hash is kept): the runner "
            "hands it to the agent as `CW_RUN_TOKEN`. It lets the agent do only what its own "
            "agent may (ask and answer questions, message people, propose changes on its "
            "task's initiative, read its task's context, append and read its own log, read "
            "its own task, agent and run): any other operation, or one naming another agent, "
            "task, run or initiative, is 403 `run_token_out_of_scope`. It stops working when "
            "the run ends, however it ends: a request with it is then 401."
        )
    )
    account: AccountClaimOut = Field(description="The account claimed, with its secrets.")
    attempts: RunAttempts = Field(
        description=(
            f"What the task's earlier attempts ended with (the last "
            f"{MAX_ATTEMPTS_LISTED}, oldest first), for the prompt: a retry starts from "
            "what failed."
        )
    )


class RunResumeIn(InputSchema):
    runner_name: RunnerName = Field(description="The runner that holds the run (restarted).")


class RunHeartbeatIn(InputSchema):
    runner_name: RunnerName = Field(description="The runner that holds the run.")
    usage: UsageBatch = Field(
        default_factory=list,
        description=f"The usage since the last heartbeat (at most {MAX_USAGE_BATCH} reports).",
    )
    pid: Int32 | None = None
    session_id: NonBlankText | None = Field(None, max_length=255, description="CLI session id.")


class RunReportIn(InputSchema):
    """What the runner made of its run; only the fields sent change."""

    runner_name: RunnerName = Field(description="The runner that holds the run.")
    pid: PositiveInt32 | None = Field(None, description="The agent process's id.")
    worktree_path: NonBlankText | None = Field(
        None,
        max_length=AGENT_WORKTREE_MAX_LENGTH,
        description="The run's git worktree (the agent's `worktree_id` becomes it too).",
    )
    session_id: NonBlankText | None = Field(
        None, max_length=255, description="The agent CLI's session id, for resume."
    )
    start_commits: CommitsByProject | None = Field(
        None,
        description=(
            "The commit each project started from: project id → full commit. Each project "
            "must be linked to the run's initiative (400 `run_commit_other_initiative`)."
        ),
    )


class BudgetStateOut(Schema):
    budget_id: str
    scope_type: UsageScope
    scope_id: str
    metric: BudgetMetric
    window_seconds: int | None
    limit: int
    spent: int
    warn_percent: int
    warn_reached: bool
    spent_out: bool


class RunHeartbeatOut(Schema):
    decision: Literal["continue", "stop"]
    reason: Literal["budget_spent"] | None = Field(
        None, description="Why to stop: a budget is spent (the run has ended)."
    )
    budgets: list[BudgetStateOut] = Field(
        description="Every active budget the run counts against, after this heartbeat."
    )


class RunFinishIn(InputSchema):
    runner_name: RunnerName = Field(description="The runner that holds the run.")
    outcome: FinishOutcome
    exit_code: Int32 | None = None
    error: Text | None = Field(None, max_length=TEXT_MAX_LENGTH)
    summary: Text | None = Field(
        None, max_length=TEXT_MAX_LENGTH, description="What was done (goes to dependents)."
    )
    end_commits: CommitsByProject | None = Field(
        None, description="The commit each project ended at: project id → full commit."
    )
    usage: UsageBatch = Field(
        default_factory=list,
        description=f"The last usage (at most {MAX_USAGE_BATCH} reports).",
    )


class RunFilters(PageParams):
    task_id: Id | None = None
    agent_id: Id | None = None
    outcome: RunOutcome | None = None
    runner_name: Annotated[Text, Field(max_length=255)] | None = None


# --- budgets and limits --------------------------------------------------------------------

#: A scope of everything has no id; any other scope names its record or runner (400
#: ``invalid_scope_id`` otherwise).
_SCOPE_ID_RULE: dict[str, Any] = {
    "if": {"properties": {"scope_type": {"const": "all"}}},
    "then": {"properties": {"scope_id": {"maxLength": 0}}},
    "else": {"required": ["scope_id"], "properties": {"scope_id": {"minLength": 1}}},
}
#: A budget's window: a whole number of 10-minute buckets, from 10 minutes to a year.
BudgetWindow = Annotated[
    int,
    Field(
        strict=True,
        ge=BUDGET_WINDOW_SECONDS[0],
        le=BUDGET_WINDOW_SECONDS[1],
        multiple_of=USAGE_BUCKET_SECONDS,
    ),
    BeforeValidator(_integral_float_to_int),
]
BudgetLimit = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_BUDGET_LIMIT),
    BeforeValidator(_integral_float_to_int),
]
WarnPercent = Annotated[
    int, Field(strict=True, ge=1, le=100), BeforeValidator(_integral_float_to_int)
]
MaxLive = Annotated[
    int, Field(strict=True, ge=0, le=2**31 - 1), BeforeValidator(_integral_float_to_int)
]


class BudgetIn(InputSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_SCOPE_ID_RULE)

    scope_type: UsageScope
    scope_id: Id = Field(
        "",
        description=(
            "Empty for everything; else the id of the initiative, phase, task or account "
            "(404 `budget_scope_not_found` when there is none)."
        ),
    )
    metric: BudgetMetric
    limit: BudgetLimit = Field(description="Tokens, or millionths of a US dollar, per window.")
    window_seconds: BudgetWindow | None = Field(
        None, description="A rolling window (whole 10-minute buckets); null for all time."
    )
    warn_percent: WarnPercent = Field(80, description="Warn once this share is spent.")
    active: bool = True
    note: Text = Field("", max_length=500)


class BudgetPatch(InputSchema):
    """Only the fields sent change; a budget's scope and metric are fixed."""

    limit: BudgetLimit = NOT_SENT
    window_seconds: BudgetWindow | None = Field(None, description="null for all time.")
    warn_percent: WarnPercent = NOT_SENT
    active: bool = NOT_SENT
    note: Text = Field(NOT_SENT, max_length=500)


class BudgetOut(FromRecord):
    id: str
    scope_type: UsageScope
    scope_id: str
    metric: BudgetMetric
    limit: int
    window_seconds: int | None
    warn_percent: int
    active: bool
    note: str
    created_at: datetime
    updated_at: datetime


class RunLimitIn(InputSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_SCOPE_ID_RULE)

    scope_type: LimitScope
    scope_id: Text = Field(
        "",
        max_length=255,
        description=(
            "Empty for everything; an initiative's or account's id (404 "
            "`run_limit_scope_not_found` when there is none), or a runner's name."
        ),
    )
    max_live: MaxLive = Field(description="The most live runs at once; 0 holds every new one.")


class RunLimitPatch(InputSchema):
    max_live: MaxLive = Field(description="The most live runs at once; 0 holds every new one.")


class RunLimitOut(FromRecord):
    id: str
    scope_type: LimitScope
    scope_id: str
    max_live: int
    created_at: datetime
    updated_at: datetime
