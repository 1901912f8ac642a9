"""Expensive reads are capped per caller (``core.readlimits``): a list finding every slot
of its token taken is refused 429 ``reads_throttled`` at once; a long poll holds no slot
while it waits, and its reads wait for one instead of being refused."""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient, Client

from agents import services as agent_services
from core.api import plans
from core.readlimits import ReadSlot, try_take
from core.tokens import api_token_create
from cw_project.api import api
from tests.api.helpers import assert_error, url
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENCY = 2


@pytest.fixture
def capped(settings) -> None:
    settings.CW_API_READ_CONCURRENCY = CONCURRENCY


def _client(clear: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


@pytest.fixture
def token() -> tuple[str, str]:
    """The caller key and clear value of a token."""
    record, clear = api_token_create(name="reader")
    return f"token:{record.pk}", clear


class HeldLists:
    """``GET /initiatives`` calls that stay inside their handler until ``release()``:
    the first ``count`` calls block; later ones pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
        self.inside = threading.Semaphore(0)
        self.gate = threading.Event()
        self.blocking = count
        self.lock = threading.Lock()
        real = plans.initiatives.find_page

        def find_page(**kwargs: Any) -> Any:
            with self.lock:
                block, self.blocking = self.blocking > 0, self.blocking - 1
            if block:
                self.inside.release()
                self.gate.wait(20)
            return real(**kwargs)

        monkeypatch.setattr(plans.initiatives, "find_page", find_page)
        self.threads: list[threading.Thread] = []
        self.statuses: list[int] = []

    def start(self, clear: str) -> None:
        def read() -> None:
            try:
                self.statuses.append(_client(clear).get("/api/initiatives").status_code)
            finally:
                connection.close()

        thread = threading.Thread(target=read)
        thread.start()
        self.threads.append(thread)
        assert self.inside.acquire(timeout=20), "the list never reached its handler"

    def release(self) -> None:
        self.gate.set()
        for thread in self.threads:
            thread.join(20)


@pytest.fixture
def held(monkeypatch) -> Iterator[HeldLists]:
    lists = HeldLists(monkeypatch, count=CONCURRENCY)
    yield lists
    lists.release()


def _free_slots(key: str) -> int:
    """How many of ``key``'s slots are free now (taken and given back at once)."""
    slots: list[ReadSlot] = []
    while (slot := try_take(key, CONCURRENCY)) is not None:
        slots.append(slot)
    for slot in slots:
        slot.release()
    return len(slots)


def test_a_third_concurrent_list_of_one_token_is_refused_429_at_once(capped, token, held):
    key, clear = token
    for _ in range(CONCURRENCY):
        held.start(clear)

    started = time.monotonic()
    response = _client(clear).get("/api/initiatives")

    body = assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "reads_throttled")
    assert time.monotonic() - started < 2
    assert response["Retry-After"] == "1"
    assert body["details"] == {"retry_after": 1, "concurrency": CONCURRENCY}
    assert _free_slots(key) == 0
    held.release()
    assert held.statuses == [HTTPStatus.OK] * CONCURRENCY
    assert _free_slots(key) == CONCURRENCY
    assert _client(clear).get("/api/initiatives").status_code == HTTPStatus.OK


def test_another_token_and_one_by_id_reads_are_served_while_a_token_is_at_its_cap(
    capped, token, held
):
    _, clear = token
    for _ in range(CONCURRENCY):
        held.start(clear)
    reader = _client(clear)
    _, other = api_token_create(name="other")
    created = reader.post(
        "/api/initiatives", {"name": "Plan"}, content_type="application/json"
    ).json()

    assert _client(other).get("/api/initiatives").status_code == HTTPStatus.OK
    assert reader.get(url("retrieve_whoami")).status_code == HTTPStatus.OK
    assert (
        reader.get(url("retrieve_initiative", initiative_id=created["id"])).status_code
        == HTTPStatus.OK
    )
    assert reader.get("/api/projects").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_no_cap_when_it_is_off(settings, token, held):
    settings.CW_API_READ_CONCURRENCY = 0
    _, clear = token
    for _ in range(CONCURRENCY):
        held.start(clear)

    assert _client(clear).get("/api/initiatives").status_code == HTTPStatus.OK


