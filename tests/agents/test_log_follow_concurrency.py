"""Two writers on one agent's log, a third on another's, and a follower reading with
``after``: the follower sees every committed chunk exactly once, in order, and each
append answers with exactly its own chunks' ids (``agents.services.agent_log_append``).

Real threads, each on its own connection (a file database on SQLite, a server connection
on PostgreSQL), so the ids are taken and committed as in production. Each writer commits
a moment after its append, at varying moments, the way a slow request does: without the
log's commit-order lock, PostgreSQL lets a later append take its ids while an earlier one
is still uncommitted, and the follower skips the earlier one's chunks for good.
"""

import json
import random
import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.test import Client

from agents.models import AgentLogChunk
from agents.services import agent_log_append
from core.tokens import api_token_create
from tests import factories as f
from tests.api.helpers import url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

BATCHES = 40


def test_a_follower_sees_each_chunk_once_in_order_and_appends_answer_their_own_ids():
    followed, other = f.AgentFactory(name="calm-fox"), f.AgentFactory(name="busy-owl")
    _, token = api_token_create(name="follower")
    done = threading.Event()
    appended: dict[str, list[tuple[list[int], list[str]]]] = {"a": [], "b": [], "c": []}
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def write(writer: str, agent_id: str) -> None:
        rng = random.Random(writer)
        try:
            for batch in range(BATCHES):
                contents = [
                    json.dumps({"w": writer, "b": batch, "n": n}) for n in range(rng.randint(1, 8))
                ]
                with transaction.atomic():
                    ids = agent_log_append(
                        agent_id=agent_id, chunks=[{"content": c} for c in contents]
                    )
                    time.sleep(rng.uniform(0, 0.01))  # commit at varying moments
                appended[writer].append((ids, contents))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def follow() -> None:
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        path = url("list_agent_log", agent_id=followed.id)
        after = 0
        try:
            while True:
                finished = done.is_set()
                response = client.get(path, {"after": after, "limit": 50})
                assert response.status_code == HTTPStatus.OK, response.content
                page = response.json()
                seen.extend((item["id"], item["content"]) for item in page["items"])
                after = page["next_after"]
                if finished and not page["items"]:
                    break
                if not page["items"]:
                    time.sleep(0.001)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    follower = threading.Thread(target=follow)
    writers = [
        threading.Thread(target=write, args=("a", followed.id)),
        threading.Thread(target=write, args=("b", followed.id)),
        threading.Thread(target=write, args=("c", other.id)),
    ]
    follower.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    follower.join(120)
    assert not follower.is_alive() and not any(t.is_alive() for t in writers), "a thread hung"
    assert errors == []

    committed = list(
        AgentLogChunk.objects.filter(agent_id=followed.id)
        .order_by("id")
        .values_list("id", "content")
    )
    assert len(committed) == sum(
        len(contents) for writer in "ab" for _, contents in appended[writer]
    )
    assert seen == committed  # every committed chunk, once, in id order
    for writer in "ab":  # and each writer's chunks in the order it wrote them
        mine = [content for _, content in seen if json.loads(content)["w"] == writer]
        assert mine == [c for _, contents in appended[writer] for c in contents]

    stored = dict(AgentLogChunk.objects.values_list("id", "content"))
    for writer in "abc":
        for ids, contents in appended[writer]:
            assert ids == sorted(ids)
            assert [stored[id] for id in ids] == contents  # exactly its own rows


def test_a_second_append_to_one_agent_waits_for_the_first_to_commit():
    """The commit-order lock at work: an append to the same agent takes its ids only once
    the earlier one has committed (on SQLite the write lock makes every writer wait; on
    PostgreSQL an append to another agent does not)."""
    agent, other = f.AgentFactory(name="calm-fox"), f.AgentFactory(name="busy-owl")
    first_written, release_first = threading.Event(), threading.Event()
    second_done, other_done = threading.Event(), threading.Event()
    ids: dict[str, list[int]] = {}

    def first() -> None:
        with transaction.atomic():
            ids["first"] = agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}])
            first_written.set()
            release_first.wait(10)
        connection.close()

    def second() -> None:
        first_written.wait(10)
        ids["second"] = agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}])
        second_done.set()
        connection.close()

    def elsewhere() -> None:
        first_written.wait(10)
        ids["other"] = agent_log_append(agent_id=other.id, chunks=[{"content": "{}"}])
        other_done.set()
        connection.close()

    threads = [threading.Thread(target=fn) for fn in (first, second, elsewhere)]
    for thread in threads:
        thread.start()
    first_written.wait(10)
    other_done.wait(0.5 if connection.vendor == "postgresql" else 0)
    time.sleep(0.3)
    second_waited = not second_done.is_set()
    other_went_on = other_done.is_set()
    release_first.set()
    for thread in threads:
        thread.join(15)

    assert second_waited, "the second append took ids while the first was uncommitted"
    assert ids["first"][0] < ids["second"][0]
    if connection.vendor == "postgresql":
        assert other_went_on, "an append to another agent waited for this agent's lock"
