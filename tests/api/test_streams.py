"""Server-sent events: the event feed, an agent's log and its questions, pushed as they
commit, resumable with ``Last-Event-ID``."""

from http import HTTPStatus

import pytest
from asgiref.sync import async_to_sync

from agents.services import logs as services_logs
from core import services
from core.events import event_record
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """A stream ends after a second here, so a test can read it whole."""
    monkeypatch.setenv("CW_SSE_MAX_SECONDS", "1")


def read_stream(response) -> list[dict[str, str]]:
    """The stream's messages (``id``, ``event``, ``data``), comments and ``retry`` left out."""

    async def collect() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    # The test client is a WSGI client: the stream is a plain iterator there.
    body = async_to_sync(collect)() if response.is_async else b"".join(response.streaming_content)
    text = body.decode()
    messages = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            messages.append(fields)
    return messages


def test_the_event_stream_sends_every_event_after_the_cursor(api_client):
    first = services.initiative_create(name="One")
    services.initiative_create(name="Two")

    response = api_client.get("/api/events/stream")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/event-stream"
    messages = read_stream(response)
    assert [m["event"] for m in messages] == ["initiative.created", "initiative.created"]
    assert '"name":"One"' in messages[0]["data"]
    assert int(messages[0]["id"]) < int(messages[1]["id"])
    assert first.pk in messages[0]["data"]


def test_last_event_id_resumes_after_the_last_event_received(api_client):
    events = [
        event_record("task.started", subject_type="task", subject_id=str(n)) for n in range(3)
    ]

    messages = read_stream(
        api_client.get("/api/events/stream", HTTP_LAST_EVENT_ID=str(events[0].id))
    )

    assert [int(m["id"]) for m in messages] == [events[1].id, events[2].id]


def test_an_unknown_kind_is_refused_before_the_stream_starts(api_client):
    response = api_client.get("/api/events/stream", {"kind": "task.exploded"})
    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert response.json()["code"] == "invalid_kind"


def test_an_agents_log_is_followed_from_its_cursor(api_client):
    agent = f.AgentFactory()
    api_client.post(
        f"/api/agents/{agent.id}/logs",
        [{"content": '{"n": 1}'}, {"content": '{"n": 2}'}],
        content_type="application/json",
    )
    all_of_it = read_stream(api_client.get(f"/api/agents/{agent.id}/logs/events"))
    assert [m["event"] for m in all_of_it] == ["chunk", "chunk"]

    rest = read_stream(
        api_client.get(f"/api/agents/{agent.id}/logs/events", {"after": all_of_it[0]["id"]})
    )
    assert [m["id"] for m in rest] == [all_of_it[1]["id"]]
    assert '{\\"n\\": 2}' in rest[0]["data"]


def test_a_new_question_stream_starts_with_the_pending_ones(api_client):
    asker, asked = f.AgentFactory(), f.AgentFactory()
    from agents import services as agent_services

    question = agent_services.conversation_ask(
        from_agent_id=asker.id, to_agent_id=asked.id, question="Which port?"
    )

    messages = read_stream(api_client.get(f"/api/agents/{asked.id}/questions/stream"))

    assert [m["event"] for m in messages] == ["question"]
    assert question.pk in messages[0]["data"]


def test_an_unknown_agent_is_404_not_a_stream(api_client):
    assert api_client.get("/api/agents/" + "x" * 22 + "/logs/events").status_code == 404


def test_the_ndjson_log_streams_as_it_is_read_under_asgi_too(api_token):
    """Under ASGI a synchronous iterator would be read whole before the first byte went
    out; the log's NDJSON stream hands the ASGI server an asynchronous one instead."""
    from django.test import AsyncClient

    agent = f.AgentFactory()
    services_logs.agent_log_append(
        agent_id=agent.id, chunks=[{"content": f'{{"n": {n}}}'} for n in range(600)]
    )
    _, clear = api_token

    async def fetch() -> tuple[bool, bytes]:
        response = await AsyncClient().get(
            f"/api/agents/{agent.id}/logs/stream",
            headers={"Authorization": f"Bearer {clear}"},
        )
        body = b"".join([part async for part in response.streaming_content])
        return response.is_async, body

    is_async, body = async_to_sync(fetch)()

    assert is_async
    assert body.decode().splitlines() == [f'{{"n": {n}}}' for n in range(600)]


@pytest.mark.django_db(transaction=True)
def test_under_wsgi_each_event_is_sent_as_it_commits(api_client, monkeypatch):
    """``make run``'s server is a WSGI one, which would read an asynchronous stream whole
    (until it ends) before sending a byte: there the stream is sent step by step, and an
    event committed while the client reads arrives before the stream ends."""
    monkeypatch.setenv("CW_SSE_MAX_SECONDS", "30")
    services.initiative_create(name="Before")

    response = api_client.get("/api/events/stream")
    parts = iter(response.streaming_content)

    assert not response.is_async
    assert next(parts).startswith(b"retry: ")
    assert b'"name":"Before"' in next(parts)
    services.initiative_create(name="While reading")
    assert b'"name":"While reading"' in next(parts)
    response.close()
