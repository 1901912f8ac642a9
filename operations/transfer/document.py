"""The export document's tables: which models it holds, in the order an import writes
them, and the repository each table is read and written through."""

from collections.abc import Callable
from typing import Any

from django.db import models

from agents.models import Agent, AgentLogChunk, Conversation, Message
from agents.repositories import (
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    LogChunkRepository,
    MessageRepository,
)
from core.models import (
    Initiative,
    InitiativeProject,
    Page,
    Phase,
    PhaseDependency,
    Project,
    Task,
    TaskDependency,
)
from core.repositories import (
    InitiativeProjectRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    Repository,
    TaskRepository,
    record_store,
)
from reviews.models import (
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
    ChatSession,
    Proposal,
    ReviewComment,
)
from reviews.repositories import (
    ChangeSetRepository,
    ChatSessionRepository,
    ProposalRepository,
    ReviewCommentRepository,
)

FORMAT = "cw.initiative"
#: The format version this cw writes. It reads this version and every older one.
VERSION = 1

#: The tables of a document, in the order they are written on import (a record after
#: those it refers to).
MODELS: tuple[type[models.Model], ...] = (
    Project,
    Initiative,
    Phase,
    PhaseDependency,
    Task,
    TaskDependency,
    Page,
    InitiativeProject,
    Agent,
    AgentLogChunk,
    Message,
    Conversation,
    Proposal,
    ReviewComment,
    ChatSession,
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
)
TABLES: dict[str, type[models.Model]] = {m._meta.db_table: m for m in MODELS}
LOGS = AgentLogChunk._meta.db_table
#: Tables whose rows point at their own table (written parents first).
SELF_REFERENCES = {
    "tasks": "parent_task_id",
    "pages": "parent_page_id",
    "messages": "parent_message_id",
}

#: Told ``(table, rows just written, rows in the whole document)`` as work proceeds.
Progress = Callable[[str, int, int], None]


def store(table: str) -> Repository[Any]:
    """A repository reading ``table`` (its own, or a store for a table another owns)."""
    return STORES[table]


def reader(table: str) -> Repository[Any]:
    """A repository reading ``table``, one a document holds or one it refers to."""
    return STORES.get(table) or REFERRED[table]


_phases, _tasks = PhaseRepository(), TaskRepository()
_change_sets, _chats = ChangeSetRepository(), ChatSessionRepository()

#: The repository each table is read through.
STORES: dict[str, Repository[Any]] = {
    "projects": ProjectRepository(),
    "initiatives": InitiativeRepository(),
    "phases": _phases,
    "phase_dependencies": record_store(PhaseDependency, "phase_dependency", "Phase dependency"),
    "tasks": _tasks,
    "task_dependencies": record_store(TaskDependency, "task_dependency", "Task dependency"),
    "pages": PageRepository(),
    "initiative_projects": InitiativeProjectRepository(),
    "agents": AgentRepository(),
    LOGS: LogChunkRepository(),
    "messages": MessageRepository(),
    "conversations": ConversationRepository(),
    "proposals": ProposalRepository(),
    "review_comments": ReviewCommentRepository(),
    "chat_sessions": _chats,
    "change_sets": _change_sets,
    "change_set_entries": record_store(ChangeSetEntry, "change_set_entry", "Change set entry"),
    "chat_messages": record_store(ChatMessage, "chat_message", "Chat message"),
}

#: Tables a document refers to without holding them.
REFERRED: dict[str, Repository[Any]] = {"accounts": AccountRepository()}

#: How each table's rows are written: its owner's ``restore`` (the dependency edges,
#: a change set's entries and a session's messages through their owners).
WRITERS: dict[str, Callable[[list[dict[str, Any]]], int]] = {
    **{table: repo.restore for table, repo in STORES.items()},
    "phase_dependencies": _phases.restore_dependencies,
    "task_dependencies": _tasks.restore_dependencies,
    "change_set_entries": _change_sets.restore_entries,
    "chat_messages": _chats.restore_messages,
}
