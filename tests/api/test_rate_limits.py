"""Writes are limited per token (and per staff user) in the database; reads never count
against that limit (concurrent lists have a cap of their own: test_read_limits.py).

The unit tests run in-process; the storm runs 2,000 writes from one token through
gunicorn's workers (so the count is shared across processes) while another token works.
"""

import threading
import time
from collections import Counter
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from django.test import Client

from core.models import ApiRateWindow, Initiative
from core.ratelimits import WINDOW_SECONDS, WriteRateThrottle
from core.tokens import api_token_create
from cw_project.api import api
from tests.api.helpers import assert_error, post_json
from tests.serverprocess import Server, scratch_database

pytestmark = pytest.mark.django_db

LIMIT = 5


#: The middle of the current window: the in-process tests' writes all fall in it.
NOW = (time.time() // WINDOW_SECONDS) * WINDOW_SECONDS + WINDOW_SECONDS / 2


@pytest.fixture
def limited(settings, monkeypatch):
    settings.CW_API_WRITE_RATE_LIMIT = LIMIT
    monkeypatch.setattr("core.ratelimits.time", SimpleNamespace(time=lambda: NOW))
    yield
    for throttle in api.throttle:
        throttle.forget()  # the ids of a rolled-back test may come again


def _create(client: Client, name: str):
    return post_json(client, "/api/initiatives", {"name": name})


def test_writes_beyond_the_limit_are_refused_429_with_retry_after_and_write_nothing(
    limited, api_client
):
    for n in range(LIMIT):
        assert _create(api_client, f"plan {n}").status_code == HTTPStatus.CREATED

    response = _create(api_client, "one too many")

    body = assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "throttled")
    retry_after = int(response["Retry-After"])
    assert retry_after == WINDOW_SECONDS / 2
    assert body["details"] == {"retry_after": retry_after, "limit_per_minute": LIMIT}
    assert f"{LIMIT} a minute" in body["message"]
    assert not Initiative.objects.filter(name="one too many").exists()
    assert Initiative.objects.count() == LIMIT


def test_reads_are_never_limited(limited, api_client):
    for n in range(LIMIT + 1):
        _create(api_client, f"plan {n}")
    for _ in range(3 * LIMIT):
        assert api_client.get("/api/initiatives").status_code == HTTPStatus.OK


def test_each_token_and_each_staff_user_has_its_own_count(limited, api_client, staff_client):
    for n in range(LIMIT + 1):
        _create(api_client, f"first tool {n}")
    _, other = api_token_create(name="other-tool")
    other_client = Client(HTTP_AUTHORIZATION=f"Bearer {other}")

    assert _create(other_client, "second tool").status_code == HTTPStatus.CREATED
    assert _create(staff_client, "a person").status_code == HTTPStatus.CREATED
    for n in range(LIMIT):
        _create(staff_client, f"a person {n}")
    assert_error(_create(staff_client, "too much"), HTTPStatus.TOO_MANY_REQUESTS, "throttled")


def test_refused_credentials_are_not_counted(limited, client):
    for _ in range(LIMIT + 2):
        response = _create(client, "stranger")
        assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert not ApiRateWindow.objects.exists()


def test_a_limit_of_zero_turns_it_off(settings, api_client):
    settings.CW_API_WRITE_RATE_LIMIT = 0
    for n in range(20):
        assert _create(api_client, f"plan {n}").status_code == HTTPStatus.CREATED
    assert not ApiRateWindow.objects.exists()


