"""API tokens: stored as hashes, found by hash, id or display prefix, revoked once."""

import functools
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

from core.models import ApiToken
from core.repositories import hot
from core.repositories.base import Repository

_TOKEN = hot.Columns(ApiToken)
_PERSON = hot.Columns(get_user_model())


@functools.cache
def _active_by_hash_sql(vendor: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    person = ApiToken._meta.get_field("person")
    users = get_user_model()._meta
    return (
        f"SELECT {_TOKEN.select(db, 't')}, {_PERSON.select(db, 'u')} "  # noqa: S608
        f"FROM {quote(ApiToken._meta.db_table)} t "
        f"LEFT JOIN {quote(users.db_table)} u "
        f"ON u.{quote(users.pk.column)} = t.{quote(person.column)} "
        f"WHERE t.{quote('token_hash')} = %s AND t.{quote('revoked_at')} IS NULL"
    )


class ApiTokenRepository(Repository[ApiToken]):
    """API tokens. The clear value is never stored: only its hash and a display prefix."""

    model = ApiToken
    slug = "token"
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
        """The active token with this hash, its ``person`` loaded (one query).

        Every API request of a tool runs this, so it is one prepared statement (the
        ORM's compiling alone cost more than the query): the token's columns and its
        person's, LEFT JOINed, turned into instances by the ORM's own converters.
        """
        db = connections[DEFAULT_DB_ALIAS]
        rows = hot.fetch_all(db, _active_by_hash_sql(db.vendor), [token_hash])
        if not rows:
            return None
        token = _TOKEN.build(db, rows[0])
        assert isinstance(token, ApiToken)
        token._state.fields_cache["person"] = _PERSON.build(db, rows[0], len(_TOKEN))
        return token

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
