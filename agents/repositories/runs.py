"""Runs and what bounds them: every attempt at a task, the usage it reports, the budgets
that cap spending and the limits that cap live runs (issue 21).

``RunRepository`` numbers a task's attempts and finds live and stale runs;
``UsageRepository`` appends usage reports and rolls them up into the run's totals and
the per-scope ``UsageBucket`` rows in a fixed number of statements, whatever the batch;
``BudgetRepository`` and ``RunLimitRepository`` keep the caps, refusing a scope that
names no record. Outcomes, heartbeats and totals change only through the services built
on these (``lifecycle_fields``: ``beat`` and ``end``), never through an edit;
``RunCommitRepository`` keeps the commit each run ended at per project.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import F, Max, Q, QuerySet, Sum, Value, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone
from typing_extensions import Unpack

from agents.models import (
    ALL_TIME,
    BUDGET_WINDOW_SECONDS,
    USAGE_BUCKET_SECONDS,
    USAGE_FIELDS,
    Account,
    Budget,
    BudgetMetric,
    LimitScope,
    Run,
    RunCommit,
    RunLimit,
    RunOutcome,
    RunUsage,
    UsageBucket,
    UsageScope,
)
from core.errors import InvalidInput, NotFound
from core.models import Initiative, Phase, Task
from core.repositories import (
    DEFAULT_PAGE_SIZE,
    INT32,
    OffsetPage,
    Repository,
    check_choice,
    hot,
    offset_page,
)
from core.repositories.validation import text_problem

#: The largest count (of tokens of one kind, or of micro-dollars) one usage report may
#: carry: far beyond any real report, well inside a 64-bit sum of a whole year's.
MAX_REPORTED = 10**12
#: The most usage reports one call may append (a heartbeat carries a handful).
MAX_USAGE_BATCH = 1_000
#: The largest budget limit: PostgreSQL's ``bigint``.
MAX_BUDGET_LIMIT = 2**63 - 1


def bucket_start(at: datetime) -> datetime:
    """The start of the 10-minute bucket (UTC) ``at`` falls in."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % USAGE_BUCKET_SECONDS, tz=UTC)


