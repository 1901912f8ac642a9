"""The event feed (``core/events.py``): recorded with the change, read forward in commit
order, every committed event exactly once."""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.errors import InvalidInput
from core.events import EVENT_KINDS, event_list, event_prune, event_record
from core.live import MAX_WAIT_SECONDS
from core.models import Event


def record(kind: str = "task.started", subject_id: str = "t1", **fields) -> Event:
    """Record a task's event; its data, when not given, is the kind's keys, all null."""
    spec = EVENT_KINDS.get(kind)
    fields.setdefault("data", dict.fromkeys(spec.data) if spec else None)
    return event_record(kind, subject_type="task", subject_id=subject_id, **fields)


@pytest.mark.django_db
class TestRecordAndRead:
    def test_events_are_numbered_in_order_and_read_after_a_cursor(self):
        first, second, third = record(subject_id="a"), record(subject_id="b"), record()

        assert (first.id, second.id, third.id) == (1, 2, 3)
        assert [e.id for e in event_list(after=1)] == [2, 3]
        assert [e.id for e in event_list(after=1, limit=1)] == [2]
        assert event_list(after=3) == []

    def test_an_event_of_a_rolled_back_change_never_exists(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            record()
            raise RuntimeError("the change failed")

        assert Event.objects.count() == 0

    def test_filters_by_initiative_and_kind(self):
        record(initiative_id="i1")
        wanted = record("task.completed", initiative_id="i1")
        record("task.completed", initiative_id="i2")

        found = event_list(initiative_id="i1", kinds=["task.completed"])

        assert [e.id for e in found] == [wanted.id]

    def test_an_unknown_kind_is_a_programming_error_when_recorded_and_400_when_read(self):
        with pytest.raises(LookupError):
            record("task.exploded")
        with pytest.raises(InvalidInput) as refused:
            event_list(kinds=["task.exploded"])
        assert refused.value.code == "invalid_kind"

    @pytest.mark.parametrize("wait", [-1, MAX_WAIT_SECONDS + 1, True, "3"])
    def test_a_wait_outside_its_bounds_is_refused(self, wait):
        with pytest.raises(InvalidInput) as refused:
            event_list(wait=wait)
        assert refused.value.code == "invalid_wait"

    def test_prune_deletes_only_events_older_than_the_age_given(self):
        old, new = record(subject_id="old"), record(subject_id="new")
        Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

        assert event_prune(older_than=timedelta(days=30)) == 1
        assert list(Event.objects.values_list("id", flat=True)) == [new.id]


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_waiting_reader_returns_as_soon_as_an_event_commits():
    def later() -> None:
        time.sleep(0.3)
        record()
        connection.close()

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    found = event_list(wait=5)
    writer.join()

    assert [e.kind for e in found] == ["task.started"]
    assert time.monotonic() - started < 4


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_later_transaction_cannot_take_an_id_before_an_earlier_one_commits():
    """Ids follow commit order: the second writer waits for the first to commit, so a
    reader that already read past the second writer's id could never miss the first."""
    first_recorded, release_first = threading.Event(), threading.Event()
    second_done = threading.Event()
    ids: dict[str, int] = {}

    def first() -> None:
        with transaction.atomic():
            ids["first"] = record(subject_id="first").id
            first_recorded.set()
            release_first.wait(10)
        connection.close()

    def second() -> None:
        first_recorded.wait(10)
        with transaction.atomic():
            ids["second"] = record(subject_id="second").id
        second_done.set()
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_recorded.wait(10)
    time.sleep(0.5)
    blocked = not second_done.is_set()
    seen_while_open = [e.id for e in event_list()]
    release_first.set()
    for thread in threads:
        thread.join(15)

    assert blocked, "the second writer took an id while the first was uncommitted"
    assert seen_while_open == []
    assert ids["first"] < ids["second"]
    assert [e.subject_id for e in event_list()] == ["first", "second"]


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_reader_following_the_cursor_sees_every_committed_event_exactly_once():
    writers, per_writer = 6, 15
    done = threading.Event()
    seen: list[int] = []
    rolled_back = 0
    lock = threading.Lock()

    def write(index: int) -> None:
        nonlocal rolled_back
        rng = random.Random(index)
        for n in range(per_writer):
            try:
                with transaction.atomic():
                    record(subject_id=f"{index}-{n}")
                    time.sleep(rng.uniform(0, 0.01))  # commit at varying moments
                    if n % 5 == 4:
                        raise RuntimeError("roll this one back")
            except RuntimeError:
                with lock:
                    rolled_back += 1
        connection.close()

    def read() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            for event in event_list(after=cursor, limit=50):
                seen.append(event.id)
                cursor = event.id
            if finished:
                break
            time.sleep(0.005)
        connection.close()

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    reader.join(60)

    committed = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert len(committed) == writers * per_writer - rolled_back
    assert seen == committed  # every committed event, once, in order
