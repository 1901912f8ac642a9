"""The ready queue at scale: ``task_list_ready`` over an initiative of 500, 5,000 and
50,000 tasks with 4 dependencies each.

Target: "ready queue at 500, 5,000 and 50,000 tasks (4 dependencies each): the same
number of queries at every size; time grows at most linearly". The query count is a
``rule`` (it holds at any size, so ``--quick`` checks it too, at smaller sizes); the
time at each larger size, divided by the time at the smallest, may be at most the ratio
of the sizes. The rows are written straight into the tables (``COPY`` on PostgreSQL,
``executemany`` on SQLite): the repositories' own writes are not what is measured here,
and 250,000 rows through them would take minutes.
"""

import random
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bench.harness import Result, count_queries, median_time

PHASES = 10
DEPS_PER_TASK = 4
PRIORITIES = ("high", "medium", "medium", "low")

TASK_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "phase_id",
    "initiative_id",
    "name",
    "type",
    "category",
    "priority",
    "status",
    "order",
)
DEPENDENCY_COLUMNS = ("id", "created_at", "task_id", "depends_on_task_id")


def new_id() -> str:
    """22 URL-safe random characters, like the application's ids."""
    return secrets.token_urlsafe(16)


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write ``rows`` into ``table`` in one go: ``COPY`` on PostgreSQL, ``executemany``
    on SQLite."""
    from django.db import connection, transaction

    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",  # noqa: S608 - the bench's own names
                rows,
            )


def build(
    tasks_total: int, deps_per_task: int = DEPS_PER_TASK, seed: int = 7
) -> tuple[str, int, int]:
    """An initiative of ``PHASES`` in-progress phases sharing ``tasks_total`` tasks (half
    of them completed), each task depending on ``deps_per_task`` earlier tasks of its
    phase. Returns (the initiative id, the dependency rows written, how many tasks are
    ready: pending with every dependency completed)."""
    from django.db import connection
    from django.utils import timezone

    from core.models import Initiative, Phase, PhaseStatus
    from core.repositories import readiness

    rng = random.Random(seed)
    initiative = Initiative.objects.create(name=f"bench ready {tasks_total}", branch=None)
    phases = Phase.objects.bulk_create(
        Phase(initiative=initiative, name=f"phase {i}", status=PhaseStatus.IN_PROGRESS)
        for i in range(PHASES)
    )
    adapt = connection.ops.adapt_datetimefield_value
    start = timezone.now() - timedelta(days=30)
    per_phase = tasks_total // PHASES
    tasks: list[tuple[Any, ...]] = []
    edges: list[tuple[Any, ...]] = []
    ready = 0
    for phase in phases:
        ids: list[str] = []
        completed: list[bool] = []
        # Early tasks have fewer predecessors than deps_per_task; the phase's last tasks
        # make up the difference, so there are exactly deps_per_task edges per task.
        deficit = sum(deps_per_task - i for i in range(min(deps_per_task, per_phase)))
        for index in range(per_phase):
            task_id = new_id()
            done = rng.random() < 0.5
            stamp = adapt(start + timedelta(milliseconds=len(tasks)))
            tasks.append(
                (
                    task_id,
                    stamp,
                    stamp,
                    phase.id,
                    initiative.id,
                    f"task {index}",
                    "auto",
                    "execute",
                    rng.choice(PRIORITIES),
                    "completed" if done else "pending",
                    index,
                )
            )
            count = min(deps_per_task + (index >= per_phase - deficit), index)
            earlier = rng.sample(range(index), count)
            edges.extend((new_id(), stamp, task_id, ids[e]) for e in earlier)
            ready += not done and all(completed[e] for e in earlier)
            ids.append(task_id)
            completed.append(done)
    insert_rows("tasks", TASK_COLUMNS, tasks)
    insert_rows("task_dependencies", DEPENDENCY_COLUMNS, edges)
    # The rows went past the repositories that keep the ready queue current.
    readiness.refresh(readiness.Scope(initiative_ids=frozenset([initiative.id])))
    refresh_statistics()
    return initiative.id, len(edges), ready


def drop(initiative_id: str) -> None:
    """Delete what ``build`` wrote, in plain statements (the ORM's cascade would load
    every row first)."""
    from django.db import connection, transaction

    tasks = "SELECT id FROM tasks WHERE initiative_id = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM task_dependencies WHERE task_id IN ({tasks})", [initiative_id])  # noqa: S608
        cursor.execute(f"DELETE FROM ready_tasks WHERE task_id IN ({tasks})", [initiative_id])  # noqa: S608
        cursor.execute("DELETE FROM tasks WHERE initiative_id = %s", [initiative_id])
        cursor.execute("DELETE FROM phases WHERE initiative_id = %s", [initiative_id])
        cursor.execute("DELETE FROM initiatives WHERE id = %s", [initiative_id])


def refresh_statistics() -> None:
    """What autovacuum would do after a bulk load: fresh planner statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run(quick: bool) -> Result:
    from core import services

    result = Result("ready tasks")
    sizes = (200, 1_000, 2_000) if quick else (500, 5_000, 50_000)
    smallest = sizes[0]
    measured: dict[int, tuple[float, int]] = {}
    answers: dict[int, tuple[int, int]] = {}
    built: list[str] = []
    try:
        for total in sizes:
            initiative_id, deps, expected = build(total)
            built.append(initiative_id)

            def query(initiative_id: str = initiative_id) -> list:
                return services.task_list_ready(initiative_id=initiative_id)

            found = len(query())  # warm up, and the answer
            # Small sizes are fast and noisy: more repeats for them.
            seconds = median_time(query, repeat=max(5, min(41, 200_000 // total)))
            queries = count_queries(query)
            measured[total] = (seconds, queries)
            result.info(
                f"task_list_ready, {total:,} tasks / {deps:,} deps ({found:,} ready)",
                seconds * 1000,
                unit="ms",
            )
            answers[total] = (found, expected)
        # The smallest initiative again, now beside the larger ones: an initiative's
        # queue should not slow down with the tasks of the others.
        others = sum(sizes) - smallest

        def first(initiative_id: str = built[0]) -> list:
            return services.task_list_ready(initiative_id=initiative_id)

        first()
        beside = median_time(first, repeat=max(5, min(41, 200_000 // smallest)))
        result.info(
            f"task_list_ready, {smallest:,} tasks, with {others:,} other tasks stored",
            beside * 1000,
            unit="ms",
        )
    finally:
        for initiative_id in built:
            drop(initiative_id)

    small_seconds, small_queries = measured[smallest]
    counts = [queries for _seconds, queries in measured.values()]
    largest = sizes[-1]
    result.check(
        f"task_list_ready: ready tasks found at {largest:,} tasks (and at every size)",
        answers[largest][0],
        unit="tasks",
        target="those pending with every dependency completed",
        held=all(found == expected for found, expected in answers.values()),
        baseline=answers[largest][1],
        baseline_label="counted while building",
        kind="rule",
    )
    result.check(
        f"task_list_ready: queries at {' / '.join(f'{n:,}' for n in sizes)} tasks",
        counts[-1],
        unit="queries",
        target=f"the same at every size ({', '.join(map(str, counts))})",
        held=len(set(counts)) == 1,
        baseline=small_queries,
        baseline_label=f"at {smallest:,}",
        kind="rule",
    )
    for total in sizes[1:]:
        seconds, _queries = measured[total]
        growth = total / smallest
        ratio = seconds / small_seconds
        result.check(
            f"task_list_ready: time at {total:,} tasks / at {smallest:,}",
            seconds * 1000,
            unit="ms",
            target=f"<= {growth:g}x (linear in tasks)",
            held=ratio <= growth,
            baseline=small_seconds * 1000,
            baseline_label=f"{smallest:,} tasks",
            ratio=ratio,
        )
    return result
