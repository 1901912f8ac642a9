"""``GET /api/events``: the event feed read forward with a cursor, filtered, long-polled."""

import contextlib
import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.test import Client

from core.events import EVENT_KINDS, event_record
from core.models import Event
from tests.api.helpers import as_json, assert_error, url

pytestmark = pytest.mark.django_db


def record(kind: str = "task.started", subject_id: str = "t1", **fields) -> Event:
    """Record a task's event; its data, when not given, is the kind's keys, all null."""
    spec = EVENT_KINDS.get(kind)
    fields.setdefault("data", dict.fromkeys(spec.data) if spec else None)
    return event_record(kind, subject_type="task", subject_id=subject_id, **fields)


def events(client: Client, **query) -> dict:
    response = client.get(url("list_events"), query)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def test_an_event_reads_back_whole_to_a_staff_session(staff_client):
    event = record("task.completed", initiative_id="i1", data={"summary": "done"})

    assert events(staff_client) == {
        "items": [
            {
                "id": event.id,
                "kind": "task.completed",
                "subject_type": "task",
                "subject_id": "t1",
                "initiative_id": "i1",
                "data": {"summary": "done"},
                "actor": {"type": "system", "id": None, "name": "cw", "via": "system"},
                "created_at": as_json(event.created_at),
            }
        ],
        "next_after": event.id,
    }


def test_following_next_after_pages_through_every_event_once(api_client):
    ids = [record(subject_id=str(n)).id for n in range(7)]

    seen: list[int] = []
    cursor = 0
    while page := events(api_client, after=cursor, limit=3)["items"]:
        seen.extend(item["id"] for item in page)
        cursor = page[-1]["id"]

    assert seen == ids
    assert events(api_client, after=cursor) == {"items": [], "next_after": cursor}


def test_an_empty_answer_hands_back_the_cursor_given(api_client):
    assert events(api_client) == {"items": [], "next_after": 0}
    assert events(api_client, after=41) == {"items": [], "next_after": 41}


def test_filters_by_initiative_and_by_repeated_kind(api_client):
    record("task.started", initiative_id="i1")
    completed = record("task.completed", initiative_id="i1")
    blocked = record("task.blocked", initiative_id="i1")
    record("task.completed", initiative_id="i2")

    body = events(api_client, initiative_id="i1", kind=["task.completed", "task.blocked"])

    assert [item["id"] for item in body["items"]] == [completed.id, blocked.id]
    assert body["next_after"] == blocked.id


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"kind": "task.exploded"}, "invalid_kind"),
        ({"kind": ["task.started", "nope"]}, "invalid_kind"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 1001}, "invalid_limit"),
        ({"wait": -1}, "invalid_wait"),
        ({"wait": 31}, "invalid_wait"),
        ({"wait": "soon"}, "invalid_wait"),
        ({"wait": "nan"}, "invalid_wait"),
        ({"after": -1}, "invalid_cursor"),
        ({"after": "x"}, "invalid_cursor"),
    ],
)
def test_a_bad_query_answers_the_parameters_code_and_reads_nothing(api_client, query, code):
    # The code the service gives the same refusal (core.events.event_list), not a
    # generic one: the schema only meets it first.
    body = assert_error(api_client.get(url("list_events"), query), HTTPStatus.BAD_REQUEST, code)
    assert body["details"]["errors"]


def test_anonymous_callers_are_refused():
    assert_error(Client().get(url("list_events")), HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_the_schema_lists_every_kind_as_an_enum():
    document = Client().get("/api/openapi.json").json()
    operation = document["paths"]["/api/events"]["get"]
    kind = next(p for p in operation["parameters"] if p["name"] == "kind")

    assert operation["operationId"].endswith("list_events")
    assert operation["tags"] == ["events"]
    assert kind["schema"]["anyOf"][0]["items"]["enum"] == list(EVENT_KINDS)
    assert set(operation["responses"]) == {"200", "400", "401", "403", "422", "429"}
    assert "holds no server thread" in operation["description"]


@pytest.mark.parametrize("size", [1, 100])
def test_a_page_costs_the_same_queries_whatever_its_size(
    api_client, django_assert_num_queries, size
):
    for n in range(size):
        record(subject_id=str(n))
    api_client.get(url("list_events"))  # the token's last-used stamp is written once

    # The token's lookup, then one query for the page.
    with django_assert_num_queries(2):
        assert len(events(api_client, limit=1000)["items"]) == size


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_wait_returns_as_soon_as_an_event_commits_elsewhere(api_client):
    def later() -> None:
        time.sleep(0.4)
        record("task.completed", initiative_id="i1")
        connection.close()

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    body = events(api_client, initiative_id="i1", wait=10)
    elapsed = time.monotonic() - started
    writer.join(10)

    assert [item["kind"] for item in body["items"]] == ["task.completed"]
    assert 0.3 < elapsed < 5


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_wait_with_nothing_new_ends_empty_after_its_bound(api_client):
    started = time.monotonic()
    body = events(api_client, after=0, wait=0.5)

    assert body == {"items": [], "next_after": 0}
    assert 0.4 < time.monotonic() - started < 3


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_reader_following_the_feed_over_http_sees_every_commit_once(api_client):
    writers, per_writer = 4, 10
    done = threading.Event()
    seen: list[int] = []

    def write(index: int) -> None:
        for n in range(per_writer):
            with contextlib.suppress(RuntimeError), transaction.atomic():
                record(subject_id=f"{index}-{n}")
                time.sleep(0.002 * (index + 1))  # commit at varying moments
                if n % 4 == 3:
                    raise RuntimeError("roll this one back")
        connection.close()

    def read() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            body = events(api_client, after=cursor, limit=7)
            seen.extend(item["id"] for item in body["items"])
            cursor = body["next_after"]
            if finished and not body["items"]:
                break
        connection.close()

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    done.set()
    reader.join(30)

    committed = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert len(committed) == writers * (per_writer - per_writer // 4)
    assert seen == committed
