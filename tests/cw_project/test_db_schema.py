"""The schema as the seed specifies it: delete rules, enum checks, unique rules, ids, timestamps."""

import time

import pytest
from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from agents.models import Agent, AgentLogChunk
from core.models import Phase, Task
from tests import factories as f
from tests.model_checks import (
    CW_APPS,
    assert_constraint_speaks_in_words,
    assert_no_unique_field,
    constraints_of,
)

pytestmark = pytest.mark.django_db

CW_MODELS = [
    m for app in ("core", "agents", "reviews") for m in apps.get_app_config(app).get_models()
]

SEED_TABLES = {
    "initiatives": ["id", "name", "status", "branch", "execution_mode", "created_at", "updated_at"],
    "phases": ["id", "initiative_id", "name", "content", "status", "created_at", "updated_at"],
    "phase_dependencies": ["id", "phase_id", "depends_on_phase_id"],
    "tasks": [
        "id", "phase_id", "initiative_id", "parent_task_id", "name", "description", "type",
        "category", "priority", "status", "order", "summary", "created_at", "updated_at",
    ],
    "task_dependencies": ["id", "task_id", "depends_on_task_id"],
    "agents": [
        "id", "name", "task_id", "initiative_id", "session_id", "worktree_id", "provider",
        "account_id", "status", "mode", "pid", "exit_code", "output_file_path", "result",
        "pending_questions", "user_dismissed_at", "created_at", "updated_at",
    ],
    "accounts": [
        "id", "email", "provider", "config_json", "credentials", "is_exhausted",
        "exhausted_until", "last_used_at", "sort_order", "created_at", "updated_at",
    ],
    "proposals": [
        "id", "agent_id", "initiative_id", "target_type", "target_id", "title", "summary",
        "content", "metadata", "status", "sort_order", "created_at", "updated_at",
    ],
    "pages": [
        "id", "initiative_id", "parent_page_id", "title", "content", "sort_order",
        "created_at", "updated_at",
    ],
    "projects": [
        "id", "name", "url", "default_branch", "last_fetched_at", "created_at", "updated_at",
    ],
    "initiative_projects": ["id", "initiative_id", "project_id"],
    "messages": [
        "id", "sender_type", "sender_id", "recipient_type", "recipient_id", "type", "content",
        "requires_response", "status", "parent_message_id", "created_at", "updated_at",
    ],
    "agent_log_chunks": [
        "id", "agent_id", "agent_name", "session_number", "content", "created_at",
    ],
    "conversations": [
        "id", "from_agent_id", "to_agent_id", "initiative_id", "phase_id", "task_id",
        "question", "answer", "status", "created_at", "updated_at",
    ],
    "chat_sessions": [
        "id", "target_type", "target_id", "initiative_id", "agent_id", "status",
        "created_at", "updated_at",
    ],
    "chat_messages": ["id", "chat_session_id", "role", "content", "change_set_id", "created_at"],
    "review_comments": [
        "id", "phase_id", "file_path", "line_number", "line_type", "body", "author",
        "resolved", "created_at", "updated_at",
    ],
    "change_sets": ["id", "initiative_id", "status", "created_at", "updated_at"],
    "change_set_entries": ["id", "change_set_id", "entity_type", "entity_id", "action",
                           "before", "after"],
}  # fmt: skip

NULLABLE = {
    ("initiatives", "branch"), ("phases", "content"), ("tasks", "phase_id"),
    ("tasks", "initiative_id"), ("tasks", "parent_task_id"), ("tasks", "description"),
    ("tasks", "summary"), ("agents", "task_id"), ("agents", "initiative_id"),
    ("agents", "session_id"), ("agents", "account_id"), ("agents", "pid"),
    ("agents", "exit_code"), ("agents", "output_file_path"), ("agents", "result"),
    ("agents", "pending_questions"), ("agents", "user_dismissed_at"),
    ("accounts", "config_json"), ("accounts", "credentials"), ("accounts", "exhausted_until"),
    ("accounts", "last_used_at"), ("proposals", "target_id"), ("proposals", "metadata"),
    ("pages", "parent_page_id"), ("pages", "content"), ("projects", "last_fetched_at"),
    ("conversations", "initiative_id"), ("conversations", "phase_id"),
    ("conversations", "task_id"), ("conversations", "answer"), ("chat_sessions", "agent_id"),
    ("chat_messages", "change_set_id"), ("messages", "parent_message_id"),
}  # fmt: skip

