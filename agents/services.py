"""What may happen to agents' records: provider accounts for now.

Keyword-only functions, each one transaction, raising ``core.errors`` domain errors
with stable codes. Secrets (``config_json``, ``credentials``) are validated as JSON text
here and encrypted by the model field; nothing here returns them except a claim.
"""

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from agents.models import Account
from agents.repositories import AccountRepository
from core.errors import Conflict, InvalidInput

accounts = AccountRepository()

SECRET_FIELDS = ("config_json", "credentials")


def validate_account_fields(fields: dict[str, Any]) -> None:
    """Refuse a malformed email or a secret that is not JSON text (never echoing it)."""
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
        except ValueError as error:
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
    """Add a provider account to the rotation."""
    fields = {
        "email": email,
        "provider": provider,
        "config_json": config_json,
        "credentials": credentials,
        "sort_order": sort_order,
    }
    validate_account_fields(fields)
    return accounts.create(**fields)


@transaction.atomic
def account_update(*, account_id: str, **fields: Any) -> Account:
    """Change the fields given (``None`` clears a secret); others stay as they are."""
    allowed = {"email", "provider", "config_json", "credentials", "sort_order"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(
            f"Cannot update {', '.join(unknown)} of an account.",
            code="invalid_field",
            details={"fields": unknown},
        )
    validate_account_fields(fields)
    return accounts.update(account_id, **fields)


@transaction.atomic
def account_claim(*, provider: str) -> Account:
    """Hand out the next available account of ``provider`` (round-robin), atomically.

    Refused with Conflict ``no_account_available`` when every account of the provider
    is exhausted (or there is none).
    """
    account = accounts.find_next_available(provider)
    if account is None:
        raise Conflict(
            f"No '{provider}' account is available: all are exhausted, or none exists.",
            code="no_account_available",
            details={"provider": provider, "next_available_at": _next_release(provider)},
        )
    return account


def _next_release(provider: str) -> str | None:
    soonest = accounts.next_release_at(provider)
    return soonest.isoformat() if soonest else None


@transaction.atomic
def account_mark_exhausted(*, account_id: str, until: datetime) -> Account:
    return accounts.mark_exhausted(account_id, until)


@transaction.atomic
def account_release(*, account_id: str) -> Account:
    """Put a parked (exhausted) account back in the rotation now."""
    return accounts.update(account_id, is_exhausted=False, exhausted_until=None)


@transaction.atomic
def account_clear_expired_exhaustion() -> int:
    return accounts.clear_expired_exhaustion()
