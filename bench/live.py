"""Live under load: cw served as ``make serve`` serves it, on a fresh database, with
agents appending to their logs over HTTP while followers, long-pollers and slow clients
hold connections open, all at once.

The full run (``python -m bench --only live``): 50 agents each append a line every
100 ms (``POST /api/agents/{id}/logs``), 100 followers each follow one agent's log as
server-sent events (``GET /api/agents/{id}/logs/events``, reconnecting with
``Last-Event-ID``), 50 long-pollers follow the event feed (``GET /api/events?wait=30``,
sending back ``next_after``; an extra agent changes status twice a second so that the
feed moves), and 20 slow clients send a request head at one byte a second, for a
minute; a probe asks ``GET /api/whoami`` every 50 ms, and did the same just before the
load. Every simulated client has its own API token.

Rules (they fail ``--quick`` too): no error (a 5xx, a connection error, a malformed
body, an unexpected status; a slow client answered 408 after the request-read deadline
is expected), and every follower sees exactly the lines its agent's appends answered
with, in order, once (and every long-poller every event). Timings: appends answered as
a share of those intended (50 x 10/s x 60 s), append latency, event delivery (append
answered → follower has the line) and ``whoami``'s p99 under load over its idle p99
(target <= 2x); on PostgreSQL the peak number of the bench database's connections.

The clients are asyncio loops over raw sockets (``bench.rawhttp``), one process per
kind of client, so they cost a few percent of the machine; their CPU share is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Result
from bench.rawhttp import Connection, EventStream, ProtocolError, read_head, request_bytes

BASE_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60
#: What a connection can throw at a client besides an answer.
NETWORK_ERRORS = (OSError, ConnectionError, asyncio.IncompleteReadError, ProtocolError)


@dataclass
class LiveConfig:
    agents: int = 50
    followers: int = 100
    pollers: int = 50
    slow: int = 20
    #: Seconds of load.
    duration: float = 60.0
    #: Seconds between one agent's appends.
    interval: float = 0.1
    #: Seconds between the event-feed agent's status changes.
    event_interval: float = 0.5
    #: Seconds the followers and pollers get, after the load, to catch up.
    drain: float = 20.0
    #: ``whoami`` calls measured idle, and the gap between the probe's calls.
    whoami_idle: int = 200
    whoami_gap: float = 0.05
    #: Variables added to the server's environment (the bench uses make serve's defaults).
    server_env: dict[str, str] = field(default_factory=dict)
    #: For the bench's own tests: each follower throws away its third line, to show that
    #: the accounting notices.
    drop_a_line: bool = False

    @property
    def intended_appends(self) -> int:
        return round(self.agents * self.duration / self.interval)


FULL = LiveConfig()
QUICK = LiveConfig(
    agents=10, followers=20, pollers=10, slow=4, duration=4.0, drain=10.0, whoami_idle=60
)


# --- the database and the server -----------------------------------------------------------


@contextlib.contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of the kind the bench runs on: a SQLite file in
    ``directory``, or a new database on ``DATABASE_URL``'s PostgreSQL server (dropped
    afterwards)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{directory / 'live.sqlite3'}"
        return
    import psycopg

    name = f"cw_bench_live_{os.getpid()}_{secrets.token_hex(3)}"
    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def serve_commands(port: int) -> dict[str, str]:
    """``make serve``'s commands (``migrate``, ``collectstatic``, ``uvicorn``) as shell
    lines, read from the Makefile with ``make -n`` so the bench serves exactly as it
    does, with this interpreter's virtualenv and ``port``."""
    venv = Path(sys.executable).parent.parent
    shown = subprocess.run(  # noqa: S603
        ["make", "-n", "-s", "serve", "HOST=127.0.0.1", f"PORT={port}", f"VENV={venv}"],  # noqa: S607
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    commands = {}
    for line in shown.splitlines():
        for name, marker in (
            ("migrate", "manage.py migrate"),
            ("collectstatic", "manage.py collectstatic"),
            ("serve", "uvicorn "),
        ):
            if marker in line:
                commands[name] = line.strip()
    missing = {"migrate", "collectstatic", "serve"} - set(commands)
    if missing:
        raise RuntimeError(f"make -n serve shows no {', '.join(sorted(missing))}:\n{shown}")
    return commands


def server_environment(url: str, directory: Path, extra: dict[str, str]) -> dict[str, str]:
    """This environment without cw's settings (the bench's own write limit, say), plus
    the fresh database; make serve's defaults for everything else."""
    keep = {"CW_DB_CONN_MAX_AGE", "WORKERS"}
    env = {
        name: value
        for name, value in os.environ.items()
        if name in keep or not name.startswith(("CW_", "DJANGO_", "DATABASE_URL"))
    }
    return env | {
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CW_STATIC_ROOT": str(directory / "static"),
        # The read cap's lock files, apart from any other server's (its token ids repeat).
        "CW_LOCK_DIR": str(directory / "locks"),
        **extra,
    }


def shell(line: str, env: dict[str, str]) -> str:
    run = subprocess.run(  # noqa: S603
        ["bash", "-c", line],  # noqa: S607  (make serve's own command line)
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        raise RuntimeError(f"{line}\nfailed ({run.returncode}):\n{run.stderr}{run.stdout}")
    return run.stdout


def provision(agents: int, tokens: int) -> None:
    """(In a process of its own, on the fresh database.) Register the agents (and the one
    whose status moves the feed) and make the clients' tokens; print them as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cw_project.settings")
    import django

    django.setup()
    from agents.services import agent_register
    from core.tokens import api_token_create

    registered = [
        agent_register(name=f"bench-live-{n}", worktree_id=f"/srv/bench/live/{n}")[0].pk
        for n in range(agents + 1)
    ]
    clear = [api_token_create(name=f"bench live {n}")[1] for n in range(tokens)]
    print(json.dumps({"agents": registered[:-1], "feed_agent": registered[-1], "tokens": clear}))


class Server:
    """make serve's uvicorn (three workers by default) on ``port``."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen | None = None

    def start(self, port: int, token: str) -> None:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(  # noqa: S603
                ["bash", "-c", self.command],  # noqa: S607
                cwd=BASE_DIR,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()}")
            with contextlib.suppress(*NETWORK_ERRORS):
                if asyncio.run(_one_whoami(port, token)) == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in {STARTUP_SECONDS} s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every process of the server's session so far."""
        if self.process is None:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            # After the command: state ppid pgrp session ... utime(12) stime(13).
            if int(fields[3]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _one_whoami(port: int, token: str) -> int:
    connection = Connection(port)
    try:
        return (await connection.request(request_bytes("GET", "/api/whoami", token=token))).status
    finally:
        await connection.close()


class ConnectionCounter:
    """On PostgreSQL, the bench database's connections (``pg_stat_activity``), sampled
    every 100 ms in a thread: the peak and the mean."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.url.startswith("postgres"):
            return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        server, name = self.url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            while not self._stop.wait(0.1):
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()
                self.samples.append(row[0] if row else 0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def committed_event_ids(url: str) -> list[int]:
    """Every event's id, read from the database (SQLite file or PostgreSQL)."""
    if url.startswith("sqlite:"):
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [row[0] for row in connection.execute("SELECT id FROM events ORDER BY id")]
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT id FROM events ORDER BY id")]


# --- the clients: one asyncio loop in a process per kind ------------------------------------


class Tally:
    """What a client process saw go wrong, by kind (``append 500``, ``follow reset``)."""

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def error(self, kind: str, detail: object = "") -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, str(detail)[:300])


def client_main(role: str, setup: dict[str, Any], pipe: Any) -> None:
    """A client process: tell the parent it is ready, take the start time, run, send
    the results back."""
    result = asyncio.run(_client(role, setup, pipe))
    pipe.send(result)
    pipe.close()


async def _client(role: str, setup: dict[str, Any], pipe: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    pipe.send("ready")
    start = await loop.run_in_executor(None, pipe.recv)
    end = start + setup["duration"]
    tally = Tally()
    cpu: dict[str, float] = {}

    def note_cpu(key: str) -> None:
        cpu[key] = time.process_time()

    loop.call_at(start, note_cpu, "start")
    loop.call_at(end, note_cpu, "end")
    runner = {
        "appenders": run_appenders,
        "followers": run_followers,
        "pollers": run_pollers,
        "probe": run_probe,
    }[role]
    figures = await runner(setup, start, end, tally, pipe)
    if "end" not in cpu:
        note_cpu("end")
    return {
        "role": role,
        "errors": dict(tally.errors),
        "examples": tally.examples,
        "cpu_seconds": cpu["end"] - cpu.get("start", cpu["end"]),
        **figures,
    }


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def log_line(agent: int, n: int) -> str:
    """Line ``n`` of agent ``agent``: a JSON Lines line like a coding CLI's (~300 bytes)."""
    text = "Reading the repository layout and the failing test before changing anything. "
    return json.dumps({"type": "assistant", "agent": agent, "n": n, "text": text * 3}) + "\n"


async def run_appenders(
    setup: dict[str, Any], start: float, end: float, tally: Tally, pipe: Any
) -> dict[str, Any]:
    """Each agent appends one line every ``interval`` (never two at once: when an append
    takes longer, the next goes as soon as it is answered); the feed agent moves
    between running and idle every ``event_interval``."""
    port, interval = setup["port"], setup["interval"]

    async def agent(index: int, agent_id: str, token: str) -> dict[str, Any]:
        connection = Connection(port)
        target = f"/api/agents/{agent_id}/logs"
        appended: list[tuple[int, int, float]] = []
        latencies: list[float] = []
        sent = 0
        due = start + interval * index / len(setup["agents"])  # spread over the interval
        while due < end:
            await sleep_until(due)
            body = json.dumps([{"content": log_line(index, sent)}]).encode()
            data = request_bytes(
                "POST", target, token=token, body=body, content_type="application/json"
            )
            began = time.monotonic()
            try:
                response = await connection.request(data)
            except NETWORK_ERRORS as error:
                tally.error(f"append: {type(error).__name__}", error)
                response = None
            answered = time.monotonic()
            if response is not None:
                answer = _json(response.body)
                if response.status != 201:
                    tally.error(f"append: {response.status}", response.body[:200])
                elif (
                    not isinstance(answer, dict)
                    or answer.get("count") != 1
                    or answer.get("first_id") != answer.get("last_id")
                ):
                    tally.error("append: malformed answer", response.body[:200])
                else:
                    appended.append((answer["first_id"], sent, answered))
                    latencies.append(answered - began)
            sent += 1
            due = max(due + interval, time.monotonic())
        await connection.close()
        return {"appended": appended, "latencies": latencies, "sent": sent}

    async def feed_agent(agent_id: str, token: str) -> int:
        connection = Connection(port)
        changes, due, state = 0, start, "running"
        while due < end:
            await sleep_until(due)
            data = request_bytes(
                "POST", f"/api/agents/{agent_id}/{state}", token=token, body=b"{}",
                content_type="application/json",
            )  # fmt: skip
            try:
                response = await connection.request(data)
                if response.status == 200:
                    changes += 1
                    state = "idle" if state == "running" else "running"
                else:
                    tally.error(f"status change: {response.status}", response.body[:200])
            except NETWORK_ERRORS as error:
                tally.error(f"status change: {type(error).__name__}", error)
            due = max(due + setup["event_interval"], time.monotonic())
        await connection.close()
        return changes

    tokens = setup["tokens"]
    agents = [
        agent(index, agent_id, tokens[index]) for index, agent_id in enumerate(setup["agents"])
    ]
    *results, changes = await asyncio.gather(
        *agents, feed_agent(setup["feed_agent"], tokens[len(setup["agents"])])
    )
    return {"agents": results, "status_changes": changes}


async def run_followers(
    setup: dict[str, Any], start: float, end: float, tally: Tally, pipe: Any
) -> dict[str, Any]:
    """Each follower follows one agent's log (follower ``i`` the agent ``i % agents``)
    from the start, reconnecting with ``Last-Event-ID`` when a stream ends; after the
    load it stops once it has the agent's last appended line (the parent says which),
    or when the drain time is over."""
    port, agents = setup["port"], setup["agents"]
    cursors = [0] * setup["followers"]
    received: list[list[tuple[int, int, float]]] = [[] for _ in cursors]
    dropped: set[int] = set()
    stopping = False

    async def follower(index: int, token: str) -> None:
        agent_index = index % len(agents)
        agent_id = agents[agent_index]
        target = f"/api/agents/{agent_id}/logs/events"
        while True:
            headers = [("Accept", "text/event-stream")]
            if cursors[index]:
                headers.append(("Last-Event-ID", str(cursors[index])))
            data = request_bytes("GET", target, token=token, headers=tuple(headers))
            stream = None
            try:
                response, stream = await EventStream.open(port, data)
                if stream is None:
                    tally.error(f"follow: {response.status}", response.body[:200])
                    await asyncio.sleep(1)
                    continue
                async for event in stream.events():
                    at = time.monotonic()
                    item = _json(event.data.encode())
                    line = (
                        _json(item.get("content", "").encode()) if isinstance(item, dict) else None
                    )
                    if (
                        event.event != "chunk"
                        or not isinstance(item, dict)
                        or str(item.get("id")) != event.id
                        or item.get("agent_id") != agent_id
                        or not isinstance(line, dict)
                        or line.get("agent") != agent_index
                    ):
                        tally.error("follow: malformed event", event)
                        continue
                    cursors[index] = item["id"]
                    if setup["drop_a_line"] and index not in dropped and len(received[index]) == 2:
                        dropped.add(index)  # the bench's tests: is it noticed?
                        continue
                    received[index].append((item["id"], line["n"], at))
            except NETWORK_ERRORS as error:
                if not stopping:
                    tally.error(f"follow: {type(error).__name__}", error)
                    await asyncio.sleep(0.5)
            finally:
                if stream is not None:
                    stream.close()

    tasks = [
        asyncio.ensure_future(follower(index, setup["tokens"][index]))
        for index in range(setup["followers"])
    ]
    await sleep_until(end)
    # The last line of each agent, once the appenders are done.
    last = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    deadline = time.monotonic() + setup["drain"]
    while time.monotonic() < deadline:
        if all(cursors[i] >= last[i % len(agents)] for i in range(len(cursors))):
            break
        await asyncio.sleep(0.05)
    stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"received": received}


async def run_pollers(
    setup: dict[str, Any], start: float, end: float, tally: Tally, pipe: Any
) -> dict[str, Any]:
    """Long-pollers follow the event feed from the start with ``wait=30``; slow clients
    send a request head at a byte a second, again each time one is answered."""
    port = setup["port"]
    cursors = [0] * setup["pollers"]
    seen: list[list[int]] = [[] for _ in cursors]
    answers = [0]
    slow_outcomes: Counter[str] = Counter()
    stopping = False

    async def poller(index: int, token: str) -> None:
        connection = Connection(port)
        while True:
            data = request_bytes(
                "GET", f"/api/events?after={cursors[index]}&wait=30&limit=100", token=token
            )
            try:
                response = await connection.request(data)
            except NETWORK_ERRORS as error:
                if not stopping:
                    tally.error(f"long poll: {type(error).__name__}", error)
                    await asyncio.sleep(0.5)
                continue
            page = _json(response.body)
            if response.status != 200:
                tally.error(f"long poll: {response.status}", response.body[:200])
                await asyncio.sleep(1)
                continue
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                tally.error("long poll: malformed page", response.body[:200])
                continue
            answers[0] += 1
            ids = [item.get("id") for item in page["items"] if isinstance(item, dict)]
            expected_next = ids[-1] if ids else cursors[index]
            if len(ids) != len(page["items"]) or page.get("next_after") != expected_next:
                tally.error("long poll: malformed page", response.body[:200])
                continue
            seen[index] += ids
            cursors[index] = expected_next

    read_deadline = float(setup["request_read_seconds"])

    async def slow_client(index: int) -> None:
        head = (
            b"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"User-Agent: cw-bench-slow-client\r\nX-Padding: " + b"." * 100 + b"\r\n\r\n"
        )
        await asyncio.sleep(index / max(setup["slow"], 1))
        while True:
            opened = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = asyncio.ensure_future(read_head(reader))
            try:
                for byte in head:
                    if answer.done():
                        break
                    writer.write(bytes((byte,)))
                    with contextlib.suppress(*NETWORK_ERRORS):
                        await writer.drain()
                    await asyncio.wait({answer}, timeout=1.0)
                status, _headers = await asyncio.wait_for(answer, timeout=30)
            except NETWORK_ERRORS as error:
                held = time.monotonic() - opened
                if held < read_deadline - 1:
                    tally.error(f"slow client: closed after {held:.0f} s", error)
                else:
                    slow_outcomes["closed after the read deadline"] += 1
            except TimeoutError:
                tally.error("slow client: no answer 30 s after its request")
            else:
                if status == 408:
                    slow_outcomes["408 after the read deadline"] += 1
                elif status in (401, 200):
                    slow_outcomes[f"{status} after sending it all"] += 1
                else:
                    tally.error(f"slow client: {status}")
            finally:
                answer.cancel()
                writer.close()

    pollers = [
        asyncio.ensure_future(poller(index, token))
        for index, token in enumerate(setup["tokens"][: setup["pollers"]])
    ]
    slow = [asyncio.ensure_future(slow_client(index)) for index in range(setup["slow"])]
    await sleep_until(end)
    last_event = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    deadline = time.monotonic() + setup["drain"]
    while time.monotonic() < deadline and min(cursors, default=last_event) < last_event:
        await asyncio.sleep(0.05)
    stopping = True
    held = sum(1 for task in slow if not task.done())
    for task in pollers + slow:
        task.cancel()
    await asyncio.gather(*pollers, *slow, return_exceptions=True)
    slow_outcomes["still sending at the end"] += held
    return {"seen": seen, "answers": answers[0], "slow": dict(slow_outcomes)}


async def whoami_series(
    port: int,
    token: str,
    *,
    until: float | None,
    count: int | None,
    gap: float,
    tally: Tally,
    warm_up: int = 0,
) -> list[float]:
    """``GET /api/whoami`` one at a time on one keep-alive connection, ``gap`` apart
    (after ``warm_up`` calls not counted)."""
    connection = Connection(port)
    latencies: list[float] = []
    data = request_bytes("GET", "/api/whoami", token=token)
    for _ in range(warm_up):
        await connection.request(data)
    while (until is None or time.monotonic() < until) and (count is None or len(latencies) < count):
        began = time.monotonic()
        try:
            response = await connection.request(data)
        except NETWORK_ERRORS as error:
            tally.error(f"whoami: {type(error).__name__}", error)
            continue
        if response.status == 200:
            latencies.append(time.monotonic() - began)
        else:
            tally.error(f"whoami: {response.status}", response.body[:200])
        await asyncio.sleep(gap)
    await connection.close()
    return latencies


async def run_probe(
    setup: dict[str, Any], start: float, end: float, tally: Tally, pipe: Any
) -> dict[str, Any]:
    await sleep_until(start)
    latencies = await whoami_series(
        setup["port"], setup["probe_token"], until=end, count=None, gap=setup["whoami_gap"],
        tally=tally,
    )  # fmt: skip
    return {"latencies": latencies}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- the accounting --------------------------------------------------------------------------


@dataclass
class Followed:
    """What followers saw against what was appended."""

    expected: int = 0
    received: int = 0
    missed: int = 0
    #: Seen twice, out of order, or never appended (as this agent's, with this id).
    wrong: int = 0
    delivery: list[float] = field(default_factory=list)


def account_followers(
    appended: list[list[tuple[int, int, float]]],
    received: list[list[tuple[int, int, float]]],
) -> Followed:
    """Compare each follower's lines (``(id, n, received at)``, follower ``i`` following
    agent ``i % len(appended)``) with its agent's answered appends (``(id, n, answered
    at)``): every id once, in order, with the line that id was answered for."""
    followed = Followed()
    for index, lines in enumerate(received):
        expected = appended[index % len(appended)]
        answered = {chunk_id: (n, at) for chunk_id, n, at in expected}
        got = [chunk_id for chunk_id, _n, _at in lines]
        followed.expected += len(expected)
        followed.received += len(lines)
        followed.missed += len(answered.keys() - set(got))
        previous = 0
        for chunk_id, n, at in lines:
            if chunk_id <= previous or chunk_id not in answered or answered[chunk_id][0] != n:
                followed.wrong += 1
            else:
                followed.delivery.append(at - answered[chunk_id][1])
            previous = max(previous, chunk_id)
    return followed


def account_pollers(events: list[int], seen: list[list[int]]) -> tuple[int, int]:
    """(events missed, events seen twice or out of order) over every long-poller, each
    of which should have seen ``events`` exactly."""
    missed = wrong = 0
    committed = set(events)
    for ids in seen:
        missed += len(committed - set(ids))
        wrong += len(ids) - len(set(ids)) + sum(1 for a, b in itertools.pairwise(ids) if b <= a)
        wrong += len(set(ids) - committed)
    return missed, wrong


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- the run -----------------------------------------------------------------------------------


def measure(config: LiveConfig) -> dict[str, Any]:
    """Serve a fresh database as make serve does, load it, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="cw-bench-live-") as tmp:
        directory = Path(tmp)
        with fresh_database(directory) as url:
            port = free_port()
            commands = serve_commands(port)
            env = server_environment(url, directory, config.server_env)
            began = time.monotonic()
            shell(commands["migrate"], env)
            tokens_needed = config.agents + 1 + config.followers + config.pollers + 1
            made = json.loads(
                subprocess.run(  # noqa: S603
                    [
                        sys.executable,
                        "-c",
                        f"from bench.live import provision; provision({config.agents}, "
                        f"{tokens_needed})",
                    ],
                    cwd=BASE_DIR,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()[-1]
            )
            shell(commands["collectstatic"], env)
            server = Server(commands["serve"], env, directory / "server.log")
            try:
                server.start(port, made["tokens"][-1])
                print(
                    f"    {figures_database(url)} migrated, {config.agents + 1} agents and "
                    f"{len(made['tokens'])} tokens made, make serve's uvicorn answering on "
                    f"port {port}: {time.monotonic() - began:.1f} s",
                    flush=True,
                )
                figures = load(config, server, port, made, url)
            finally:
                server.stop()
            figures["server_log_tail"] = server.log.read_text()[-2000:]
            figures["database"] = figures_database(url)
            return figures


def figures_database(url: str) -> str:
    return "postgresql" if url.startswith("postgres") else "sqlite"


def load(
    config: LiveConfig, server: Server, port: int, made: dict[str, Any], url: str
) -> dict[str, Any]:
    tokens = made["tokens"]
    probe_token = tokens[-1]
    # Each kind of client uses tokens of its own kind: appenders, followers and pollers
    # in different processes never share one (the read cap is per token).
    idle_tally = Tally()
    # Warm up first: every worker's first requests import and compile what they use.
    for _ in range(30):
        asyncio.run(_one_whoami(port, probe_token))
    idle = asyncio.run(
        whoami_series(
            port, probe_token, until=None, count=config.whoami_idle, gap=config.whoami_gap,
            tally=idle_tally, warm_up=20,
        )
    )  # fmt: skip
    followers_from = config.agents + 1
    pollers_from = followers_from + config.followers
    base = {
        "port": port,
        "duration": config.duration,
        "interval": config.interval,
        "event_interval": config.event_interval,
        "drain": config.drain,
        "agents": made["agents"],
        "feed_agent": made["feed_agent"],
        "followers": config.followers,
        "pollers": config.pollers,
        "slow": config.slow,
        "whoami_gap": config.whoami_gap,
        "drop_a_line": config.drop_a_line,
        "probe_token": probe_token,
        "request_read_seconds": float(
            server.env.get("CW_REQUEST_READ_SECONDS", os.environ.get("CW_REQUEST_READ_SECONDS", 60))
        ),
    }
    setups = {
        "appenders": base | {"tokens": tokens[: config.agents + 1]},
        "followers": base | {"tokens": tokens[followers_from:pollers_from]},
        "pollers": base | {"tokens": tokens[pollers_from : pollers_from + config.pollers]},
        "probe": base | {"tokens": []},
    }
    context = multiprocessing.get_context("spawn")
    pipes, processes = {}, []
    for role, setup in setups.items():
        ours, theirs = context.Pipe()
        process = context.Process(target=client_main, args=(role, setup, theirs), daemon=True)
        process.start()
        pipes[role] = ours
        processes.append(process)
    for role, pipe in pipes.items():
        if not pipe.poll(60) or pipe.recv() != "ready":
            raise RuntimeError(f"the {role} client did not start")
    counter = ConnectionCounter(url)
    counter.start()
    start = time.monotonic() + 0.5
    for pipe in pipes.values():
        pipe.send(start)
    time.sleep(max(start - time.monotonic(), 0))
    server_cpu_start = server.cpu_seconds()
    time.sleep(max(start + config.duration - time.monotonic(), 0))
    results = {"appenders": pipes["appenders"].recv()}
    server_cpu = server.cpu_seconds() - server_cpu_start
    load_seconds = time.monotonic() - start
    counter.stop()
    last_lines = [
        max((chunk_id for chunk_id, _n, _at in agent["appended"]), default=0)
        for agent in results["appenders"]["agents"]
    ]
    pipes["followers"].send(last_lines)
    events = committed_event_ids(url)
    pipes["pollers"].send(max(events, default=0))
    for role in ("followers", "pollers", "probe"):
        if not pipes[role].poll(config.drain + 60):
            raise RuntimeError(f"the {role} client did not finish")
        results[role] = pipes[role].recv()
    for process in processes:
        process.join(timeout=10)

    agents = results["appenders"]["agents"]
    appended = [agent["appended"] for agent in agents]
    followed = account_followers(appended, results["followers"]["received"])
    poll_missed, poll_wrong = account_pollers(events, results["pollers"]["seen"])
    errors: Counter[str] = Counter(idle_tally.errors)
    examples: dict[str, str] = dict(idle_tally.examples)
    for result in results.values():
        errors.update(result["errors"])
        for kind, example in result["examples"].items():
            examples.setdefault(kind, example)
    latencies = [latency for agent in agents for latency in agent["latencies"]]
    answered = len(latencies)
    client_cpu = sum(result["cpu_seconds"] for result in results.values())
    cores = os.cpu_count() or 1
    return {
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_examples": examples,
        "appends_intended": config.intended_appends,
        "appends_sent": sum(agent["sent"] for agent in agents),
        "appends_answered": answered,
        "append_p50_ms": percentile(latencies, 0.50) * 1000,
        "append_p99_ms": percentile(latencies, 0.99) * 1000,
        "followers": config.followers,
        "lines_expected": followed.expected,
        "lines_received": followed.received,
        "lines_missed": followed.missed,
        "lines_wrong": followed.wrong,
        "delivery_p50_ms": percentile(followed.delivery, 0.50) * 1000,
        "delivery_p99_ms": percentile(followed.delivery, 0.99) * 1000,
        "events": len(events),
        "status_changes": results["appenders"]["status_changes"],
        "events_missed": poll_missed,
        "events_wrong": poll_wrong,
        "long_poll_answers": results["pollers"]["answers"],
        "slow_clients": results["pollers"]["slow"],
        "whoami_idle_p99_ms": percentile(idle, 0.99) * 1000,
        "whoami_idle_p50_ms": percentile(idle, 0.50) * 1000,
        "whoami_load_p99_ms": percentile(results["probe"]["latencies"], 0.99) * 1000,
        "whoami_load_p50_ms": percentile(results["probe"]["latencies"], 0.50) * 1000,
        "whoami_load_calls": len(results["probe"]["latencies"]),
        "load_seconds": load_seconds,
        "client_cpu_share": client_cpu / (cores * load_seconds),
        "client_cpu_by_role": {role: r["cpu_seconds"] for role, r in results.items()},
        "server_cpu_share": server_cpu / (cores * load_seconds),
        "server_cpu_ms_per_append": server_cpu * 1000 / answered if answered else float("nan"),
        "db_connections_peak": max(counter.samples, default=None),
        "db_connections_mean": (
            sum(counter.samples) / len(counter.samples) if counter.samples else None
        ),
    }


def run(quick: bool, config: LiveConfig | None = None) -> Result:
    config = config or (QUICK if quick else FULL)
    figures = measure(config)
    result = Result(
        f"live: {config.agents} agents appending every {config.interval * 1000:g} ms, "
        f"{config.followers} SSE followers, {config.pollers} long-pollers, {config.slow} slow "
        f"clients, {config.duration:g} s"
    )
    report(result, config, figures)
    return result


def report(result: Result, config: LiveConfig, figures: dict[str, Any]) -> None:
    """The rows of ``figures`` (and the kinds of error, printed)."""
    for kind, count in sorted(figures["error_kinds"].items()):
        print(f"    error {kind}: {count} (e.g. {figures['error_examples'].get(kind, '')})")
    result.check(
        "errors (5xx, connection errors, malformed bodies, unexpected statuses)",
        figures["errors"],
        unit="errors",
        target="0",
        held=figures["errors"] == 0,
        kind="rule",
    )
    result.check(
        f"lines missed by SSE followers (of {figures['lines_expected']:,} owed)",
        figures["lines_missed"],
        unit="lines",
        target="0",
        held=figures["lines_missed"] == 0,
        kind="rule",
    )
    result.check(
        "lines seen twice, out of order or not appended, by SSE followers",
        figures["lines_wrong"],
        unit="lines",
        target="0",
        held=figures["lines_wrong"] == 0,
        kind="rule",
    )
    result.check(
        f"events missed, repeated or out of order by long-pollers ({figures['events']:,} events)",
        figures["events_missed"] + figures["events_wrong"],
        unit="events",
        target="0",
        held=figures["events_missed"] + figures["events_wrong"] == 0,
        kind="rule",
    )
    result.ratio(
        f"appends answered / intended ({config.agents} x {1 / config.interval:g}/s x "
        f"{config.duration:g} s)",
        figures["appends_answered"],
        figures["appends_intended"],
        unit="appends",
        minimum=0.95,
        baseline_label="intended",
    )
    result.info("append latency p50", figures["append_p50_ms"], unit="ms")
    result.info("append latency p99", figures["append_p99_ms"], unit="ms")
    result.info(
        "event delivery p50 (append answered -> follower has it)",
        figures["delivery_p50_ms"],
        unit="ms",
    )
    result.info(
        "event delivery p99 (append answered -> follower has it)",
        figures["delivery_p99_ms"],
        unit="ms",
    )
    whoami = figures["whoami_load_p99_ms"] / figures["whoami_idle_p99_ms"]
    result.check(
        "GET /api/whoami p99 under load / idle (just before)",
        figures["whoami_load_p99_ms"],
        baseline=figures["whoami_idle_p99_ms"],
        baseline_label="idle",
        unit="ms",
        target="<= 2x idle",
        held=whoami <= 2,
        ratio=whoami,
    )
    result.info("long polls answered", figures["long_poll_answers"], unit="answers")
    for outcome, count in sorted(figures["slow_clients"].items()):
        result.info(f"slow clients: {outcome}", count, unit="requests")
    if figures["db_connections_peak"] is not None:
        result.info(
            "PostgreSQL connections to the database, peak",
            figures["db_connections_peak"],
            unit="connections",
        )
        result.info(
            "PostgreSQL connections to the database, mean",
            figures["db_connections_mean"],
            unit="connections",
        )
    result.info("server CPU, share of the machine", figures["server_cpu_share"] * 100, unit="%")
    result.info(
        "server CPU per append answered (all its work / appends)",
        figures["server_cpu_ms_per_append"],
        unit="ms",
    )
    result.info(
        "bench clients' CPU, share of the machine", figures["client_cpu_share"] * 100, unit="%"
    )