NOT_NULL = {
    ("initiatives", "name"), ("phases", "name"), ("phases", "initiative_id"), ("tasks", "name"),
    ("agents", "name"), ("agents", "worktree_id"), ("agents", "provider"), ("accounts", "email"),
    ("accounts", "provider"), ("pages", "title"), ("pages", "initiative_id"),
    ("projects", "name"), ("projects", "url"), ("projects", "default_branch"),
    ("agent_log_chunks", "agent_id"), ("agent_log_chunks", "agent_name"),
    ("agent_log_chunks", "content"), ("conversations", "from_agent_id"),
    ("conversations", "to_agent_id"), ("conversations", "question"),
    ("chat_sessions", "target_id"), ("chat_messages", "content"),
    ("review_comments", "file_path"), ("review_comments", "line_number"),
    ("review_comments", "body"), ("review_comments", "author"), ("proposals", "agent_id"),
    ("proposals", "initiative_id"),
}  # fmt: skip


def _columns(table: str) -> dict[str, bool]:
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    return {column.name: column.null_ok for column in description}


@pytest.mark.parametrize("table", sorted(SEED_TABLES))
def test_table_has_the_seed_columns(table):
    columns = _columns(table)
    missing = [name for name in SEED_TABLES[table] if name not in columns]
    assert missing == []


@pytest.mark.parametrize(("table", "column"), sorted(NULLABLE))
def test_column_is_nullable(table, column):
    assert _columns(table)[column] is True


@pytest.mark.parametrize(("table", "column"), sorted(NOT_NULL))
def test_column_is_not_null(table, column):
    assert _columns(table)[column] is False


def test_no_trace_of_task_approval_in_the_schema():
    with connection.cursor() as cursor:
        for table in SEED_TABLES:
            columns = _columns(table)
            assert "requires_approval" not in columns
            assert "merge_requires_approval" not in columns
        cursor.execute("SELECT 1")
    statuses = [choice for field in Task._meta.fields for choice in (field.choices or [])]
    assert all("pending_approval" not in value for value, _label in statuses)


# --- foreign keys: every delete rule ----------------------------------------------------


def _make(model_label: str):
    factory = {
        "core.Phase": f.PhaseFactory,
        "core.PhaseDependency": f.PhaseDependencyFactory,
        "core.Task": f.TaskFactory,
        "core.TaskDependency": f.TaskDependencyFactory,
        "core.ReadyTask": f.ReadyTaskFactory,
        "core.Page": f.PageFactory,
        "core.InitiativeProject": f.InitiativeProjectFactory,
        "agents.Agent": f.AgentFactory,
        "agents.Message": f.MessageFactory,
        "agents.Conversation": f.ConversationFactory,
        "reviews.Proposal": f.ProposalFactory,
        "reviews.ReviewComment": f.ReviewCommentFactory,
        "reviews.ChatSession": f.ChatSessionFactory,
        "reviews.ChatMessage": f.ChatMessageFactory,
        "reviews.ChangeSet": f.ChangeSetFactory,
        "reviews.ChangeSetEntry": f.ChangeSetEntryFactory,
        "core.ApiToken": f.ApiTokenFactory,
        "agents.Run": f.RunFactory,
        "agents.RunCommit": f.RunCommitFactory,
        "agents.RunUsage": f.RunUsageFactory,
    }[model_label]
    return factory


def _parent_factory(model: type[models.Model]):
    return {
        "Initiative": f.InitiativeFactory,
        "Phase": f.PhaseFactory,
        "Task": f.TaskFactory,
        "Page": f.PageFactory,
        "Project": f.ProjectFactory,
        "Account": f.AccountFactory,
        "Agent": f.AgentFactory,
        "Message": f.MessageFactory,
        "Proposal": f.ProposalFactory,
        "Run": f.RunFactory,
        "ChatSession": f.ChatSessionFactory,
        "ChangeSet": f.ChangeSetFactory,
        "User": f.UserFactory,
    }[model.__name__]