class HeartbeatDeadline(models.Func):
    """When a live run counts as lost: its last heartbeat plus its timeout, computed by
    the database (SQLite's text times to the millisecond, PostgreSQL's intervals)."""

    output_field = models.DateTimeField()

    def __init__(self) -> None:
        super().__init__(F("heartbeat_at"), F("heartbeat_timeout_seconds"))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        (at, at_params), (timeout, timeout_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        sql = f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {at}, '+' || {timeout} || ' seconds')"
        return sql, [*at_params, *timeout_params]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        (at, at_params), (timeout, timeout_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        return f"({at} + make_interval(secs => {timeout}))", [*at_params, *timeout_params]


#: The outcomes that spend one of a task's attempts (a run stopped by its runner or
#: cancelled by a person did not fail its task).
FAILED_RUN_OUTCOMES = (
    RunOutcome.FAILED,
    RunOutcome.CRASHED,
    RunOutcome.LOST,
    RunOutcome.BUDGET_STOPPED,
)


# --- runs ---------------------------------------------------------------------------------


class RunFields(TypedDict):
    id: NotRequired[str]
    task_id: str
    runner_name: str
    runner_host: str
    agent_id: NotRequired[str | None]
    account_id: NotRequired[str | None]
    session_number: NotRequired[int]
    pid: NotRequired[int | None]
    worktree_path: NotRequired[str | None]
    session_id: NotRequired[str | None]
    heartbeat_timeout_seconds: NotRequired[int]
    started_at: NotRequired[datetime]


@dataclass(frozen=True)
class LiveRunCounts:
    """How many runs are live overall and in each scope asked about (0 when none)."""

    overall: int
    by_initiative: dict[str, int] = field(default_factory=dict)
    by_account: dict[str, int] = field(default_factory=dict)
    by_runner: dict[str, int] = field(default_factory=dict)


class RunRepository(Repository[Run]):
    """Runs: a task's attempts, numbered from 1, each a new row (a retry never overwrites).

    A run is live while its outcome is ``running``: a task and an agent hold at most one
    live run each (``task_has_live_run``, ``agent_has_live_run``). Its outcome, times
    and usage totals are lifecycle fields, changed only by the run services and the
    usage roll-up.
    """

    model = Run
    slug = "run"
    label = "Run"
    select_related = ("task",)
    lifecycle_fields = frozenset(
        {
            "outcome",
            "ended_at",
            "heartbeat_at",
            "exit_code",
            "error",
            "summary",
            "attempts_reset_at",
            *USAGE_FIELDS,
        }
    )
    #: The most stale runs one sweep takes.
    stale_batch = 100

    # --- writes ----------------------------------------------------------------------

    def create(self, **fields: Unpack[RunFields]) -> Run:
        """Start a live run of a task: its attempt is the task's next (1 for the first),
        computed in the same transaction as the insert. A second live run of the task
        or the agent is ``Conflict`` ``task_has_live_run`` / ``agent_has_live_run``; two
        concurrent creates for one task that did not lock it first may meet
        ``run_attempt_taken``."""
        with transaction.atomic():
            last = (
                Run.objects.filter(task_id=fields["task_id"])
                .aggregate(last=Max("attempt"))
                .get("last")
            )
            return self._create(**fields, attempt=(last or 0) + 1)

    def beat(
        self, run: Run, *, at: datetime, pid: int | None = None, session_id: str | None = None
    ) -> Run:
        """Record a heartbeat of a locked live run at ``at``, with the pid and session id
        the runner reports (kept when not given)."""
        fields: dict[str, Any] = {"heartbeat_at": at}
        if pid is not None:
            fields["pid"] = pid
        if session_id is not None:
            fields["session_id"] = session_id
        return self._transition(run, **fields)

    def report(
        self,
        run: Run,
        *,
        pid: int | None = None,
        worktree_path: str | None = None,
        session_id: str | None = None,
    ) -> list[str]:
        """Record what the runner reports of a locked live run (its process, worktree
        and CLI session; what is not given is kept); the fields that changed."""
        given = {"pid": pid, "worktree_path": worktree_path, "session_id": session_id}
        changed = {
            name: value
            for name, value in given.items()
            if value is not None and getattr(run, name) != value
        }
        if changed:
            self._update(run, **changed)
        return list(changed)

    def end(
        self,
        run: Run,
        outcome: str,
        *,
        at: datetime,
        exit_code: int | None = None,
        error: str | None = None,
        summary: str | None = None,
    ) -> Run:
        """End a locked live run with ``outcome`` at ``at`` (the run services decide when)."""
        check_choice(RunOutcome, outcome, "outcome")
        return self._transition(
            run, outcome=outcome, ended_at=at, exit_code=exit_code, error=error, summary=summary
        )

    def reset_attempts(self, task_id: str, *, at: datetime) -> int:
        """Set aside the failed runs of a task whose task a person requeued (its run
        services hold the task's lock): they no longer count against ``max_attempts``
        nor put the task in back-off. How many failed runs were still counted."""
        self._require_atomic("reset_attempts")
        counted = Run.objects.filter(
            task_id=task_id, outcome__in=FAILED_RUN_OUTCOMES, attempts_reset_at__isnull=True
        )
        return self._update_many(counted, attempts_reset_at=at)

    # --- reads -----------------------------------------------------------------------

    def live(self) -> QuerySet[Run]:
        return self.queryset().filter(outcome=RunOutcome.RUNNING)

    def find_live_by_task(self, task_id: str) -> Run | None:
        """The task's live run, or None."""
        return self.live().filter(task_id=task_id).first()

    def find_live_by_agent(self, agent_id: str) -> Run | None:
        """The agent's live run, or None."""
        return self.live().filter(agent_id=agent_id).first()

    def find_page(
        self,
        *,
        task_id: str | None = None,
        agent_id: str | None = None,
        outcome: str | None = None,
        runner_name: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Run]:
        """One offset page of the runs, oldest first, filtered by what is given, with the
        total: three queries whatever the page size
        (the third, the page's commits)."""
        qs = self.queryset()
        if task_id is not None:
            qs = qs.filter(task_id=task_id)
        if agent_id is not None:
            qs = qs.filter(agent_id=agent_id)
        if outcome is not None:
            qs = qs.filter(outcome=check_choice(RunOutcome, outcome, "outcome"))
        if runner_name is not None:
            qs = qs.filter(runner_name=runner_name)
        page = offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)
        prefetch_related_objects(page.items, "commits")
        return page

    def history(self, task_id: str) -> list[Run]:
        """Every run of the task, by attempt (its history)."""
        return list(self.queryset().filter(task_id=task_id).order_by("attempt"))

    def find_ended_by_task(self, task_id: str, *, limit: int) -> list[Run]:
        """The task's last ``limit`` runs that are over, by attempt (oldest first): what
        its next attempt is told about those before it. One query."""
        ended = (
            Run.objects.filter(task_id=task_id)
            .exclude(outcome=RunOutcome.RUNNING)
            .order_by("-attempt")[:limit]
        )
        return list(reversed(ended))

    def counted_failures(self, task_id: str) -> list[Run]:
        """The task's failed runs that count against its ``max_attempts`` (those since a
        person last requeued it), by attempt."""
        return list(
            self.queryset()
            .filter(
                task_id=task_id,
                outcome__in=FAILED_RUN_OUTCOMES,
                attempts_reset_at__isnull=True,
            )
            .order_by("attempt")
        )

    def find_stale(self, now: datetime, *, limit: int | None = None) -> list[Run]:
        """Live runs whose last heartbeat plus timeout is before ``now`` (lost), the
        longest silent first, at most ``limit`` (``stale_batch``) of them."""
        return list(
            self.live()
            .alias(deadline=HeartbeatDeadline())
            .filter(deadline__lt=now)
            .order_by("heartbeat_at", "id")[: limit or self.stale_batch]
        )

    def last_failure_ends(self, task_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of ``task_ids``' last failed run (failed, crashed, lost,
        budget_stopped) still counted ended (a person's requeue sets the earlier ones
        aside); a task without one is absent. One query."""
        rows = (
            Run.objects.filter(
                task_id__in=list(task_ids),
                outcome__in=FAILED_RUN_OUTCOMES,
                attempts_reset_at__isnull=True,
            )
            .order_by()
            .values("task_id")
            .annotate(last=Max("ended_at"))
            .values_list("task_id", "last")
        )
        return {task_id: last for task_id, last in rows if last is not None}

    def live_counts(
        self,
        *,
        initiative_ids: Iterable[str] = (),
        account_ids: Iterable[str] = (),
        runner_names: Iterable[str] = (),
    ) -> LiveRunCounts:
        """How many runs are live overall, in each of ``initiative_ids``, on each of
        ``account_ids`` and on each of ``runner_names``: one query, whatever is asked."""
        initiatives = sorted(set(initiative_ids))
        accounts = sorted(set(account_ids))
        runners = sorted(set(runner_names))
        db = connections[DEFAULT_DB_ALIAS]
        sql = _live_counts_sql(db.vendor, len(initiatives), len(accounts), len(runners))
        params: list[Any] = [RunOutcome.RUNNING]
        for values in (initiatives, accounts, runners):
            if values:
                params += [RunOutcome.RUNNING, *values]
        found: dict[str, dict[str, int]] = {"initiative": {}, "account": {}, "runner": {}}
        overall = 0
        for scope, scope_id, count in hot.fetch_all(db, sql, params):
            if scope == "all":
                overall = int(count)
            else:
                found[scope][scope_id] = int(count)
        return LiveRunCounts(
            overall=overall,
            by_initiative={id: found["initiative"].get(id, 0) for id in initiatives},
            by_account={id: found["account"].get(id, 0) for id in accounts},
            by_runner={name: found["runner"].get(name, 0) for name in runners},
        )

    # --- what people watch (the dashboard and cw_status) ------------------------------

    #: What a listing for people reads with each run, so naming its task, initiative,
    #: agent and account costs no query per row.
    listing_related = ("task__initiative", "agent", "account")

    def count_live_and_lost(
        self, now: datetime, *, initiative_id: str | None = None
    ) -> tuple[int, int]:
        """How many runs are live, and how many of those are past their heartbeat
        deadline at ``now`` (lost, not swept yet), optionally in one initiative: one
        query."""
        counts = self._live_in(initiative_id).aggregate(
            live=models.Count("pk"),
            lost=models.Count("pk", filter=models.lookups.LessThan(HeartbeatDeadline(), now)),
        )
        return counts["live"], counts["lost"]

    def find_live_listing(self, *, limit: int, initiative_id: str | None = None) -> list[Run]:
        """The first ``limit`` live runs, the longest running first, with their task,
        initiative, agent and account: one query."""
        return list(
            self._live_in(initiative_id)
            .select_related(*self.listing_related)
            .order_by("started_at", "id")[:limit]
        )

    def find_lost_listing(
        self, now: datetime, *, limit: int, initiative_id: str | None = None
    ) -> list[Run]:
        """The first ``limit`` live runs past their heartbeat deadline at ``now`` (the
        sweep's rule, ``find_stale``), the longest silent first, with their task,
        initiative, agent and account: one query."""
        return list(
            self._live_in(initiative_id)
            .alias(deadline=HeartbeatDeadline())
            .filter(deadline__lt=now)
            .select_related(*self.listing_related)
            .order_by("heartbeat_at", "id")[:limit]
        )

    def find_ended_page(
        self,
        outcomes: Sequence[str],
        *,
        since: datetime,
        limit: int,
        initiative_id: str | None = None,
    ) -> OffsetPage[Run]:
        """The runs that ended with one of ``outcomes`` at or after ``since``, the latest
        first, with their task, initiative, agent and account, and their total: two
        queries."""
        for outcome in outcomes:
            check_choice(RunOutcome, outcome, "outcome")
        qs = self.queryset().filter(outcome__in=list(outcomes), ended_at__gte=since)
        if initiative_id is not None:
            qs = qs.filter(task__initiative_id=initiative_id)
        qs = qs.select_related(*self.listing_related).order_by("-ended_at", "-id")
        return offset_page(qs, limit=limit)

    def _live_in(self, initiative_id: str | None) -> QuerySet[Run]:
        qs = self.live()
        return qs if initiative_id is None else qs.filter(task__initiative_id=initiative_id)


@functools.cache
def _live_counts_sql(vendor: str, initiatives: int, accounts: int, runners: int) -> str:
    """The live-run counts' statement: one ``UNION ALL`` branch per scope asked about."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    runs, tasks = quote(Run._meta.db_table), quote(Task._meta.db_table)
    outcome = quote("outcome")

    def marks(count: int) -> str:
        return ", ".join(["%s"] * count)

    branches = [f"SELECT 'all', '', COUNT(*) FROM {runs} WHERE {outcome} = %s"]  # noqa: S608
    if initiatives:
        column = f"{tasks}.{quote('initiative_id')}"
        branches.append(
            f"SELECT 'initiative', {column}, COUNT(*) FROM {runs} "  # noqa: S608
            f"JOIN {tasks} ON {tasks}.{quote('id')} = {runs}.{quote('task_id')} "
            f"WHERE {runs}.{outcome} = %s AND {column} IN ({marks(initiatives)}) "
            f"GROUP BY {column}"
        )
    for scope, column, count in (
        ("account", quote("account_id"), accounts),
        ("runner", quote("runner_name"), runners),
    ):
        if count:
            branches.append(
                f"SELECT '{scope}', {column}, COUNT(*) FROM {runs} "  # noqa: S608
                f"WHERE {outcome} = %s AND {column} IN ({marks(count)}) GROUP BY {column}"
            )
    return " UNION ALL ".join(branches)


class RunCommitRepository(Repository[RunCommit]):
    """A run's git commits at start and end, one row per (run, project)."""

    model = RunCommit
    slug = "run_commit"
    label = "Run commit"

    def record_start(self, run: Run, commits: dict[str, str]) -> list[RunCommit]:
        """Set the commit ``run`` started from in each project of ``commits`` (project id
        → full commit name), adding the project's row when the run had none; as
        ``record_end`` refuses."""
        return self._record(run, commits, "start_commit")

    def record_end(self, run: Run, commits: dict[str, str]) -> list[RunCommit]:
        """Set the commit ``run`` ended at in each project of ``commits`` (project id →
        full commit name), adding the project's row when the run had none. A malformed
        name is ``invalid_git_commit``; a project that does not exist ``project_not_found``."""
        return self._record(run, commits, "end_commit")

    def find_by_phase_id(self, phase_id: str) -> list[RunCommit]:
        """The commits of every run at the phase's tasks, with their runs, in the order
        the runs started (one query)."""
        return list(
            RunCommit.objects.filter(run__task__phase_id=phase_id)
            .select_related("run")
            .order_by("run__started_at", "run_id", "project_id")
        )

    def _record(self, run: Run, commits: dict[str, str], column: str) -> list[RunCommit]:
        existing = {row.project_id: row for row in RunCommit.objects.filter(run=run)}
        written = []
        for project_id, sha in sorted(commits.items()):
            row = existing.get(project_id)
            if row is None:
                written.append(self._create(run=run, project_id=project_id, **{column: sha}))
            else:
                written.append(self._update(row, **{column: sha}))
        return written


# --- usage --------------------------------------------------------------------------------


class UsageReport(TypedDict, total=False):
    """One usage report of a run for one model, as the runner sends it (counts of 0
    may be left out)."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_micros: int


class UsageRepository(Repository[RunUsage]):
    """Usage reports, and their roll-up into runs' totals and ``UsageBucket`` rows.

    Every report is summed, in the same transaction as it is appended, into its run's
    totals and into the current 10-minute bucket and the all-time row of each scope the
    run belongs to: everything, its task, its phase, its initiative and its account. So a
    budget reads a bounded number of bucket rows (``spent``), never the reports.
    """

    model = RunUsage
    slug = "run_usage"
    label = "Run usage"
    report_fields = frozenset({"model", *USAGE_FIELDS})

    def record(
        self,
        run: Run | str,
        reports: Sequence[UsageReport],
        *,
        now: datetime | None = None,
        heartbeat: bool = False,
    ) -> dict[str, int]:
        """Append ``reports`` (one per model) to ``run`` and add them to its totals and
        its scopes' buckets; the run's new totals. Four statements whatever the batch's
        size: the run's scopes, one multi-row insert, one update adding the batch's sums
        (and, with ``heartbeat``, moving the run's ``heartbeat_at`` to ``now``: a
        heartbeat's usage and its beat in one write), one upsert of the buckets. All or
        nothing: a refused report (``invalid_usage``: not a whole number from 0 to 10^12,
        an unknown key, a bad model name; with its ``details.index``) writes nothing.
        Inside a caller's transaction it takes no savepoint of its own (every refusal
        comes before its first write)."""
        rows = self._checked_reports(reports)
        now = now or timezone.now()
        run_id = run.pk if isinstance(run, Run) else run
        sums = [sum(row[index] for row in rows) for index in range(1, len(USAGE_FIELDS) + 1)]
        db = connections[DEFAULT_DB_ALIAS]
        stamp = db.ops.adapt_datetimefield_value(now)
        scopes = hot.fetch_all(db, _run_scopes_sql(db.vendor), [run_id])
        if not scopes:
            raise RunRepository().not_found(run_id)
        task_id, phase_id, initiative_id, account_id = scopes[0]
        with transaction.atomic(savepoint=False):
            # The run first: its row lock orders concurrent reports of one run.
            (totals,) = hot.fetch_all(
                db,
                _add_to_run_sql(db.vendor, heartbeat),
                [*sums, stamp, *([stamp] if heartbeat else []), run_id],
            )
            values = [param for row in rows for param in (run_id, *row, stamp)]
            hot.execute(db, _insert_usage_sql(db.vendor, len(rows)), values)
            keys = [
                (UsageScope.ALL.value, ""),
                (UsageScope.TASK.value, task_id),
                *([(UsageScope.PHASE.value, phase_id)] if phase_id else []),
                *([(UsageScope.INITIATIVE.value, initiative_id)] if initiative_id else []),
                *([(UsageScope.ACCOUNT.value, account_id)] if account_id else []),
            ]
            current, all_time = bucket_start(now), ALL_TIME
            buckets = sorted(
                (scope, scope_id, start)
                for scope, scope_id in keys
                for start in (all_time, current)
            )
            # In one order everywhere (scope, id, bucket): two reports locking the same
            # bucket rows on PostgreSQL never wait for each other in a cycle.
            params = [
                param
                for scope, scope_id, start in buckets
                for param in (scope, scope_id, db.ops.adapt_datetimefield_value(start), *sums)
            ]
            hot.execute(db, _upsert_buckets_sql(db.vendor, len(buckets)), params)
        return dict(zip(USAGE_FIELDS, (int(value) for value in totals), strict=True))

    def spent(
        self,
        scope_type: str,
        scope_id: str,
        metric: str,
        window_seconds: int | None,
        now: datetime,
    ) -> int:
        """What a scope spent, in ``metric`` (tokens: input + output + cache read + cache
        write; cost: micro-dollars), over all time (``window_seconds`` None: the all-time
        row) or the last ``window_seconds`` (whole buckets: the one ``now`` falls in and
        the ones before it, ``window_seconds / 600`` in all). One query."""
        return self.spent_many([(scope_type, scope_id, metric, window_seconds)], now)[0]

    def spent_many(
        self, asked: Sequence[tuple[str, str, str, int | None]], now: datetime
    ) -> list[int]:
        """``spent`` for each of ``asked`` (scope type, scope id, metric, window), in
        order: one query whatever their number (each a filtered sum over its scope's
        buckets), so checking every budget of a heartbeat or a take-next costs one
        read."""
        if not asked:
            return []
        last = bucket_start(now)
        tokens = (
            F("input_tokens")
            + F("output_tokens")
            + F("cache_read_tokens")
            + F("cache_write_tokens")
        )
        wanted = Q()
        sums = {}
        for index, (scope_type, scope_id, metric, window_seconds) in enumerate(asked):
            check_choice(UsageScope, scope_type, "scope_type")
            check_choice(BudgetMetric, metric, "metric")
            check_window(window_seconds)
            buckets = Q(scope_type=scope_type, scope_id=scope_id)
            if window_seconds is None:
                buckets &= Q(bucket_start=ALL_TIME)
            else:
                first = last - timedelta(seconds=window_seconds - USAGE_BUCKET_SECONDS)
                buckets &= Q(bucket_start__gte=first, bucket_start__lte=last) & ~Q(
                    bucket_start=ALL_TIME
                )
            wanted |= buckets
            amount = tokens if metric == BudgetMetric.TOKENS else F("cost_micros")
            sums[f"spent_{index}"] = Coalesce(
                Sum(amount, filter=buckets), Value(0), output_field=models.BigIntegerField()
            )
        found = UsageBucket.objects.filter(wanted).aggregate(**sums)
        return [int(found[f"spent_{index}"]) for index in range(len(asked))]

    def _checked_reports(self, reports: Sequence[UsageReport]) -> list[tuple[Any, ...]]:
        """Each report as a row (model, the counts in ``USAGE_FIELDS`` order), or the
        refusal of the first bad one."""
        if not isinstance(reports, list | tuple) or not reports:
            raise InvalidInput(
                "A usage report batch needs at least one report.", code="empty_usage_batch"
            )
        if len(reports) > MAX_USAGE_BATCH:
            raise InvalidInput(
                f"A usage report batch has at most {MAX_USAGE_BATCH:,} reports.",
                code="usage_batch_too_large",
                details={"max_reports": MAX_USAGE_BATCH, "reports": len(reports)},
            )
        return [self._checked_report(index, report) for index, report in enumerate(reports)]

    def _checked_report(self, index: int, report: Any) -> tuple[Any, ...]:
        def refuse(message: str, **details: Any) -> InvalidInput:
            return InvalidInput(
                f"Usage report {index}: {message}",
                code="invalid_usage",
                details={"index": index, **details},
            )

        if not isinstance(report, dict):
            raise refuse("a report is an object of token counts and cost.")
        unknown = sorted(str(key) for key in set(report) - self.report_fields)
        if unknown:
            raise refuse(f"unknown {', '.join(unknown)}.", unknown=unknown)
        model = report.get("model", "")
        if not isinstance(model, str) or len(model) > 255 or text_problem(model) is not None:
            raise refuse("the model is a name of at most 255 characters.", field="model")
        counts = []
        for name in USAGE_FIELDS:
            value = report.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                raise refuse(f"{name} must be a whole number.", field=name)
            if not 0 <= value <= MAX_REPORTED:
                raise refuse(
                    f"{name} must be from 0 to {MAX_REPORTED:,}.",
                    field=name,
                    value=str(value),
                    max=MAX_REPORTED,
                )
            counts.append(value)
        return (model, *counts)


@functools.cache
def _run_scopes_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    runs, tasks = quote(Run._meta.db_table), quote(Task._meta.db_table)
    return (
        f"SELECT {runs}.{quote('task_id')}, {tasks}.{quote('phase_id')}, "  # noqa: S608
        f"{tasks}.{quote('initiative_id')}, {runs}.{quote('account_id')} FROM {runs} "
        f"JOIN {tasks} ON {tasks}.{quote('id')} = {runs}.{quote('task_id')} "
        f"WHERE {runs}.{quote('id')} = %s"
    )


@functools.cache
def _budgets_of_run_sql() -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    budgets, runs, tasks = (quote(m._meta.db_table) for m in (Budget, Run, Task))
    columns = ", ".join(f"b.{quote(f.column)}" for f in Budget._meta.concrete_fields)
    kind, id_ = f"b.{quote('scope_type')}", f"b.{quote('scope_id')}"
    scopes = " OR ".join(
        [f"{kind} = '{UsageScope.ALL.value}'"]
        + [
            f"({kind} = '{scope.value}' AND {id_} = {column})"
            for scope, column in (
                (UsageScope.TASK, f"r.{quote('task_id')}"),
                (UsageScope.PHASE, f"t.{quote('phase_id')}"),
                (UsageScope.INITIATIVE, f"t.{quote('initiative_id')}"),
                (UsageScope.ACCOUNT, f"r.{quote('account_id')}"),
            )
        ]
    )
    return (
        f"SELECT {columns} FROM {budgets} b "  # noqa: S608 - identifiers and enum values only
        f"JOIN {runs} r ON r.{quote('id')} = %s "
        f"JOIN {tasks} t ON t.{quote('id')} = r.{quote('task_id')} "
        f"WHERE b.{quote('active')} AND ({scopes}) ORDER BY b.{quote('id')}"
    )


@functools.cache
def _add_to_run_sql(vendor: str, heartbeat: bool) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    adds = ", ".join(f"{quote(name)} = {quote(name)} + %s" for name in USAGE_FIELDS)
    beat = f", {quote('heartbeat_at')} = %s" if heartbeat else ""
    totals = ", ".join(quote(name) for name in USAGE_FIELDS)
    return (
        f"UPDATE {quote(Run._meta.db_table)} SET {adds}, {quote('updated_at')} = %s{beat} "  # noqa: S608
        f"WHERE {quote('id')} = %s RETURNING {totals}"
    )


@functools.cache
def _insert_usage_sql(vendor: str, rows: int) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    columns = ["run_id", "model", *USAGE_FIELDS, "reported_at"]
    row = f"({', '.join(['%s'] * len(columns))})"
    return (
        f"INSERT INTO {quote(RunUsage._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(c) for c in columns)}) VALUES {', '.join([row] * rows)}"
    )


@functools.cache
def _upsert_buckets_sql(vendor: str, rows: int) -> str:
    """Add to each (scope, id, bucket) row, creating it at 0 first: one statement on both
    databases (SQLite 3.35+, PostgreSQL 9.5+); the unique constraint serialises concurrent
    first reports of a bucket, so no count is ever lost."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(UsageBucket._meta.db_table)
    key = [quote("scope_type"), quote("scope_id"), quote("bucket_start")]
    columns = [*key, *(quote(name) for name in USAGE_FIELDS)]
    row = f"({', '.join(['%s'] * len(columns))})"
    adds = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in USAGE_FIELDS
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adds}"
    )


