"""factory_boy factories for every cw model."""

from datetime import UTC, datetime, timedelta

import factory
from factory.django import DjangoModelFactory

from agents.models import (
    USAGE_BUCKET_SECONDS,
    Account,
    Agent,
    AgentLogChunk,
    Budget,
    BudgetMetric,
    Conversation,
    LimitScope,
    Message,
    ParticipantType,
    Run,
    RunCommit,
    RunLimit,
    RunUsage,
    UsageBucket,
    UsageScope,
)
from core.models import (
    Event,
    Initiative,
    InitiativeProject,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Project,
    ReadyTask,
    Task,
    TaskDependency,
)
from core.repositories import readiness
from reviews.models import (
    ChangeAction,
    ChangeSet,
    ChangeSetEntry,
    ChangeSetSource,
    ChatMessage,
    ChatRole,
    ChatSession,
    ChatTargetType,
    Proposal,
    ProposalTargetType,
    ReviewComment,
    ReviewLineType,
)


class KeepsReadyQueue(DjangoModelFactory):
    """A factory of a record readiness reads: what it creates goes past the repositories,
    so it refreshes the ready queue for the tasks the new record may decide
    (``core.repositories.readiness``), as the repositories' own writes do."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        obj = super()._create(model_class, *args, **kwargs)
        readiness.refresh(cls._ready_scope(obj))
        return obj

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        raise NotImplementedError


class InitiativeFactory(KeepsReadyQueue):
    class Meta:
        model = Initiative

    name = factory.Sequence(lambda n: f"Initiative {n}")

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        return readiness.Scope(initiative_ids=frozenset([obj.pk]))


class PhaseFactory(KeepsReadyQueue):
    class Meta:
        model = Phase

    initiative = factory.SubFactory(InitiativeFactory)
    name = factory.Sequence(lambda n: f"Phase {n}")

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        return readiness.Scope(
            phase_ids=frozenset([obj.pk]), dependents_of_phases=frozenset([obj.pk])
        )


class PhaseDependencyFactory(KeepsReadyQueue):
    class Meta:
        model = PhaseDependency

    phase = factory.SubFactory(PhaseFactory)
    depends_on_phase = factory.SubFactory(
        PhaseFactory, initiative=factory.SelfAttribute("..phase.initiative")
    )

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        return readiness.Scope(phase_ids=frozenset([obj.phase_id]))


class TaskFactory(KeepsReadyQueue):
    class Meta:
        model = Task

    phase = factory.SubFactory(PhaseFactory)
    initiative = factory.LazyAttribute(lambda task: task.phase.initiative if task.phase else None)
    name = factory.Sequence(lambda n: f"Task {n}")

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        return readiness.Scope(
            task_ids=frozenset([obj.pk]), dependents_of_tasks=frozenset([obj.pk])
        )


class TaskDependencyFactory(KeepsReadyQueue):
    class Meta:
        model = TaskDependency

    task = factory.SubFactory(TaskFactory)
    depends_on_task = factory.SubFactory(TaskFactory, phase=factory.SelfAttribute("..task.phase"))

    @classmethod
    def _ready_scope(cls, obj) -> readiness.Scope:
        return readiness.Scope(task_ids=frozenset([obj.task_id]))


class ReadyTaskFactory(DjangoModelFactory):
    """A task the ready queue holds (its entry is the queue's to write): a pending task
    of a phase in progress."""

    class Meta:
        model = ReadyTask

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        task = kwargs.pop("task", None)
        if task is None:
            task = TaskFactory(phase__status=PhaseStatus.IN_PROGRESS, **kwargs)
        elif task.phase_id is not None:  # a task given: its phase is put under way
            Phase.objects.filter(pk=task.phase_id).update(status=PhaseStatus.IN_PROGRESS)
            readiness.refresh(readiness.Scope(phase_ids=frozenset([task.phase_id])))
        return ReadyTask.objects.get(task=task)


class PageFactory(DjangoModelFactory):
    class Meta:
        model = Page

    initiative = factory.SubFactory(InitiativeFactory)
    title = factory.Sequence(lambda n: f"Page {n}")


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n}")
    url = factory.Sequence(lambda n: f"git@example.com:team/project-{n}.git")


class InitiativeProjectFactory(DjangoModelFactory):
    class Meta:
        model = InitiativeProject

    initiative = factory.SubFactory(InitiativeFactory)
    project = factory.SubFactory(ProjectFactory)


class AccountFactory(DjangoModelFactory):
    class Meta:
        model = Account

    email = factory.Sequence(lambda n: f"account{n}@example.com")
    provider = "claude"
    sort_order = factory.Sequence(lambda n: n)


class AgentFactory(DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent-{n}")
    worktree_id = factory.Sequence(lambda n: f"/srv/worktrees/agent-{n}")


class AgentLogChunkFactory(DjangoModelFactory):
    class Meta:
        model = AgentLogChunk

    agent_id = factory.LazyFunction(lambda: AgentFactory().id)
    agent_name = "agent"
    content = '{"type":"text"}\n'


class RunFactory(DjangoModelFactory):
    """A live run of a new task (attempt 1, unless given) held by a new agent."""

    class Meta:
        model = Run

    task = factory.SubFactory(TaskFactory)
    agent = factory.SubFactory(
        AgentFactory,
        task=factory.SelfAttribute("..task"),
        initiative=factory.SelfAttribute("..task.initiative"),
    )
    attempt = 1
    runner_name = "runner-1"
    runner_host = "build-01"


class RunCommitFactory(DjangoModelFactory):
    class Meta:
        model = RunCommit

    run = factory.SubFactory(RunFactory)
    project = factory.SubFactory(ProjectFactory)
    start_commit = factory.Sequence(lambda n: f"{n:040x}")


class RunUsageFactory(DjangoModelFactory):
    class Meta:
        model = RunUsage

    run = factory.SubFactory(RunFactory)
    model = "claude-sonnet-4"
    input_tokens = 1_000
    output_tokens = 200


class UsageBucketFactory(DjangoModelFactory):
    """Everything's usage over one 10-minute bucket (the next one each time)."""

    class Meta:
        model = UsageBucket

    scope_type = UsageScope.ALL
    scope_id = ""
    bucket_start = factory.Sequence(
        lambda n: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=USAGE_BUCKET_SECONDS * n)
    )


