"""core.live: a reader subscribed before it reads misses no commit, and the SQLite
watcher wakes the channels of what is new, not every follower."""

import asyncio
import threading
import time

import pytest
from django.db import connection

from agents.models import AgentLogChunk
from agents.services.logs import agent_log_append
from core import live
from core.live import Hub, log_channel, questions_channel
from tests.factories import AgentFactory, ConversationFactory, EventFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_wake_between_the_read_and_the_wait_is_not_lost():
    hub = Hub()

    async def reader() -> tuple[bool, float]:
        with hub.subscribed("logs:a") as subscription:
            # The reader has read and found nothing; a commit lands before it waits.
            hub.wake("logs:a")
            started = time.monotonic()
            woken = await subscription.wait(30)
            return woken, time.monotonic() - started

    try:
        woken, waited = asyncio.run(reader())
    finally:
        hub.stop()
    assert woken
    assert waited < live.FALLBACK_SECONDS  # not woken by the fallback
    assert hub.waiting() == 0


def test_a_wake_of_another_channel_wakes_nobody_else(monkeypatch):
    hub = Hub()
    # No listener: on PostgreSQL it wakes every reader when it connects.
    monkeypatch.setattr(hub, "_ensure_started", lambda: None)

    async def reader() -> bool:
        with hub.subscribed("logs:a") as subscription:
            hub.wake("logs:b")
            return await subscription.wait(0.2)

    try:
        assert asyncio.run(reader()) is False
    finally:
        hub.stop()


def test_a_reader_in_a_thread_is_woken_by_a_commit_in_another_thread():
    agent = AgentFactory()
    found: list = []

    def read() -> list:
        chunks = AgentLogChunk.objects.filter(agent_id=agent.id)
        return live.read_released(lambda: list(chunks.values_list("id")))

    def follower() -> None:
        try:
            found.extend(live.read_when_found_sync(read, channel=log_channel(agent.id), wait=30))
        finally:
            connection.close()

    thread = threading.Thread(target=follower)
    started = time.monotonic()
    thread.start()
    while live.hub.waiting() == 0 and time.monotonic() - started < 10:
        time.sleep(0.01)
    agent_log_append(agent_id=agent.id, chunks=[{"content": '{"n": 1}'}])
    thread.join(timeout=30)
    assert len(found) == 1
    assert time.monotonic() - started < live.FALLBACK_SECONDS + 1


def test_the_watcher_names_the_channels_of_what_committed_since_its_marks():
    quiet, busy, asked = AgentFactory(), AgentFactory(), AgentFactory()
    agent_log_append(agent_id=quiet.id, chunks=[{"content": '{"n": 0}'}])
    with connection.cursor() as cursor:
        before = live._sqlite_marks(cursor)
        assert live._sqlite_news(cursor, before, before) == []

        agent_log_append(agent_id=busy.id, chunks=[{"content": '{"n": 1}'}] * 3)
        ConversationFactory(to_agent=asked)
        EventFactory()
        now = live._sqlite_marks(cursor)
        news = live._sqlite_news(cursor, before, now)

    assert sorted(news) == sorted(
        [live.events_channel(), log_channel(busy.id), questions_channel(asked.id)]
    )
    assert log_channel(quiet.id) not in news
