"""How agents and what they produce are found and stored: the seed's Account, Agent,
Message, LogChunk and Conversation repositories, one module each (``accounts``,
``agents``, ``messages``, ``logs``, ``conversations``), the runs' records (``runs``: runs,
their usage, budgets and limits), and the log's fast path
(``log_fast_path``: the quick check, statements and row decoding ``logs`` runs on).

Each offers explicit, typed methods for what its table allows (``create``, ``update``,
``delete`` and the seed's named operations). Lifecycle columns (an agent's or a message's
status, a conversation's answer, an account's exhaustion) are refused by ``update`` and
change only through their named transitions. The names below are the public ones,
importable from ``agents.repositories``.
"""

from agents.repositories.accounts import AccountChanges, AccountFields, AccountRepository
from agents.repositories.agents import (
    ADJECTIVES,
    ANIMALS,
    AgentChanges,
    AgentFields,
    AgentRepository,
    AgentRuntime,
)
from agents.repositories.conversations import (
    ConversationChanges,
    ConversationFields,
    ConversationRepository,
)
from agents.repositories.log_fast_path import LogChunkRow
from agents.repositories.logs import AgentLogCount, LogChunkFields, LogChunkRepository
from agents.repositories.messages import MessageChanges, MessageFields, MessageRepository
from agents.repositories.runs import (
    BudgetChanges,
    BudgetFields,
    BudgetRepository,
    LiveRunCounts,
    RunCommitRepository,
    RunFields,
    RunLimitFields,
    RunLimitRepository,
    RunRepository,
    UsageReport,
    UsageRepository,
)

__all__ = [
    "ADJECTIVES",
    "ANIMALS",
    "AccountChanges",
    "AccountFields",
    "AccountRepository",
    "AgentChanges",
    "AgentFields",
    "AgentLogCount",
    "AgentRepository",
    "AgentRuntime",
    "BudgetChanges",
    "BudgetFields",
    "BudgetRepository",
    "ConversationChanges",
    "ConversationFields",
    "ConversationRepository",
    "LiveRunCounts",
    "LogChunkFields",
    "LogChunkRepository",
    "LogChunkRow",
    "MessageChanges",
    "MessageFields",
    "MessageRepository",
    "RunCommitRepository",
    "RunFields",
    "RunLimitFields",
    "RunLimitRepository",
    "RunRepository",
    "UsageReport",
    "UsageRepository",
]