def check_window(window_seconds: Any) -> int | None:
    """Return a budget window: None (all time), or a whole number of 10-minute buckets
    from 10 minutes to a year; else InvalidInput ``invalid_window_seconds``."""
    if window_seconds is None:
        return None
    low, high = BUDGET_WINDOW_SECONDS
    if (
        isinstance(window_seconds, bool)
        or not isinstance(window_seconds, int)
        or not low <= window_seconds <= high
        or window_seconds % USAGE_BUCKET_SECONDS
    ):
        raise InvalidInput(
            f"A budget's window must be empty (all time) or a whole number of "
            f"{USAGE_BUCKET_SECONDS}-second buckets from {low:,} to {high:,} seconds.",
            code="invalid_window_seconds",
            details={"window_seconds": str(window_seconds)},
        )
    return window_seconds


# --- budgets and limits -------------------------------------------------------------------

#: The table each scope's id names (``all`` names none; a runner is named, not stored).
SCOPE_MODELS: dict[str, type[models.Model]] = {
    "initiative": Initiative,
    "phase": Phase,
    "task": Task,
    "account": Account,
}


def _check_int(value: Any, field: str, low: int, high: int, code: str, words: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{words} must be a whole number from {low:,} to {high:,}.",
            code=code,
            details={"field": field, field: str(value)},
        )
    return value


