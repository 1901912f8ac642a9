"""Agents: their human-readable names, their runtime, their lifecycle."""

import functools
import secrets
from datetime import datetime
from typing import Any, Required, TypedDict

from django.db import DEFAULT_DB_ALIAS, connections
from typing_extensions import Unpack

from agents.models import Account, Agent, AgentStatus
from core.errors import Conflict
from core.models import Initiative, Task
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    OffsetPage,
    Repository,
    check_choice,
    hot,
    offset_page,
)
from core.repositories.base import seed_only

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


@functools.cache
def _agent_name_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return f"SELECT {quote('name')} FROM {quote(Agent._meta.db_table)} WHERE {quote('id')} = %s"  # noqa: S608


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

    def find_by_phase_id(self, phase_id: str) -> list[Agent]:
        """Every agent that worked on a task of ``phase_id``, newest first, each with its
        task (one query)."""
        return list(
            self.queryset()
            .filter(task__phase_id=phase_id)
            .select_related("task")
            .order_by("-created_at", "id")
        )

    @seed_only
    def find_by_session_id(self, session_id: str) -> Agent | None:
        """The agent running CLI session ``session_id`` (the newest, should two share it)."""
        return self.queryset().filter(session_id=session_id).order_by("-created_at", "-id").first()

    @seed_only
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
        max_bytes: int | None = None,
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
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

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
