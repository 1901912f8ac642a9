"""The runs' side of the admin (issue 21): runs with a person's cancel, budgets with what
they spent, limits on live runs, and the buttons the task and agent pages borrow.

People write here only through the run services, as they do over the API: a run is
cancelled with ``run_cancel`` (after a confirmation: it cannot be undone), a task is
requeued with fresh attempts with ``task_requeue``, and budgets and limits are added,
changed and lifted with ``budget_*`` and ``run_limit_*`` (people's gates, so every call
names the logged-in person). A button is shown only when it can succeed; pressed anyway
(another person was quicker), it comes back with the refusal in words. Runs, their
commits and usage, and usage buckets are otherwise read-only: they are what runners
reported.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from agents import services
from agents.models import (
    Agent,
    AgentStatus,
    Budget,
    BudgetMetric,
    LimitScope,
    Run,
    RunCommit,
    RunLimit,
    RunOutcome,
    RunUsage,
    UsageBucket,
)
from agents.repositories import (
    BudgetRepository,
    RunLimitRepository,
    RunRepository,
)
from agents.services.runs import BudgetState, budget_states
from core.actors import Actor
from core.admin_base import (
    Button,
    ButtonsAdmin,
    HistoryAdmin,
    Refused,
    ServiceAdmin,
    Writes,
    change_url,
    service_button,
)
from core.models import Task

runs = RunRepository()
budget_records = BudgetRepository()
limit_records = RunLimitRepository()

#: What cancelling a run asks first: it cannot be undone.
CANCEL_QUESTION = (
    "Cancel {record}? Its runner is told to stop its process at its next heartbeat, its "
    "agent is stopped and its task goes back to the ready queue (a cancel spends none of "
    "its attempts)."
)
#: The agent statuses whose page offers to requeue the agent's task.
ENDED_AGENT_STATUSES = (AgentStatus.CRASHED, AgentStatus.STOPPED)


def dollars(micros: int) -> str:
    """Micro-dollars in dollars: cents from a dollar up, else to a hundredth of a cent."""
    amount = micros / 1_000_000
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:,.4f}"


def tokens_of(run: Run) -> int:
    """Every token a run reported: input, output, cache read and cache write."""
    return run.input_tokens + run.output_tokens + run.cache_read_tokens + run.cache_write_tokens


# --- buttons the run, task and agent pages share -------------------------------------------


def _cancel(request: HttpRequest, run: Run | None, where: str) -> str:
    if run is None or run.outcome != RunOutcome.RUNNING:
        raise Refused(f"{where} has no live run to cancel any more.")
    services.run_cancel(run_id=run.pk, actor=Actor.person(request.user))
    return (
        f"Cancelled attempt {run.attempt}: its runner stops at its next heartbeat, and the "
        "task is back in the ready queue."
    )


def _cancel_this_run(request: HttpRequest, run: Run) -> str:
    return _cancel(request, run, "This run")


def _cancel_task_run(request: HttpRequest, task: Task) -> str:
    return _cancel(request, runs.find_live_by_task(task.pk), f"The task '{task}'")


def _cancel_agent_run(request: HttpRequest, agent: Agent) -> str:
    return _cancel(request, runs.find_live_by_agent(agent.pk), f"The agent {agent.name}")


def _requeued(task: Task, result: Task) -> str:
    return (
        f"The task '{task}' is back in the ready queue with fresh attempts; its earlier "
        "runs stay in its history."
    )


def _requeue_agent_task(request: HttpRequest, agent: Agent) -> str:
    if agent.task_id is None:
        raise Refused(f"{agent.name} has no task to requeue.")
    task = services.task_requeue(task_id=agent.task_id, actor=Actor.person(request.user))
    return _requeued(task, task)


def agent_task_requeueable(agent: Agent) -> bool:
    """Whether an agent's page offers to requeue its task: the agent crashed or stopped,
    and its task may be requeued now."""
    return (
        agent.status in ENDED_AGENT_STATUSES
        and agent.task is not None
        and services.can_requeue(agent.task)
    )


#: A run's page: cancel it while it is live.
CANCEL_RUN = Button(
    "cancel",
    "Cancel the run",
    _cancel_this_run,
    shown=lambda run: run.outcome == RunOutcome.RUNNING,
    confirm=CANCEL_QUESTION,
)
#: A task's page: cancel its live run; requeue it when blocked or left in progress.
CANCEL_TASK_RUN = Button(
    "cancel-run",
    "Cancel its run",
    _cancel_task_run,
    shown=lambda task: runs.find_live_by_task(task.pk) is not None,
    confirm="Cancel the live run of the task '{record}'? Its runner is told to stop its "
    "process at its next heartbeat, and the task goes back to the ready queue (a cancel "
    "spends none of its attempts).",
)
REQUEUE_TASK = service_button(
    "requeue",
    "Requeue with fresh attempts",
    services.task_requeue,
    id_argument="task_id",
    shown=services.can_requeue,
    pass_actor=True,
    style="default",
    done=_requeued,
)
#: An agent's page: requeue its task once it crashed or stopped; cancel its live run.
REQUEUE_AGENT_TASK = Button(
    "requeue-task",
    "Requeue its task",
    _requeue_agent_task,
    shown=agent_task_requeueable,
    style="default",
)
CANCEL_AGENT_RUN = Button(
    "cancel-run",
    "Cancel its run",
    _cancel_agent_run,
    shown=lambda agent: runs.find_live_by_agent(agent.pk) is not None,
    confirm="Cancel the live run of {record}? Its runner is told to stop its process at "
    "its next heartbeat, and its task goes back to the ready queue.",
)


def task_runs(task: Task) -> list[dict[str, Any]]:
    """A task's attempts for its page, by attempt: each run with its link, tokens and cost."""
    return [
        {
            "run": run,
            "url": change_url(run),
            "tokens": f"{tokens_of(run):,}",
            "cost": dollars(run.cost_micros),
        }
        for run in runs.history(task.pk)
    ]