def test_slots_are_given_back_after_a_refusal_and_after_a_crash(capped, token, monkeypatch):
    key, clear = token
    reader = _client(clear)
    for _ in range(CONCURRENCY + 1):
        response = reader.get(url("list_pending_questions", agent_id="agt_0000000000"))
        assert response.status_code == HTTPStatus.NOT_FOUND
    assert _free_slots(key) == CONCURRENCY

    def crash(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(plans.initiatives, "find_page", crash)
    reader.raise_request_exception = False
    for _ in range(CONCURRENCY + 1):
        assert reader.get("/api/initiatives").status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert _free_slots(key) == CONCURRENCY


def test_a_list_under_asgi_is_refused_when_the_slots_are_held_elsewhere(capped, token):
    """Another worker process holding the slots looks the same: flock'd files."""
    key, clear = token

    async def list_events() -> Any:
        return await AsyncClient().get("/api/events", headers={"Authorization": f"Bearer {clear}"})

    slots = [try_take(key, CONCURRENCY) for _ in range(CONCURRENCY)]
    try:
        response = async_to_sync(list_events)()
        assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "reads_throttled")
    finally:
        for slot in slots:
            assert slot is not None
            slot.release()
    assert async_to_sync(list_events)().status_code == HTTPStatus.OK


def test_a_waiting_long_poll_holds_no_slot_and_its_read_waits_for_one(capped, token):
    key, clear = token
    asker, asked = AgentFactory(), AgentFactory()
    answers: list[Any] = []

    def poll() -> None:
        try:
            path = url("list_pending_questions", agent_id=asked.id)
            answers.append(_client(clear).get(path, {"wait": 20}))
        finally:
            connection.close()

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        time.sleep(0.5)  # the poll has read and waits
        assert _free_slots(key) == CONCURRENCY
        slots = [try_take(key, CONCURRENCY) for _ in range(CONCURRENCY)]
        agent_services.conversation_ask(
            from_agent_id=asker.id, to_agent_id=asked.id, question="Ready?"
        )
        time.sleep(0.5)  # woken, the poll's read waits for a slot: no answer yet
        assert not answers
        for slot in slots:
            assert slot is not None
            slot.release()
    finally:
        thread.join(20)
    assert answers[0].status_code == HTTPStatus.OK
    assert [c["question"] for c in answers[0].json()] == ["Ready?"]
    assert _free_slots(key) == CONCURRENCY


def test_the_document_declares_the_429_on_exactly_the_capped_lists():
    paths = api.get_openapi_schema()["paths"]
    refused = set()
    gets = set()
    for path, operations in paths.items():
        if "get" not in operations:
            continue
        operation = operations["get"]
        gets.add(operation["operationId"])
        throttled = operation["responses"].get("429")
        if throttled is not None:
            refused.add(operation["operationId"])
            assert "Retry-After" in throttled["headers"], path
            assert throttled["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }
    lists = {op for op in gets if "_list_" in op}
    assert lists >= {"core_api_plans_list_initiatives", "core_api_events_list_events"}
    assert refused == lists
    assert not any(
        name in op
        for op in refused
        for name in ("retrieve_", "whoami", "stream_", "follow_", "count_")
    )


def test_a_staff_session_is_capped_as_its_user(capped, staff_client, staff_user):
    key = f"user:{staff_user.pk}"
    slots = [try_take(key, CONCURRENCY) for _ in range(CONCURRENCY)]
    try:
        response = staff_client.get("/api/initiatives")
        assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "reads_throttled")
    finally:
        for slot in slots:
            assert slot is not None
            slot.release()
    assert staff_client.get("/api/initiatives").status_code == HTTPStatus.OK


def test_a_stream_read_waits_for_a_slot_instead_of_being_refused(capped, token):
    key, clear = token
    slots = [try_take(key, CONCURRENCY) for _ in range(CONCURRENCY)]
    _client(clear).post("/api/initiatives", {"name": "Streamed"}, content_type="application/json")

    def release() -> None:
        for slot in slots:
            assert slot is not None
            slot.release()

    timer = threading.Timer(1.5, release)
    started = time.monotonic()
    timer.start()
    try:
        response = _client(clear).get("/api/events/stream")
        body = b"".join(response.streaming_content)
        took = time.monotonic() - started
    finally:
        timer.join(5)
    assert response.status_code == HTTPStatus.OK
    assert took >= 1.4
    assert b'"name":"Streamed"' in body


@pytest.mark.processes
def test_a_slot_another_process_holds_is_not_taken_and_is_free_once_it_lets_go(
    capped, token, settings
):
    """Slots are shared with the host's other processes through the files' ``flock``:
    a process keeps its slot files open between reads, and still never takes one
    another process holds."""
    key, _ = token
    held = try_take(key, CONCURRENCY)  # opens this process's files
    assert held is not None
    held.release()
    path = held._name[0]
    holder = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR);"
            " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert _free_slots(key) == CONCURRENCY - 1
    finally:
        holder.communicate("", timeout=10)
    assert _free_slots(key) == CONCURRENCY
