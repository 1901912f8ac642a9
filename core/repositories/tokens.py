"""API tokens: stored as hashes, found by hash, id or display prefix, revoked once."""

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

from core.models import ApiToken
from core.repositories import hot
from core.repositories.base import Repository

_TOKEN = hot.Columns(ApiToken)
#: A live run's outcome (``agents.models.RunOutcome.RUNNING``, named here so core
#: imports nothing of the agents app).
RUN_LIVE = "running"
_PERSON = hot.Columns(get_user_model())


@dataclass(frozen=True)
class RunScope:
    """What a run's token may act for, read with the token: its live run's id, agent
    (and the agent's name), task and the task's initiative."""

    run_id: str
    agent_id: str | None
    agent_name: str | None
    task_id: str
    initiative_id: str | None


#: The columns of a run's token's scope the lookup reads after the token's and person's.
_SCOPE_COLUMNS = 5


def _column(model: Any, name: str) -> str:
    """The column of a model's field (by name), for hand-written SQL."""
    column = model._meta.get_field(name).column
    assert isinstance(column, str)
    return column


@functools.cache
def _active_by_hash_sql(vendor: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    users = get_user_model()
    # The run, its agent and its task, by name: core imports nothing of the agents app.
    run = ApiToken._meta.get_field("run").related_model
    agent = run._meta.get_field("agent").related_model  # type: ignore[union-attr]
    task = run._meta.get_field("task").related_model  # type: ignore[union-attr]

    def col(alias: str, model: Any, name: str) -> str:
        return f"{alias}.{quote(_column(model, name))}"

    def table(model: Any) -> str:
        return quote(model._meta.db_table)

    # The token's row by its unique hash, joined by primary keys to its person, or to its
    # run (with the run's agent and task): a run's token is found only while its run is
    # live, so it stops working the moment its run ends, however it ended.
    return (
        f"SELECT {_TOKEN.select(db, 't')}, {_PERSON.select(db, 'u')}, "  # noqa: S608
        f"{col('r', run, 'id')}, {col('r', run, 'agent')}, {col('a', agent, 'name')}, "
        f"{col('r', run, 'task')}, {col('k', task, 'initiative')} "
        f"FROM {table(ApiToken)} t "
        f"LEFT JOIN {table(users)} u "
        f"ON {col('u', users, users._meta.pk.name)} = {col('t', ApiToken, 'person')} "
        f"LEFT JOIN {table(run)} r ON {col('r', run, 'id')} = {col('t', ApiToken, 'run')} "
        f"LEFT JOIN {table(agent)} a ON {col('a', agent, 'id')} = {col('r', run, 'agent')} "
        f"LEFT JOIN {table(task)} k ON {col('k', task, 'id')} = {col('r', run, 'task')} "
        f"WHERE {col('t', ApiToken, 'token_hash')} = %s "
        f"AND {col('t', ApiToken, 'revoked_at')} IS NULL "
        f"AND ({col('t', ApiToken, 'run')} IS NULL OR {col('r', run, 'outcome')} = %s)"
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
        run_id: str | None = None,
    ) -> ApiToken:
        """Store a new active token (an active token's name is unique: ``token_name_taken``);
        with ``person``, a personal token that acts for that user; with ``run_id``, the
        token of that run."""
        return self._create(
            name=name,
            token_hash=token_hash,
            prefix=prefix,
            created_by=created_by,
            person=person,
            run_id=run_id,
        )

    def name_is_active(self, name: str) -> bool:
        """Whether an active (not revoked) token is named ``name``."""
        return ApiToken.objects.filter(name=name, revoked_at__isnull=True).exists()

    def find_by_id_or_prefix(self, key: str, *, limit: int = 2) -> list[ApiToken]:
        """Tokens whose id or display prefix is ``key`` (at most ``limit``)."""
        return list(ApiToken.objects.filter(Q(pk=key) | Q(prefix=key))[:limit])

    def find_active_by_hash(self, token_hash: str) -> ApiToken | None:
        """The active token with this hash, its ``person`` loaded (one query); a run's
        token only while its run is live (outcome ``running``), with its scope
        (``run_scope``, a ``RunScope``; None on other tokens).

        Every API request of a tool runs this, so it is one prepared statement (the
        ORM's compiling alone cost more than the query): the token's columns and its
        person's, LEFT JOINed, turned into instances by the ORM's own converters, and
        its run's agent, task and initiative, joined by primary keys.
        """
        db = connections[DEFAULT_DB_ALIAS]
        rows = hot.fetch_all(db, _active_by_hash_sql(db.vendor), [token_hash, RUN_LIVE])
        if not rows:
            return None
        row = rows[0]
        token = _TOKEN.build(db, row)
        assert isinstance(token, ApiToken)
        token._state.fields_cache["person"] = _PERSON.build(db, row, len(_TOKEN))
        scope = row[len(_TOKEN) + len(_PERSON) :]
        assert len(scope) == _SCOPE_COLUMNS
        token.run_scope = (
            RunScope(
                run_id=str(scope[0]),
                agent_id=scope[1],
                agent_name=scope[2],
                task_id=str(scope[3]),
                initiative_id=scope[4],
            )
            if token.run_id is not None
            else None
        )
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
        """Every tool's and person's token; runs' tokens (one per run, made and ended by
        the runs themselves) are not listed."""
        return list(
            ApiToken.objects.filter(run__isnull=True)
            .select_related("person")
            .order_by("created_at", "id")
        )
