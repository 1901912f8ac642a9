"""Runs (issue 21): take-next against the size of the plan and against eight racing
callers, and a heartbeat with usage against a raw insert.

Targets:

- "take-next's cost does not grow with the plan": the median time of one take-next on a
  plan of 50,000 tasks (4 dependencies each) is at most 2x its time on a plan of 500
  (``--quick``: 5,000 against 500), and every take-next runs the same number of queries
  at both sizes (a ``rule``).
- "8 concurrent callers", on the largest plan: eight threads, each with its own
  connection, take, hold the run a moment (the agent working: ``HOLD_IN_TAKES`` median
  take-nexts, so that the limits are reached, at most ``MAX_HOLD``) and finish it
  (succeeded), until the
  plan's next ``CONCURRENT_TASKS`` tasks are done, under a limit of ``OVERALL_LIMIT``
  live runs overall and ``INITIATIVE_LIMIT`` per initiative; their throughput is set
  against one caller's doing the same (>= 0.5x: take-nexts take turns by design, and
  racing must not make them slower than that). Rules: 0 tasks handed out twice (every
  task taken has exactly one run, and it succeeded), 0 limits exceeded (a monitor thread
  with its own connection counts the live runs, overall and per initiative, all along).
- "heartbeat with usage", per batch as every hot path here: ``run_heartbeat`` with
  ``BATCH`` usage reports against the raw insert of the same ``BATCH`` ``run_usage`` rows
  in one transaction, in reports a second (>= 0.1x), and the same number of queries for
  1 report and for ``BATCH`` (a ``rule``: the roll-up pays per batch, not per report).
  The heartbeat locks the run, rolls the usage up into the run and its five scopes'
  buckets, moves the heartbeat and reads the budgets, in one transaction: a fixed cost
  of about a dozen statements, shown for one report against one autocommit insert
  (no target: a heartbeat comes every half minute or so per run).

The plan is a layered DAG per phase (2 initiatives of 5 phases, approved or in
progress): the first layer of ``LAYER_WIDTH`` tasks completed, every later task pending
and depending on 4 tasks of the layer before it. So the frontier (the second layer, then
whatever its completions free) is 100 tasks at every size, and everything behind it is
pending and blocked. It is written through the repositories' restore paths (what
``cw_import`` uses), a phase at a time, so the ready queue they keep is current.

Run on its own with ``python -m bench.runs [--quick]`` (``DATABASE_URL`` for
PostgreSQL).
"""

import contextlib
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.harness import Result, paired_rates
from bench.ready_tasks import new_id

INITIATIVES = 2
PHASES_PER_INITIATIVE = 5
LAYER_WIDTH = 10
DEPS_PER_TASK = 4
PRIORITIES = ("high", "medium", "medium", "low")
#: A provider cw knows (agents are registered for it), used by no other scenario: its
#: accounts are this scenario's alone, removed at its end.
PROVIDER = "gemini"
ACCOUNTS = 8
THREADS = 8
OVERALL_LIMIT = 6
INITIATIVE_LIMIT = 4
#: Take-nexts timed per plan size (each followed by a finish, untimed, so the frontier
#: moves as a runner's would): full run, --quick.
TIMED_CLAIMS = (50, 20)
#: Tasks done by one caller, then by eight, on the largest plan: full run, --quick.
SINGLE_TASKS = (8, 6)
CONCURRENT_TASKS = (48, 24)
#: How long a caller holds its run before finishing it, in take-nexts' median times at
#: the largest size: long enough that the overall limit is reached (OVERALL_LIMIT
#: take-nexts, which take turns, fit into one run's time) rather than every run ending
#: before the next starts.
HOLD_IN_TAKES = 1.5 * OVERALL_LIMIT
#: ...but never longer than this, in seconds, so a slow take-next does not make the race
#: last minutes.
MAX_HOLD = 2.0
#: One model's usage, as a runner reports it at a heartbeat.
USAGE = {
    "model": "claude-opus",
    "input_tokens": 1_200,
    "output_tokens": 350,
    "cache_read_tokens": 5_000,
    "cache_write_tokens": 120,
    "cost_micros": 4_250,
}
USAGE_COLUMNS = (
    "run_id",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "reported_at",
)


# --- the plan -------------------------------------------------------------------------


@dataclass
class Plan:
    """What ``build`` wrote: its initiatives and its counts."""

    size: int
    initiative_ids: list[str]
    dependencies: int
    ready: int
    seconds: float


