"""``runner.client.Client`` against a small HTTP server in a thread: the bearer token,
JSON both ways, refusals as ``ApiError`` with cw's code, retries while cw is away."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runner.client import ApiError, Client

#: (status, body bytes) the server answers in turn; the last one again when it runs out.
Answers = list[tuple[int, bytes]]


class Server:
    def __init__(self) -> None:
        self.answers: Answers = [(200, b"{}")]
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": self.rfile.read(length) if length else None,
                    }
                )
                status, body = owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    thread = threading.Thread(target=made.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        made.httpd.shutdown()
        made.httpd.server_close()


def test_json_both_ways_with_the_token(server: Server) -> None:
    server.answers = [(200, b'{"id": "r1", "n": 2}')]
    client = Client(server.url + "/", "cw_secret")
    answer = client.call("POST", "/api/runs/r1/heartbeat", {"usage": []}, query={"a": 1, "b": None})
    assert answer == {"id": "r1", "n": 2}
    [request] = server.requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/runs/r1/heartbeat?a=1"
    assert request["authorization"] == "Bearer cw_secret"
    assert request["content_type"] == "application/json"
    assert json.loads(request["body"]) == {"usage": []}


def test_no_content_is_none(server: Server) -> None:
    server.answers = [(204, b"")]
    assert Client(server.url, "t").call("GET", "/api/x") is None
    assert server.requests[0]["body"] is None


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b'{"code": "conflict", "message": "the run has ended", "details": {"x": 1}}',
         "conflict", "the run has ended"),
        (b'{"detail": "Not found"}', "http_409", "Not found"),
        (b"<html>oops</html>", "http_409", "<html>oops</html>"),
    ],
)  # fmt: skip
def test_a_refusal_is_an_api_error_with_cws_code(
    server: Server, body: bytes, code: str, message: str
) -> None:
    server.answers = [(409, body)]
    with pytest.raises(ApiError) as raised:
        Client(server.url, "t").call("POST", "/api/runs/r1/finish", {})
    assert (raised.value.status, raised.value.code, raised.value.message) == (409, code, message)
    assert len(server.requests) == 1  # a refusal is not retried


def test_cw_away_is_retried(server: Server) -> None:
    server.answers = [(503, b""), (502, b"bad gateway"), (200, b'{"ok": true}')]
    assert Client(server.url, "t").call("GET", "/api/whoami", retry_seconds=10) == {"ok": True}
    assert len(server.requests) == 3


def test_retrying_stops_after_retry_seconds(server: Server) -> None:
    server.answers = [(503, b'{"code": "unavailable", "message": "down"}')]
    with pytest.raises(ApiError) as raised:
        Client(server.url, "t", retry_seconds=0.6).call("GET", "/api/whoami")
    assert raised.value.status == 503
    assert 1 <= len(server.requests) <= 3


def test_nothing_answering_is_status_0() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ApiError) as raised:
        Client(f"http://127.0.0.1:{port}", "t").call("GET", "/api/whoami", retry_seconds=0)
    assert (raised.value.status, raised.value.code) == (0, "unreachable")


def test_pages_follow_next_offset(server: Server) -> None:
    server.answers = [
        (200, b'{"items": [{"id": 1}, {"id": 2}], "next_offset": 2}'),
        (200, b'{"items": [{"id": 3}], "next_offset": null}'),
    ]
    items = Client(server.url, "t").pages("/api/runs", {"outcome": "running"})
    assert items == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [r["path"] for r in server.requests] == [
        "/api/runs?outcome=running&limit=100&offset=0",
        "/api/runs?outcome=running&limit=100&offset=2",
    ]


def test_take_next_sends_the_wait(server: Server) -> None:
    server.answers = [(200, b'{"run": {"id": "r1"}}'), (204, b"")]
    client = Client(server.url, "t")
    assert client.take_next({"providers": ["claude"]}, wait=0.5) == {"run": {"id": "r1"}}
    assert json.loads(server.requests[0]["body"]) == {"providers": ["claude"], "wait": 0.5}
    assert client.take_next({"providers": ["claude"]}, wait=0.5) is None


def test_an_answer_that_is_not_json_is_an_api_error(server: Server) -> None:
    server.answers = [(200, b"<html>a proxy's page</html>")]
    with pytest.raises(ApiError) as raised:
        Client(server.url, "t").call("GET", "/api/whoami", retry_seconds=0)
    assert raised.value.status == 200
    assert raised.value.code == "not_json"
    assert "<html>" in raised.value.message
