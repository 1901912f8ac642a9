"""Provider accounts: handed out round-robin, parked while rate-limited, their secrets
encrypted at rest."""

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from django.db import connection, models, transaction
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import Account
from agents.secrets import EncryptedTextField, rotate
from core.errors import InvalidInput
from core.repositories import DEFAULT_PAGE_SIZE, OffsetPage, Repository, offset_page


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
    email once (compared without regard to case): a second is ``account_email_taken``.
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
        self,
        *,
        provider: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Account]:
        """One offset page of the accounts (of ``provider`` when given) in rotation order,
        with the total: two queries, no secret read."""
        qs = self.queryset()
        if provider is not None:
            qs = qs.filter(provider=provider)
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def ids_by_provider(self, providers: Iterable[str]) -> dict[str, list[str]]:
        """The ids of each of ``providers``' accounts (a provider with none is absent);
        one query, no secret read."""
        found: dict[str, list[str]] = {}
        rows = Account.objects.filter(provider__in=list(providers)).order_by("provider", "id")
        for provider, pk in rows.values_list("provider", "pk"):
            found.setdefault(provider, []).append(pk)
        return found

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
        save); the same provider and email twice is ``Conflict`` ``account_email_taken``."""
        return self._create(**fields)

    def update(self, account: Account | str, /, **changes: Unpack[AccountChanges]) -> Account:
        """Change an account's login, provider, secrets (``None`` clears one) or place in
        the rotation; its exhaustion changes only through ``mark_exhausted`` and
        ``release``, its ``last_used_at`` only through a claim."""
        return self._update(account, **changes)

    def delete(self, id: str) -> bool:
        """Delete an account; its agents keep running records without it."""
        return self._delete(id)

    def get_with_secrets(self, id: str) -> Account:
        """The account with its secrets decrypted, for a resume to hand them to the tool
        that runs its agent again (``SecretKeyError`` when the configured keys cannot
        decrypt them; ``account_not_found`` when it does not exist). Stamps nothing: the
        account goes on with the run it already served."""
        try:
            return Account.objects.get(pk=id)
        except Account.DoesNotExist:
            raise self.not_found(id) from None

    def find_next_available(
        self, provider: str, *, exclude_ids: Iterable[str] = ()
    ) -> Account | None:
        """Claim the least recently used available account of ``provider``, or None.

        Accounts in ``exclude_ids`` are passed over as if unavailable (take-next's:
        those at their live-run limit or with a spent budget).

        Never-used accounts come first, then ``sort_order``, then id. The claim stamps
        ``last_used_at`` (and clears a lapsed exhaustion) in the same transaction as the
        read, so two concurrent callers never get the same account while another one is
        free. None means no account of the provider is available. Two queries in the
        common case. Called inside an outer transaction, the claimed row stays locked
        (PostgreSQL) until that transaction ends.
        """
        excluded = sorted(set(exclude_ids))
        for attempt in range(self.claim_attempts):
            account, contended = self._claim_once(provider, excluded)
            if account is not None or not contended:
                return account
            # Every available row was held by a concurrent claim: those hold their locks
            # for a few milliseconds only, so wait a moment and take the next one free.
            time.sleep(0.002 * (attempt + 1))
        return None

    def _claim_once(self, provider: str, excluded: list[str]) -> tuple[Account | None, bool]:
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
            candidates = self._claimable(provider, now, excluded)
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
                contended = skip_locked and self._claimable(provider, now, excluded).exists()
                return None, contended
            changes: dict[str, Any] = {"last_used_at": now, "updated_at": now}
            if account.is_exhausted:
                changes.update(is_exhausted=False, exhausted_until=None)
            self._update_many(Account.objects.filter(pk=account.pk), **changes)
        for name, value in changes.items():
            setattr(account, name, value)
        return account, False

    def _claimable(
        self, provider: str, now: datetime, excluded: Sequence[str] = ()
    ) -> QuerySet[Account]:
        """``provider``'s available accounts at ``now`` but ``excluded``, in the order
        they are handed out."""
        qs = Account.objects.filter(provider=provider).filter(
            Q(is_exhausted=False) | Q(exhausted_until__lte=now)
        )
        if excluded:
            qs = qs.exclude(pk__in=excluded)
        return qs.order_by(F("last_used_at").asc(nulls_first=True), "sort_order", "id")

    def mark_exhausted(self, id: str, until: datetime) -> Account:
        """Park an account until ``until`` (an aware datetime in the future, at most a
        year away).

        Refuses a naive, past or too distant ``until`` with ``InvalidInput`` and a
        missing account with ``NotFound``.
        """
        if not isinstance(until, datetime):
            raise InvalidInput(
                "exhausted_until must be a date and time with a zone.",
                code="invalid_exhausted_until",
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

    def release_expired(self) -> list[str]:
        """Release every exhausted account whose ``exhausted_until`` has passed and return
        their ids, for ``account_clear_expired_exhaustion`` to record an event for each
        (accounts exhausted with no ``exhausted_until`` are left parked). Two queries; the
        rows are locked between them on PostgreSQL."""
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