def build(size: int, seed: int = 21) -> Plan:
    """A plan of ``size`` tasks (see the module's docstring), written through
    ``TaskRepository.restore`` and ``restore_dependencies``."""
    from django.db import transaction
    from django.utils import timezone

    from core.models import Initiative, Phase, PhaseStatus
    from core.repositories import TaskRepository

    started = time.perf_counter()
    rng = random.Random(seed)
    phases_total = INITIATIVES * PHASES_PER_INITIATIVE
    per_phase = size // phases_total
    start = timezone.now() - timedelta(days=30)
    tasks: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    ready = 0
    with transaction.atomic():
        initiatives = Initiative.objects.bulk_create(
            Initiative(name=f"bench runs {size} #{i}", branch=None, execution_mode="yolo")
            for i in range(INITIATIVES)
        )
        phases = Phase.objects.bulk_create(
            Phase(
                initiative=initiative,
                name=f"phase {p}",
                status=PhaseStatus.APPROVED if p % 2 else PhaseStatus.IN_PROGRESS,
            )
            for initiative in initiatives
            for p in range(PHASES_PER_INITIATIVE)
        )
        for phase in phases:
            layer: list[str] = []
            previous: list[str] = []
            for index in range(per_phase):
                if index and index % LAYER_WIDTH == 0:
                    previous, layer = layer, []
                task_id = new_id()
                stamp = start + timedelta(milliseconds=len(tasks))
                first_layer = index < LAYER_WIDTH
                tasks.append(
                    {
                        "id": task_id,
                        "created_at": stamp,
                        "updated_at": stamp,
                        "phase_id": phase.pk,
                        "initiative_id": phase.initiative_id,
                        "name": f"task {index}",
                        "type": "auto",
                        "category": "execute",
                        "priority": rng.choice(PRIORITIES),
                        "status": "completed" if first_layer else "pending",
                        "order": index,
                    }
                )
                if not first_layer:
                    edges.extend(
                        {
                            "id": new_id(),
                            "created_at": stamp,
                            "task_id": task_id,
                            "depends_on_task_id": depends_on,
                        }
                        for depends_on in rng.sample(previous, DEPS_PER_TASK)
                    )
                    ready += LAYER_WIDTH <= index < 2 * LAYER_WIDTH
                layer.append(task_id)
        # One phase at a time, as an import of that phase would: a restore refreshes the
        # ready queue for the tasks it names, in one statement that names them all.
        repository = TaskRepository()
        for phase in phases:
            repository.restore([task for task in tasks if task["phase_id"] == phase.pk])
        of_phase = {task["id"]: task["phase_id"] for task in tasks}
        for phase in phases:
            repository.restore_dependencies(
                [edge for edge in edges if of_phase[edge["task_id"]] == phase.pk]
            )
    refresh_statistics()
    return Plan(
        size=len(tasks),
        initiative_ids=[initiative.pk for initiative in initiatives],
        dependencies=len(edges),
        ready=ready,
        seconds=time.perf_counter() - started,
    )


def refresh_statistics() -> None:
    """What autovacuum would do after a bulk load: fresh planner statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def drop(plan: Plan) -> None:
    """Delete the plan and everything its runs wrote, in plain statements (the ORM's
    cascade would load every row first)."""
    from django.db import connection, transaction

    marks = ", ".join(["%s"] * len(plan.initiative_ids))
    of_plan = f"IN (SELECT id FROM tasks WHERE initiative_id IN ({marks}))"  # noqa: S608
    of_runs = f"IN (SELECT id FROM runs WHERE task_id {of_plan})"  # noqa: S608
    statements = (
        ("run_usage", "run_id", of_runs),
        ("run_commits", "run_id", of_runs),
        ("runs", "task_id", of_plan),
        ("agents", "task_id", of_plan),
        ("task_dependencies", "task_id", of_plan),
        ("ready_tasks", "task_id", of_plan),
        ("tasks", "initiative_id", f"IN ({marks})"),
        ("phases", "initiative_id", f"IN ({marks})"),
        ("initiatives", "id", f"IN ({marks})"),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        for table, column, where in statements:
            sql = f"DELETE FROM {table} WHERE {column} {where}"  # noqa: S608 - the bench's own names
            cursor.execute(sql, plan.initiative_ids)


def setup_accounts() -> None:
    from agents.models import Account

    Account.objects.bulk_create(
        Account(email=f"runs{i}@example.com", provider=PROVIDER, sort_order=i)
        for i in range(ACCOUNTS)
    )


def clear_installation() -> None:
    """Delete the bench's accounts, limits and the usage its runs summed."""
    from agents.models import Account, RunLimit, UsageBucket

    UsageBucket.objects.all().delete()
    RunLimit.objects.all().delete()
    Account.objects.filter(provider=PROVIDER).delete()


