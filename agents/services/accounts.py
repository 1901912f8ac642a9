"""What may happen to provider accounts: added, changed, claimed, parked and released.

Keyword-only functions, each one transaction, raising ``core.errors`` domain errors
with stable codes and recording their ``account.*`` events. Every door (the API, the
admin, commands) adds, changes and deletes accounts through ``account_create`` /
``account_update`` / ``account_delete``. Secrets (``config_json``,
``credentials``) are validated as JSON text here and encrypted by the model field;
nothing here returns them except a claim.
"""

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import Account, Provider
from agents.repositories import AccountChanges, AccountRepository
from agents.secrets import SETTING, SecretKeyError, find_undecryptable
from core.errors import Conflict, InvalidInput
from core.events import event_record

accounts = AccountRepository()

SECRET_FIELDS = ("config_json", "credentials")


def check_provider(provider: Any) -> str:
    """Return ``provider`` when cw knows it (``agents.models.Provider``); else
    ``invalid_provider``: an account or agent of a provider no runner runs would never
    be claimed nor run."""
    if provider not in Provider.values:
        raise InvalidInput(
            f"Unknown provider {provider!r}; expected one of {', '.join(Provider.values)}.",
            code="invalid_provider",
            details={"field": "provider", "value": str(provider), "allowed": Provider.values},
        )
    return str(provider)


def validate_account_fields(fields: dict[str, Any]) -> None:
    """Refuse a provider cw does not know (``invalid_provider``), a malformed email
    (``invalid_email``) or a secret that is not JSON text (``invalid_json``, never
    echoing it)."""
    if "provider" in fields:
        check_provider(fields["provider"])
    if "email" in fields:
        try:
            validate_email(fields["email"])
        except ValidationError as error:
            raise InvalidInput(
                f"'{fields['email']}' is not an email address.",
                code="invalid_email",
                details={"field": "email"},
            ) from error
    for name in SECRET_FIELDS:
        value = fields.get(name)
        if value is None:
            continue
        try:
            json.loads(value)
        except (ValueError, RecursionError) as error:
            # The value itself is a secret: never echo it back.
            raise InvalidInput(
                f"{name} must be JSON text (the contents of the provider's file).",
                code="invalid_json",
                details={"field": name},
            ) from error


@transaction.atomic
def account_create(
    *,
    email: str,
    provider: str = "claude",
    config_json: str | None = None,
    credentials: str | None = None,
    sort_order: int = 0,
) -> Account:
    """Add a provider account to the rotation; the same provider and email twice is
    ``Conflict`` ``account_email_taken``."""
    fields: dict[str, Any] = {
        "email": email,
        "provider": provider,
        "config_json": config_json,
        "credentials": credentials,
        "sort_order": sort_order,
    }
    validate_account_fields(fields)
    account = accounts.create(**fields)
    _record_account("account.created", account)
    return account


@transaction.atomic
def account_update(*, account_id: str, **changes: Unpack[AccountChanges]) -> Account:
    """Change the fields given (``None`` clears a secret); others stay as they are.
    Records ``account.updated`` naming the fields that changed (nothing when none did);
    a secret given counts as changed unless it clears one that was not set (secrets are
    never decrypted to be compared).

    Exhaustion and ``last_used_at`` are not fields a person edits: the repository
    refuses them (``invalid_field``), like any unknown name.
    """
    validate_account_fields(dict(changes))
    accounts.check_update_fields(changes)
    before = _lock(account_id)
    was_set = {
        "config_json": before.config_is_set,  # type: ignore[attr-defined]
        "credentials": before.credentials_are_set,  # type: ignore[attr-defined]
    }

    def differs(name: str, value: Any) -> bool:
        if name in SECRET_FIELDS:
            # Never decrypted to be compared: a secret given is a change, unless it
            # clears one that was not set.
            return value is not None or was_set[name]
        return bool(getattr(before, name) != value)

    fields = [name for name, value in changes.items() if differs(name, value)]
    if not fields:
        return before
    account = accounts.update(account_id, **changes)
    event_record(
        "account.updated", subject_type="account", subject_id=account.pk, data={"fields": fields}
    )
    return account


@transaction.atomic
def account_delete(*, account_id: str) -> None:
    """Delete an account (``account_not_found`` when there is none); its agents keep
    their records without it. Records ``account.deleted``."""
    account = _lock(account_id)
    accounts.delete(account.pk)
    _record_account("account.deleted", account)


def _lock(account_id: str) -> Account:
    """Lock an account's row and read it without its secrets (nothing is decrypted);
    ``account_not_found`` when there is none."""
    accounts.lock_many([account_id])
    return accounts.get(account_id)


def _record_account(kind: str, account: Account) -> None:
    event_record(
        kind,
        subject_type="account",
        subject_id=account.pk,
        data={"provider": account.provider, "email": account.email},
    )


