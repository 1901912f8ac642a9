"""API tokens: stored as hashes, found by hash, id or display prefix, revoked once."""

from datetime import datetime
from typing import Any

from django.db.models import Q

from core.models import ApiToken
from core.repositories.base import Repository


class ApiTokenRepository(Repository[ApiToken]):
    """API tokens. The clear value is never stored: only its hash and a display prefix."""

    model = ApiToken
    slug = "api_token"
    label = "API token"

    def create(
        self,
        *,
        name: str,
        token_hash: str,
        prefix: str,
        created_by: Any = None,
        person: Any = None,
    ) -> ApiToken:
        """Store a new active token (an active token's name is unique: ``token_name_taken``);
        with ``person``, a personal token that acts for that user."""
        return self._create(
            name=name, token_hash=token_hash, prefix=prefix, created_by=created_by, person=person
        )

    def name_is_active(self, name: str) -> bool:
        """Whether an active (not revoked) token is named ``name``."""
        return ApiToken.objects.filter(name=name, revoked_at__isnull=True).exists()

    def find_by_id_or_prefix(self, key: str, *, limit: int = 2) -> list[ApiToken]:
        """Tokens whose id or display prefix is ``key`` (at most ``limit``)."""
        return list(ApiToken.objects.filter(Q(pk=key) | Q(prefix=key))[:limit])

    def find_active_by_hash(self, token_hash: str) -> ApiToken | None:
        return (
            ApiToken.objects.select_related("person")
            .filter(token_hash=token_hash, revoked_at__isnull=True)
            .first()
        )

    def revoke(self, id: str, now: datetime) -> bool:
        """Revoke an active token, exactly once: False when it was revoked already (a
        conditional UPDATE, so of two concurrent revocations one wins)."""
        return bool(ApiToken.objects.filter(pk=id, revoked_at__isnull=True).update(revoked_at=now))

    def stamp_last_used(self, id: str, now: datetime, *, older_than: datetime) -> None:
        """Set ``last_used_at`` to ``now`` unless it is already later than ``older_than``
        (a conditional UPDATE: at most one write per token per resolution)."""
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=older_than), pk=id
        ).update(last_used_at=now)

    def find_all_oldest_first(self) -> list[ApiToken]:
        return list(ApiToken.objects.select_related("person").order_by("created_at", "id"))