def _check_scope(scope_type: str, scope_id: Any, *, all_scope: str, code: str, label: str) -> str:
    """``scope_id`` checked against ``scope_type``: empty for everything, else an id of an
    existing record (``code``, NotFound) or, for a runner, a name."""
    if not isinstance(scope_id, str) or text_problem(scope_id) is not None:
        raise InvalidInput(
            "A scope id is text.", code="invalid_scope_id", details={"scope_type": scope_type}
        )
    if (scope_type == all_scope) != (scope_id == ""):
        raise InvalidInput(
            "A scope of everything has no id; any other scope names its record.",
            code="invalid_scope_id",
            details={"scope_type": scope_type, "scope_id": scope_id},
        )
    model = SCOPE_MODELS.get(scope_type)
    if model is not None and not model._default_manager.filter(pk=scope_id).exists():
        raise NotFound(
            f"{label} names {scope_type} '{scope_id}', which does not exist.",
            code=code,
            details={"scope_type": scope_type, "scope_id": scope_id},
        )
    return scope_id


class BudgetFields(TypedDict):
    scope_type: str
    metric: str
    limit: int
    scope_id: NotRequired[str]
    window_seconds: NotRequired[int | None]
    warn_percent: NotRequired[int]
    active: NotRequired[bool]
    note: NotRequired[str]


