"""Usage (issue 21): reports appended during a run are summed into the run's totals and
into every scope's 10-minute bucket and all-time row, in a fixed number of statements
whatever the batch; ``spent`` reads a budget's scope over all time or a window; bad
reports are refused with a code and write nothing."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import (
    ALL_TIME,
    USAGE_BUCKET_SECONDS,
    USAGE_FIELDS,
    Run,
    RunUsage,
    UsageBucket,
    UsageScope,
)
from agents.repositories import UsageRepository
from agents.repositories.runs import MAX_REPORTED, MAX_USAGE_BATCH, bucket_start
from core.errors import InvalidInput, NotFound
from tests import factories as f
from tests.agents.test_account_rotation_concurrency import run_at_once

pytestmark = pytest.mark.django_db

usage = UsageRepository()

#: A time in the middle of a bucket (12:34:56 falls in the bucket that starts at 12:30).
NOON = datetime(2026, 3, 2, 12, 34, 56, 789_000, tzinfo=UTC)


def report(model: str = "claude-sonnet-4", **counts: int) -> dict:
    return {"model": model, **counts}


def bucket_rows() -> dict[tuple[str, str, datetime], tuple[int, ...]]:
    return {
        (b.scope_type, b.scope_id, b.bucket_start): tuple(getattr(b, n) for n in USAGE_FIELDS)
        for b in UsageBucket.objects.all()
    }


def test_a_bucket_is_ten_minutes_in_utc():
    assert USAGE_BUCKET_SECONDS == 600
    assert bucket_start(NOON) == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert bucket_start(datetime(2026, 3, 2, 12, 40, tzinfo=UTC)) == datetime(
        2026, 3, 2, 12, 40, tzinfo=UTC
    )
    assert datetime(1970, 1, 1, tzinfo=UTC) == ALL_TIME


def test_a_report_is_added_to_the_run_and_every_scope_it_belongs_to():
    account = f.AccountFactory()
    run = f.RunFactory(account=account)
    task = run.task

    totals = usage.record(
        run,
        [
            report("opus", input_tokens=100, output_tokens=20, cost_micros=5_000),
            report("haiku", input_tokens=7, cache_read_tokens=300, cache_write_tokens=40),
        ],
        now=NOON,
    )

    expected = (107, 20, 300, 40, 5_000)
    assert totals == dict(zip(USAGE_FIELDS, expected, strict=True))
    run.refresh_from_db()
    assert tuple(getattr(run, n) for n in USAGE_FIELDS) == expected
    assert RunUsage.objects.filter(run=run).count() == 2
    current = bucket_start(NOON)
    scopes = [
        ("all", ""),
        ("task", task.pk),
        ("phase", task.phase_id),
        ("initiative", task.initiative_id),
        ("account", account.pk),
    ]
    assert bucket_rows() == {
        (scope, scope_id, start): expected
        for scope, scope_id in scopes
        for start in (current, ALL_TIME)
    }


def test_a_run_without_account_or_phase_leaves_those_scopes_out():
    run = f.RunFactory(task=f.TaskFactory(phase=None, initiative=None), account=None)
    usage.record(run.pk, [report(input_tokens=1)], now=NOON)
    assert {(scope, scope_id) for scope, scope_id, _ in bucket_rows()} == {
        ("all", ""),
        ("task", run.task_id),
    }


def test_several_batches_of_several_models_sum_exactly_in_every_scope_and_bucket():
    """The buckets and the runs' totals equal the sums of the usage rows, for every scope
    and bucket, the all-time rows included, across runs, tasks, accounts and times."""
    accounts = [f.AccountFactory(), f.AccountFactory()]
    phase = f.PhaseFactory()
    tasks = [f.TaskFactory(phase=phase), f.TaskFactory(phase=phase), f.TaskFactory()]
    runs = [
        f.RunFactory(task=tasks[0], account=accounts[0]),
        f.RunFactory(task=tasks[1], account=accounts[1]),
        f.RunFactory(task=tasks[2], account=accounts[0]),
        f.RunFactory(task=tasks[2], account=None, attempt=2, outcome="failed", ended_at=NOON),
    ]
    times = [NOON, NOON + timedelta(minutes=3), NOON + timedelta(minutes=11), NOON]
    models = ["opus", "sonnet", "haiku"]
    for step in range(12):
        run = runs[step % len(runs)]
        batch = [
            report(
                models[(step + k) % 3],
                input_tokens=1_000 * step + k,
                output_tokens=17 * k + step,
                cache_read_tokens=(step * 7919) % 1_000,
                cache_write_tokens=k,
                cost_micros=123_456 * step + k,
            )
            for k in range(1 + step % 3)
        ]
        usage.record(run, batch, now=times[step % len(times)])

    expected: dict[tuple[str, str, datetime], list[int]] = defaultdict(lambda: [0] * 5)
    per_run: dict[str, list[int]] = defaultdict(lambda: [0] * 5)
    for row in RunUsage.objects.select_related("run__task"):
        counts = [getattr(row, n) for n in USAGE_FIELDS]
        task = row.run.task
        scopes = [("all", ""), ("task", task.pk)]
        scopes += [("phase", task.phase_id)] if task.phase_id else []
        scopes += [("initiative", task.initiative_id)] if task.initiative_id else []
        scopes += [("account", row.run.account_id)] if row.run.account_id else []
        for scope in scopes:
            for start in (bucket_start(row.reported_at), ALL_TIME):
                expected[(*scope, start)] = [
                    a + b for a, b in zip(expected[(*scope, start)], counts, strict=True)
                ]
        per_run[row.run_id] = [a + b for a, b in zip(per_run[row.run_id], counts, strict=True)]

    assert bucket_rows() == {key: tuple(value) for key, value in expected.items()}
    for run in Run.objects.all():
        assert [getattr(run, n) for n in USAGE_FIELDS] == per_run[run.pk]
    # Two buckets and the all-time row for everything: three rows, exactly.
    assert UsageBucket.objects.filter(scope_type="all").count() == 3


@pytest.mark.parametrize("size", [1, 50])
def test_recording_costs_the_same_statements_whatever_the_batch(size):
    run = f.RunFactory(account=f.AccountFactory())
    usage.record(run, [report(input_tokens=1)], now=NOON)  # the buckets exist already
    batch = [report(f"model-{i}", input_tokens=i, cost_micros=i) for i in range(size)]
    with CaptureQueriesContext(connection) as captured:
        usage.record(run, batch, now=NOON)
    statements = [
        q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"].upper()
    ]
    # The run's scopes, its totals, the reports, the buckets.
    assert len(statements) == 4
    assert RunUsage.objects.filter(run=run).count() == size + 1


def test_one_report_and_fifty_cost_the_same_number_of_queries():
    run = f.RunFactory()
    counts = []
    for size in (1, 50):
        with CaptureQueriesContext(connection) as captured:
            usage.record(run, [report(f"m{i}", output_tokens=1) for i in range(size)], now=NOON)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_the_largest_batch_is_recorded_in_one_go():
    run = f.RunFactory()
    usage.record(run, [report(f"m{i}", input_tokens=MAX_REPORTED) for i in range(MAX_USAGE_BATCH)])
    run.refresh_from_db()
    assert run.input_tokens == MAX_REPORTED * MAX_USAGE_BATCH


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"input_tokens": -1}, "invalid_usage"),
        ({"cost_micros": -1}, "invalid_usage"),
        ({"output_tokens": MAX_REPORTED + 1}, "invalid_usage"),
        ({"cache_read_tokens": 1.5}, "invalid_usage"),
        ({"cache_write_tokens": "12"}, "invalid_usage"),
        ({"input_tokens": True}, "invalid_usage"),
        ({"tokens": 3}, "invalid_usage"),
        ({"model": 7}, "invalid_usage"),
        ({"model": "x" * 256}, "invalid_usage"),
        ({"model": "bad\x00name"}, "invalid_usage"),
    ],
)
def test_a_bad_report_is_refused_and_nothing_of_its_batch_is_written(bad, code):
    run = f.RunFactory()
    batch = [report(input_tokens=5), {**report(), **bad}]
    with pytest.raises(InvalidInput) as error:
        usage.record(run, batch)
    assert error.value.code == code
    assert error.value.details["index"] == 1
    assert not RunUsage.objects.exists()
    assert not UsageBucket.objects.exists()
    run.refresh_from_db()
    assert run.input_tokens == 0


def test_a_report_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidInput) as error:
        usage.record(f.RunFactory(), ["100 tokens"])  # type: ignore[list-item]
    assert (error.value.code, error.value.details) == ("invalid_usage", {"index": 0})


def test_an_empty_or_oversized_batch_is_refused():
    run = f.RunFactory()
    with pytest.raises(InvalidInput) as error:
        usage.record(run, [])
    assert error.value.code == "empty_usage_batch"
    with pytest.raises(InvalidInput) as error:
        usage.record(run, [report()] * (MAX_USAGE_BATCH + 1))
    assert error.value.code == "usage_batch_too_large"


def test_usage_of_a_run_that_does_not_exist_is_refused():
    with pytest.raises(NotFound) as error:
        usage.record("missing", [report(input_tokens=1)])
    assert error.value.code == "run_not_found"
    assert not UsageBucket.objects.exists()


def test_the_database_itself_refuses_negative_usage():
    row = f.RunUsageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        RunUsage.objects.filter(pk=row.pk).update(output_tokens=-1)
    bucket = f.UsageBucketFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageBucket.objects.filter(pk=bucket.pk).update(cost_micros=-1)


def test_a_bucket_of_everything_has_no_id_and_any_other_names_its_record():
    with pytest.raises(IntegrityError), transaction.atomic():
        f.UsageBucketFactory(scope_id="something")
    with pytest.raises(IntegrityError), transaction.atomic():
        f.UsageBucketFactory(scope_type=UsageScope.TASK, scope_id="")


# --- spent --------------------------------------------------------------------------------


def test_spent_over_all_time_and_over_a_window_that_leaves_an_old_bucket_out():
    run = f.RunFactory(account=f.AccountFactory())
    long_ago = NOON - timedelta(hours=6)
    usage.record(run, [report(input_tokens=1_000, output_tokens=500, cost_micros=70)], now=long_ago)
    usage.record(
        run,
        [report(input_tokens=10, cache_read_tokens=5, cache_write_tokens=2, cost_micros=3)],
        now=NOON - timedelta(hours=4, minutes=50),
    )
    usage.record(run, [report(output_tokens=1, cost_micros=1)], now=NOON)

    def spent(scope_type, scope_id, metric, window):
        return usage.spent(scope_type, scope_id, metric, window, NOON)

    assert spent("all", "", "tokens", None) == 1_518
    assert spent("all", "", "cost", None) == 74
    assert spent("task", run.task_id, "tokens", None) == 1_518
    assert spent("account", run.account_id, "cost", None) == 74
    # Five hours: the bucket 6 hours ago is out, the one 4h50 ago (a whole bucket
    # inside the window) is in.
    assert spent("initiative", run.task.initiative_id, "tokens", 5 * 3600) == 18
    assert spent("phase", run.task.phase_id, "cost", 5 * 3600) == 4
    # Ten minutes: the current bucket only.
    assert spent("all", "", "tokens", USAGE_BUCKET_SECONDS) == 1
    assert spent("all", "", "tokens", 7 * 86_400) == 1_518
    # A scope that spent nothing.
    assert spent("task", f.TaskFactory().pk, "tokens", None) == 0


def test_spent_is_one_query():
    run = f.RunFactory()
    usage.record(run, [report(input_tokens=3)], now=NOON)
    with CaptureQueriesContext(connection) as captured:
        assert usage.spent("task", run.task_id, "tokens", 3600, NOON) == 3
    assert len(captured.captured_queries) == 1


def test_spent_many_answers_each_as_spent_does_in_one_query():
    run = f.RunFactory(account=f.AccountFactory())
    usage.record(run, [report(input_tokens=1_000, cost_micros=70)], now=NOON - timedelta(hours=6))
    usage.record(run, [report(output_tokens=5, cost_micros=3)], now=NOON)
    asked = [
        ("all", "", "tokens", None),
        ("all", "", "cost", 3600),
        ("task", run.task_id, "cost", None),
        ("account", run.account_id, "tokens", 5 * 3600),
        ("phase", run.task.phase_id, "tokens", 7 * 86_400),
        ("task", f.TaskFactory().pk, "tokens", None),
    ]
    with CaptureQueriesContext(connection) as captured:
        together = usage.spent_many(asked, NOON)
    assert len(captured.captured_queries) == 1
    assert together == [usage.spent(*one, NOON) for one in asked] == [1_005, 3, 73, 5, 1_005, 0]
    assert usage.spent_many([], NOON) == []


def test_a_window_does_not_reach_into_the_future():
    run = f.RunFactory()
    usage.record(run, [report(input_tokens=3)], now=NOON + timedelta(hours=1))
    assert usage.spent("all", "", "tokens", 3600, NOON) == 0
    assert usage.spent("all", "", "tokens", None, NOON) == 3


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        (("planet", "", "tokens", None), "invalid_scope_type"),
        (("all", "", "dollars", None), "invalid_metric"),
        (("all", "", "tokens", 0), "invalid_window_seconds"),
        (("all", "", "tokens", 900), "invalid_window_seconds"),
        (("all", "", "tokens", 40_000_000), "invalid_window_seconds"),
    ],
)
def test_spent_refuses_an_unknown_scope_metric_or_a_bad_window(arguments, code):
    with pytest.raises(InvalidInput) as error:
        usage.spent(*arguments, timezone.now())
    assert error.value.code == code


# --- concurrent reports -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_reports_of_many_runs_lose_no_count_and_never_deadlock():
    """Eight runners report at once, each for its own run and some for a shared one, all
    into the same buckets: every count arrives, in the runs and in every scope."""
    phase = f.PhaseFactory()
    account = f.AccountFactory()
    runs = [f.RunFactory(task=f.TaskFactory(phase=phase), account=account) for _ in range(4)]
    rounds = 10

    def work(index: int) -> None:
        for step in range(rounds):
            run = runs[(index + step) % len(runs)]
            usage.record(
                run.pk,
                [report("a", input_tokens=1, cost_micros=3), report("b", output_tokens=2)],
                now=NOON,
            )

    _, errors = run_at_once(8, work)
    assert errors == []
    reports = 8 * rounds
    assert RunUsage.objects.count() == 2 * reports
    assert sum(Run.objects.values_list("input_tokens", flat=True)) == reports
    expected = (reports, 2 * reports, 0, 0, 3 * reports)
    for scope, scope_id in [
        ("all", ""),
        ("phase", phase.pk),
        ("initiative", phase.initiative_id),
        ("account", account.pk),
    ]:
        for start in (bucket_start(NOON), ALL_TIME):
            assert bucket_rows()[(scope, scope_id, start)] == expected