# --- take-next against the plan's size -------------------------------------------------


def take(runner: str) -> Any:
    from agents.services import run_take_next

    return run_take_next(runner_name=runner, runner_host="bench-host", providers=[PROVIDER])


def finish(taken: Any, runner: str) -> None:
    from agents.services import run_finish

    run_finish(run_id=taken.run.pk, runner_name=runner, outcome="succeeded", summary="done")


@dataclass
class Claims:
    """One size's timed take-nexts."""

    seconds: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_claims(count: int) -> Claims:
    """``count`` take-nexts, each timed and followed by its run's finish (untimed); then
    ten more with their queries counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    claims = Claims()
    for _ in range(3):  # warm up: statement caches, prepared statements
        finish(take("bench-solo"), "bench-solo")
    for _ in range(count):
        start = time.perf_counter()
        taken = take("bench-solo")
        claims.seconds.append(time.perf_counter() - start)
        if taken is None:
            raise RuntimeError("a take-next found nothing on a plan with ready tasks")
        finish(taken, "bench-solo")
    for _ in range(10):
        with CaptureQueriesContext(connection) as captured:
            taken = take("bench-solo")
        claims.queries.append(len(captured.captured_queries))
        finish(taken, "bench-solo")
    return claims


# --- eight callers --------------------------------------------------------------------


@dataclass
class Race:
    """What one timed run of callers did."""

    callers: int
    done: int = 0
    elapsed: float = 0.0
    nothing: int = 0
    task_ids: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Tasks done per minute."""
        return 60 * self.done / self.elapsed if self.elapsed else 0.0


@dataclass
class Watch:
    """The most live runs a monitor thread saw, overall and in any one initiative."""

    samples: int = 0
    overall: int = 0
    per_initiative: int = 0
    twice: int = 0


def race(callers: int, tasks: int, hold: float) -> Race:
    """``callers`` threads, each with its own connection, take, hold the run ``hold``
    seconds (the agent working) and finish, until ``tasks`` tasks are done; timed to the
    ``tasks``-th finish (each caller checks before taking, so a few more may be)."""
    from django.db import connection

    outcome = Race(callers)
    lock = threading.Lock()
    started: list[float] = []
    # The clock starts as the barrier releases everyone (its action runs first).
    barrier = threading.Barrier(callers + 1, action=lambda: started.append(time.perf_counter()))

    def caller(index: int) -> None:
        runner = f"bench-runner-{index}"
        try:
            connection.ensure_connection()  # connect before the clock starts
            barrier.wait()
            while True:
                with lock:
                    if outcome.done >= tasks:
                        return
                taken = take(runner)
                if taken is None:
                    with lock:
                        outcome.nothing += 1
                    time.sleep(0.01)  # every slot is held: let a finish come
                    continue
                time.sleep(hold)
                finish(taken, runner)
                with lock:
                    outcome.done += 1
                    outcome.task_ids.append(taken.task.pk)
                    if outcome.done == tasks:
                        outcome.elapsed = time.perf_counter() - started[0]
        except BaseException as error:
            with lock:
                outcome.errors.append(error)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    for thread in threads:
        thread.join()
    return outcome


def watching(plan: Plan) -> tuple[Watch, Callable[[], None]]:
    """Start a thread (its own connection) counting live runs until the returned stop is
    called: overall, per initiative, and tasks with two live runs at once."""
    from django.db import connection

    watch = Watch()
    stopped = threading.Event()
    marks = ", ".join(["%s"] * len(plan.initiative_ids))
    per_initiative = (
        "SELECT t.initiative_id, count(*), count(DISTINCT r.task_id) FROM runs r "  # noqa: S608
        f"JOIN tasks t ON t.id = r.task_id WHERE r.outcome = 'running' "
        f"AND t.initiative_id IN ({marks}) GROUP BY t.initiative_id"
    )

    def monitor() -> None:
        try:
            with connection.cursor() as cursor:
                while not stopped.is_set():
                    cursor.execute("SELECT count(*) FROM runs WHERE outcome = 'running'")
                    overall = cursor.fetchone()[0]
                    cursor.execute(per_initiative, plan.initiative_ids)
                    rows = cursor.fetchall()
                    watch.samples += 1
                    watch.overall = max(watch.overall, overall)
                    watch.per_initiative = max([watch.per_initiative, *(r[1] for r in rows)])
                    watch.twice += sum(r[1] - r[2] for r in rows)
                    time.sleep(0.001)
        finally:
            connection.close()

    thread = threading.Thread(target=monitor)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join()

    return watch, stop