@transaction.atomic
def account_claim(*, provider: str) -> Account:
    """Hand out the next available account of ``provider`` (round-robin), atomically.

    Refused with Conflict ``account_unavailable`` when every account of the provider
    is exhausted (or there is none).
    """
    account = claim_next_account(provider=provider)
    record_account_claimed(account)
    return account


def claim_next_account(*, provider: str) -> Account:
    """The claim itself, inside the caller's transaction and without its event (a
    building block of ``account_claim`` and ``agent_register``).

    Refused with Conflict ``account_secret_unreadable`` when the account's secrets cannot
    be decrypted with the configured keys: nothing is claimed.
    """
    try:
        account = accounts.find_next_available(provider)
    except SecretKeyError as error:
        raise secret_unreadable(provider) from error
    if account is None:
        raise Conflict(
            f"No '{provider}' account is available: all are exhausted, or none exists.",
            code="account_unavailable",
            details={"provider": provider, "next_available_at": _next_release(provider)},
        )
    return account


def record_account_claimed(account: Account, *, agent_id: str | None = None) -> None:
    """Record ``account.claimed`` in the caller's transaction (a claim, or a registration
    that claimed an account for its agent)."""
    data: dict[str, Any] = {"provider": account.provider}
    if agent_id is not None:
        data["agent_id"] = agent_id
    event_record("account.claimed", subject_type="account", subject_id=account.pk, data=data)


#: At most this many unreadable accounts are named in ``account_secret_unreadable``.
_UNREADABLE_NAMED = 20


def secret_unreadable(provider: str) -> Conflict:
    """The refusal of a claim (an account claim, a registration's, a take-next's) that
    met a secret the configured keys cannot decrypt, naming the provider's accounts in
    that state (never a secret, nor a key)."""
    unreadable = set(
        find_undecryptable(accounts.queryset().filter(provider=provider), limit=_UNREADABLE_NAMED)
    )
    named = [account for account in accounts.find_by_provider(provider) if account.pk in unreadable]
    which = ", ".join(f"{account.email} ({account.pk})" for account in named) or "unknown"
    # 409, like account_unavailable: the claim conflicts with the stored state, and a
    # retry cannot succeed until a person restores the key or replaces the secrets.
    return Conflict(
        f"The secrets of the '{provider}' account(s) {which} cannot be decrypted with the "
        f"keys in settings.{SETTING}. Put the key they were encrypted with back in "
        f"{SETTING} (keeping the new one first) and run `manage.py rotate_secrets`, or "
        "set the accounts' secrets again in the admin; see the README, "
        '"Rotating the secret keys".',
        code="account_secret_unreadable",
        details={
            "provider": provider,
            "account_ids": [account.pk for account in named],
            "setting": SETTING,
        },
    )


def _next_release(provider: str) -> str | None:
    soonest = accounts.next_release_at(provider)
    return soonest.isoformat() if soonest else None


@transaction.atomic
def account_mark_exhausted(*, account_id: str, until: datetime) -> Account:
    """Park an account (rate-limited) until ``until``; records ``account.exhausted``."""
    account = accounts.mark_exhausted(account_id, until)
    event_record(
        "account.exhausted",
        subject_type="account",
        subject_id=account.pk,
        data={"until": until.isoformat()},
    )
    return account


@transaction.atomic
def account_report_exhausted(*, account_id: str, until: datetime) -> Account:
    """A tool's report that an account is rate-limited until ``until``, any aware time:
    one more than ``longest_exhaustion`` (a year) away parks it for that long, and one
    already past means it is usable now, so it is released (``account_release``);
    otherwise ``account_mark_exhausted``.

    The API's door: a client cannot know the server's clock (a reset time a second away
    may arrive late), and its schema cannot say "in the future".
    """
    latest = timezone.now() + accounts.longest_exhaustion
    try:
        return account_mark_exhausted(account_id=account_id, until=min(until, latest))
    except InvalidInput as error:
        if error.code != "exhausted_until_past":
            raise
    return account_release(account_id=account_id)


@transaction.atomic
def account_release(*, account_id: str) -> Account:
    """Put a parked (exhausted) account back in the rotation now; records
    ``account.released`` (nothing for an account that was not parked)."""
    was_parked = _lock(account_id).is_exhausted
    account = accounts.release(account_id)
    if was_parked:
        event_record("account.released", subject_type="account", subject_id=account.pk)
    return account


@transaction.atomic
def account_clear_expired_exhaustion() -> int:
    """Release every account whose exhaustion has passed; returns how many. Records
    ``account.released`` for each."""
    released = accounts.release_expired()
    for account_id in released:
        event_record("account.released", subject_type="account", subject_id=account_id)
    return len(released)


def account_rotate_secrets() -> int:
    """Re-encrypt every account's secrets under the current key; returns how many
    accounts were rewritten (one transaction, rows locked while rewritten)."""
    return accounts.rotate_secrets()