def test_a_new_window_starts_the_count_again_and_drops_the_callers_old_one(
    limited, api_client, api_token
):
    token, _ = api_token
    old_start = int(NOW // WINDOW_SECONDS - 1) * WINDOW_SECONDS
    ApiRateWindow.objects.create(caller=f"token:{token.pk}", window_start=old_start, hits=99)
    ApiRateWindow.objects.create(caller="token:someone-else", window_start=old_start, hits=9)

    assert _create(api_client, "fresh minute").status_code == HTTPStatus.CREATED

    windows = dict(ApiRateWindow.objects.values_list("caller", "hits"))
    assert windows == {f"token:{token.pk}": 1, "token:someone-else": 9}


def test_a_process_counts_a_callers_writes_in_leases_and_never_lets_more_through_than_the_limit(
    settings, monkeypatch, django_assert_max_num_queries
):
    """Under a limit of 1,000 a lease is ten writes: 25 writes cost three upserts (the
    count says 30), and near the limit a lease is cut to what is left of it."""
    settings.CW_API_WRITE_RATE_LIMIT = 1000
    monkeypatch.setattr("core.ratelimits.time", SimpleNamespace(time=lambda: NOW))
    throttle = WriteRateThrottle()
    token, _ = api_token_create(name="leased")
    request = SimpleNamespace(method="POST", auth=token)
    start = int(NOW // WINDOW_SECONDS) * WINDOW_SECONDS

    # Three upserts, each in a savepoint (the test's transaction), and the first's sweep.
    with django_assert_max_num_queries(3 * 3 + 1) as queries:
        assert all(throttle.allow_request(request) for _ in range(25))
    upserts = [q for q in queries.captured_queries if "ON CONFLICT" in q["sql"]]
    assert len(upserts) == 3
    window = ApiRateWindow.objects.get(caller=f"token:{token.pk}", window_start=start)
    assert window.hits == 30

    window.hits = 995  # another process used the rest: five writes are left
    window.save(update_fields=["hits"])
    throttle.forget()
    allowed = [throttle.allow_request(request) for _ in range(12)]
    assert allowed == [True] * 5 + [False] * 7
    assert throttle.wait() == WINDOW_SECONDS / 2


def test_the_openapi_document_declares_429_with_retry_after_on_every_write():
    paths = api.get_openapi_schema()["paths"]
    writes = [
        (method, path, operation)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method in {"post", "put", "patch", "delete"}
    ]
    assert writes
    for method, path, operation in writes:
        throttled = operation["responses"].get("429")
        assert throttled is not None, f"{method.upper()} {path} does not declare 429"
        assert "Retry-After" in throttled["headers"], f"{method.upper()} {path}"
    # A read's 429 is the read cap's (test_read_limits.py), never the write limit's.
    reads = [op for ops in paths.values() for m, op in ops.items() if m == "get"]
    assert all(op["responses"]["429"] is not throttled for op in reads if "429" in op["responses"])


@pytest.mark.concurrency
@pytest.mark.processes
def test_a_storm_of_2000_writes_from_one_token_is_held_to_its_limit_while_others_are_served(
    tmp_path,
):
    storm_limit = 100
    with scratch_database(tmp_path, CW_API_WRITE_RATE_LIMIT=str(storm_limit)) as database:
        database.manage("migrate", "--no-input")
        storm_token = database.create_token("storm")
        quiet_token = database.create_token("quiet")
        with Server(database, workers=3, threads=2) as server:
            started_window = int(time.time()) // WINDOW_SECONDS
            storm: Counter[int] = Counter()
            quiet: Counter[int] = Counter()
            lock = threading.Lock()
            remaining = iter(range(2000))

            def storm_worker() -> None:
                for n in remaining:
                    status, body, headers = server.call(
                        "POST", "/api/initiatives", token=storm_token, body={"name": f"s{n}"}
                    )
                    if status == HTTPStatus.TOO_MANY_REQUESTS:
                        assert body["code"] == "throttled"
                        assert 1 <= int(headers["Retry-After"]) <= WINDOW_SECONDS
                    with lock:
                        storm[status] += 1

            def quiet_worker() -> None:
                for n in range(40):
                    status, _, _ = server.call(
                        "POST", "/api/initiatives", token=quiet_token, body={"name": f"q{n}"}
                    )
                    read, _, _ = server.call("GET", "/api/initiatives", token=quiet_token)
                    with lock:
                        quiet[status] += 1
                        quiet[read] += 1

            workers = [threading.Thread(target=storm_worker) for _ in range(8)]
            workers.append(threading.Thread(target=quiet_worker))
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=300)
            windows = int(time.time()) // WINDOW_SECONDS - started_window + 1

        assert sum(storm.values()) == 2000
        assert set(storm) == {HTTPStatus.CREATED, HTTPStatus.TOO_MANY_REQUESTS}, storm
        assert storm_limit <= storm[HTTPStatus.CREATED] <= storm_limit * windows
        assert quiet == {HTTPStatus.CREATED: 40, HTTPStatus.OK: 40}
        # Every write answered 201 is there, and no refused one is.
        (storm_rows,) = database.query(
            "SELECT COUNT(*) FROM initiatives WHERE name LIKE %s", ("s%",)
        )[0]
        assert storm_rows == storm[HTTPStatus.CREATED]
