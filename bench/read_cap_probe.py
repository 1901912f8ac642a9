"""Issue 20's probe, rerun: what one token's reads and slow clients cost everyone else,
against ``make serve``'s uvicorn (three workers, SQLite, a fresh database).

``python -m bench.read_cap_probe [--seconds 20] [--slow 300] [--deadline 60]
[--skip-readers] [--without-deadline-too]``

1. Eight threads of one token read ``GET /api/initiatives?limit=200`` (a full page) in a
   loop while another token asks ``GET /api/whoami`` every 50 ms; its p50/p99, and the
   reader's answers by status, with the read cap off (``CW_API_READ_CONCURRENCY=0``) and
   on (2).
2. ``--slow`` connections each send a request head a byte a second; after the
   request-read deadline (``CW_REQUEST_READ_SECONDS``) plus 10 s, how many the server
   still keeps open, and ``whoami``'s latency meanwhile.

Figures are printed, never asserted: the tests pin the behaviour.
"""

import argparse
import asyncio
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
READERS = 8
PAGE = "/api/initiatives?limit=200"


def environment(directory: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CW_", "DJANGO_", "DATABASE"))}
    return env | {
        "DATABASE_URL": f"sqlite:///{directory / 'probe.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_DEBUG": "false",
        "CW_STATIC_ROOT": str(directory / "static"),
        "CW_LOCK_DIR": str(directory / "locks"),
        "CW_API_WRITE_RATE_LIMIT": "0",
        **extra,
    }


def manage(env: dict[str, str], *arguments: str) -> str:
    return subprocess.run(  # noqa: S603  (our own manage.py)
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def token(env: dict[str, str], name: str) -> str:
    return next(
        line
        for line in manage(env, "create_api_token", name).splitlines()
        if line.startswith("cw_")
    )


class Uvicorn:
    """``make serve``'s uvicorn command on a free port, with ``env``."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(  # noqa: S603
            [
                *(sys.executable, "-m", "uvicorn", "cw_project.asgi:application"),
                *("--workers", "3", "--host", "127.0.0.1", "--port", str(port)),
                *("--no-access-log", "--http", "cw_project.server:HttpProtocol"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/api/openapi.json", None)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("uvicorn did not answer")

    def get(self, path: str, bearer: str | None, connection: Any = None) -> tuple[int, bytes]:
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            if own:
                connection.close()

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        self.process.wait(20)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms (n={len(ordered)})"
    )


def whoami_while(server: Uvicorn, other: str, seconds: float) -> list[float]:
    """``whoami``'s latencies, asked every 50 ms for ``seconds`` by token ``other``."""
    samples = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        status, _ = server.get("/api/whoami", other, connection)
        samples.append(time.monotonic() - started)
        assert status == 200, status
        time.sleep(0.05)
    connection.close()
    return samples


def readers_probe(server: Uvicorn, reader: str, other: str, seconds: float) -> None:
    idle = whoami_while(server, other, 3)
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def read() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while not stop.is_set():
            status, _ = server.get(PAGE, reader, connection)
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=read) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    loaded = whoami_while(server, other, seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    print(f"  whoami idle:   {percentiles(idle)}")
    print(f"  whoami loaded: {percentiles(loaded)}")
    print(f"  reader's answers in {seconds + 1:.0f} s: {dict(sorted(statuses.items()))}")


async def slow_clients_probe(server: Uvicorn, other: str, count: int, deadline: float) -> None:
    """``count`` slow heads; who is still connected ``deadline`` + 10 s later."""
    head = b"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 10_000

    async def trickle() -> bool:
        """Whether the server still keeps the connection open at the end."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for byte in head:
                if reader.at_eof():
                    return False
                writer.write(bytes([byte]))
                try:
                    await writer.drain()
                except ConnectionError:
                    return False
                try:
                    await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    continue
                if reader.at_eof():
                    return False
            return True
        except ConnectionError:
            return False
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(trickle()) for _ in range(count)]
    await asyncio.sleep(deadline / 2)
    samples = await asyncio.to_thread(whoami_while, server, other, 5)
    await asyncio.sleep(max(0.0, deadline + 10 - deadline / 2 - 5))
    still_open = sum(1 for task in tasks if not task.done())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"  whoami while {count} slow clients trickle: {percentiles(samples)}")
    print(f"  still open {deadline + 10:.0f} s after they began: {still_open} of {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--deadline", type=float, default=60)
    parser.add_argument("--skip-readers", action="store_true", help="only the slow clients")
    parser.add_argument(
        "--without-deadline-too",
        action="store_true",
        help="also the slow clients against a server without the deadline (0), for comparison",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-probe-") as scratch:
        directory = Path(scratch)
        env = environment(directory)
        manage(env, "migrate", "--no-input")
        reader, other = token(env, "reader"), token(env, "other")
        port = 18000 + secrets.randbelow(2000)
        server = Uvicorn(env, port)
        for n in range(200):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"name": f"Initiative {n} of the probe"})
            headers = {"Authorization": f"Bearer {reader}", "Content-Type": "application/json"}
            connection.request("POST", "/api/initiatives", body, headers)
            assert connection.getresponse().status == 201
            connection.close()
        server.stop()
        for cap in () if args.skip_readers else ("0", "2"):
            print(f"{READERS} readers of one token, CW_API_READ_CONCURRENCY={cap}:")
            capped_env = environment(directory, CW_API_READ_CONCURRENCY=cap)
            server = Uvicorn(capped_env | {"DJANGO_SECRET_KEY": env["DJANGO_SECRET_KEY"]}, port)
            try:
                readers_probe(server, reader, other, args.seconds)
            finally:
                server.stop()
        for deadline in (0, args.deadline) if args.without_deadline_too else (args.deadline,):
            print(f"{args.slow} slow clients, CW_REQUEST_READ_SECONDS={deadline:g}:")
            slow_env = environment(directory, CW_REQUEST_READ_SECONDS=str(deadline))
            server = Uvicorn(slow_env | {"DJANGO_SECRET_KEY": env["DJANGO_SECRET_KEY"]}, port)
            try:
                asyncio.run(slow_clients_probe(server, other, args.slow, args.deadline))
            finally:
                server.stop()


if __name__ == "__main__":
    main()
