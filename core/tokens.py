"""API tokens: how they are made, revoked, listed and checked.

A token is ``cw_`` followed by 43 URL-safe random characters (256 bits). Only its sha256
is stored, so a leaked database does not leak working tokens; since the token has full
entropy, a fast unsalted hash is enough (nothing to brute-force) and lets a request find
its token by an indexed equality lookup instead of comparing secrets in Python.
"""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound
from core.events import event_record
from core.models import ApiToken
from core.repositories import require_text
from core.repositories.tokens import ApiTokenRepository

tokens = ApiTokenRepository()

TOKEN_PREFIX = "cw_"  # noqa: S105 (a public marker, not a secret)
DISPLAY_PREFIX_LENGTH = 8
#: ``last_used_at`` is only rewritten when older than this: one write per token per
#: minute at most, instead of one per request (each write takes SQLite's write lock).
LAST_USED_RESOLUTION = timedelta(seconds=60)
# No genuine token is this long; refuse before hashing whatever a client sends.
_MAX_TOKEN_LENGTH = 256
_NAME_MAX_LENGTH: int = ApiToken._meta.get_field("name").max_length or 100


def hash_token(clear: str) -> str:
    """The hex sha256 of a clear token: the only form in which a token is stored."""
    return hashlib.sha256(clear.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None = None,
    person: AbstractBaseUser | None = None,
) -> tuple[ApiToken, str]:
    """Create a token named ``name`` and return it with its clear value (never stored).

    A tool's token by default; with ``person``, a personal token that acts for that user
    (it passes the gates only people may pass).

    Refuses a blank or over-long name (``InvalidInput``) and a name an active token
    already has (``Conflict`` ``token_name_taken``); a revoked token's name may be reused.
    Records ``api_token.created`` (never the secret).
    """
    name = require_text(name, "name").strip()
    if len(name) > _NAME_MAX_LENGTH:
        raise InvalidInput(
            f"A token name is at most {_NAME_MAX_LENGTH} characters.",
            code="token_name_too_long",
            details={"max_length": _NAME_MAX_LENGTH},
        )
    taken = Conflict(
        f"An active token is already named '{name}'; revoke it or pick another name.",
        code="token_name_taken",
        details={"name": name},
    )
    if tokens.name_is_active(name):
        raise taken
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        # The partial unique index settles a race between two creators of one name.
        token = tokens.create(
            name=name,
            token_hash=hash_token(clear),
            prefix=clear[:DISPLAY_PREFIX_LENGTH],
            created_by=created_by,
            person=person,
        )
    except Conflict as error:
        raise taken from error
    data: dict[str, str] = {"name": token.name, "kind": token.kind}
    if person is not None:
        data["person_id"] = str(person.pk)
    event_record("api_token.created", subject_type="api_token", subject_id=token.pk, data=data)
    return token, clear


def run_token_create(*, run_id: str) -> tuple[ApiToken, str]:
    """Make the token of the run ``run_id`` and return it with its clear value (handed
    out once, in the answer that started the run; only its hash is stored).

    Named ``run:<run id>``. It authenticates only while its run is live and lets its
    agent do only what that agent may (``agents.run_tokens``); it is not listed with
    the tools' and people's tokens. Called inside the transaction that creates the run.
    """
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = tokens.create(
        name=f"run:{run_id}",
        token_hash=hash_token(clear),
        prefix=clear[:DISPLAY_PREFIX_LENGTH],
        run_id=run_id,
    )
    return token, clear


@transaction.atomic
def api_token_revoke(*, token_id_or_prefix: str) -> ApiToken:
    """Revoke the token with this id or display prefix; it never authenticates again.

    ``NotFound`` (``token_not_found``) when nothing matches, ``InvalidInput``
    (``token_prefix_ambiguous``) when a prefix matches several tokens, ``Conflict``
    (``token_already_revoked``) when it is revoked already. Records ``api_token.revoked``.
    """
    key = (token_id_or_prefix or "").strip()
    matches = tokens.find_by_id_or_prefix(key) if key else []
    if not matches:
        raise NotFound(
            f"No API token has the id or prefix '{key}'.",
            code="token_not_found",
            details={"id_or_prefix": key},
        )
    if len(matches) > 1:
        raise InvalidInput(
            f"Several API tokens start with '{key}'; revoke by id instead.",
            code="token_prefix_ambiguous",
            details={"id_or_prefix": key},
        )
    token = matches[0]
    now = timezone.now()
    # Conditional update: of two concurrent revocations exactly one succeeds.
    if not tokens.revoke(token.pk, now):
        raise Conflict(
            f"API token '{token.name}' ({token.prefix}) is already revoked.",
            code="token_already_revoked",
            details={"id": token.pk},
        )
    token.revoked_at = now
    event_record(
        "api_token.revoked",
        subject_type="api_token",
        subject_id=token.pk,
        data={"name": token.name},
    )
    return token


def api_token_authenticate(clear: str) -> ApiToken | None:
    """The active token whose clear value is ``clear``, or None (unknown or revoked, or
    a run's token whose run has ended).

    Stamps ``last_used_at`` when it is older than ``LAST_USED_RESOLUTION``, with a
    conditional UPDATE, so most requests cost one indexed SELECT and no write.
    """
    if not clear or len(clear) > _MAX_TOKEN_LENGTH:
        return None
    token = tokens.find_active_by_hash(hash_token(clear))
    if token is None:
        return None
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if token.last_used_at is None or token.last_used_at < cutoff:
        tokens.stamp_last_used(token.pk, now, older_than=cutoff)
        token.last_used_at = now
    return token


def api_token_list() -> list[ApiToken]:
    """Every tool's and person's token, revoked ones included, oldest first (not the
    runs' tokens)."""
    return tokens.find_all_oldest_first()
