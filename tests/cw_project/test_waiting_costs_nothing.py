"""Waiting costs nothing: under ``make serve``'s ASGI server, long polls wait on the event
loop, woken when something commits, so they neither stall other requests nor miss what
commits while they wait."""

import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest

from tests.serverprocess import Server, scratch_database

pytestmark = [
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

#: More long polls than any thread pool of one worker would hold.
POLLERS = 24


def test_long_polls_neither_stall_the_server_nor_miss_the_commit_that_ends_them(tmp_path):
    with scratch_database(tmp_path) as database:
        database.manage("migrate", "--no-input")
        token = database.create_token("live")
        with Server(database, workers=1, asgi=True) as server:
            status, body, _ = server.call("GET", "/api/events", token=token)
            cursor = body["next_after"]
            agent_status, agent, _ = server.call(
                "POST", "/api/agents", token=token, body={"worktree_id": "/srv/wt/1"}
            )
            assert agent_status == HTTPStatus.CREATED
            agent_id = agent["agent"]["id"]
            cursor = server.call("GET", "/api/events", token=token)[1]["next_after"]
            answered: list[tuple[str, int, object]] = []
            lock = threading.Lock()

            def poll(path: str) -> None:
                result = server.call("GET", path, token=token, timeout=60)
                with lock:
                    answered.append((path, result[0], result[1]))

            with ThreadPoolExecutor(max_workers=POLLERS + 2) as pool:
                events = f"/api/events?after={cursor}&wait=25"
                questions = f"/api/agents/{agent_id}/questions?wait=25"
                futures = [pool.submit(poll, events) for _ in range(POLLERS // 2)]
                futures += [pool.submit(poll, questions) for _ in range(POLLERS // 2)]

                # Other requests are answered while every poll waits.
                for _ in range(5):
                    whoami = server.call("GET", "/api/whoami", token=token, timeout=10)
                    assert whoami[0] == HTTPStatus.OK
                assert answered == [], "a long poll ended before anything committed"

                # One commit wakes the feed's pollers, a question the agent's.
                asker = server.call(
                    "POST", "/api/agents", token=token, body={"worktree_id": "/srv/wt/2"}
                )[1]["agent"]["id"]
                asked = server.call(
                    "POST",
                    "/api/conversations",
                    token=token,
                    body={"from_agent_id": asker, "to_agent_id": agent_id, "question": "Port?"},
                )
                assert asked[0] == HTTPStatus.CREATED
                for future in futures:
                    future.result(timeout=30)

    by_path: dict[str, list[object]] = {}
    for path, status, body in answered:
        assert status == HTTPStatus.OK, body
        by_path.setdefault(path.split("?")[0], []).append(body)
    feed = by_path["/api/events"]
    assert len(feed) == POLLERS // 2
    assert all(page["items"] for page in feed), "a feed poll ended empty"
    pending = by_path[f"/api/agents/{agent_id}/questions"]
    assert len(pending) == POLLERS // 2
    assert all(found and found[0]["question"] == "Port?" for found in pending)


def test_an_event_stream_pushes_each_commit_and_resumes_with_last_event_id(tmp_path):
    with scratch_database(tmp_path) as database:
        database.manage("migrate", "--no-input")
        token = database.create_token("live")
        with Server(database, workers=1, asgi=True) as server:
            request = urllib.request.Request(  # noqa: S310 (loopback)
                f"{server.url}/api/events/stream",
                headers={"Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(request, timeout=30) as stream:  # noqa: S310
                assert stream.headers["Content-Type"] == "text/event-stream"
                for name in ("One", "Two"):
                    created = server.call(
                        "POST", "/api/initiatives", token=token, body={"name": name}
                    )
                    assert created[0] == HTTPStatus.CREATED
                # The feed begins with the token's making (create_api_token, above).
                made, *pushed = _messages(stream, 3)
            assert made["event"] == "api_token.created"
            assert [m["event"] for m in pushed] == ["initiative.created"] * 2
            assert '"name":"Two"' in pushed[1]["data"]

            # A client that reconnects with the last id it saw gets what came since.
            server.call("POST", "/api/initiatives", token=token, body={"name": "Three"})
            request.add_header("Last-Event-ID", pushed[1]["id"])
            with urllib.request.urlopen(request, timeout=30) as stream:  # noqa: S310
                resumed = _messages(stream, 1)
            assert '"name":"Three"' in resumed[0]["data"]


def _messages(stream, count: int) -> list[dict[str, str]]:
    """The next ``count`` messages of an event stream (comments and ``retry`` skipped)."""
    found: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    while len(found) < count:
        line = stream.readline().decode().rstrip("\n")
        if line == "":
            if "data" in fields:
                found.append(fields)
            fields = {}
        elif not line.startswith(":") and ": " in line:
            name, value = line.split(": ", 1)
            fields[name] = value
    return found