# (model, field, expected delete rule): the seed's rules, and DOMAIN.md's for new tables.
DELETE_RULES = [
    ("core.Phase", "initiative", models.CASCADE),
    ("core.PhaseDependency", "phase", models.CASCADE),
    ("core.PhaseDependency", "depends_on_phase", models.CASCADE),
    ("core.Task", "phase", models.CASCADE),
    ("core.Task", "initiative", models.CASCADE),
    ("core.Task", "parent_task", models.CASCADE),
    ("core.TaskDependency", "task", models.CASCADE),
    ("core.TaskDependency", "depends_on_task", models.CASCADE),
    ("core.ReadyTask", "task", models.CASCADE),
    ("core.Page", "initiative", models.CASCADE),
    ("core.Page", "parent_page", models.CASCADE),
    ("core.InitiativeProject", "initiative", models.CASCADE),
    ("core.InitiativeProject", "project", models.CASCADE),
    ("agents.Agent", "task", models.SET_NULL),
    ("agents.Agent", "initiative", models.SET_NULL),
    ("agents.Agent", "account", models.SET_NULL),
    ("agents.Message", "parent_message", models.CASCADE),
    ("agents.Conversation", "from_agent", models.CASCADE),
    ("agents.Conversation", "to_agent", models.CASCADE),
    ("agents.Conversation", "initiative", models.SET_NULL),
    ("agents.Conversation", "phase", models.SET_NULL),
    ("agents.Conversation", "task", models.SET_NULL),
    ("reviews.Proposal", "agent", models.CASCADE),
    ("reviews.Proposal", "initiative", models.CASCADE),
    ("reviews.ReviewComment", "phase", models.CASCADE),
    ("reviews.ReviewComment", "project", models.SET_NULL),
    ("reviews.ReviewComment", "addressed_by", models.SET_NULL),
    ("reviews.ChatSession", "initiative", models.CASCADE),
    ("reviews.ChatSession", "agent", models.SET_NULL),
    ("reviews.ChatMessage", "chat_session", models.CASCADE),
    ("reviews.ChatMessage", "change_set", models.SET_NULL),
    ("reviews.ChangeSet", "initiative", models.CASCADE),
    ("reviews.ChangeSet", "proposal", models.SET_NULL),
    ("reviews.ChangeSet", "chat_session", models.SET_NULL),
    ("reviews.ChangeSetEntry", "change_set", models.CASCADE),
    ("core.ApiToken", "created_by", models.SET_NULL),
    ("core.ApiToken", "person", models.CASCADE),
    ("core.ApiToken", "run", models.CASCADE),
    ("agents.Run", "task", models.CASCADE),
    ("agents.Run", "agent", models.SET_NULL),
    ("agents.Run", "account", models.SET_NULL),
    ("agents.RunCommit", "run", models.CASCADE),
    ("agents.RunCommit", "project", models.CASCADE),
    ("agents.RunUsage", "run", models.CASCADE),
]


def test_every_foreign_key_has_a_pinned_delete_rule():
    declared = {
        (model._meta.label, field.name)
        for app in ("core", "agents", "reviews")
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.fields
        if isinstance(field, models.ForeignKey)
    }
    assert declared == {(label, field) for label, field, _rule in DELETE_RULES}


@pytest.mark.parametrize(("label", "field_name", "rule"), DELETE_RULES)
def test_delete_rule(label, field_name, rule):
    model = apps.get_model(label)
    field = model._meta.get_field(field_name)
    assert field.remote_field.on_delete is rule
    parent = _parent_factory(field.related_model)()
    overrides = {field_name: parent}
    if label == "core.Task" and field_name == "initiative":
        overrides["phase"] = None
    child = _make(label)(**overrides)

    parent.delete()

    remaining = model.objects.filter(pk=child.pk)
    if rule is models.CASCADE:
        assert not remaining.exists()
    else:
        assert getattr(remaining.get(), field.attname) is None