def agent_task_state(agent: Agent) -> dict[str, Any] | None:
    """Where an agent's task is now, for the page of an agent that crashed or stopped."""
    if agent.status not in ENDED_AGENT_STATUSES or agent.task is None:
        return None
    task = agent.task
    return {
        "record": task,
        "url": change_url(task),
        "status": task.get_status_display().lower(),
        "requeueable": services.can_requeue(task),
    }


# --- runs ------------------------------------------------------------------------------------


class RunCommitInline(admin.TabularInline):
    model = RunCommit
    fields = ("project", "start_commit", "end_commit")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(HistoryAdmin):
    """A record shown, never added, changed or deleted here: what runners reported, or
    what the services keep."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


#: What a run's page shows of its runner, and of its usage.
RUNNER_FIELDS = (
    "runner_name", "runner_host", "pid", "worktree_path", "session_id",
    "heartbeat_timeout_seconds",
)  # fmt: skip
USAGE_SHOWN = (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "tokens", "cost",
)  # fmt: skip


@admin.register(Run)
class RunAdmin(ButtonsAdmin, ReadOnlyAdmin):
    """Runs are what runners reported, read-only; a person cancels a live one with the
    page's button (a confirmation first), which needs the change permission on runs."""

    change_form_template = "admin/agents/run/change_form.html"
    list_display = (
        "__str__", "outcome", "task", "agent", "account", "attempt", "runner_name",
        "started_at", "heartbeat_at", "tokens", "cost",
    )  # fmt: skip
    list_filter = (
        "outcome",
        "runner_name",
        ("account", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("task", "agent", "account")
    search_fields = ("task__name", "agent__name", "runner_name", "session_id")
    date_hierarchy = "started_at"
    fieldsets = (
        (None, {"fields": ("task", "agent", "account", "attempt", "session_number", "outcome")}),
        ("How it ended", {"fields": ("exit_code", "error", "summary")}),
        ("Runner", {"fields": RUNNER_FIELDS}),
        ("Times", {"fields": ("started_at", "heartbeat_at", "ended_at", "attempts_reset_at")}),
        ("Usage", {"fields": USAGE_SHOWN}),
    )
    readonly_fields = ("tokens", "cost")
    inlines = (RunCommitInline,)
    buttons = (CANCEL_RUN,)

    def get_queryset(self, request):
        # The account column shows the login only: its secrets are not read.
        return super().get_queryset(request).defer("account__config_json", "account__credentials")

    def has_button_permission(self, request: HttpRequest, record: Any) -> bool:
        # The form stays read-only (no change permission here); cancelling takes the
        # permission to change runs.
        return admin.ModelAdmin.has_change_permission(self, request, record)

    @admin.display(description="tokens")
    def tokens(self, run: Run) -> str:
        return f"{tokens_of(run):,}"

    @admin.display(description="cost", ordering="cost_micros")
    def cost(self, run: Run) -> str:
        return dollars(run.cost_micros)


@admin.register(RunCommit)
class RunCommitAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "run", "start_commit", "end_commit")
    list_select_related = ("run__task", "project")


@admin.register(RunUsage)
class RunUsageAdmin(ReadOnlyAdmin):
    list_display = (
        "run", "model", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "cost_micros", "reported_at",
    )  # fmt: skip
    list_select_related = ("run__task",)
    show_full_result_count = False


@admin.register(UsageBucket)
class UsageBucketAdmin(ReadOnlyAdmin):
    list_display = (
        "scope_type", "scope_id", "bucket_start", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_micros",
    )  # fmt: skip
    list_filter = ("scope_type",)
    show_full_result_count = False


# --- budgets and limits ------------------------------------------------------------------


def _unless_unchanged(
    service: Callable[..., Any], id_argument: str, get: Callable[[str], Any]
) -> Callable[..., Any]:
    """``service`` for a change form, except a save that changed nothing: that writes
    nothing and records nothing (the record is read back as it is)."""

    def update(*, actor: Actor | None, **changes: Any) -> Any:
        record_id = changes.pop(id_argument)
        if not changes:
            return get(record_id)
        return service(**{id_argument: record_id}, actor=actor, **changes)

    return update


def _spent(state: BudgetState | None) -> str:
    if state is None:
        return "—"
    share = state.spent * 100 // state.limit if state.limit else 0
    if state.metric == BudgetMetric.COST:
        amount = f"{dollars(state.spent)} of {dollars(state.limit)}"
    else:
        amount = f"{state.spent:,} of {state.limit:,} tokens"
    return f"{amount} ({share}%)"


@admin.register(Budget)
class BudgetAdmin(ServiceAdmin):
    """Budgets are set, changed and lifted through the budget services (a person's gate,
    as in the API); a refusal (a scope naming no record, a window that is not whole
    10-minute buckets) comes back on the form. Its scope and metric are fixed once it
    is made. The list shows what each budget's scope spent over its window (one query
    for the page)."""

    writes = Writes(
        "budget_id",
        create=services.budget_create,
        update=_unless_unchanged(services.budget_update, "budget_id", budget_records.get),
        delete=services.budget_delete,
        pass_actor=True,
    )
    list_display = (
        "__str__", "scope_type", "scope_id", "metric", "limit_shown", "spent",
        "window_seconds", "warn_percent", "active",
    )  # fmt: skip
    list_filter = ("scope_type", "metric", "active")
    search_fields = ("scope_id", "note")
    fields = (
        "scope_type", "scope_id", "metric", "limit", "window_seconds", "warn_percent",
        "active", "note",
    )  # fmt: skip
    #: A budget on another scope or metric is another budget.
    fixed_fields = ("scope_type", "scope_id", "metric")

    def get_readonly_fields(self, request, obj=None):
        return self.fixed_fields if obj is not None else ()

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        shown = list(changelist.result_list)  # the page's budgets (the queryset keeps them)
        for budget, state in zip(shown, budget_states(shown, timezone.now()), strict=True):
            budget.state = state
        return changelist

    @admin.display(description="limit", ordering="limit")
    def limit_shown(self, budget: Budget) -> str:
        if budget.metric == BudgetMetric.COST:
            return dollars(budget.limit)
        return f"{budget.limit:,} tokens"

    @admin.display(description="spent")
    def spent(self, budget: Budget) -> str:
        return _spent(getattr(budget, "state", None))


@admin.register(RunLimit)
class RunLimitAdmin(ServiceAdmin):
    """Limits on live runs are set, changed and lifted through the limit services (a
    person's gate); one per scope (a second is refused on the form). Its scope is fixed
    once made. The list shows how many runs each scope has live (one query)."""

    writes = Writes(
        "run_limit_id",
        create=services.run_limit_create,
        update=_unless_unchanged(services.run_limit_update, "run_limit_id", limit_records.get),
        delete=services.run_limit_delete,
        pass_actor=True,
    )
    list_display = ("__str__", "scope_type", "scope_id", "max_live", "live")
    list_filter = ("scope_type",)
    search_fields = ("scope_id",)
    fields = ("scope_type", "scope_id", "max_live")

    def get_readonly_fields(self, request, obj=None):
        return ("scope_type", "scope_id") if obj is not None else ()

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        shown = list(changelist.result_list)
        ids = {scope: [r.scope_id for r in shown if r.scope_type == scope] for scope in LimitScope}
        counts = runs.live_counts(
            initiative_ids=ids[LimitScope.INITIATIVE],
            account_ids=ids[LimitScope.ACCOUNT],
            runner_names=ids[LimitScope.RUNNER],
        )
        by_scope = {
            LimitScope.INITIATIVE: counts.by_initiative,
            LimitScope.ACCOUNT: counts.by_account,
            LimitScope.RUNNER: counts.by_runner,
        }
        for limit in shown:
            found = by_scope.get(limit.scope_type)
            live = counts.overall if found is None else found.get(limit.scope_id, 0)
            limit.live_now = live
        return changelist

    @admin.display(description="live now")
    def live(self, limit: RunLimit) -> str:
        value = getattr(limit, "live_now", None)
        return "—" if value is None else str(value)
