"""A request must arrive whole within ``CW_REQUEST_READ_SECONDS`` of its first byte under
``make serve``'s uvicorn (``cw_project.request_deadline``): a client sending its head or
its body a byte a second gets 408 ``request_timeout`` and loses the connection, while the
one worker goes on answering everyone else; a slow request that arrives in time, and a
kept-alive connection idle between requests, are served as before."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from tests.serverprocess import ScratchDatabase, Server, scratch_database

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

#: The deadline the server under test gets.
DEADLINE = 2


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[ScratchDatabase]:
    directory = tmp_path_factory.mktemp("request-deadline")
    with scratch_database(directory, CW_REQUEST_READ_SECONDS=str(DEADLINE)) as database:
        database.manage("migrate", "--no-input")
        yield database


@pytest.fixture(scope="module")
def token(database) -> str:
    return database.create_token("deadline")


@pytest.fixture(scope="module")
def uvicorn(database) -> Iterator[Server]:
    with Server(database, workers=1, asgi=True) as server:
        yield server


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (with a ``Content-Length``) read from ``connection``."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a response: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed(connection: socket.socket, *, within: float) -> bool:
    """Whether the server closes ``connection`` within ``within`` seconds (what it still
    sends meanwhile is read and dropped)."""
    connection.settimeout(within)
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def trickle(connection: socket.socket, data: bytes, *, every: float) -> float | None:
    """Send ``data`` a byte every ``every`` seconds until the server answers (or all is
    sent); the seconds from the first byte to the answer, None when none came."""
    connection.setblocking(False)
    started = time.monotonic()
    try:
        for byte in data:
            try:
                connection.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
            time.sleep(every)
            try:
                if connection.recv(1, socket.MSG_PEEK):
                    return time.monotonic() - started
            except BlockingIOError:
                continue
    finally:
        connection.setblocking(True)
    return None


def slow_head(target: str = "/api/whoami") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'x' * 60}\r\n\r\n".encode()


def test_a_head_sent_a_byte_a_second_gets_408_in_the_api_shape_and_loses_its_connection(
    uvicorn,
):
    with socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) as connection:
        answered_after = trickle(connection, slow_head(), every=1.0)

        assert answered_after is not None, "the server waited for the whole slow head"
        assert DEADLINE - 0.5 < answered_after < DEADLINE + 3
        status, headers, body = read_response(connection)
        assert status == HTTPStatus.REQUEST_TIMEOUT
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        error = json.loads(body)
        assert error["code"] == "request_timeout"
        assert error["details"] == {"max_seconds": DEADLINE}
        assert closed(connection, within=5)


def test_outside_the_api_the_408_is_plain_text(uvicorn):
    line, _, rest = slow_head("/admin/login/").partition(b"\r\n")
    with socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) as connection:
        connection.sendall(line + b"\r\n")  # the target is known: outside the API
        assert trickle(connection, rest, every=1.0) is not None
        status, headers, body = read_response(connection)
    assert status == HTTPStatus.REQUEST_TIMEOUT
    assert headers["content-type"].startswith("text/plain")
    assert b"did not arrive whole" in body


def test_a_body_sent_a_byte_a_second_gets_408_and_its_write_never_runs(uvicorn, token):
    body = json.dumps({"name": "Too slow to write " + "x" * 40}).encode()
    head = (
        "POST /api/initiatives HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) as connection:
        connection.sendall(head)
        assert trickle(connection, body, every=0.5) is not None
        status, _, answer = read_response(connection)
        assert status == HTTPStatus.REQUEST_TIMEOUT, answer
        assert json.loads(answer)["code"] == "request_timeout"

    _, page, _ = uvicorn.call("GET", "/api/initiatives", token=token)
    assert all(not item["name"].startswith("Too slow") for item in page["items"])


def test_the_one_worker_answers_others_promptly_while_slow_clients_trickle(uvicorn, token):
    connections = [
        socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) for _ in range(3)
    ]
    threads = [
        threading.Thread(target=trickle, args=(connection, slow_head()), kwargs={"every": 1.0})
        for connection in connections
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        for _ in range(5):
            started = time.monotonic()
            status, body, _ = uvicorn.call("GET", "/api/whoami", token=token, timeout=10)
            assert status == HTTPStatus.OK, body
            assert time.monotonic() - started < 1.0
            time.sleep(0.2)
    finally:
        for thread in threads:
            thread.join(30)
        for connection in connections:
            connection.close()


def test_a_slow_request_that_arrives_in_time_is_served(uvicorn, token):
    request = (
        f"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    size = -(-len(request) // 4)
    pieces = [request[i : i + size] for i in range(0, len(request), size)]
    with socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) as connection:
        pause = (DEADLINE / 2) / len(pieces)
        for piece in pieces:
            connection.sendall(piece)
            time.sleep(pause)
        status, _, body = read_response(connection)
    assert status == HTTPStatus.OK, body


def test_a_kept_alive_connection_idle_past_the_deadline_serves_its_next_request(uvicorn, token):
    """The clock starts at a request's first byte: the wait between two requests is
    uvicorn's keep-alive timeout's business (5 s), not the deadline's."""
    request = (
        f"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", uvicorn.port), timeout=30) as connection:
        connection.sendall(request)
        assert read_response(connection)[0] == HTTPStatus.OK
        time.sleep(DEADLINE + 1)
        connection.sendall(request)
        assert read_response(connection)[0] == HTTPStatus.OK