class BudgetChanges(TypedDict, total=False):
    limit: int
    window_seconds: int | None
    warn_percent: int
    active: bool
    note: str


class BudgetRepository(Repository[Budget]):
    """Budgets: caps on spending per scope, in tokens or cost, over all time or a window.

    A budget's scope and metric are fixed when it is created (a budget on another scope
    is another budget); its limit, window, warning threshold and note may change, and
    it may be switched off (``active``). A scope must name an existing record
    (``budget_scope_not_found``).
    """

    model = Budget
    slug = "budget"
    label = "Budget"
    read_only_fields = frozenset({"id", "created_at", "updated_at", "scope_type", "scope_id"})

    def create(self, **fields: Unpack[BudgetFields]) -> Budget:
        scope_type = check_choice(UsageScope, fields.get("scope_type"), "scope_type")
        check_choice(BudgetMetric, fields.get("metric"), "metric")
        _check_scope(
            scope_type,
            fields.get("scope_id", ""),
            all_scope=UsageScope.ALL,
            code="budget_scope_not_found",
            label="The budget",
        )
        self._check_bounds(fields)
        return self._create(**fields)

    def update(self, budget: Budget | str, /, **changes: Unpack[BudgetChanges]) -> Budget:
        """Raise, lower or switch off a budget, or change its window or threshold."""
        self.check_update_fields(changes)
        self._check_bounds(changes)
        return self._update(budget, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def find_page(
        self,
        *,
        scope_type: str | None = None,
        scope_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[Budget]:
        """One offset page of the budgets, oldest first, optionally of one scope type or
        scope, with the total: two queries whatever the page size."""
        qs = self.queryset().order_by("created_at", "id")
        if scope_type is not None:
            qs = qs.filter(scope_type=check_choice(UsageScope, scope_type, "scope_type"))
        if scope_id is not None:
            qs = qs.filter(scope_id=scope_id)
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def applicable_to_run(self, run_id: str) -> list[Budget]:
        """The active budgets the run counts against: everything's, its task's
        initiative's, phase's and its own, and its account's. One prepared statement
        (nothing to build per call: a heartbeat reads it every beat)."""
        return list(self.model._default_manager.raw(_budgets_of_run_sql(), [run_id]))

    def active_on(self, scopes: Iterable[tuple[str, str]]) -> list[Budget]:
        """The active budgets on any of ``scopes`` ((scope type, scope id) pairs; the
        whole installation is ``("all", "")``), in one query whatever their number."""
        by_type: dict[str, set[str]] = {}
        for scope_type, scope_id in scopes:
            by_type.setdefault(scope_type, set()).add(scope_id)
        if not by_type:
            return []
        match = Q()
        for scope_type, ids in sorted(by_type.items()):
            match |= Q(scope_type=scope_type, scope_id__in=sorted(ids))
        return list(self.queryset().filter(match, active=True).order_by("id"))

    def _check_bounds(self, fields: Any) -> None:
        if "metric" in fields:
            check_choice(BudgetMetric, fields["metric"], "metric")
        if "limit" in fields:
            _check_int(
                fields["limit"],
                "limit",
                1,
                MAX_BUDGET_LIMIT,
                "invalid_budget_limit",
                "A budget's limit",
            )
        if "window_seconds" in fields:
            check_window(fields["window_seconds"])
        if "warn_percent" in fields:
            _check_int(
                fields["warn_percent"],
                "warn_percent",
                1,
                100,
                "invalid_warn_percent",
                "The warning threshold",
            )

    # --- what people watch (the dashboard and cw_status) ------------------------------

    def find_active(self) -> list[Budget]:
        """Every active budget, by scope then age: one query. People set budgets by
        hand, so there are tens, not thousands."""
        return list(
            self.queryset()
            .filter(active=True)
            .order_by("scope_type", "scope_id", "created_at", "id")
        )

    def scope_names(self, scopes: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """What each of ``scopes`` ((scope type, id) pairs) is called: an initiative's,
        a phase's or a task's name, an account's email, by (scope type, id); a record
        that no longer exists, and everything (which needs no name), are absent. One
        query (a ``UNION ALL`` of one branch per scope type asked about)."""
        by_type: dict[str, set[str]] = {}
        for scope_type, scope_id in scopes:
            if scope_type in SCOPE_MODELS and scope_id:
                by_type.setdefault(scope_type, set()).add(scope_id)
        branches = [
            SCOPE_MODELS[scope_type]
            ._default_manager.filter(pk__in=sorted(ids))
            .order_by()
            .values_list(
                "pk",
                "email" if scope_type == UsageScope.ACCOUNT else "name",
                Value(scope_type, output_field=models.CharField()),
            )
            for scope_type, ids in sorted(by_type.items())
        ]
        if not branches:
            return {}
        rows = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
        return {(scope_type, str(pk)): name for pk, name, scope_type in rows}


class RunLimitFields(TypedDict):
    scope_type: str
    max_live: int
    scope_id: NotRequired[str]


class RunLimitRepository(Repository[RunLimit]):
    """Limits on live runs: overall, per initiative, per account, per runner (by name).

    One limit per scope (``run_limit_taken``); an initiative or account must exist
    (``run_limit_scope_not_found``); a runner is named, whether it has run yet or not.
    """

    model = RunLimit
    slug = "run_limit"
    label = "Run limit"
    read_only_fields = frozenset({"id", "created_at", "updated_at", "scope_type", "scope_id"})

    def create(self, **fields: Unpack[RunLimitFields]) -> RunLimit:
        scope_type = check_choice(LimitScope, fields.get("scope_type"), "scope_type")
        _check_scope(
            scope_type,
            fields.get("scope_id", ""),
            all_scope=LimitScope.ALL,
            code="run_limit_scope_not_found",
            label="The limit",
        )
        self._check_max_live(fields.get("max_live"))
        return self._create(**fields)

    def update(self, limit: RunLimit | str, /, *, max_live: int) -> RunLimit:
        """Change the most live runs of a limit's scope."""
        self._check_max_live(max_live)
        return self._update(limit, max_live=max_live)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def find_page(
        self,
        *,
        scope_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_bytes: int | None = None,
    ) -> OffsetPage[RunLimit]:
        """One offset page of the limits by scope, optionally of one scope type, with the
        total: two queries whatever the page size."""
        qs = self.queryset()
        if scope_type is not None:
            qs = qs.filter(scope_type=check_choice(LimitScope, scope_type, "scope_type"))
        return offset_page(qs, limit=limit, offset=offset, max_bytes=max_bytes)

    def max_live_by_scope(
        self,
        *,
        initiative_ids: Iterable[str] = (),
        account_ids: Iterable[str] = (),
        runner_name: str | None = None,
    ) -> dict[tuple[str, str], int]:
        """The most live runs of the overall scope (``("all", "")``), each of
        ``initiative_ids`` and ``account_ids`` and ``runner_name`` that has a limit, by
        (scope type, scope id); a scope without a limit is absent. One query."""
        scopes = Q(scope_type=LimitScope.ALL)
        for scope_type, ids in (
            (LimitScope.INITIATIVE, sorted(set(initiative_ids))),
            (LimitScope.ACCOUNT, sorted(set(account_ids))),
            (LimitScope.RUNNER, [runner_name] if runner_name else []),
        ):
            if ids:
                scopes |= Q(scope_type=scope_type, scope_id__in=ids)
        rows = RunLimit.objects.filter(scopes).values_list("scope_type", "scope_id", "max_live")
        return {(scope_type, scope_id): max_live for scope_type, scope_id, max_live in rows}

    @staticmethod
    def _check_max_live(value: Any) -> None:
        _check_int(value, "max_live", 0, INT32[1], "invalid_max_live", "The most live runs")