def _database_delete_rules(table: str) -> dict[str, str]:
    """Column -> ON DELETE rule of each foreign key of ``table``, read from the database."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA foreign_key_list({connection.ops.quote_name(table)})")
            return {row[3]: row[6] for row in cursor.fetchall()}
        cursor.execute(
            """
            SELECT kcu.column_name, rc.delete_rule
            FROM information_schema.referential_constraints rc
            JOIN information_schema.key_column_usage kcu
              ON kcu.constraint_name = rc.constraint_name
             AND kcu.constraint_schema = rc.constraint_schema
            WHERE kcu.table_name = %s
            """,
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.parametrize(("label", "field_name", "rule"), DELETE_RULES)
def test_the_database_itself_holds_the_delete_rule(label, field_name, rule):
    field = apps.get_model(label)._meta.get_field(field_name)
    expected = {models.CASCADE: "CASCADE", models.SET_NULL: "SET NULL"}[rule]
    assert _database_delete_rules(field.model._meta.db_table)[field.column] == expected


def test_a_delete_outside_the_orm_keeps_the_same_integrity():
    task = f.TaskFactory()
    agent = f.AgentFactory(task=task, initiative=task.initiative)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM initiatives WHERE id = %s", [task.initiative_id])
    assert not Phase.objects.filter(pk=task.phase_id).exists()
    assert not Task.objects.filter(pk=task.pk).exists()
    agent.refresh_from_db()
    assert (agent.task_id, agent.initiative_id) == (None, None)


def test_log_chunks_survive_their_agents_deletion():
    agent = f.AgentFactory()
    chunk = AgentLogChunk.objects.create(agent_id=agent.id, agent_name=agent.name, content="{}")
    field = AgentLogChunk._meta.get_field("agent_id")
    assert not field.is_relation

    Agent.objects.filter(pk=agent.pk).delete()

    assert AgentLogChunk.objects.get(pk=chunk.pk).agent_id == agent.id


# --- enums: the database refuses an unknown value ---------------------------------------

ENUM_FIELDS = [
    ("core.Initiative", "status", f.InitiativeFactory),
    ("core.Initiative", "execution_mode", f.InitiativeFactory),
    ("core.Phase", "status", f.PhaseFactory),
    ("core.Phase", "blocked_from_status", f.PhaseFactory),
    ("core.Task", "type", f.TaskFactory),
    ("core.Task", "category", f.TaskFactory),
    ("core.Task", "priority", f.TaskFactory),
    ("core.Task", "status", f.TaskFactory),
    ("core.Task", "blocked_from_status", f.TaskFactory),
    ("agents.Agent", "status", f.AgentFactory),
    ("agents.Agent", "mode", f.AgentFactory),
    ("agents.Message", "sender_type", f.MessageFactory),
    ("agents.Message", "recipient_type", f.MessageFactory),
    ("agents.Message", "type", f.MessageFactory),
    ("agents.Message", "status", f.MessageFactory),
    ("agents.Conversation", "status", lambda: f.ConversationFactory(answer="Yes.")),
    ("reviews.Proposal", "target_type", f.ProposalFactory),
    ("reviews.Proposal", "status", f.ProposalFactory),
    ("reviews.ReviewComment", "line_type", f.ReviewCommentFactory),
    ("reviews.ChatSession", "target_type", f.ChatSessionFactory),
    ("reviews.ChatSession", "status", f.ChatSessionFactory),
    ("reviews.ChatMessage", "role", f.ChatMessageFactory),
    ("reviews.ChangeSet", "source", f.ChangeSetFactory),
    ("reviews.ChangeSet", "status", f.ChangeSetFactory),
    ("reviews.ChangeSetEntry", "action", f.ChangeSetEntryFactory),
    ("core.Event", "actor_type", f.EventFactory),
    ("core.Event", "actor_via", f.EventFactory),
    ("agents.Run", "outcome", f.RunFactory),
    ("agents.UsageBucket", "scope_type", f.UsageBucketFactory),
    ("agents.Budget", "scope_type", f.BudgetFactory),
    ("agents.Budget", "metric", f.BudgetFactory),
    ("agents.RunLimit", "scope_type", f.RunLimitFactory),
]


def _companion_values(label: str, field_name: str, value: str) -> dict:
    """The other columns a value needs to satisfy its record's rules: a run has an end
    time exactly when it is over, and a scope of everything has no id."""
    if (label, field_name) == ("agents.Run", "outcome"):
        return {"ended_at": None if value == "running" else timezone.now()}
    if field_name == "scope_type":
        return {"scope_id": "" if value == "all" else "some-id"}
    return {}


def test_every_enum_field_is_pinned():
    declared = {
        (model._meta.label, field.name)
        for app in ("core", "agents", "reviews")
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.fields
        if field.choices
    }
    assert declared == {(label, field) for label, field, _factory in ENUM_FIELDS}


@pytest.mark.parametrize(("label", "field_name", "factory"), ENUM_FIELDS)
def test_database_refuses_unknown_enum_value(label, field_name, factory):
    obj = factory()
    model = apps.get_model(label)
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=obj.pk).update(**{field_name: "nope"})


@pytest.mark.parametrize(("label", "field_name", "factory"), ENUM_FIELDS)
def test_every_seed_value_is_accepted(label, field_name, factory):
    obj = factory()
    model = apps.get_model(label)
    for value, _label in model._meta.get_field(field_name).choices:
        model.objects.filter(pk=obj.pk).update(
            **{field_name: value}, **_companion_values(label, field_name, value)
        )


def test_enum_values_are_the_seeds():
    assert [v for v, _ in Task._meta.get_field("type").choices] == [
        "auto",
        "checkpoint:human-verify",
        "checkpoint:decision",
        "checkpoint:human-action",
    ]
    assert [v for v, _ in Phase._meta.get_field("status").choices] == [
        "pending",
        "approved",
        "in_progress",
        "pending_review",
        "completed",
        "blocked",
    ]


# --- uniqueness ---------------------------------------------------------------------------


def _duplicate_cases():
    def agent_name():
        a = f.AgentFactory()
        return lambda: f.AgentFactory(name=a.name)

    def project_name():
        p = f.ProjectFactory()
        return lambda: f.ProjectFactory(name=p.name)

    def project_url():
        p = f.ProjectFactory()
        return lambda: f.ProjectFactory(url=p.url)

    def initiative_project():
        link = f.InitiativeProjectFactory()
        return lambda: f.InitiativeProjectFactory(initiative=link.initiative, project=link.project)

    def phase_dependency():
        dep = f.PhaseDependencyFactory()
        return lambda: f.PhaseDependencyFactory(
            phase=dep.phase, depends_on_phase=dep.depends_on_phase
        )

    def task_dependency():
        dep = f.TaskDependencyFactory()
        return lambda: f.TaskDependencyFactory(task=dep.task, depends_on_task=dep.depends_on_task)

    def initiative_branch():
        i = f.InitiativeFactory(branch="cw/x")
        return lambda: f.InitiativeFactory(branch=i.branch)

    def root_page():
        p = f.PageFactory()
        return lambda: f.PageFactory(initiative=p.initiative, parent_page=None)

    def active_chat_session():
        s = f.ChatSessionFactory()
        return lambda: f.ChatSessionFactory(
            initiative=s.initiative, target_type=s.target_type, target_id=s.target_id
        )

    def self_phase_dependency():
        phase = f.PhaseFactory()
        return lambda: f.PhaseDependencyFactory(phase=phase, depends_on_phase=phase)

    def self_task_dependency():
        task = f.TaskFactory()
        return lambda: f.TaskDependencyFactory(task=task, depends_on_task=task)

    def account():
        a = f.AccountFactory()
        return lambda: f.AccountFactory(email=a.email, provider=a.provider)

    def account_email_in_other_case():
        a = f.AccountFactory(email="dev@example.com")
        return lambda: f.AccountFactory(email="Dev@Example.com", provider=a.provider)

    def api_token_hash():
        t = f.ApiTokenFactory()
        return lambda: f.ApiTokenFactory(token_hash=t.token_hash)

    def run_attempt():
        run = f.RunFactory(outcome="failed", ended_at=timezone.now())
        return lambda: f.RunFactory(task=run.task, attempt=run.attempt)

    def live_run_of_task():
        run = f.RunFactory()
        return lambda: f.RunFactory(task=run.task, attempt=2)

    def live_run_of_agent():
        run = f.RunFactory()
        return lambda: f.RunFactory(agent=run.agent)

    def run_commit():
        commit = f.RunCommitFactory()
        return lambda: f.RunCommitFactory(run=commit.run, project=commit.project)

    def usage_bucket():
        bucket = f.UsageBucketFactory()
        return lambda: f.UsageBucketFactory(bucket_start=bucket.bucket_start)

    def run_limit():
        limit = f.RunLimitFactory()
        return lambda: f.RunLimitFactory(scope_id=limit.scope_id, max_live=9)

    return {
        "runs task and attempt": run_attempt,
        "one live run per task": live_run_of_task,
        "one live run per agent": live_run_of_agent,
        "run_commits run and project": run_commit,
        "usage_buckets scope and bucket": usage_bucket,
        "run_limits scope": run_limit,
        "agents.name": agent_name,
        "projects.name": project_name,
        "projects.url": project_url,
        "initiative_projects pair": initiative_project,
        "phase_dependencies pair": phase_dependency,
        "task_dependencies pair": task_dependency,
        "initiatives.branch": initiative_branch,
        "one root page per initiative": root_page,
        "one active chat session per target": active_chat_session,
        "phase self-dependency": self_phase_dependency,
        "task self-dependency": self_task_dependency,
        "accounts provider and email": account,
        "accounts provider and email, in another case": account_email_in_other_case,
        "api_tokens.token_hash": api_token_hash,
    }


@pytest.mark.parametrize("case", sorted(_duplicate_cases()))
def test_database_refuses_duplicate(case):
    make_duplicate = _duplicate_cases()[case]()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_duplicate()


def test_one_email_may_log_in_to_several_providers():
    account = f.AccountFactory(provider="claude")
    f.AccountFactory(email=account.email, provider="codex")


def test_each_unique_rule_is_one_named_database_constraint():
    """Uniqueness is declared as named constraints; the database holds each once, under
    its name (no leftover ``<table>_<column>_key`` beside it)."""
    with connection.cursor() as cursor:
        for model in CW_MODELS:
            table = model._meta.db_table
            found = connection.introspection.get_constraints(cursor, table)
            unique_columns = [
                tuple(info["columns"])
                for info in found.values()
                if info["unique"] and not info["primary_key"]
            ]
            for constraint in model._meta.constraints:
                if isinstance(constraint, models.UniqueConstraint):
                    assert constraint.name in found, (table, constraint.name)
                    if constraint.fields and constraint.condition is None:
                        columns = tuple(model._meta.get_field(n).column for n in constraint.fields)
                        assert unique_columns.count(columns) == 1, (table, columns)


def test_closed_chat_sessions_do_not_count_against_the_active_one():
    first = f.ChatSessionFactory(status="closed")
    f.ChatSessionFactory(
        initiative=first.initiative, target_type=first.target_type, target_id=first.target_id
    )


def test_child_pages_are_not_roots():
    root = f.PageFactory()
    f.PageFactory(initiative=root.initiative, parent_page=root)
    f.PageFactory(initiative=root.initiative, parent_page=root)


# --- ids and timestamps ----------------------------------------------------------------


def test_ids_are_generated_short_and_distinct():
    ids = {f.InitiativeFactory().id for _ in range(20)}
    assert len(ids) == 20
    assert all(isinstance(i, str) and len(i) == 22 for i in ids)


def test_updated_at_moves_on_save():
    initiative = f.InitiativeFactory()
    before = initiative.updated_at
    time.sleep(0.002)
    initiative.name = "Renamed"
    initiative.save(update_fields=["name", "updated_at"])
    initiative.refresh_from_db()
    assert initiative.updated_at > before
    assert initiative.created_at <= before


def test_embedded_sqlite_runs_in_wal_mode_with_busy_timeout_and_immediate_writes(tmp_path):
    """The embedded default's options, applied to a fresh SQLite file whatever the suite runs on."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    wrapper = DatabaseWrapper(
        {
            **connection.settings_dict,
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "cw.sqlite3"),
            "OPTIONS": settings.SQLITE_OPTIONS,
        }
    )
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] >= 1000
        assert wrapper.transaction_mode == "IMMEDIATE"
    finally:
        wrapper.close()


