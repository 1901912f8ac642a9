"""The rule the runs keep with the ready queue and the agents, checked on what the database
holds: for the race tests, at their end and while their threads run.

``runs_disagreements`` reads tasks, runs, agents and limits and lists every way they
disagree; ``assert_runs_agree`` fails with that list. The rule (issue 21):

- every ``in_progress`` task has exactly one live (``running``) run;
- every live run's task is ``in_progress``, and its agent is working (``running``, or
  ``waiting_for_input`` on a question asked mid-run) and bound to that task;
- no agent holds two live runs;
- no ready task (``TaskRepository.ready_queryset``, the queue take-next reads) has a
  live run;
- the live runs of every scope with a limit (overall, an initiative, an account, a
  runner) are at most that limit.
"""

from collections import Counter
from dataclasses import dataclass, field

from agents.models import AgentStatus, LimitScope, Run, RunLimit, RunOutcome
from core.models import Task, TaskStatus
from core.repositories import TaskRepository

#: What a live run's agent may be doing.
WORKING = (AgentStatus.RUNNING, AgentStatus.WAITING_FOR_INPUT)


@dataclass
class Census:
    """What the check read, for a test's figures: live runs and in-progress tasks."""

    live_runs: int = 0
    in_progress: int = 0
    problems: list[str] = field(default_factory=list)


def runs_disagreements() -> Census:
    """Every disagreement between tasks, runs, agents, the ready queue and the limits."""
    census = Census()
    problems = census.problems
    live = list(
        Run.objects.filter(outcome=RunOutcome.RUNNING).values_list(
            "pk",
            "task_id",
            "task__status",
            "task__initiative_id",
            "agent_id",
            "agent__status",
            "agent__task_id",
            "account_id",
            "runner_name",
        )
    )
    in_progress = set(
        Task.objects.filter(status=TaskStatus.IN_PROGRESS).values_list("pk", flat=True)
    )
    census.live_runs, census.in_progress = len(live), len(in_progress)

    per_task = Counter(row[1] for row in live)
    problems += [
        f"task {pk} is in progress with {per_task[pk]} live runs"
        for pk in sorted(in_progress)
        if per_task[pk] != 1
    ]
    for run_id, task_id, task_status, _initiative, agent_id, agent_status, bound, *_ in live:
        if task_status != TaskStatus.IN_PROGRESS:
            problems.append(f"live run {run_id}'s task {task_id} is {task_status}")
        if agent_id is None:
            problems.append(f"live run {run_id} has no agent")
        elif agent_status not in WORKING or bound != task_id:
            problems.append(
                f"live run {run_id}'s agent {agent_id} is {agent_status}, bound to task "
                f"{bound}, not working on {task_id}"
            )
    per_agent = Counter(row[4] for row in live if row[4] is not None)
    problems += [f"agent {pk} holds {n} live runs" for pk, n in per_agent.items() if n > 1]

    live_tasks = set(per_task)
    ready = TaskRepository().ready_queryset()
    problems += [
        f"ready task {pk} has a live run"
        for pk in ready.filter(pk__in=live_tasks).values_list("pk", flat=True)
    ]

    counts: Counter[tuple[str, str]] = Counter()
    for _run, _task, _status, initiative_id, _agent, _a, _b, account_id, runner in live:
        counts[(LimitScope.ALL, "")] += 1
        counts[(LimitScope.INITIATIVE, initiative_id or "")] += 1
        counts[(LimitScope.ACCOUNT, account_id or "")] += 1
        counts[(LimitScope.RUNNER, runner)] += 1
    for scope_type, scope_id, max_live in RunLimit.objects.values_list(
        "scope_type", "scope_id", "max_live"
    ):
        found = counts[(scope_type, scope_id or "")]
        if found > max_live:
            problems.append(f"{found} live runs in {scope_type} {scope_id!r}, limit {max_live}")
    return census


def assert_runs_agree() -> Census:
    """Fail, listing every disagreement, unless tasks, runs, agents, the ready queue and
    the limits agree (see the module's docstring); what was read otherwise."""
    census = runs_disagreements()
    assert not census.problems, "runs disagree:\n  " + "\n  ".join(census.problems)
    return census
