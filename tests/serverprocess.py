"""cw as an operator runs it, for tests that need real processes: a fresh database, the
management commands as subprocesses, and gunicorn serving it, started, stopped or killed.

    with scratch_database(tmp_path) as database:
        database.manage("migrate", "--no-input")
        token = database.create_token("soak")
        with Server(database, workers=3) as server:
            status, body = server.call("GET", "/api/whoami", token=token)

The database is of the kind the suite runs on: a SQLite file under ``tmp_path`` when the
suite runs on SQLite, else a new database on the suite's PostgreSQL server (dropped at
the end). Every subprocess gets a clean environment: the suite's ``CW_*``, ``DJANGO_*``
and ``DATABASE_URL`` variables are replaced by the scratch database's.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

STARTUP_SECONDS = 30


def suite_runs_on_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@dataclass
class ScratchDatabase:
    """A database of its own and the environment that points cw's processes at it."""

    url: str
    directory: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))

    def manage(self, *arguments: str, timeout: float = 120, check: bool = True) -> str:
        """Run ``manage.py ARGUMENTS`` against this database; its standard output."""
        run = manage(self.env, *arguments, timeout=timeout)
        if check:
            assert run.returncode == 0, f"manage.py {arguments}:\n{run.stderr}{run.stdout}"
        return run.stdout

    def create_token(self, name: str) -> str:
        """A new API token's clear value, made by ``create_api_token`` as an operator would."""
        created = self.manage("create_api_token", name)
        return next(line for line in created.splitlines() if line.startswith("cw_"))

    def connect(self) -> Any:
        """A DB-API connection of the test's own (sqlite3 or psycopg), autocommitting."""
        if self.is_sqlite:
            import sqlite3

            return sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
        return psycopg.connect(self.url, autocommit=True)

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """The rows of one query (``%s`` placeholders on both databases)."""
        if self.is_sqlite:
            sql = sql.replace("%s", "?")
        connection = self.connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, parameters)
            return cursor.fetchall()
        finally:
            connection.close()


def manage(
    env: dict[str, str], *arguments: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``manage.py ARGUMENTS`` in a process of its own with ``env``; not checked.

    The browser tests' ``DJANGO_ALLOW_ASYNC_UNSAFE`` is never passed on (``check
    --deploy`` refuses it as async.E001).
    """
    return subprocess.run(  # noqa: S603  (manage.py, with arguments the test chose)
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env={k: v for k, v in env.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_environment(**overrides: str) -> dict[str, str]:
    """The suite's environment without cw's own settings, plus ``overrides``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CW_", "DJANGO_", "DATABASE_URL"))
    }
    return env | overrides


