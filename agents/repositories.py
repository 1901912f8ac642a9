"""How agents and what they produce are found and stored: the seed's Account, Agent,
Message, LogChunk and Conversation repositories."""

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
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
from core.errors import Conflict, DomainError, InvalidInput
from core.repositories import (
    DEFAULT_KEYSET_PAGE_SIZE,
    MAX_KEYSET_PAGE_SIZE,
    Repository,
    check_choice,
    check_keyset_page,
    integrity_error_kind,
    require_text,
)

# --- accounts ------------------------------------------------------------------------------


class AccountRepository(Repository[Account]):
    """Provider accounts, handed out round-robin and parked while rate-limited.

    An account is *available* when it is not exhausted, or when its ``exhausted_until``
    has passed. An exhausted account without an ``exhausted_until`` stays parked until a
    person releases it (``agents.services.account_release``): nothing releases it by time.
    """

    model = Account
    slug = "account"
    label = "Account"

    def create(self, **fields: Any) -> Account:
        """Add an account (secrets are encrypted by their fields on save)."""
        return self._create(**fields)

    def update(self, account: Account | str, /, **changes: Any) -> Account:
        return self._update(account, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def find_by_provider(self, provider: str) -> list[Account]:
        """Every account of ``provider``, in rotation order (``sort_order``, then age)."""
        return list(self.queryset().filter(provider=provider))

    #: The furthest ahead an account can be parked (providers reset within days).
    longest_exhaustion = timedelta(days=366)
    #: On PostgreSQL, how often a claim that found every available row locked by other
    #: claimers tries again before answering None (each try waits a little longer).
    claim_attempts = 5

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
        with transaction.atomic():
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
            Account.objects.filter(pk=account.pk).update(**changes)
        for name, value in changes.items():
            setattr(account, name, value)
        return account, False

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

    def _claimable(self, provider: str, now: datetime) -> QuerySet[Account]:
        """``provider``'s available accounts at ``now``, in the order they are handed out."""
        return (
            Account.objects.filter(provider=provider)
            .filter(Q(is_exhausted=False) | Q(exhausted_until__lte=now))
            .order_by(F("last_used_at").asc(nulls_first=True), "sort_order", "id")
        )

    def mark_exhausted(self, id: str, until: datetime) -> Account:
        """Park an account until ``until`` (an aware datetime in the future).

        Refuses a naive or past ``until`` with ``InvalidInput`` and a missing account
        with ``NotFound``.
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
        return self._update(id, is_exhausted=True, exhausted_until=until)

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

    def clear_expired_exhaustion(self) -> int:
        """Release every exhausted account whose ``exhausted_until`` has passed.

        Returns how many were released. Accounts exhausted with no ``exhausted_until``
        are left parked (see the class docstring). One query.
        """
        expired = Account.objects.filter(is_exhausted=True, exhausted_until__lte=timezone.now())
        return self._update_many(expired, is_exhausted=False, exhausted_until=None)


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


class AgentRepository(Repository[Agent]):
    """Agents; each has a unique, human-readable name such as ``brave-otter``."""

    model = Agent
    slug = "agent"
    label = "Agent"
    #: Plain ``adjective-animal`` tries before a number suffix is added, and the total.
    plain_name_attempts = 5
    name_attempts = 20

    def find_by_name(self, name: str) -> Agent | None:
        return self.queryset().filter(name=name).first()

    def find_by_task_id(self, task_id: str) -> list[Agent]:
        """Every agent that worked on ``task_id`` (a retried task has several), oldest first."""
        return list(self.queryset().filter(task_id=task_id))

    def find_by_session_id(self, session_id: str) -> Agent | None:
        """The agent running CLI session ``session_id`` (the newest, should two share it)."""
        return self.queryset().filter(session_id=session_id).order_by("-created_at", "-id").first()

    def find_by_status(self, status: str) -> list[Agent]:
        """Agents in ``status``, oldest first; an unknown status is ``invalid_status``."""
        return list(self.queryset().filter(status=check_choice(AgentStatus, status, "status")))

    def create(self, **fields: Any) -> Agent:
        """Create an agent; without a ``name`` one is generated (``brave-otter``).

        A generated name that collides is retried (with a number suffix once plain names
        keep colliding); an explicit name already taken is ``Conflict``
        ``agent_name_taken``.
        """
        self._check_field_names(fields, action="create")
        if fields.get("name"):
            return self._insert(Agent(**fields))
        for attempt in range(self.name_attempts):
            name = self._generate_name(suffixed=attempt >= self.plain_name_attempts)
            try:
                return self._insert(Agent(**{**fields, "name": name}))
            except Conflict as error:
                if error.code != "agent_name_taken":
                    raise
        raise Conflict(
            "Could not find a free agent name; pass one explicitly.",
            code="agent_name_unavailable",
        )

    def update(self, agent: Agent | str, /, **changes: Any) -> Agent:
        return self._update(agent, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def _integrity_refusal(self, obj: Agent, error: IntegrityError) -> DomainError:
        if integrity_error_kind(error) == "unique":
            return Conflict(
                f"An agent named '{obj.name}' already exists.",
                code="agent_name_taken",
                details={"name": obj.name},
            )
        return super()._integrity_refusal(obj, error)

    @staticmethod
    def _generate_name(*, suffixed: bool) -> str:
        name = f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}"
        return f"{name}-{secrets.randbelow(9998) + 2}" if suffixed else name


# --- messages ------------------------------------------------------------------------------


class MessageRepository(Repository[Message]):
    """Messages between agents and people, threaded through ``parent_message``."""

    model = Message
    slug = "message"
    label = "Message"

    def create(self, **fields: Any) -> Message:
        return self._create(**fields)

    def update(self, message: Message | str, /, **changes: Any) -> Message:
        return self._update(message, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def find_pending_for_user(self) -> list[Message]:
        """Messages addressed to people that are still pending, oldest first."""
        return list(
            self.queryset().filter(
                recipient_type=ParticipantType.USER, status=MessageStatus.PENDING
            )
        )

    def find_requiring_response(self) -> list[Message]:
        """Messages that require a response and have no reply yet, oldest first (one query)."""
        replies = Message.objects.filter(parent_message=OuterRef("pk"))
        return list(self.queryset().filter(requires_response=True).filter(~Exists(replies)))

    def find_replies(self, message_id: str) -> list[Message]:
        """The direct replies to ``message_id``, oldest first."""
        return list(self.queryset().filter(parent_message_id=message_id))


# --- log chunks ----------------------------------------------------------------------------


class LogChunkRepository(Repository[AgentLogChunk]):
    """Agents' raw JSONL output, read forward with an id cursor.

    Chunk ids increase in write order, so "the chunks after id N" is a keyset page that
    costs the same at the end of a long log as at its start (index ``(agent_id, id)``).
    """

    model = AgentLogChunk
    slug = "agent_log_chunk"
    label = "Agent log chunk"
    default_page_size = DEFAULT_KEYSET_PAGE_SIZE
    max_page_size = MAX_KEYSET_PAGE_SIZE
    #: Rows per INSERT statement when appending a batch.
    insert_batch_size = 5000
    chunk_fields = frozenset({"agent_id", "agent_name", "session_number", "content"})

    def insert_chunk(
        self, *, agent_id: str, agent_name: str, session_number: int, content: str
    ) -> AgentLogChunk:
        """Append one chunk to an agent's log."""
        return self._insert(
            self._build(
                {
                    "agent_id": agent_id,
                    "agent_name": agent_name,
                    "session_number": session_number,
                    "content": content,
                }
            )
        )

    def insert_chunks(self, chunks: list[dict[str, Any]]) -> int:
        """Append many chunks in order, all or none; one INSERT per batch. Returns the count.

        Each dict has ``agent_id``, ``agent_name``, ``content`` and optionally
        ``session_number`` (default 1); any other key is refused.
        """
        objs = [self._build(chunk) for chunk in chunks]
        for obj in objs:
            self._validate(obj)
        if not objs:
            return 0
        with transaction.atomic():
            AgentLogChunk.objects.bulk_create(objs, batch_size=self.insert_batch_size)
        return len(objs)

    def find_by_agent_id(
        self, agent_id: str, *, after: int | None = None, limit: int = default_page_size
    ) -> list[AgentLogChunk]:
        """Up to ``limit`` chunks of an agent's log with an id above ``after``, oldest first.

        Pass the id of the last chunk seen as ``after`` to read the next page; an empty
        page means the end. ``limit`` is capped at ``max_page_size``; below 1 it is
        ``InvalidInput`` ``invalid_limit``.
        """
        check_keyset_page(limit, after, integer_cursor=True)
        qs = AgentLogChunk.objects.filter(agent_id=agent_id)
        if after is not None:
            qs = qs.filter(id__gt=after)
        return list(qs.order_by("id")[:limit])

    def delete_by_agent_id(self, agent_id: str) -> int:
        """Delete an agent's whole log; returns how many chunks were deleted."""
        deleted, _ = AgentLogChunk.objects.filter(agent_id=agent_id).delete()
        return deleted

    def get_session_count(self, agent_id: str) -> int:
        """The highest session number in an agent's log (0 when it has none)."""
        result = AgentLogChunk.objects.filter(agent_id=agent_id).aggregate(n=Max("session_number"))
        return result["n"] or 0

    def _build(self, chunk: dict[str, Any]) -> AgentLogChunk:
        unknown = sorted(set(chunk) - self.chunk_fields)
        missing = sorted({"agent_id", "agent_name", "content"} - set(chunk))
        if unknown or missing:
            raise InvalidInput(
                "A log chunk needs agent_id, agent_name and content (and may have session_number).",
                code="invalid_log_chunk",
                details={"unknown": unknown, "missing": missing},
            )
        session_number = chunk.get("session_number", 1)
        if (
            isinstance(session_number, bool)
            or not isinstance(session_number, int)
            or session_number < 1
        ):
            raise InvalidInput(
                "session_number must be a positive integer.",
                code="invalid_session_number",
                details={"session_number": session_number},
            )
        return AgentLogChunk(**chunk)


# --- conversations -------------------------------------------------------------------------


class ConversationRepository(Repository[Conversation]):
    """Questions one agent asks another, each answered exactly once."""

    model = Conversation
    slug = "conversation"
    label = "Conversation"

    def create(self, **fields: Any) -> Conversation:
        return self._create(**fields)

    def update(self, conversation: Conversation | str, /, **changes: Any) -> Conversation:
        return self._update(conversation, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    #: Only ``answer()`` answers: ``update()`` cannot rewrite or reopen an answer.
    read_only_fields = Repository.read_only_fields | {"answer", "status"}

    def find_pending_for_agent(self, to_agent_id: str) -> list[Conversation]:
        """Unanswered questions addressed to ``to_agent_id``, oldest first."""
        return list(
            self.queryset().filter(to_agent_id=to_agent_id, status=ConversationStatus.PENDING)
        )

    def answer(self, id: str, answer: str) -> Conversation:
        """Record the answer and mark the conversation answered, exactly once.

        The write is a conditional UPDATE on ``status = 'pending'``, so of two concurrent
        answerers exactly one wins; the other gets ``Conflict``
        ``conversation_already_answered``. A blank answer is ``InvalidInput``
        ``empty_answer``; a missing conversation is ``NotFound``.
        """
        require_text(answer, "answer")
        updated = Conversation.objects.filter(pk=id, status=ConversationStatus.PENDING).update(
            answer=answer, status=ConversationStatus.ANSWERED, updated_at=timezone.now()
        )
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
