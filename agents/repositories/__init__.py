"""How agents and what they produce are found and stored: the seed's Account, Agent,
Message, LogChunk and Conversation repositories.

Each offers explicit, typed methods for what its table allows (``create``, ``update``,
``delete`` and the seed's named operations). Lifecycle columns (an agent's or a message's
status, a conversation's answer, an account's exhaustion) are refused by ``update`` and
change only through their named transitions.
"""

import functools
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, NotRequired, Required, TypedDict

import orjson
from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import (
    DEFAULT_DB_ALIAS,
    DataError,
    IntegrityError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import (
    Account,
    Agent,
    AgentLogChunk,
    AgentStatus,
    Conversation,
    ConversationStatus,
    Message,
    MessageStatus,
    ParticipantType,
)
from agents.secrets import EncryptedTextField, rotate
from core.errors import Conflict, DomainError, InvalidInput
from core.models import Initiative, Phase, Task
from core.repositories import (
    DEFAULT_KEYSET_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    MAX_KEYSET_PAGE_SIZE,
    OffsetPage,
    Repository,
    check_choice,
    check_keyset_page,
    hot,
    offset_page,
    relation_id,
    require_int,
    require_text,
    text_problem,
)
from core.repositories.validation import unstorable_datetime
from core.validators import TEXT_MAX_LENGTH

# --- accounts ------------------------------------------------------------------------------


class AccountFields(TypedDict):
    email: str
    provider: NotRequired[str]
    config_json: NotRequired[str | None]
    credentials: NotRequired[str | None]
    sort_order: NotRequired[int]


class AccountChanges(TypedDict, total=False):
    email: str
    provider: str
    config_json: str | None
    credentials: str | None
    sort_order: int


class AccountRepository(Repository[Account]):
    """Provider accounts, handed out round-robin and parked while rate-limited.

    An account is *available* when it is not exhausted, or when its ``exhausted_until``
    has passed. An exhausted account without an ``exhausted_until`` stays parked until a
    person releases it (``release``): nothing releases it by time. A provider has each
    email once (compared without regard to case): a second is ``account_duplicate``.
    """

    model = Account
    slug = "account"
    label = "Account"
    #: The rotation's own state: written by claims, ``mark_exhausted`` and ``release``.
    lifecycle_fields = frozenset({"is_exhausted", "exhausted_until", "last_used_at"})
    #: The furthest ahead an account can be parked (providers reset within days).
    longest_exhaustion = timedelta(days=366)
    #: On PostgreSQL, how often a claim that found every available row locked by other
    #: claimers tries again before answering None (each try waits a little longer).
    claim_attempts = 5

    def queryset(self) -> QuerySet[Account]:
        """Accounts with their secret columns left unread (nothing is decrypted), and
        ``config_is_set`` / ``credentials_are_set`` annotated instead.

        Every read of this repository uses it, so listing, showing or updating an
        account never decrypts a secret; only a claim (``find_next_available``) loads
        them, to hand them to the tool that will run an agent.
        """
        return (
            super()
            .queryset()
            .defer("config_json", "credentials")
            .annotate(
                config_is_set=ExpressionWrapper(
                    Q(config_json__isnull=False), output_field=BooleanField()
                ),
                credentials_are_set=ExpressionWrapper(
                    Q(credentials__isnull=False), output_field=BooleanField()
                ),
            )
        )

    # --- reads ---------------------------------------------------------------------

    def find_by_provider(self, provider: str) -> list[Account]:
        """Every account of ``provider``, in rotation order (``sort_order``, then age)."""
        return list(self.queryset().filter(provider=provider))

    def find_page(
        self, *, provider: str | None = None, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> OffsetPage[Account]:
        """One offset page of the accounts (of ``provider`` when given) in rotation order,
        with the total: two queries, no secret read."""
        qs = self.queryset()
        if provider is not None:
            qs = qs.filter(provider=provider)
        return offset_page(qs, limit=limit, offset=offset)

    def next_release_at(self, provider: str) -> datetime | None:
        """When the first parked account of ``provider`` becomes available again."""
        return (
            Account.objects.filter(
                provider=provider, is_exhausted=True, exhausted_until__isnull=False
            )
            .order_by("exhausted_until")
            .values_list("exhausted_until", flat=True)
            .first()
        )

    def find_exhausted_page(
        self, *, now: datetime, limit: int = DEFAULT_PAGE_SIZE
    ) -> OffsetPage[Account]:
        """The accounts not available at ``now`` (parked until a later time, or until a
        person releases them), the soonest back first and those with no time last, with
        the total: two queries, no secret read. An exhaustion that has passed is not
        listed: the account is available (the next claim clears it)."""
        qs = (
            self.queryset()
            .filter(is_exhausted=True)
            .filter(Q(exhausted_until__isnull=True) | Q(exhausted_until__gt=now))
            .order_by(F("exhausted_until").asc(nulls_last=True), "provider", "email", "id")
        )
        return offset_page(qs, limit=limit)

    def availability_by_provider(self, *, now: datetime) -> list[dict[str, Any]]:
        """For each provider: ``provider``, ``total`` accounts and how many are
        ``available`` at ``now`` (see the class docstring), by provider name; one query."""
        available = Q(is_exhausted=False) | Q(exhausted_until__lte=now)
        return list(
            Account.objects.order_by("provider")
            .values("provider")
            .annotate(total=Count("pk"), available=Count("pk", filter=available))
        )

    # --- writes --------------------------------------------------------------------

    def create(self, **fields: Unpack[AccountFields]) -> Account:
        """Add an account to the rotation (its secrets are encrypted by their fields on
        save); the same provider and email twice is ``Conflict`` ``account_duplicate``."""
        return self._create(**fields)

    def update(self, account: Account | str, /, **changes: Unpack[AccountChanges]) -> Account:
        """Change an account's login, provider, secrets (``None`` clears one) or place in
        the rotation; its exhaustion changes only through ``mark_exhausted`` and
        ``release``, its ``last_used_at`` only through a claim."""
        return self._update(account, **changes)

    def delete(self, id: str) -> bool:
        """Delete an account; its agents keep running records without it."""
        return self._delete(id)

    def find_next_available(self, provider: str) -> Account | None:
        """Claim the least recently used available account of ``provider``, or None.

        Never-used accounts come first, then ``sort_order``, then id. The claim stamps
        ``last_used_at`` (and clears a lapsed exhaustion) in the same transaction as the
        read, so two concurrent callers never get the same account while another one is
        free. None means no account of the provider is available. Two queries in the
        common case. Called inside an outer transaction, the claimed row stays locked
        (PostgreSQL) until that transaction ends.
        """
        for attempt in range(self.claim_attempts):
            account, contended = self._claim_once(provider)
            if account is not None or not contended:
                return account
            # Every available row was held by a concurrent claim: those hold their locks
            # for a few milliseconds only, so wait a moment and take the next one free.
            time.sleep(0.002 * (attempt + 1))
        return None

    def _claim_once(self, provider: str) -> tuple[Account | None, bool]:
        """One claim attempt: (the account, or None; whether rows were skipped as locked)."""
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # Take turns with the other claims of this provider: the lock is held to
                # the commit, so the clock below is read after the previous claim's stamp
                # is visible and stamps follow the order claims were served in (without
                # it, a thread stalled between the clock and the row lock stamped its
                # account older than claims served after it, and the account came round
                # again within the same round). Inside an outer transaction the lock
                # would last until that one ends: there SKIP LOCKED alone keeps claims
                # apart.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        [f"cw.account_claim:{provider}"],
                    )
            # Read the clock inside the transaction: on SQLite that is after the write
            # lock is held, so stamps follow the order in which claims were served.
            now = timezone.now()
            candidates = self._claimable(provider, now)
            skip_locked = connection.features.has_select_for_update_skip_locked
            if skip_locked:
                # Rows another claimer holds are skipped, not waited for. The updated_at
                # guard matters under READ COMMITTED: when a concurrent claim commits
                # between this statement's snapshot and its lock attempt, PostgreSQL
                # locks the *new* row version after re-checking only the WHERE clause,
                # not the ORDER BY, so without the guard the account just handed out
                # would be handed out again. The subquery reads the statement's
                # snapshot, so the re-check fails and the next row is tried instead.
                candidates = candidates.filter(
                    updated_at=Subquery(
                        Account.objects.filter(pk=OuterRef("pk")).order_by().values("updated_at")
                    )
                ).select_for_update(skip_locked=True)
            # Otherwise (SQLite) the transaction is IMMEDIATE: it holds the database's
            # write lock from BEGIN, so concurrent claims are simply serialized.
            account = candidates.first()
            if account is None:
                contended = skip_locked and self._claimable(provider, now).exists()
                return None, contended
            changes: dict[str, Any] = {"last_used_at": now, "updated_at": now}
            if account.is_exhausted:
                changes.update(is_exhausted=False, exhausted_until=None)
            self._update_many(Account.objects.filter(pk=account.pk), **changes)
        for name, value in changes.items():
            setattr(account, name, value)
        return account, False

    def _claimable(self, provider: str, now: datetime) -> QuerySet[Account]:
        """``provider``'s available accounts at ``now``, in the order they are handed out."""
        return (
            Account.objects.filter(provider=provider)
            .filter(Q(is_exhausted=False) | Q(exhausted_until__lte=now))
            .order_by(F("last_used_at").asc(nulls_first=True), "sort_order", "id")
        )

    def mark_exhausted(self, id: str, until: datetime) -> Account:
        """Park an account until ``until`` (an aware datetime in the future, at most a
        year away).

        Refuses a naive, past or too distant ``until`` with ``InvalidInput`` and a
        missing account with ``NotFound``.
        """
        if not isinstance(until, datetime):
            raise InvalidInput(
                "exhausted_until must be a date and time with a zone.",
                code="exhausted_until_invalid",
                details={"until": str(until)},
            )
        if timezone.is_naive(until):
            raise InvalidInput(
                "exhausted_until must carry a time zone.",
                code="exhausted_until_naive",
                details={"until": until.isoformat()},
            )
        if until > timezone.now() + self.longest_exhaustion:
            raise InvalidInput(
                "exhausted_until is more than a year away; an account parked for good is "
                "deleted or left parked until a person releases it.",
                code="exhausted_until_too_far",
                details={"until": until.isoformat()},
            )
        if until <= timezone.now():
            raise InvalidInput(
                "exhausted_until must be in the future.",
                code="exhausted_until_past",
                details={"until": until.isoformat()},
            )
        return self._transition(self.get(id), is_exhausted=True, exhausted_until=until)

    def release(self, id: str) -> Account:
        """Put a parked account back in the rotation now (a person's decision); an
        account that is not parked stays as it is, but its ``updated_at`` moves."""
        return self._transition(self.get(id), is_exhausted=False, exhausted_until=None)

    def clear_expired_exhaustion(self) -> int:
        """Release every exhausted account whose ``exhausted_until`` has passed.

        Returns how many were released. Accounts exhausted with no ``exhausted_until``
        are left parked (see the class docstring).
        """
        return len(self.release_expired())

    def release_expired(self) -> list[str]:
        """Release every exhausted account whose ``exhausted_until`` has passed and return
        their ids (so a service can record an event for each). Two queries; the rows are
        locked between them on PostgreSQL."""
        expired = Account.objects.filter(is_exhausted=True, exhausted_until__lte=timezone.now())
        with transaction.atomic():
            ids = list(expired.select_for_update().order_by("pk").values_list("pk", flat=True))
            if ids:
                self._update_many(
                    Account.objects.filter(pk__in=ids), is_exhausted=False, exhausted_until=None
                )
        return ids

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret under the current key (the first of
        ``CW_SECRET_KEYS``); returns how many accounts were rewritten.

        Rows are locked while they are rewritten, so a concurrent write is not lost.
        ``updated_at`` is left alone: the clear values do not change. Clear values
        stored before encryption was introduced are encrypted on the way.
        """
        names = [
            field.attname
            for field in self.model._meta.concrete_fields
            if isinstance(field, EncryptedTextField)
        ]
        # Read the stored tokens as plain text, bypassing from_db_value's decryption, so
        # MultiFernet.rotate can re-encrypt them.
        raw = {
            f"raw_{name}": ExpressionWrapper(F(name), output_field=models.TextField())
            for name in names
        }
        manager = self.model._base_manager
        rewritten = 0
        with transaction.atomic():
            rows = list(
                manager.select_for_update().annotate(**raw).order_by("pk").values_list("pk", *raw)
            )
            for pk, *values in rows:
                changes = {
                    name: rotate(value)
                    for name, value in zip(names, values, strict=True)
                    if value is not None
                }
                if changes:
                    # The new tokens carry the prefix, so get_prep_value stores them as is.
                    manager.filter(pk=pk).update(**changes)
                    rewritten += 1
        return rewritten


# --- agents --------------------------------------------------------------------------------

#: The two word lists agent names are drawn from (``<adjective>-<animal>``).
ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "bold", "brave", "bright", "brisk", "calm", "clever", "cosmic",
    "crisp", "curious", "daring", "deft", "eager", "fancy", "fearless", "fierce", "gentle",
    "golden", "grand", "happy", "hardy", "humble", "jolly", "keen", "kind", "lively",
    "lucky", "merry", "mighty", "misty", "nimble", "noble", "patient", "plucky", "polite",
    "proud", "quick", "quiet", "rapid", "ruby", "rustic", "shiny", "silent", "sleek",
    "snowy", "steady", "swift", "tidy", "witty",
)  # fmt: skip
ANIMALS: tuple[str, ...] = (
    "badger", "beaver", "bison", "bobcat", "camel", "cheetah", "condor", "coyote", "crane",
    "dingo", "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gazelle", "gecko",
    "heron", "ibis", "jackal", "jaguar", "koala", "lemur", "leopard", "lynx", "marmot",
    "marten", "mole", "moose", "narwhal", "newt", "ocelot", "orca", "osprey", "otter",
    "owl", "panda", "panther", "pelican", "puffin", "quail", "raven", "robin", "salmon",
    "seal", "stoat", "tapir", "walrus", "wombat",
)  # fmt: skip


class AgentRuntime(TypedDict, total=False):
    """What an agent's process reports: written by the orchestrator as it runs."""

    session_id: str | None
    pid: int | None
    exit_code: int | None
    result: str | None
    pending_questions: str | None


class AgentFields(AgentRuntime, total=False):
    worktree_id: Required[str]
    name: str
    task: Task | None
    task_id: str | None
    initiative: Initiative | None
    initiative_id: str | None
    account: Account | None
    account_id: str | None
    provider: str
    mode: str
    status: str
    output_file_path: str | None
    user_dismissed_at: datetime | None


class AgentChanges(AgentRuntime, total=False):
    name: str
    task: Task | None
    task_id: str | None
    initiative: Initiative | None
    initiative_id: str | None
    account: Account | None
    account_id: str | None
    worktree_id: str
    provider: str
    mode: str
    output_file_path: str | None
    user_dismissed_at: datetime | None


class AgentRepository(Repository[Agent]):
    """Agents; each has a unique, human-readable name such as ``brave-otter``.

    An agent's ``status`` is its lifecycle: ``update`` refuses it and ``set_status``
    records the transitions the orchestrator decides.
    """

    model = Agent
    slug = "agent"
    label = "Agent"
    lifecycle_fields = frozenset({"status"})
    #: Plain ``adjective-animal`` tries before a number suffix is added, and the total.
    plain_name_attempts = 5
    name_attempts = 20

    def find_by_name(self, name: str) -> Agent | None:
        return self.queryset().filter(name=name).first()

    def name_of(self, id: str) -> str:
        """The agent's name (what its log chunks carry), or ``agent_not_found``: one
        prepared statement, as every log append asks it."""
        db = connections[DEFAULT_DB_ALIAS]
        rows = hot.fetch_all(db, _agent_name_sql(db.vendor), [id]) if isinstance(id, str) else []
        if not rows:
            raise self.not_found(id)
        return rows[0][0]

    def find_by_task_id(self, task_id: str) -> list[Agent]:
        """Every agent that worked on ``task_id`` (a retried task has several), oldest first."""
        return list(self.queryset().filter(task_id=task_id))

    def find_by_session_id(self, session_id: str) -> Agent | None:
        """The agent running CLI session ``session_id`` (the newest, should two share it)."""
        return self.queryset().filter(session_id=session_id).order_by("-created_at", "-id").first()

    def find_by_status(self, status: str) -> list[Agent]:
        """Agents in ``status``, oldest first; an unknown status is ``invalid_status``."""
        return list(self.queryset().filter(status=check_choice(AgentStatus, status, "status")))

    def find_page(
        self,
        *,
        status: str | None = None,
        task_id: str | None = None,
        initiative_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> OffsetPage[Agent]:
        """One offset page of the agents, oldest first, filtered by what is given, with the
        total: two queries whatever the page size."""
        qs = self.queryset()
        if status is not None:
            qs = qs.filter(status=check_choice(AgentStatus, status, "status"))
        if task_id is not None:
            qs = qs.filter(task_id=task_id)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        return offset_page(qs, limit=limit, offset=offset)

    def find_undismissed_page(
        self,
        status: str,
        *,
        initiative_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> OffsetPage[Agent]:
        """One offset page of the agents in ``status`` that no person has dismissed (of
        an initiative when given), longest in that state first (by ``updated_at``), with
        their task, with the total: two queries."""
        qs = (
            self.queryset()
            .select_related("task")
            .filter(
                status=check_choice(AgentStatus, status, "status"), user_dismissed_at__isnull=True
            )
            .order_by("updated_at", "id")
        )
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        return offset_page(qs, limit=limit)

    def create(self, **fields: Unpack[AgentFields]) -> Agent:
        """Create an agent (``worktree_id`` required); without a ``name`` one is generated
        (``brave-otter``).

        A generated name that collides is retried (with a number suffix once plain names
        keep colliding); an explicit name already taken is ``Conflict``
        ``agent_name_taken``.
        """
        values: dict[str, Any] = dict(fields)
        self._check_field_names(values, action="create")
        if values.get("name"):
            return self._insert(Agent(**values))
        for attempt in range(self.name_attempts):
            name = self._generate_name(suffixed=attempt >= self.plain_name_attempts)
            try:
                return self._insert(Agent(**{**values, "name": name}))
            except Conflict as error:
                if error.code != "agent_name_taken":
                    raise
        raise Conflict(
            "Could not find a free agent name; pass one explicitly.",
            code="agent_name_unavailable",
        )

    def update(self, agent: Agent | str, /, **changes: Unpack[AgentChanges]) -> Agent:
        """Change an agent's name, placement, account, mode or what its process reported;
        its status moves only through ``set_status``."""
        return self._update(agent, **changes)

    def set_status(
        self, agent: Agent | str, status: str, /, **runtime: Unpack[AgentRuntime]
    ) -> Agent:
        """Record a lifecycle transition the orchestrator decided, with what the process
        reported at that moment (e.g. the exit code of a crash) in the same write; an
        unknown status is ``invalid_status``."""
        obj = agent if isinstance(agent, Agent) else self.get(agent)
        return self._transition(obj, status=check_choice(AgentStatus, status, "status"), **runtime)

    def delete(self, id: str) -> bool:
        """Delete an agent; its log chunks stay (they name the agent, not a foreign key)."""
        return self._delete(id)

    @staticmethod
    def _generate_name(*, suffixed: bool) -> str:
        name = f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}"
        return f"{name}-{secrets.randbelow(9998) + 2}" if suffixed else name


# --- messages ------------------------------------------------------------------------------


@functools.cache
def _agent_name_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return f"SELECT {quote('name')} FROM {quote(Agent._meta.db_table)} WHERE {quote('id')} = %s"  # noqa: S608


class MessageFields(TypedDict):
    sender_type: str
    recipient_type: str
    content: str
    sender_id: NotRequired[str | None]
    recipient_id: NotRequired[str | None]
    type: NotRequired[str]
    requires_response: NotRequired[bool]
    status: NotRequired[str]
    parent_message: NotRequired[Message | None]
    parent_message_id: NotRequired[str | None]


class MessageChanges(TypedDict, total=False):
    sender_type: str
    sender_id: str | None
    recipient_type: str
    recipient_id: str | None
    type: str
    content: str
    requires_response: bool
    parent_message: Message | None
    parent_message_id: str | None


class MessageRepository(Repository[Message]):
    """Messages between agents and people, threaded through ``parent_message``.

    A message's ``status`` (pending, read, responded) is its lifecycle: ``update``
    refuses it; ``mark_read``, ``mark_responded`` and ``set_status`` change it.
    """

    model = Message
    slug = "message"
    label = "Message"
    lifecycle_fields = frozenset({"status"})

    def unanswered(self) -> QuerySet[Message]:
        """Messages nobody has answered: not ``responded`` and without a reply.

        The one rule both "pending for a person" and "requiring a response" use, so an
        answered message is in neither list however it was answered (``message_reply``
        marks it responded; a reply written elsewhere still counts).
        """
        replies = Message.objects.filter(parent_message=OuterRef("pk"))
        return self.queryset().exclude(status=MessageStatus.RESPONDED).filter(~Exists(replies))

    def pending_for_user(self) -> QuerySet[Message]:
        """Messages addressed to people, not yet read and not answered, oldest first."""
        return self.unanswered().filter(
            recipient_type=ParticipantType.USER, status=MessageStatus.PENDING
        )

    def requiring_response(self) -> QuerySet[Message]:
        """Messages that require a response and are not answered, oldest first."""
        return self.unanswered().filter(requires_response=True)

    def awaiting_person(self, *, initiative_id: str | None = None) -> QuerySet[Message]:
        """Unanswered messages to people that still wait for one: unread, or read but
        requiring a response; oldest first, each annotated with ``sender_name`` (the
        sending agent's name, None for a person). With ``initiative_id``, only those
        sent by that initiative's agents."""
        qs = (
            self.unanswered()
            .filter(recipient_type=ParticipantType.USER)
            .filter(Q(status=MessageStatus.PENDING) | Q(requires_response=True))
            .annotate(
                sender_name=Subquery(
                    Agent.objects.filter(pk=OuterRef("sender_id")).order_by().values("name")[:1]
                )
            )
        )
        if initiative_id is not None:
            qs = qs.filter(
                sender_type=ParticipantType.AGENT,
                sender_id__in=Agent.objects.filter(initiative_id=initiative_id)
                .order_by()
                .values("pk"),
            )
        return qs

    def find_pending_for_user(self) -> list[Message]:
        """Messages addressed to people that are still pending (unread and unanswered),
        oldest first (one query)."""
        return list(self.pending_for_user())

    def find_requiring_response(self) -> list[Message]:
        """Messages that require a response and are not answered, oldest first (one query)."""
        return list(self.requiring_response())

    def find_page(
        self, qs: QuerySet[Message], *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> OffsetPage[Message]:
        """One offset page of ``qs`` (one of this repository's lists) with the total."""
        return offset_page(qs, limit=limit, offset=offset)

    def find_replies(self, message_id: str) -> list[Message]:
        """The direct replies to ``message_id``, oldest first."""
        return list(self.queryset().filter(parent_message_id=message_id))

    def create(self, **fields: Unpack[MessageFields]) -> Message:
        """Send a message (pending unless a status is given); blank content is
        ``empty_content``."""
        require_text(fields.get("content"), "content")
        return self._create(**fields)

    def update(self, message: Message | str, /, **changes: Unpack[MessageChanges]) -> Message:
        """Change a message's participants, content or thread; a message never replies to
        itself or to one of its own replies (``message_parent_cycle``). Its status moves
        only through the transitions."""
        values: dict[str, Any] = dict(changes)
        self._check_field_names(values, action="update")
        obj = message if isinstance(message, Message) else self.get(message)
        if "content" in values:
            require_text(values["content"], "content")
        has_parent, parent_id = relation_id(values, "parent_message")
        if (
            has_parent
            and parent_id is not None
            and obj.pk in self._ancestor_ids("parent_message_id", parent_id)
        ):
            raise InvalidInput(
                "A message cannot reply to itself or to one of its own replies.",
                code="message_parent_cycle",
                details={"id": str(obj.pk), "parent_message_id": str(parent_id)},
            )
        return self._update(obj, **values)

    def set_status(self, message: Message | str, status: str) -> Message:
        """Record a status the services decided; an unknown one is ``invalid_status``."""
        obj = message if isinstance(message, Message) else self.get(message)
        return self._transition(obj, status=check_choice(MessageStatus, status, "status"))

    def mark_read(self, id: str) -> Message:
        """Mark a pending message read. A message already read or responded to stays as it
        is, even against a concurrent response (one conditional UPDATE)."""
        return self._move(id, (MessageStatus.PENDING,), MessageStatus.READ)

    def mark_responded(self, id: str) -> Message:
        """Mark a pending or read message responded to (one conditional UPDATE; a message
        already responded to stays as it is)."""
        return self._move(id, (MessageStatus.PENDING, MessageStatus.READ), MessageStatus.RESPONDED)

    def delete(self, id: str) -> bool:
        """Delete a message with its replies."""
        return self._delete(id)

    def _move(self, id: str, sources: tuple[str, ...], target: str) -> Message:
        """Move message ``id`` to ``target`` only from one of ``sources``: a conditional
        UPDATE, so a concurrent transition is never undone (``message_not_found`` when
        there is no such message)."""
        qs = self.model._default_manager.filter(pk=id, status__in=sources)
        self._update_many(qs, status=target)
        return self.get(id)


# --- log chunks ----------------------------------------------------------------------------


class LogChunkFields(TypedDict):
    agent_id: str
    agent_name: str
    content: str
    session_number: NotRequired[int]


class LogChunkRow(NamedTuple):
    """A log chunk as it is read: a plain row, not a model instance (a page of a log is
    only ever shown or sent on, so building models for it would be wasted work)."""

    id: int
    agent_id: str
    agent_name: str
    session_number: int
    content: str
    created_at: datetime

    @property
    def pk(self) -> int:
        return self.id


class AgentLogCount(NamedTuple):
    """How many chunks of one agent's log a question found (``agent_name`` as the chunks
    recorded it, so it is known after the agent is deleted)."""

    agent_id: str
    agent_name: str
    chunks: int


#: The columns a chunk is written with, in the order of the rows handed to the driver.
_CHUNK_COLUMNS = ("agent_id", "agent_name", "session_number", "content", "created_at")
_ROW_COLUMNS = ("id", *_CHUNK_COLUMNS)
_INT32_MAX = 2**31 - 1
_AGENT_ID_MAX = AgentLogChunk._meta.get_field("agent_id").max_length or 0
_AGENT_NAME_MAX = AgentLogChunk._meta.get_field("agent_name").max_length or 0


class LogChunkRepository(Repository[AgentLogChunk]):
    """Agents' raw JSONL output, appended and read forward with an id cursor, never edited.

    Chunk ids increase in write order, so "the chunks after id N" is a keyset page that
    costs the same at the end of a long log as at its start (index ``(agent_id, id)``).

    This is the path agents hit all day, so it pays per batch, not per row: a batch is
    checked in one pass of plain comparisons (and ``orjson`` for each line's JSON), then
    written with one multi-row ``INSERT`` per ``rows_per_insert`` rows on Django's
    connection (``core.repositories.hot``); pages are read with one prepared ``SELECT`` into
    ``LogChunkRow`` tuples. The rules are the model's, unchanged: a batch the quick
    pass cannot vouch for goes through the model's full validation, which refuses it
    with the same coded error as any other write (or lets it through when the quick
    pass was merely cautious).
    """

    model = AgentLogChunk
    slug = "agent_log_chunk"
    label = "Agent log chunk"
    default_page_size = DEFAULT_KEYSET_PAGE_SIZE
    max_page_size = MAX_KEYSET_PAGE_SIZE
    #: The most rows one INSERT statement carries (fewer when the database allows fewer
    #: parameters in a statement).
    rows_per_statement = 500
    chunk_fields = frozenset({"agent_id", "agent_name", "session_number", "content"})
    required_chunk_fields = frozenset({"agent_id", "agent_name", "content"})

    def insert_chunk(
        self, *, agent_id: str, agent_name: str, session_number: int, content: str
    ) -> LogChunkRow:
        """Append one chunk to an agent's log (``session_number`` from 1; ``content`` JSON
        Lines) and return it as stored."""
        db, created_at = connections[DEFAULT_DB_ALIAS], timezone.now()
        stamp = _stamp(db, created_at)
        try:
            row = _quick_row(agent_id, agent_name, session_number, content, stamp)
        except (_Unsure, ValueError):
            # The model decides, refusing as any single write (no batch index).
            obj = self._build(
                {
                    "agent_id": agent_id,
                    "agent_name": agent_name,
                    "session_number": session_number,
                    "content": content,
                }
            )
            self._validate(obj)
            row = (*(getattr(obj, name) for name in _CHUNK_COLUMNS[:-1]), stamp)
        (id,) = self._insert_rows(db, [row])
        return tuple.__new__(
            LogChunkRow, (id, agent_id, agent_name, session_number, content, created_at)
        )

    def insert_chunks(self, chunks: Iterable[LogChunkFields]) -> int:
        """Append many chunks in order, all or none. Returns the count.

        Each has ``agent_id``, ``agent_name``, ``content`` and optionally
        ``session_number`` (default 1); any other key is ``invalid_log_chunk``.
        """
        return len(self.append_chunks(chunks))

    def append_chunks(self, chunks: Iterable[LogChunkFields]) -> list[int]:
        """Append many chunks in order, all or none, and return their ids (ascending).

        Every chunk is checked before anything is written; a refusal carries the chunk's
        position in ``details["index"]`` (from 0). One batch shares one ``created_at``.
        """
        db = connections[DEFAULT_DB_ALIAS]
        rows = self._checked_rows(list(chunks), _stamp(db, timezone.now()))
        return self._write_rows(db, rows) if rows else []

    def restore_chunks(self, chunks: Sequence[Mapping[str, Any]], *, keep_ids: bool) -> list[int]:
        """Insert log chunks as an export recorded them (see ``Repository.restore``): each
        with its own ``created_at`` and, when ``keep_ids``, its ``id`` (on PostgreSQL the
        id sequence then moves past them). All or none; returns the ids.

        Each chunk has ``agent_id``, ``agent_name``, ``session_number``, ``content`` and
        ``created_at`` (and ``id``), and is checked as an appended one is: the quick pass,
        or the model's own validation, refusing with the chunk's ``details["index"]``.
        """
        db = connections[DEFAULT_DB_ALIAS]
        created = AgentLogChunk._meta.get_field("created_at")
        appended: list[LogChunkFields] = []
        stamps: list[Any] = []
        ids: list[Any] = []
        for index, chunk in enumerate(chunks):
            values = dict(chunk)
            ids.append(values.pop("id", None))
            at = self._at_index(index, _recorded_time, (created, values.pop("created_at", None)))
            stamps.append(_stamp(db, at))
            appended.append(values)  # type: ignore[arg-type]
            if keep_ids and type(ids[-1]) is not int:
                raise InvalidInput(
                    f"Chunk {index}: a restored log chunk keeps a whole-number id.",
                    code="invalid_log_chunk",
                    details={"index": index, "unknown": [], "missing": ["id"]},
                )
        rows = [
            (*row[:-1], stamp)
            for row, stamp in zip(self._checked_rows(appended, None), stamps, strict=True)
        ]
        if not rows:
            return []
        if not keep_ids:
            return self._write_rows(db, rows)
        size = self.rows_per_insert(db)
        with transaction.atomic(using=db.alias):
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                params = [
                    v
                    for id, row in zip(ids[start : start + size], batch, strict=True)
                    for v in (id, *row)
                ]
                try:
                    hot.execute(db, self._restore_sql(db.vendor, len(batch)), params)
                except IntegrityError as error:
                    raise self._integrity_refusal(self.model(), error) from error
            for sql in db.ops.sequence_reset_sql(no_style(), [AgentLogChunk]):
                hot.execute(db, sql, [])
        return ids

    @staticmethod
    @functools.cache
    def _restore_sql(vendor: str, rows: int) -> str:
        quote = connection.ops.quote_name
        values = "(" + ", ".join(["%s"] * len(_ROW_COLUMNS)) + ")"
        return (
            f"INSERT INTO {quote(AgentLogChunk._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(c) for c in _ROW_COLUMNS)}) "
            f"VALUES {', '.join([values] * rows)}"
        )

    def find_by_agent_id(
        self,
        agent_id: str,
        *,
        after: int | None = None,
        limit: int = default_page_size,
        session_number: int | None = None,
    ) -> list[LogChunkRow]:
        """Up to ``limit`` chunks of an agent's log (of one session when
        ``session_number`` is given) with an id above ``after``, oldest first.

        Pass the id of the last chunk seen as ``after`` to read the next page; an empty
        page means the end. ``limit`` is 1..``max_page_size`` (the keyset cap of the
        pagination contract): beyond it is ``invalid_limit``, never clamped.
        """
        check_keyset_page(limit, after, integer_cursor=True)
        params: list[Any] = [agent_id, after or 0]
        if session_number is not None:
            params.append(session_number)
        params.append(limit)
        db = connections[DEFAULT_DB_ALIAS]
        return _log_rows(
            hot.fetch_all(db, self._page_sql(db.vendor, session_number is not None), params)
        )

    def delete_by_agent_id(self, agent_id: str) -> int:
        """Delete an agent's whole log; returns how many chunks were deleted."""
        deleted, _ = self.model._default_manager.filter(agent_id=agent_id).delete()
        return deleted

    def get_session_count(self, agent_id: str) -> int:
        """The highest session number in an agent's log (0 when it has none)."""
        result = self.model._default_manager.filter(agent_id=agent_id).aggregate(
            n=Max("session_number")
        )
        return result["n"] or 0

    def find_last_by_agent_id(
        self, agent_id: str, *, before: int | None = None, limit: int = default_page_size
    ) -> list[LogChunkRow]:
        """The last ``limit`` chunks of an agent's log (with an id below ``before`` when
        given), oldest first: a tail, read backwards a page at a time with ``before`` set
        to the first id of the page before."""
        check_keyset_page(limit, before, integer_cursor=True)
        qs = self.model._default_manager.filter(agent_id=agent_id)
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs.order_by("-id").values_list(*_ROW_COLUMNS)[:limit])
        rows.reverse()
        return _log_rows(rows)

    def count_created_before(
        self, before: datetime, *, agent_id: str | None = None
    ) -> list[AgentLogCount]:
        """How many chunks of each agent's log (of ``agent_id`` only when given) were
        written before ``before``: one row per agent that has any, by agent name."""
        qs = self.model._default_manager.filter(created_at__lt=before)
        if agent_id is not None:
            qs = qs.filter(agent_id=agent_id)
        counted = (
            qs.order_by()
            .values("agent_id")
            .annotate(name=Max("agent_name"), chunks=Count("id"))
            .order_by("name", "agent_id")
        )
        return [AgentLogCount(row["agent_id"], row["name"], row["chunks"]) for row in counted]

    def delete_created_before(self, before: datetime, *, agent_id: str, limit: int) -> int:
        """Delete the oldest ``limit`` chunks (at most) of an agent's log that were
        written before ``before``; returns how many (0 once none is left).

        One short ``DELETE`` of an id range: a caller that loops over it never holds one
        huge transaction, nor the writers' lock for long.
        """
        old = self.model._default_manager.filter(agent_id=agent_id, created_at__lt=before)
        bound = list(old.order_by("id").values_list("id", flat=True)[limit - 1 : limit])
        if bound:
            old = old.filter(id__lte=bound[0])
        deleted, _ = old.delete()
        return deleted

    # --- the batch check -----------------------------------------------------------

    def _checked_rows(
        self, chunks: list[LogChunkFields], stamp: Any, *, quick: bool = True
    ) -> list[tuple[Any, ...]]:
        """The chunks as rows in ``_CHUNK_COLUMNS`` order, or the refusal of the first bad
        one; nothing is written either way. ``stamp`` is ``created_at`` as the driver
        takes it."""
        if quick:
            rows: list[tuple[Any, ...]] = []
            known: set[tuple[Any, Any]] = set()
            try:
                for chunk in chunks:
                    if type(chunk) is not dict or not (
                        len(chunk) == 3 or (len(chunk) == 4 and "session_number" in chunk)
                    ):
                        raise _Unsure
                    names = (chunk["agent_id"], chunk["agent_name"])
                    rows.append(
                        _quick_row(
                            *names,
                            chunk.get("session_number", 1),
                            chunk["content"],
                            stamp,
                            names in known,
                        )
                    )
                    known.add(names)
                return rows
            except (_Unsure, KeyError, ValueError):
                pass
        # The quick pass cannot vouch for this batch: the model's own rules decide,
        # refusing with the error any write of such a chunk gets.
        return [
            (*(getattr(obj, name) for name in _CHUNK_COLUMNS[:-1]), stamp)
            for obj in self._validated_models(chunks)
        ]

    def _validated_models(self, chunks: list[LogChunkFields]) -> list[AgentLogChunk]:
        """Every chunk built and validated as a model (the slow, authoritative path)."""
        objs = [self._at_index(index, self._build, chunk) for index, chunk in enumerate(chunks)]
        for index, obj in enumerate(objs):
            self._at_index(index, self._validate, obj)
        return objs

    @staticmethod
    def _at_index(index: int, check: Callable[[Any], Any], value: Any) -> Any:
        """``check(value)``, with a refusal naming the chunk's position in the batch."""
        try:
            return check(value)
        except DomainError as error:
            error.details = {**error.details, "index": index}
            error.message = f"Chunk {index}: {error.message}"
            raise

    def _build(self, chunk: Mapping[str, Any]) -> AgentLogChunk:
        if not isinstance(chunk, Mapping):
            raise InvalidInput(
                "A log chunk is an object with agent_id, agent_name and content.",
                code="invalid_log_chunk",
                details={"unknown": [], "missing": sorted(self.required_chunk_fields)},
            )
        unknown = sorted(set(chunk) - self.chunk_fields)
        missing = sorted(self.required_chunk_fields - set(chunk))
        if unknown or missing:
            raise InvalidInput(
                "A log chunk needs agent_id, agent_name and content (and may have session_number).",
                code="invalid_log_chunk",
                details={"unknown": unknown, "missing": missing},
            )
        values: dict[str, Any] = dict(chunk)
        require_text(values["content"], "content")
        values["session_number"] = require_int(
            values.get("session_number", 1),
            "session_number",
            minimum=1,
            code="invalid_session_number",
        )
        return AgentLogChunk(**values)

    # --- the statements ------------------------------------------------------------

    def rows_per_insert(self, db: BaseDatabaseWrapper) -> int:
        """How many chunks one INSERT statement carries on ``db``: ``rows_per_statement``,
        fewer where the database takes fewer parameters a statement."""
        most = db.features.max_query_params
        if most is None:
            return self.rows_per_statement
        return max(1, min(self.rows_per_statement, most // len(_CHUNK_COLUMNS)))

    def _write_rows(self, db: BaseDatabaseWrapper, rows: list[tuple[Any, ...]]) -> list[int]:
        """INSERT the rows, all or none (one statement is atomic by itself; more run in
        one transaction); their ids in order."""
        size = self.rows_per_insert(db)
        if len(rows) <= size:
            return self._insert_rows(db, rows)
        with transaction.atomic(using=db.alias):
            return [
                id
                for start in range(0, len(rows), size)
                for id in self._insert_rows(db, rows[start : start + size])
            ]

    def _insert_rows(self, db: BaseDatabaseWrapper, rows: list[tuple[Any, ...]]) -> list[int]:
        params = [value for row in rows for value in row]
        try:
            if db.vendor == "sqlite":
                # The statement holds SQLite's write lock, so its rows take consecutive
                # ids ending at lastrowid; RETURNING would cost a third more a row.
                last = hot.execute(db, self._insert_sql(db.vendor, len(rows), False), params)
                assert last is not None
                return list(range(last - len(rows) + 1, last + 1))
            sql = self._insert_sql(db.vendor, len(rows), True)
            return [id for (id,) in hot.fetch_all(db, sql, params)]
        except IntegrityError as error:
            raise self._integrity_refusal(self.model(), error) from error
        except DataError as error:
            raise InvalidInput(
                "A value of this log chunk cannot be stored (too long or out of range).",
                code="invalid_value",
            ) from error

    @staticmethod
    @functools.cache
    def _insert_sql(vendor: str, rows: int, returning: bool) -> str:
        quote = connection.ops.quote_name
        values = "(" + ", ".join(["%s"] * len(_CHUNK_COLUMNS)) + ")"
        # Identifiers from the model, quoted; every value is a parameter.
        return (
            f"INSERT INTO {quote(AgentLogChunk._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(c) for c in _CHUNK_COLUMNS)}) "
            f"VALUES {', '.join([values] * rows)}"
            + (f" RETURNING {quote('id')}" if returning else "")
        )

    @staticmethod
    @functools.cache
    def _page_sql(vendor: str, by_session: bool) -> str:
        quote = connection.ops.quote_name
        session = f" AND {quote('session_number')} = %s" if by_session else ""
        columns = [quote(c) for c in _ROW_COLUMNS]
        return (
            f"SELECT {', '.join(columns)} "  # noqa: S608
            f"FROM {quote(AgentLogChunk._meta.db_table)} "
            f"WHERE {quote('agent_id')} = %s AND {quote('id')} > %s{session} "
            f"ORDER BY {quote('id')} LIMIT %s"
        )


class _Unsure(Exception):
    """The quick check of a log batch cannot vouch for a chunk."""


def _quick_row(
    agent_id: Any, agent_name: Any, session: Any, content: Any, stamp: Any, names_ok: bool = False
) -> tuple[Any, ...]:
    """The row of a chunk that plain comparisons (and ``orjson`` for each line) show
    to be valid, else ``_Unsure`` (or orjson's ``ValueError``): a cautious subset of the
    model's rules, which decide whatever this cannot vouch for."""
    if not names_ok and (agent_id, agent_name) not in _GOOD_NAMES:
        if not (_good_name(agent_id, _AGENT_ID_MAX) and _good_name(agent_name, _AGENT_NAME_MAX)):
            raise _Unsure
        if len(_GOOD_NAMES) >= 4096:
            _GOOD_NAMES.clear()
        _GOOD_NAMES.add((agent_id, agent_name))
    if type(session) is not int or not 1 <= session <= _INT32_MAX:
        raise _Unsure
    if type(content) is not str or len(content) > TEXT_MAX_LENGTH or "\x00" in content:
        raise _Unsure
    # orjson refuses all that the model's JSON check refuses (NaN, bad syntax, lone
    # surrogates, blank text) and a little more (huge numbers, deep nesting).
    newline = content.find("\n")
    if newline == -1 or newline == len(content) - 1:
        orjson.loads(content)  # one line, the usual chunk (a newline is JSON whitespace)
    else:
        blank = True
        for line in content.split("\n"):
            if line and not line.isspace():
                orjson.loads(line)
                blank = False
        if blank:
            raise _Unsure
    return (agent_id, agent_name, session, content, stamp)


#: (agent id, agent name) pairs ``_good_name`` accepted: an agent's name is checked once,
#: not with every chunk it writes (a pure check, so remembering it is safe; bounded).
_GOOD_NAMES: set[tuple[str, str]] = set()


def _stamp(db: BaseDatabaseWrapper, created_at: datetime) -> Any:
    """``created_at`` as the driver takes it: Django's adaptation, short-cut for the
    common case of SQLite and a UTC time (``str`` of the naive UTC time, which is what
    ``adapt_datetimefield_value`` answers there, at a fraction of its cost)."""
    if created_at.tzinfo is UTC and db.vendor == "sqlite" and db.timezone is UTC:
        return str(created_at)[:-6]
    return db.ops.adapt_datetimefield_value(created_at)


def _good_name(value: Any, most: int) -> bool:
    """A short required text (an agent's id or name) every database stores alike."""
    return type(value) is str and 0 < len(value) <= most and text_problem(value) is None


def _log_rows(rows: list[tuple[Any, ...]]) -> list[LogChunkRow]:
    """``LogChunkRow``s of fetched rows (``_ROW_COLUMNS``), with aware ``created_at``.

    Built with ``tuple.__new__`` (the named tuple's own ``__new__`` is Python code) and,
    for SQLite's text timestamps, one ``fromisoformat`` each: a page is read at close
    to the driver's own speed.
    """
    new, row_type = tuple.__new__, LogChunkRow
    if rows and type(rows[0][-1]) is str:
        parse = datetime.fromisoformat
        try:
            return [
                new(row_type, (i, a, n, s, c, parse(t + "+00:00"))) for i, a, n, s, c, t in rows
            ]
        except ValueError:
            pass  # a stamp with its own offset: the general path below
    return [new(row_type, (i, a, n, s, c, _aware(t))) for i, a, n, s, c, t in rows]


def _recorded_time(field_and_value: tuple[Any, Any]) -> datetime:
    """A recorded ``created_at`` (a datetime or ISO 8601 text with a zone), or the
    refusal ``invalid_value``."""
    field, value = field_and_value
    try:
        at = field.to_python(value)
    except ValidationError:
        at = None
    if not isinstance(at, datetime) or timezone.is_naive(at) or unstorable_datetime(at):
        raise InvalidInput(
            "A log chunk's created_at must be a date and time with a zone.",
            code="invalid_value",
            details={"fields": {"created_at": ["must be a date and time with a zone"]}},
        )
    return at


def _aware(value: Any) -> datetime:
    """A timestamp column as the driver returned it (an aware datetime from PostgreSQL;
    from SQLite the stored text, naive UTC), as an aware datetime."""
    if type(value) is str:
        try:
            # Several times cheaper than parsing and then replace(tzinfo=UTC).
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- conversations -------------------------------------------------------------------------


class ConversationFields(TypedDict):
    question: str
    from_agent: NotRequired[Agent]
    from_agent_id: NotRequired[str]
    to_agent: NotRequired[Agent]
    to_agent_id: NotRequired[str]
    initiative: NotRequired[Initiative | None]
    initiative_id: NotRequired[str | None]
    phase: NotRequired[Phase | None]
    phase_id: NotRequired[str | None]
    task: NotRequired[Task | None]
    task_id: NotRequired[str | None]


class ConversationChanges(TypedDict, total=False):
    question: str
    from_agent: Agent
    from_agent_id: str
    to_agent: Agent
    to_agent_id: str
    initiative: Initiative | None
    initiative_id: str | None
    phase: Phase | None
    phase_id: str | None
    task: Task | None
    task_id: str | None


class ConversationRepository(Repository[Conversation]):
    """Questions one agent asks another, each answered exactly once, by ``answer``:
    ``update`` can neither rewrite an answer nor reopen a question."""

    model = Conversation
    slug = "conversation"
    label = "Conversation"
    lifecycle_fields = frozenset({"answer", "status"})

    def find_pending_for_agent(self, to_agent_id: str) -> list[Conversation]:
        """Unanswered questions addressed to ``to_agent_id``, oldest first."""
        return list(
            self.queryset().filter(to_agent_id=to_agent_id, status=ConversationStatus.PENDING)
        )

    def create(self, **fields: Unpack[ConversationFields]) -> Conversation:
        """Ask a question (pending until answered); both agents must exist, and a blank
        question is ``empty_question``."""
        require_text(fields.get("question"), "question")
        return self._create(**fields)

    def update(
        self, conversation: Conversation | str, /, **changes: Unpack[ConversationChanges]
    ) -> Conversation:
        """Change who asks whom, the question or what it is about; never the answer."""
        if "question" in changes:
            require_text(changes["question"], "question")
        return self._update(conversation, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def answer(self, id: str, answer: str) -> Conversation:
        """Record the answer and mark the conversation answered, exactly once.

        The write is a conditional UPDATE on ``status = 'pending'``, so of two concurrent
        answerers exactly one wins; the other gets ``Conflict``
        ``conversation_already_answered``. A blank answer is ``InvalidInput``
        ``empty_answer`` (and one no column can hold is refused like any value); a
        missing conversation is ``NotFound``.
        """
        require_text(answer, "answer")
        self._validate(Conversation(answer=answer), only=["answer"])
        pending = self.model._default_manager.filter(pk=id, status=ConversationStatus.PENDING)
        updated = self._update_many(pending, answer=answer, status=ConversationStatus.ANSWERED)
        conversation = self.find_by_id(id)
        if conversation is None:
            raise self.not_found(id)
        if not updated:
            raise Conflict(
                "This conversation has already been answered.",
                code="conversation_already_answered",
                details={"id": str(id)},
            )
        return conversation