@contextlib.contextmanager
def scratch_database(directory: Path, **env: str) -> Iterator[ScratchDatabase]:
    """A new, empty database of the suite's kind (not yet migrated), dropped afterwards.

    ``env`` adds variables (e.g. ``CW_API_WRITE_RATE_LIMIT="0"``) to every process.
    """
    name = f"cw_scratch_{os.getpid()}_{secrets.token_hex(4)}"
    if suite_runs_on_postgresql():
        server_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        admin_url, url = f"{server_url}/postgres", f"{server_url}/{name}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    else:
        admin_url = ""
        url = f"sqlite:///{directory / (name + '.sqlite3')}"
    database = ScratchDatabase(url=url, directory=directory)
    database.env = clean_environment(
        DATABASE_URL=url,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        CW_STATIC_ROOT=str(directory / "static"),
        # The read cap's slot files (core/readlimits.py): one server's own, as on a host
        # of its own, so the suite's servers never share a caller's slots.
        CW_LOCK_DIR=str(directory / "locks"),
        # cw's mirrors of projects (core/mirrors.py) and the demo's repositories: the
        # scratch server's own, never the checkout's var/.
        CW_MIRRORS_DIR=str(directory / "mirrors"),
        CW_DEMO_REPOS_DIR=str(directory / "demo-repos"),
        **env,
    )
    try:
        yield database
    finally:
        if admin_url:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 30,
) -> tuple[int, Any, dict[str, str]]:
    """Status, decoded JSON body (or text) and headers; error statuses are returned."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, headers, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, payload = error.code, dict(error.headers), error.read()
    try:
        decoded: Any = json.loads(payload) if payload else None
    except ValueError:
        decoded = payload.decode(errors="replace")
    return status, decoded, headers


class Server:
    """gunicorn (or uvicorn, ``asgi=True``) serving ``database`` on a free loopback port,
    DEBUG off.

    ``with Server(db) as server`` waits until it answers and stops it afterwards;
    ``kill()`` sends SIGKILL to the master and every worker (a power cut, as near as a
    test gets), ``start()`` starts it again on the same port.
    """

    def __init__(
        self, database: ScratchDatabase, *, workers: int = 3, threads: int = 1, asgi: bool = False
    ):
        self.database = database
        self.workers = workers
        self.threads = threads
        #: Serve with uvicorn (ASGI, as ``make serve`` does) instead of gunicorn.
        self.asgi = asgi
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = database.directory / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        command = self._uvicorn() if self.asgi else self._gunicorn()
        with self.log.open("a") as output:
            self.process = subprocess.Popen(  # noqa: S603  (the server, arguments we chose)
                command,
                cwd=settings.BASE_DIR,
                env=self.database.env | {"DJANGO_DEBUG": "false"},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: kill() reaches the workers
            )
        self._wait_until_answering()
        return self

    def _uvicorn(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "cw_project.asgi:application",
            "--workers",
            str(self.workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            # make serve's HTTP protocol (tests/cw_project/test_server_protocol.py
            # checks the two commands agree).
            "--http",
            "cw_project.server:HttpProtocol",
        ]

    def _gunicorn(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "cw_project.wsgi",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "60",
        ]

    def _wait_until_answering(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                http("GET", f"{self.url}/api/openapi.json", timeout=5)
            except OSError:
                time.sleep(0.1)
            else:
                return
        raise AssertionError(
            f"gunicorn did not answer in {STARTUP_SECONDS} s:\n{self.log.read_text()}"
        )

    def call(self, method: str, path: str, **options: Any) -> tuple[int, Any, dict[str, str]]:
        return http(method, f"{self.url}{path}", **options)

    def kill(self) -> None:
        """SIGKILL the whole process group: master and workers die mid-request."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- reading and writing through a server, for tests of fleets ---------------------------


def ok(server: Server, method: str, path: str, token: str, body: Any = None) -> Any:
    """The answer of a call that must succeed (2xx), else an assertion naming it."""
    status, answer, _ = server.call(method, path, token=token, body=body)
    assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
    return answer


def every(server: Server, token: str, path: str) -> list[dict[str, Any]]:
    """Every item of a list operation, page by page (``next_offset``)."""
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        separator = "&" if "?" in path else "?"
        page = ok(server, "GET", f"{path}{separator}limit=200&offset={offset}", token)
        items += page["items"]
        offset = page["next_offset"]
    return items


def the_feed(server: Server, token: str) -> list[dict[str, Any]]:
    """The whole event feed, read forward with its cursor until an empty page."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = ok(server, "GET", f"/api/events?after={after}&limit=500", token)
        if not page["items"]:
            return events
        events += page["items"]
        after = page["next_after"]


def make_tokens(database: ScratchDatabase, tools: list[str], *, lead: str) -> dict[str, str]:
    """A person's token (user and token named ``lead``, under the key ``"lead"``) and a
    tool token per name of ``tools``, made in one process."""
    script = (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from core.tokens import api_token_create\n"
        f"lead = get_user_model().objects.create_user(username={lead!r})\n"
        f"tokens = {{'lead': api_token_create(name={lead!r}, person=lead)[1]}}\n"
        f"for name in {tools!r}:\n"
        "    tokens[name] = api_token_create(name=name)[1]\n"
        "print(json.dumps(tokens))\n"
    )
    return json.loads(database.manage("shell", "-c", script).strip().splitlines()[-1])