class BudgetFactory(DjangoModelFactory):
    """A budget of a million tokens over everything, for all time."""

    class Meta:
        model = Budget

    scope_type = UsageScope.ALL
    scope_id = ""
    metric = BudgetMetric.TOKENS
    limit = 1_000_000


class RunLimitFactory(DjangoModelFactory):
    """A limit on the live runs of a runner (another runner each time)."""

    class Meta:
        model = RunLimit

    scope_type = LimitScope.RUNNER
    scope_id = factory.Sequence(lambda n: f"runner-{n}")
    max_live = 4


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = Message

    sender_type = ParticipantType.AGENT
    recipient_type = ParticipantType.USER
    content = factory.Sequence(lambda n: f"Message {n}")


class ConversationFactory(DjangoModelFactory):
    class Meta:
        model = Conversation

    from_agent = factory.SubFactory(AgentFactory)
    to_agent = factory.SubFactory(AgentFactory)
    question = factory.Sequence(lambda n: f"Question {n}?")


class ProposalFactory(DjangoModelFactory):
    class Meta:
        model = Proposal

    agent = factory.SubFactory(AgentFactory)
    initiative = factory.SubFactory(InitiativeFactory)
    target_type = ProposalTargetType.TASK
    title = factory.Sequence(lambda n: f"Proposal {n}")
    content = "Do the thing."


class ReviewCommentFactory(DjangoModelFactory):
    class Meta:
        model = ReviewComment

    phase = factory.SubFactory(PhaseFactory)
    file_path = "src/app.py"
    line_number = factory.Sequence(lambda n: n + 1)
    line_type = ReviewLineType.ADDED
    body = "Please rename this."


class ChatSessionFactory(DjangoModelFactory):
    class Meta:
        model = ChatSession

    initiative = factory.SubFactory(InitiativeFactory)
    target_type = ChatTargetType.PHASE
    target_id = factory.LazyAttribute(lambda s: PhaseFactory(initiative=s.initiative).id)


class ChangeSetFactory(DjangoModelFactory):
    class Meta:
        model = ChangeSet

    initiative = factory.SubFactory(InitiativeFactory)
    source = ChangeSetSource.PROPOSAL


class ChangeSetEntryFactory(DjangoModelFactory):
    class Meta:
        model = ChangeSetEntry

    change_set = factory.SubFactory(ChangeSetFactory)
    entity_type = "tasks"
    entity_id = "x" * 22
    action = ChangeAction.CREATE


class ChatMessageFactory(DjangoModelFactory):
    class Meta:
        model = ChatMessage

    chat_session = factory.SubFactory(ChatSessionFactory)
    role = ChatRole.USER
    content = "Split this task in two."


class UserFactory(DjangoModelFactory):
    class Meta:
        model = "auth.User"

    username = factory.Sequence(lambda n: f"user{n}")


class ApiTokenFactory(DjangoModelFactory):
    """A token row with a made-up hash: for tests that need a row, not a usable token
    (``core.tokens.api_token_create`` makes usable ones)."""

    class Meta:
        model = "core.ApiToken"

    name = factory.Sequence(lambda n: f"tool-{n}")
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    prefix = factory.Sequence(lambda n: f"cw_{n:05d}")
    created_by = factory.SubFactory(UserFactory)


class ApiRateWindowFactory(DjangoModelFactory):
    class Meta:
        model = "core.ApiRateWindow"

    caller = factory.Sequence(lambda n: f"token:{n}")
    window_start = 1_800_000_000
    hits = 1


class EventFactory(DjangoModelFactory):
    class Meta:
        model = Event

    id = factory.Sequence(lambda n: n + 1)
    kind = "task.started"
    subject_type = "task"
    subject_id = factory.Sequence(lambda n: f"task-{n}")
