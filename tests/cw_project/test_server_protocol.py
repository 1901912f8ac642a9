"""What the HTTP server refuses before Django sees a request answers in the API's error
shape, under the uvicorn ``make serve`` runs (``cw_project.server``), over raw sockets:
a request target over 8 KiB (414), a head over 64 KiB (431), bytes that are not HTTP
(400); and what Django refuses to read (a foreign ``Host``, over 1,000 parameters) too.
A chunked body is read under uvicorn and gunicorn, and refused with 411 under ``make
run``'s runserver, never taken as empty."""

import contextlib
import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from cw_project.server import MAX_HEAD_BYTES, MAX_TARGET_BYTES
from tests.serverprocess import ScratchDatabase, Server, free_port, http, scratch_database

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def account(email: str) -> bytes:
    return json.dumps({"email": email}).encode()


def exchange(port: int, request: bytes, *, timeout: float = 20) -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        with contextlib.suppress(OSError):  # the server may refuse before it has read all
            connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one HTTP/1.1 response, de-chunked."""
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while True:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded, body = decoded + body[:size], body[size + 2 :]
        body = decoded
    return int(status_line.split()[1]), headers, body


def request(
    target: str | bytes,
    *,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    host: str = "127.0.0.1",
    body: bytes = b"",
) -> bytes:
    target = target.encode() if isinstance(target, str) else target
    lines = [method.encode() + b" " + target + b" HTTP/1.1", f"Host: {host}".encode()]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    lines += [b"Connection: close", b"", b""]
    return b"\r\n".join(lines) + body


def chunked(body: bytes, token: str) -> bytes:
    """``POST /api/accounts`` with ``body`` in two chunks, without a Content-Length."""
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    return request(
        "/api/accounts",
        method="POST",
        headers=(
            ("Authorization", f"Bearer {token}"),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ),
        body=chunks + b"0\r\n\r\n",
    )


def assert_error(response: bytes, status: int, code: str) -> dict:
    got, headers, body = parse(response)
    assert got == status, response[:500]
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    return error


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[ScratchDatabase]:
    with scratch_database(tmp_path_factory.mktemp("server-protocol")) as database:
        database.manage("migrate", "--no-input")
        yield database


@pytest.fixture(scope="module")
def token(database) -> str:
    return database.create_token("protocol")


@pytest.fixture(scope="module")
def uvicorn(database) -> Iterator[Server]:
    with Server(database, workers=1, asgi=True) as server:
        yield server


# --- make serve runs what these tests run --------------------------------------------------


def test_make_serve_runs_uvicorn_with_the_options_the_tests_use(database):
    shown = subprocess.run(
        ["make", "-n", "-s", "serve", "HOST=127.0.0.1", "PORT=8000"],  # noqa: S607
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    line = next(line for line in shown.splitlines() if "uvicorn " in line)
    served = shlex.split(line)
    served = served[next(i for i, word in enumerate(served) if word.endswith("uvicorn")) + 1 :]
    tested = Server(database, workers=3, asgi=True)._uvicorn()
    tested = tested[tested.index("uvicorn") + 1 :]

    def options(words: list[str]) -> list[str]:
        # The values of --workers, --host and --port are the caller's.
        values = {"--workers", "--host", "--port"}
        return [w for i, w in enumerate(words) if i == 0 or words[i - 1] not in values]

    assert options(served) == options(tested)
    assert "cw_project.server:HttpProtocol" in served


# --- refused before Django ------------------------------------------------------------------


@pytest.mark.parametrize("size", [MAX_TARGET_BYTES + 1, 200_000])
def test_a_request_target_too_long_is_414_uri_too_long(uvicorn, size):
    target = "/api/whoami?q=" + "a" * (size - len("/api/whoami?q="))

    error = assert_error(exchange(uvicorn.port, request(target)), 414, "uri_too_long")

    assert error["details"] == {"max_bytes": MAX_TARGET_BYTES}


def test_a_request_target_at_the_bound_is_read(uvicorn, token):
    target = "/api/whoami?q=" + "a" * (MAX_TARGET_BYTES - len("/api/whoami?q="))
    authorization = (("Authorization", f"Bearer {token}"),)

    status, _, body = parse(exchange(uvicorn.port, request(target, headers=authorization)))

    assert status == HTTPStatus.OK, body


@pytest.mark.parametrize(
    "headers",
    [
        (("X-Big", "v" * (MAX_HEAD_BYTES + 1)),),
        tuple((f"X-Field-{i}", "v" * 8000) for i in range(100)),
    ],
    ids=["one field", "many fields"],
)
def test_header_fields_too_large_are_431_headers_too_large(uvicorn, headers):
    error = assert_error(
        exchange(uvicorn.port, request("/api/whoami", headers=headers)), 431, "headers_too_large"
    )

    assert error["details"] == {"max_bytes": MAX_HEAD_BYTES}


def test_headers_under_the_bound_are_read_request_after_request(uvicorn, token):
    # Two requests on one connection, each head near the bound: the count is per request.
    fields = f"Authorization: Bearer {token}\r\nX-Padding: {'v' * (MAX_HEAD_BYTES - 1000)}"
    one = f"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}\r\n\r\n".encode()
    last = one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")

    received = exchange(uvicorn.port, one + last)

    assert received.count(b"HTTP/1.1 200 OK") == 2, received[:300]


@pytest.mark.parametrize(
    "raw",
    [b"GET /api/whoami HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00"],
    ids=["a header without a colon", "a TLS hello"],
)
def test_bytes_that_are_not_http_are_400_bad_request(uvicorn, raw):
    assert_error(exchange(uvicorn.port, raw), 400, "bad_request")


def test_a_refusal_outside_the_api_is_plain_text(uvicorn):
    target = "/admin/?q=" + "a" * MAX_TARGET_BYTES

    status, headers, body = parse(exchange(uvicorn.port, request(target)))

    assert status == 414
    assert headers["content-type"].startswith("text/plain")
    assert b"8192 bytes" in body


# --- refused by Django, in the same shape -----------------------------------------------------


def test_a_foreign_host_is_400_invalid_host(uvicorn, token):
    sent = request(
        "/api/whoami", host="evil.example", headers=(("Authorization", f"Bearer {token}"),)
    )

    assert_error(exchange(uvicorn.port, sent), 400, "invalid_host")


def test_over_a_thousand_query_parameters_are_400_too_many_fields(uvicorn, token):
    target = "/api/agents?" + "&".join("a=" for _ in range(1001))
    sent = request(target, headers=(("Authorization", f"Bearer {token}"),))

    assert_error(exchange(uvicorn.port, sent), 400, "too_many_fields")


# --- a chunked body ----------------------------------------------------------------------------


def assert_created_from_the_chunks(response: bytes, database: ScratchDatabase, email: str) -> None:
    status, _, body = parse(response)
    assert status == HTTPStatus.CREATED, response[:500]
    assert json.loads(body)["email"] == email
    assert database.query("SELECT email FROM accounts WHERE email = %s", (email,)) == [(email,)]


def test_a_chunked_body_is_read_under_uvicorn(uvicorn, database, token):
    response = exchange(uvicorn.port, chunked(account("uvicorn@example.com"), token))

    assert_created_from_the_chunks(response, database, "uvicorn@example.com")


def test_a_chunked_body_is_read_under_gunicorn(database, token):
    with Server(database, workers=1) as gunicorn:
        response = exchange(gunicorn.port, chunked(account("gunicorn@example.com"), token))

    assert_created_from_the_chunks(response, database, "gunicorn@example.com")


@contextlib.contextmanager
def runserver(database: ScratchDatabase) -> Iterator[int]:
    """``make run``'s server (Django's runserver, DEBUG on) on a free port."""
    port = free_port()
    log = database.directory / f"runserver-{port}.log"
    with log.open("a") as output:
        process = subprocess.Popen(  # noqa: S603  (manage.py, arguments we chose)
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=settings.BASE_DIR,
            env=database.env | {"DJANGO_DEBUG": "true"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(process, port, log)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)


def wait_until_answering(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            http("GET", f"http://127.0.0.1:{port}/api/openapi.json", timeout=5)
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise AssertionError(f"runserver did not answer:\n{log.read_text()}")


def test_a_chunked_body_under_runserver_is_411_length_required_not_empty(database, token):
    with runserver(database) as port:
        response = exchange(port, chunked(account("runserver@example.com"), token))

    assert_error(response, 411, "length_required")
    assert database.query("SELECT email FROM accounts WHERE email LIKE %s", ("runserver%",)) == []
