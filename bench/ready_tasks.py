"""The ready-task query at scale: time and query count at 5,000 tasks / 20,000 deps."""

import random

from bench.harness import Result, best_of, count_queries


def build(tasks_total: int, deps_per_task: int, seed: int = 7) -> str:
    """An initiative of 10 in-progress phases with ``tasks_total`` tasks, each depending
    on up to ``deps_per_task`` earlier tasks of its phase. Returns the initiative id."""
    from core.models import Initiative, Phase, PhaseStatus, Task, TaskDependency, TaskStatus

    rng = random.Random(seed)
    initiative = Initiative.objects.create(name=f"bench {tasks_total}", branch=None)
    phases = Phase.objects.bulk_create(
        Phase(initiative=initiative, name=f"phase {i}", status=PhaseStatus.IN_PROGRESS)
        for i in range(10)
    )
    per_phase = tasks_total // len(phases)
    tasks = []
    for phase in phases:
        for i in range(per_phase):
            status = TaskStatus.COMPLETED if rng.random() < 0.5 else TaskStatus.PENDING
            tasks.append(Task(phase=phase, initiative=initiative, name=f"t{i}", status=status))
    Task.objects.bulk_create(tasks, batch_size=1000)
    edges = []
    for phase_index in range(len(phases)):
        members = tasks[phase_index * per_phase : (phase_index + 1) * per_phase]
        # Early tasks have fewer predecessors than deps_per_task; the phase's last tasks
        # make up the difference, so the edge count is exactly deps_per_task per task.
        deficit = sum(deps_per_task - i for i in range(min(deps_per_task, len(members))))
        for index, task in enumerate(members[1:], start=1):
            extra = 1 if index >= len(members) - deficit else 0
            for earlier in rng.sample(members[:index], min(deps_per_task + extra, index)):
                edges.append(TaskDependency(task=task, depends_on_task=earlier))
    TaskDependency.objects.bulk_create(edges, batch_size=2000)
    refresh_statistics()
    return initiative.id


def refresh_statistics() -> None:
    """What autovacuum would do after a bulk load: fresh planner statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run(quick: bool) -> Result:
    from core import services
    from core.models import TaskDependency

    result = Result("ready tasks")
    small, large = (500, 2000) if quick else (500, 5000)
    sizes = {}
    for total in (small, large):
        initiative_id = build(total, deps_per_task=4)
        deps = TaskDependency.objects.filter(task__initiative_id=initiative_id).count()

        def query(initiative_id=initiative_id):
            return services.task_list_ready(initiative_id=initiative_id)

        seconds = best_of(query)
        queries = count_queries(query)
        ready = len(query())
        sizes[total] = (seconds, queries)
        result.figure(
            f"{total} tasks / {deps} deps",
            f"{seconds * 1000:.1f} ms, {queries} query, {ready} ready",
        )
    (small_s, small_q), (large_s, large_q) = sizes[small], sizes[large]
    result.target(small_q == large_q == 1, "one query whatever the size")
    ratio = large_s / small_s
    growth = large / small
    result.figure("time ratio large/small", f"{ratio:.1f}x for {growth:.0f}x the tasks")
    result.target(ratio <= growth * 1.5, "time grows no faster than the task count")
    return result