def test_id_columns_carry_no_second_pattern_index():
    """PostgreSQL would add a varchar_pattern_ops "_like" index to every text id; ids are
    only compared for equality, so the backend leaves those out."""
    offenders = []
    with connection.cursor() as cursor:
        for model in CW_MODELS:
            id_columns = {
                f.column for f in model._meta.concrete_fields if f.primary_key or f.is_relation
            }
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            offenders += [
                name
                for name, info in constraints.items()
                if name.endswith("_like") and set(info["columns"]) <= id_columns
            ]
    assert offenders == []


def test_the_seeds_defaults_live_in_the_database_too():
    """A row written by another SQL client gets the seed's defaults, as through the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO initiatives (id, name) VALUES ('raw-initiative', 'Raw')")
        cursor.execute(
            "INSERT INTO phases (id, initiative_id, name) "
            "VALUES ('raw-phase', 'raw-initiative', 'P')"
        )
        cursor.execute(
            "INSERT INTO tasks (id, phase_id, initiative_id, name) "
            "VALUES ('raw-task', 'raw-phase', 'raw-initiative', 'T')"
        )
        cursor.execute("INSERT INTO accounts (id, email) VALUES ('raw-account', 'a@example.com')")
    initiative = apps.get_model("core.Initiative").objects.get(pk="raw-initiative")
    assert (initiative.status, initiative.execution_mode) == ("active", "review_per_phase")
    assert initiative.created_at is not None
    task = Task.objects.get(pk="raw-task")
    assert (task.type, task.category, task.priority, task.status, task.order) == (
        "auto",
        "execute",
        "medium",
        "pending",
        0,
    )
    account = apps.get_model("agents.Account").objects.get(pk="raw-account")
    assert (account.provider, account.is_exhausted, account.sort_order) == ("claude", False, 0)


#: The indexes the seed names, by table and leading columns.
SEED_INDEXES = {
    "agent_log_chunks_agent_id_idx": ("agent_log_chunks", ["agent_id", "id"]),
    "conversations_to_status_idx": ("conversations", ["to_agent_id", "status"]),
    "conversations_from_idx": ("conversations", ["from_agent_id"]),
    "chat_sessions_target_idx": ("chat_sessions", ["target_type", "target_id"]),
    "chat_sessions_initiative_idx": ("chat_sessions", ["initiative_id"]),
    "chat_messages_session_idx": ("chat_messages", ["chat_session_id", "created_at"]),
    "review_comments_phase_idx": ("review_comments", ["phase_id", "resolved"]),
    "initiative_projects_unique_pair": ("initiative_projects", ["initiative_id", "project_id"]),
    "phase_dependencies_unique_pair": ("phase_dependencies", ["phase_id", "depends_on_phase_id"]),
    "task_dependencies_unique_pair": ("task_dependencies", ["task_id", "depends_on_task_id"]),
}


@pytest.mark.parametrize("name", sorted(SEED_INDEXES))
def test_the_seeds_named_index_exists(name):
    table, columns = SEED_INDEXES[name]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    assert name in constraints
    assert constraints[name]["columns"] == columns


@pytest.mark.parametrize(
    ("model", "constraint"),
    constraints_of(*CW_APPS),
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", "")),
)
def test_every_constraint_has_a_code_and_a_message_in_words(model, constraint):
    assert_constraint_speaks_in_words(constraint)


@pytest.mark.parametrize(
    "model",
    [m for app in CW_APPS for m in apps.get_app_config(app).get_models()],
    ids=lambda m: m._meta.label,
)
def test_uniqueness_is_declared_as_named_constraints(model):
    assert_no_unique_field(model)