def runs_per_task(task_ids: list[str]) -> tuple[int, int]:
    """For the tasks handed out: (how many have other than exactly one run, how many of
    those runs did not succeed)."""
    from django.db.models import Count

    from agents.models import Run

    found = dict(
        Run.objects.filter(task_id__in=set(task_ids))
        .order_by()
        .values("task_id")
        .annotate(runs=Count("pk"))
        .values_list("task_id", "runs")
    )
    not_one = sum(1 for task_id in set(task_ids) if found.get(task_id) != 1)
    unsucceeded = Run.objects.filter(task_id__in=set(task_ids)).exclude(outcome="succeeded")
    return not_one, unsucceeded.count()


# --- heartbeat --------------------------------------------------------------------------


#: Usage reports in one heartbeat's batch (a runner reports each assistant message's
#: usage, many between two heartbeats).
BATCH = 50


@dataclass
class Beats:
    """What the heartbeat measure found: rates in reports a second."""

    single: float
    single_raw: float
    batch: float
    batch_raw: float
    queries_single: int
    queries_batch: int


def heartbeat_rates(quick: bool) -> Beats:
    """A heartbeat with one report and with ``BATCH`` reports, each against the raw
    insert of the same rows (one autocommit insert; ``BATCH`` rows in one transaction),
    and the queries of each heartbeat, on one live run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from agents.services import run_heartbeat
    from bench.raw import RawConnection

    taken = take("bench-beat")
    if taken is None:
        raise RuntimeError("no run to beat: the plan has no ready task left")
    run_id = taken.run.pk
    raw = RawConnection()
    insert = raw.sql(
        f"INSERT INTO run_usage ({', '.join(USAGE_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(USAGE_COLUMNS))})"
    )
    values = [USAGE[name] for name in USAGE_COLUMNS[1:-1]]
    adapt = connection.ops.adapt_datetimefield_value

    def beat(reports: int) -> None:
        run_heartbeat(run_id=run_id, runner_name="bench-beat", usage=[USAGE] * reports)

    def insert_raw(reports: int) -> None:
        row = [run_id, *values, adapt(timezone.now())]
        if reports == 1:
            raw.execute(insert, row)
        else:
            raw.executemany(insert, [row] * reports)

    try:
        calls, rounds = (100, 3) if quick else (300, 5)
        single, single_raw = paired_rates(
            lambda: beat(1),
            lambda: insert_raw(1),
            calls=calls,
            rounds=rounds,
            after_round=raw.settle,
        )
        batch, batch_raw = paired_rates(
            lambda: beat(BATCH),
            lambda: insert_raw(BATCH),
            calls=calls // 5,
            rounds=rounds,
            units_per_call=BATCH,
            after_round=raw.settle,
        )
        with CaptureQueriesContext(connection) as one:
            beat(1)
        with CaptureQueriesContext(connection) as many:
            beat(BATCH)
    finally:
        raw.close()
        finish(taken, "bench-beat")
    return Beats(
        single,
        single_raw,
        batch,
        batch_raw,
        len(one.captured_queries),
        len(many.captured_queries),
    )


# --- the scenario ---------------------------------------------------------------------


def set_limits(plan: Plan) -> None:
    from agents.models import RunLimit

    RunLimit.objects.bulk_create(
        [
            RunLimit(scope_type="all", scope_id="", max_live=OVERALL_LIMIT),
            *(
                RunLimit(scope_type="initiative", scope_id=pk, max_live=INITIATIVE_LIMIT)
                for pk in plan.initiative_ids
            ),
        ]
    )


def run(quick: bool) -> Result:
    result = Result("runs")
    sizes = (500, 5_000) if quick else (500, 50_000)
    # Each of these is (full run, --quick).
    which = 1 if quick else 0
    timed, single_tasks, several_tasks = (
        figures[which] for figures in (TIMED_CLAIMS, SINGLE_TASKS, CONCURRENT_TASKS)
    )
    smallest, largest = sizes
    measured: dict[int, Claims] = {}
    setup_accounts()
    plan: Plan | None = None
    try:
        for size in sizes:
            plan = build(size)
            result.info(
                f"plan of {plan.size:,} tasks / {plan.dependencies:,} deps "
                f"({plan.ready} ready), written through restore",
                plan.seconds,
                unit="s",
            )
            measured[size] = time_claims(timed)
            result.info(
                f"run_take_next, {size:,} tasks: median of {timed} claims",
                measured[size].median * 1000,
                unit="ms",
            )
            if size != largest:
                drop(plan)
                plan = None
        assert plan is not None

        set_limits(plan)
        hold = min(HOLD_IN_TAKES * measured[largest].median, MAX_HOLD)
        single = race(1, single_tasks, hold)
        watch, stop = watching(plan)
        try:
            several = race(THREADS, several_tasks, hold)
        finally:
            stop()
        for outcome in (single, several):
            if outcome.errors:
                first = outcome.errors[0]
                raise RuntimeError(
                    f"{len(outcome.errors)} caller(s) of {outcome.callers} failed: {first!r}"
                ) from first
        not_one, unsucceeded = runs_per_task(single.task_ids + several.task_ids)
        handed_twice = len(single.task_ids + several.task_ids) - len(
            set(single.task_ids + several.task_ids)
        )

        beats = heartbeat_rates(quick)
    finally:
        if plan is not None:
            drop(plan)
        clear_installation()

    small, large = measured[smallest], measured[largest]
    ratio = large.median / small.median
    result.check(
        f"run_take_next: time per claim at {largest:,} tasks / at {smallest:,}",
        large.median * 1000,
        unit="ms",
        target="<= 2x (flat in the plan's size)",
        held=ratio <= 2,
        baseline=small.median * 1000,
        baseline_label=f"{smallest:,} tasks",
        ratio=ratio,
    )
    # A claim that starts an approved phase also moves the phase (and records it): the
    # fewest queries at each size are those of a claim in a phase already in progress.
    result.check(
        f"run_take_next: queries per claim at {smallest:,} / {largest:,} tasks",
        min(large.queries),
        unit="queries",
        target=f"the same at both sizes ({min(small.queries)} / {min(large.queries)})",
        held=min(small.queries) == min(large.queries),
        baseline=min(small.queries),
        baseline_label=f"at {smallest:,}",
        kind="rule",
    )
    result.ratio(
        f"take-next, hold {hold * 1000:,.0f} ms, finish: {THREADS} callers / 1, "
        f"{largest:,} tasks, at most {OVERALL_LIMIT} live, {INITIATIVE_LIMIT} per initiative",
        several.rate,
        single.rate,
        unit="tasks/min",
        minimum=0.5,
        baseline_label="1 caller",
    )
    taken = len(single.task_ids) + len(several.task_ids)
    result.check(
        f"tasks handed out twice ({taken} taken by 1 then {THREADS} callers)",
        handed_twice + not_one,
        unit="tasks",
        target="0 (each task taken has exactly one run)",
        held=handed_twice == 0 and not_one == 0,
        kind="rule",
    )
    result.check(
        "runs of those tasks that did not succeed",
        unsucceeded,
        unit="runs",
        target="0",
        held=unsucceeded == 0,
        kind="rule",
    )
    result.check(
        f"most live runs seen, {THREADS} callers ({watch.samples:,} samples)",
        watch.overall,
        unit="runs",
        target=f"<= {OVERALL_LIMIT} overall",
        held=watch.overall <= OVERALL_LIMIT,
        kind="rule",
    )
    result.check(
        "most live runs seen in one initiative",
        watch.per_initiative,
        unit="runs",
        target=f"<= {INITIATIVE_LIMIT}",
        held=watch.per_initiative <= INITIATIVE_LIMIT and watch.twice == 0,
        kind="rule",
    )
    result.info(
        f"take-nexts that found every slot held, {THREADS} callers", several.nothing, unit="calls"
    )
    result.ratio(
        f"run_heartbeat with {BATCH} usage reports / raw INSERT of {BATCH} run_usage rows",
        beats.batch,
        beats.batch_raw,
        unit="reports/s",
        minimum=0.1,
        baseline_label=f"raw insert of {BATCH} rows in a transaction",
    )
    result.check(
        f"run_heartbeat: queries with {BATCH} usage reports / with 1",
        beats.queries_batch,
        unit="queries",
        target=f"the same whatever the batch ({beats.queries_single} / {beats.queries_batch})",
        held=beats.queries_batch == beats.queries_single,
        baseline=beats.queries_single,
        baseline_label="with 1 report",
        kind="rule",
    )
    result.info(
        "run_heartbeat with one usage report (the roll-up's fixed cost, once a heartbeat)",
        beats.single,
        unit="reports/s",
    )
    result.info("raw autocommit INSERT of one run_usage row", beats.single_raw, unit="rows/s")
    return result


if __name__ == "__main__":
    import sys

    from bench.harness import print_table, setup_django, throwaway_database

    setup_django()
    from django.db import connection

    quick = "--quick" in sys.argv
    with throwaway_database():
        print(f"runs on {connection.vendor}{' (quick)' if quick else ''}")
        print_table([run(quick=quick)], enforce_speed=not quick)
