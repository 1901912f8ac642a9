"""A soak of the JSON API under gunicorn, and a backup taken while it runs.

Several clients (8 threads, then 4 processes) drive a bounded mix of writes through
HTTP against a scratch database of the suite's kind served by 3 gunicorn workers: log
batches, task starts and completions, account claims (plain, with an agent's
registration, and on a provider whose accounts are parked right after each claim and
released when their time has passed), proposal accepts and review comments. Clients
race for the same tasks and proposals on purpose.

Afterwards: no 5xx, no "database is locked" or serialization failure, every refusal a
409 with the error shape, every write that answered success in the database and every
refused one absent, no task started or completed twice, no proposal half-applied, and
the accounts handed out as the domain promises (round-robin: never the same account
while another is free; never a parked one).

While the process clients run, ``cw_backup`` takes a copy (SQLite: the online backup
API; PostgreSQL: the ``pg_dump`` it prints, restored with ``pg_restore`` into a new
database). The copy must be intact, consistent (each log batch wholly in or out, no
proposal half-applied), hold every write answered before the backup began and none sent
after it ended, and be a cw database that migrates clean and serves the API.

``pytest -s`` prints one summary line per run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import multiprocessing
import random
import re
import secrets
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.serverprocess import ScratchDatabase, Server, http, scratch_database

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.processes,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
    ),
]

#: How long each mode's clients write (the load is bounded; nothing is timed).
LOAD_SECONDS = 12
CLIENT_THREADS = 8
CLIENT_PROCESSES = 4
#: When the process clients have run this long, the backup is taken.
BACKUP_AFTER_SECONDS = 3
LOG_BATCH = 20
TASKS_PER_PHASE = 45
PROPOSALS = 30
ROUND_ROBIN_ACCOUNTS = 3
PARKED_ACCOUNTS = 2
PARK_SECONDS = 2

#: Operation: weight in each client's random mix.
MIX = {
    "log": 24,
    "comment": 14,
    "start": 14,
    "complete": 12,
    "accept": 8,
    "claim": 9,
    "register_claim": 3,
    "claim_parked": 10,
    "release": 6,
}
SERVER_TROUBLE = re.compile(r"database is locked|serializ|deadlock", re.IGNORECASE)


@dataclass
class Served:
    database: ScratchDatabase
    server: Server
    person_token: str
    tool_tokens: list[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One migrated scratch database served by 3 workers of 2 threads, for the module."""
    directory = tmp_path_factory.mktemp("soak")
    with scratch_database(directory, CW_API_WRITE_RATE_LIMIT="1000000") as database:
        database.manage("migrate", "--no-input")
        tokens = _make_tokens(database, tools=CLIENT_THREADS + CLIENT_PROCESSES)
        with Server(database, workers=3, threads=2) as server:
            yield Served(database, server, tokens["person"], tokens["tools"])


def _make_tokens(database: ScratchDatabase, *, tools: int) -> dict[str, Any]:
    """A person's token (the lead's) and ``tools`` tool tokens, made in one process."""
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from core.tokens import api_token_create\n"
        "import json\n"
        "lead = get_user_model().objects.create_user(username='soak-lead')\n"
        "person = api_token_create(name='soak-lead', person=lead)[1]\n"
        f"tools = [api_token_create(name=f'soak-tool-{{n}}')[1] for n in range({tools})]\n"
        "print(json.dumps({'person': person, 'tools': tools}))\n"
    )
    output = database.manage("shell", "-c", script)
    return json.loads(output.strip().splitlines()[-1])


# --- the plan --------------------------------------------------------------------------


def _ok(server: Server, method: str, path: str, token: str, body: Any = None) -> Any:
    status, answer, _ = server.call(method, path, token=token, body=body)
    assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
    return answer


def build_plan(served: Served, mode: str, clients: int) -> dict[str, Any]:
    """An initiative (yolo) with two approved phases of tasks, an agent per client,
    pending proposals, and two providers' accounts; all through the API."""
    server, lead, tool = served.server, served.person_token, served.tool_tokens[0]
    initiative = _ok(
        server,
        "POST",
        "/api/initiatives",
        lead,
        {"name": f"Soak {mode}", "branch": f"soak-{mode}", "execution_mode": "yolo"},
    )
    phases = [
        _ok(server, "POST", f"/api/initiatives/{initiative['id']}/phases", lead, {"name": name})
        for name in (f"{mode} phase 1", f"{mode} phase 2")
    ]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        tasks = list(
            pool.map(
                lambda n: _ok(
                    server,
                    "POST",
                    f"/api/phases/{phases[n % 2]['id']}/tasks",
                    tool,
                    {"name": f"{mode} task {n}"},
                ),
                range(2 * TASKS_PER_PHASE),
            )
        )
    for phase in phases:
        _ok(server, "POST", f"/api/phases/{phase['id']}/approve-plan", lead)
    agents = [
        _ok(
            server,
            "POST",
            "/api/agents",
            tool,
            {"worktree_id": f"soak/{mode}/{n}", "initiative_id": initiative["id"]},
        )["agent"]
        for n in range(clients)
    ]

    def propose(n: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "agent_id": agents[n % len(agents)]["id"],
            "initiative_id": initiative["id"],
            "title": f"Soak {mode} proposal {n}",
            "content": f"## Proposal {n}\n\nWritten under load.",
        }
        if n % 2:
            body |= {"target_type": "task", "metadata": {"phase_id": phases[1]["id"]}}
        else:
            body |= {"target_type": "page"}
        return _ok(server, "POST", "/api/proposals", tool, body)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        proposals = list(pool.map(propose, range(PROPOSALS)))
    # Two of the providers cw knows; the accounts an earlier soak of this module made
    # for them go first (through the API), so each soak rotates its own accounts only.
    providers = {"round_robin": "claude", "parked": "codex"}
    for provider in providers.values():
        listed = _ok(server, "GET", f"/api/accounts?provider={provider}&limit=200", lead)
        for account in listed["items"]:
            _ok(server, "DELETE", f"/api/accounts/{account['id']}", lead)
    for kind, count in (("round_robin", ROUND_ROBIN_ACCOUNTS), ("parked", PARKED_ACCOUNTS)):
        for n in range(count):
            _ok(
                server,
                "POST",
                "/api/accounts",
                lead,
                {"email": f"{kind}{n}@{mode}.soak.test", "provider": providers[kind]},
            )
    return {
        "mode": mode,
        "initiative_id": initiative["id"],
        "phase_ids": [phase["id"] for phase in phases],
        "task_ids": [task["id"] for task in tasks],
        "agent_ids": [agent["id"] for agent in agents],
        "proposal_ids": [proposal["id"] for proposal in proposals],
        "providers": providers,
    }


# --- one client ------------------------------------------------------------------------


def run_client(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Drive the mix until ``spec['until']`` (wall clock); every call's record.

    Plain urllib only: it runs in a thread or in a spawned process alike.
    """
    rng = random.Random(spec["seed"])
    plan, name = spec["plan"], spec["client"]
    base, tool, lead = spec["base_url"], spec["tool_token"], spec["person_token"]
    records: list[dict[str, Any]] = []
    tasks = _rotated(plan["task_ids"], rng)
    proposals = _rotated(plan["proposal_ids"], rng)
    started: list[str] = []
    operations, weights = list(MIX), list(MIX.values())

    def call(op: str, method: str, path: str, token: str, body: Any = None, **info: Any) -> Any:
        marker = f"{plan['mode']}:{name}:{len(records)}"
        if callable(body):
            body = body(marker)
        sent = time.time()
        try:
            status, answer, _ = http(method, base + path, token=token, body=body, timeout=60)
        except OSError as error:  # a dropped connection is a failure of its own
            status, answer = 0, repr(error)
        record = {
            "op": op,
            "client": name,
            "marker": marker,
            "status": status,
            "sent": sent,
            "answered": time.time(),
            **info,
        }
        if not 200 <= status < 300:
            record["answer"] = answer
        records.append(record)
        return record, answer

    while _load_goes_on(spec):
        op = rng.choices(operations, weights)[0]
        if op == "log":
            agent = rng.choice(plan["agent_ids"])
            call(
                "log",
                "POST",
                f"/api/agents/{agent}/logs",
                tool,
                lambda marker: [
                    {
                        "content": json.dumps(
                            {"soak": marker, "i": i, "pad": "x" * rng.randrange(200)}
                        )
                    }
                    for i in range(LOG_BATCH)
                ],
                agent_id=agent,
            )
        elif op == "comment":
            phase = rng.choice(plan["phase_ids"])
            call(
                "comment",
                "POST",
                f"/api/phases/{phase}/review-comments",
                rng.choice((tool, lead)),
                lambda marker: {
                    "file_path": f"src/{name}.py",
                    "line_number": len(records) + 1,
                    "line_type": "added",
                    "body": marker,
                },
                phase_id=phase,
            )
        elif op == "start" and tasks:
            task = tasks.pop(0)
            record, _ = call("start", "POST", f"/api/tasks/{task}/start", tool, task_id=task)
            if record["status"] == 200:
                started.append(task)
        elif op == "complete" and (started or tasks):
            # Mostly a task this client started; now and then any task (a race).
            mine = started and rng.random() < 0.85
            task = (
                started.pop(rng.randrange(len(started))) if mine else rng.choice(plan["task_ids"])
            )
            call(
                "complete",
                "POST",
                f"/api/tasks/{task}/complete",
                tool,
                lambda marker: {"summary": marker},
                task_id=task,
            )
        elif op == "accept" and proposals:
            proposal = proposals.pop(0)
            call("accept", "POST", f"/api/proposals/{proposal}/accept", lead, proposal_id=proposal)
        elif op == "claim":
            record, answer = call(
                "claim",
                "POST",
                "/api/accounts/claim",
                tool,
                {"provider": plan["providers"]["round_robin"]},
            )
            _note_account(record, answer)
        elif op == "register_claim":
            record, answer = call(
                "register_claim",
                "POST",
                "/api/agents",
                tool,
                lambda marker: {
                    "worktree_id": f"soak/{marker}",
                    "provider": plan["providers"]["round_robin"],
                    "claim_account": True,
                },
            )
            _note_account(record, answer["account"] if record["status"] == 201 else answer)
        elif op == "claim_parked":
            # Claim, then park the account at once (rate-limited): it is held until its
            # exhaustion passes and a release clears it.
            record, answer = call(
                "claim_parked",
                "POST",
                "/api/accounts/claim",
                tool,
                {"provider": plan["providers"]["parked"]},
            )
            _note_account(record, answer)
            if record["status"] == 200:
                until = datetime.now(UTC) + timedelta(seconds=PARK_SECONDS)
                call(
                    "park",
                    "POST",
                    f"/api/accounts/{answer['id']}/exhaust",
                    tool,
                    {"until": until.isoformat()},
                    account_id=answer["id"],
                    until=until.timestamp(),
                )
        elif op == "release":
            call("release", "POST", "/api/accounts/clear-expired-exhaustion", tool)
    return records


def _load_goes_on(spec: dict[str, Any]) -> bool:
    """Until ``until``, and then until the ``copied`` file exists, if one is named (the
    backup is taken under load however long it takes to start), at most a minute more."""
    now = time.time()
    if now < spec["until"]:
        return True
    copied = spec.get("copied")
    return copied is not None and not Path(copied).exists() and now < spec["until"] + 60


def _rotated(items: list[str], rng: random.Random) -> list[str]:
    """``items`` from a random place on, round: clients overlap only now and then."""
    offset = rng.randrange(len(items))
    return items[offset:] + items[:offset]


def _note_account(record: dict[str, Any], answer: Any) -> None:
    if 200 <= record["status"] < 300:
        record["account_id"] = answer["id"]
        record["stamp"] = datetime.fromisoformat(answer["last_used_at"]).timestamp()


# --- the runs --------------------------------------------------------------------------


def client_specs(
    served: Served, plan: dict[str, Any], count: int, first_token: int, copied: Path | None = None
) -> list:
    until = time.time() + LOAD_SECONDS
    return [
        {
            "client": f"c{n}",
            "seed": secrets.randbits(32),
            "plan": plan,
            "base_url": served.server.url,
            "tool_token": served.tool_tokens[first_token + n],
            "person_token": served.person_token,
            "until": until,
            "copied": None if copied is None else str(copied),
        }
        for n in range(count)
    ]


def test_soak_with_client_threads(served: Served) -> None:
    plan = build_plan(served, "threads", CLIENT_THREADS)
    specs = client_specs(served, plan, CLIENT_THREADS, first_token=0)
    with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool:
        records = [record for done in pool.map(run_client, specs) for record in done]

    summary = check_soak(served.database, plan, records)
    print(f"\nsoak threads on {_kind(served.database)}: {summary}")


def test_soak_with_client_processes_and_a_backup_under_load(served: Served, tmp_path: Path) -> None:
    copied = tmp_path / "copied"  # the clients write until the copy is taken
    context = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=context) as pool,
        concurrent.futures.ThreadPoolExecutor(1) as aside,
    ):
        # The processes start (importing this module) and cw_backup prints its commands
        # while the plan is made; all is ready before the load's clock runs.
        warming = [pool.submit(_warm_up, n) for n in range(CLIENT_PROCESSES)]
        printing = aside.submit(backup_commands, served.database, tmp_path)
        plan = build_plan(served, "processes", CLIENT_PROCESSES)
        printed = printing.result()
        for warm in warming:
            warm.result()
        specs = client_specs(served, plan, CLIENT_PROCESSES, CLIENT_THREADS, copied)
        running = [pool.submit(run_client, spec) for spec in specs]
        time.sleep(BACKUP_AFTER_SECONDS)
        with take_backup(served.database, tmp_path, printed, copied) as backup:
            records = [record for future in running for record in future.result()]
            summary = check_soak(served.database, plan, records)
            print(f"\nsoak processes on {_kind(served.database)}: {summary}")
            check_backup(backup, plan, records, served.person_token)
            print(f"backup on {_kind(served.database)}: {backup.report}")


def _warm_up(_: int) -> None:
    time.sleep(1)  # long enough for each call to land in a process of its own


def _kind(database: ScratchDatabase) -> str:
    return "sqlite" if database.is_sqlite else "postgresql"


# --- the checks on the soak ------------------------------------------------------------


def check_soak(database: ScratchDatabase, plan: dict[str, Any], records: list[dict]) -> str:
    """Assert the invariants on the live database; the run's one-line summary."""
    problems = [record for record in records if not _acceptable(record)]
    assert not problems, f"{len(problems)} bad answers, e.g. {problems[:5]}"
    state = Snapshot.load(database, plan)
    state.assert_consistent(plan)
    lost = state.missing(records, answered_before=float("inf"))
    phantom = state.unexpected(records, sent_after=float("inf"))
    assert not lost, f"{len(lost)} writes answered success are not stored: {lost[:5]}"
    assert not phantom, f"{len(phantom)} refused writes are stored: {phantom[:5]}"
    check_each_write_once(records)
    check_events(database, plan, records)
    check_round_robin(database, plan, records)
    check_parked_accounts(records)

    successes = sum(200 <= record["status"] < 300 for record in records)
    refusals = Counter(
        record["answer"]["code"] for record in records if not 200 <= record["status"] < 300
    )
    by_op = Counter(record["op"] for record in records)
    waits = sorted(record["answered"] - record["sent"] for record in records)
    return (
        f"ops={len(records)} successes={successes} "
        f"refusals={dict(sorted(refusals.items()))} lost={len(lost)} "
        f"latency p50={waits[len(waits) // 2]:.3f}s max={waits[-1]:.3f}s "
        f"mix={dict(sorted(by_op.items()))}"
    )


def _acceptable(record: dict[str, Any]) -> bool:
    """A success, or a 409 (a lost race, no account free) with the error shape; never a
    5xx, a drop or a lock error."""
    status, answer = record["status"], record.get("answer")
    if 200 <= status < 300:
        return True
    if SERVER_TROUBLE.search(json.dumps(answer)):
        return False
    # A park whose time passed while its request waited (a slow answer under load).
    late_park = (
        record["op"] == "park"
        and status == 400
        and isinstance(answer, dict)
        and answer.get("code") == "exhausted_until_past"
    )
    return (
        (status == 409 or late_park)
        and isinstance(answer, dict)
        and {"code", "message", "details"} <= answer.keys()
        and isinstance(answer["code"], str)
        and isinstance(answer["details"], dict)
    )


def _succeeded(record: dict[str, Any]) -> bool:
    return 200 <= record["status"] < 300


@dataclass
class Snapshot:
    """What one database holds of a mode's plan."""

    log_batches: dict[str, Counter]  # marker -> agent id -> chunks
    comments: Counter  # body -> rows
    tasks: dict[str, tuple[str, str | None]]  # id -> (status, summary)
    proposals: dict[str, str]  # id -> status
    change_sets: dict[str, list[tuple[str, str, str]]]  # proposal -> (type, id, action)
    created: set[tuple[str, str]]  # (table, id) of pages and tasks present
    titles: Counter  # page titles and task names of the initiative
    root_pages: int

    @classmethod
    def load(cls, database: ScratchDatabase, plan: dict[str, Any]) -> Snapshot:
        initiative, agents = plan["initiative_id"], plan["agent_ids"]
        marks = ", ".join(["%s"] * len(agents))
        log_batches: dict[str, Counter] = defaultdict(Counter)
        for agent, content in database.query(
            f"SELECT agent_id, content FROM agent_log_chunks WHERE agent_id IN ({marks})",  # noqa: S608
            tuple(agents),
        ):
            log_batches[json.loads(content)["soak"]][agent] += 1
        phases = tuple(plan["phase_ids"])
        comments = Counter(
            body
            for (body,) in database.query(
                "SELECT body FROM review_comments WHERE phase_id IN (%s, %s)", phases
            )
        )
        tasks = {
            task: (status, summary)
            for task, status, summary in database.query(
                "SELECT id, status, summary FROM tasks WHERE initiative_id = %s", (initiative,)
            )
        }
        proposals = dict(
            database.query(
                "SELECT id, status FROM proposals WHERE initiative_id = %s", (initiative,)
            )
        )
        change_sets: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for proposal, kind, entity, action in database.query(
            "SELECT s.proposal_id, e.entity_type, e.entity_id, e.action FROM change_sets s "
            "JOIN change_set_entries e ON e.change_set_id = s.id WHERE s.initiative_id = %s",
            (initiative,),
        ):
            change_sets[proposal].append((kind, entity, action))
        pages = database.query(
            "SELECT id, title, parent_page_id FROM pages WHERE initiative_id = %s", (initiative,)
        )
        root_pages = sum(parent is None for _, _, parent in pages)
        created = {("pages", page) for page, _, _ in pages} | {("tasks", task) for task in tasks}
        titles = Counter(title for _, title, _ in pages)
        titles.update(
            name
            for (name,) in database.query(
                "SELECT name FROM tasks WHERE initiative_id = %s", (initiative,)
            )
        )
        return cls(
            log_batches, comments, tasks, proposals, change_sets, created, titles, root_pages
        )

    def assert_consistent(self, plan: dict[str, Any]) -> None:
        """Whatever was or was not written: each batch whole, no proposal half-applied."""
        torn = {
            marker: dict(agents)
            for marker, agents in self.log_batches.items()
            if len(agents) != 1 or sum(agents.values()) != LOG_BATCH
        }
        assert not torn, f"log batches partly stored: {list(torn.items())[:5]}"
        for proposal in plan["proposal_ids"]:
            status, entries = self.proposals[proposal], self.change_sets.get(proposal, [])
            title = f"Soak {plan['mode']} proposal {plan['proposal_ids'].index(proposal)}"
            creates = [(kind, entity) for kind, entity, action in entries if action == "create"]
            if status == "accepted":  # (the first page made also makes the root page)
                assert creates, (proposal, entries)
                assert set(creates) <= self.created, (proposal, creates)
                assert self.titles[title] == 1, (proposal, title)
            else:
                assert status == "pending", (proposal, status)
                assert not entries, (proposal, entries)
                assert self.titles[title] == 0, (proposal, title)
        assert self.root_pages <= 1, f"{self.root_pages} root pages"
        for task in plan["task_ids"]:
            status, _summary = self.tasks[task]
            assert status in {"pending", "in_progress", "completed"}, (task, status)

    def holds(self, record: dict[str, Any]) -> bool | None:
        """Whether the write of ``record`` is in this database (None: not a checked write)."""
        op = record["op"]
        if op == "log":
            return self.log_batches.get(record["marker"], Counter())[record["agent_id"]] > 0
        if op == "comment":
            return self.comments[record["marker"]] > 0
        if op == "start":
            return self.tasks[record["task_id"]][0] in {"in_progress", "completed"}
        if op == "complete":
            return self.tasks[record["task_id"]] == ("completed", record["marker"])
        if op == "accept":
            return self.proposals[record["proposal_id"]] == "accepted"
        return None

    def missing(self, records: list[dict], *, answered_before: float) -> list[dict]:
        """Successful writes answered before the moment, but not held."""
        return [
            record
            for record in records
            if _succeeded(record)
            and record["answered"] < answered_before
            and self.holds(record) is False
        ]

    def unexpected(self, records: list[dict], *, sent_after: float) -> list[dict]:
        """Writes held that should not be: a refused log batch, comment or completion
        (each names its own marker), or a success sent after the moment."""
        found = []
        for record in records:
            if record["op"] not in {"log", "comment", "complete"}:
                continue
            if (not _succeeded(record) or record["sent"] > sent_after) and self.holds(record):
                found.append(record)
        return found


def check_each_write_once(records: list[dict]) -> None:
    """No task started or completed twice, no proposal accepted twice."""
    for op, key in (("start", "task_id"), ("complete", "task_id"), ("accept", "proposal_id")):
        wins = Counter(
            record[key] for record in records if record["op"] == op and _succeeded(record)
        )
        twice = {item: count for item, count in wins.items() if count > 1}
        assert not twice, f"{op} succeeded more than once: {twice}"
    completed = {r["task_id"] for r in records if r["op"] == "complete" and _succeeded(r)}
    started = {r["task_id"] for r in records if r["op"] == "start" and _succeeded(r)}
    assert completed <= started, f"completed without a start: {completed - started}"


def check_events(database: ScratchDatabase, plan: dict[str, Any], records: list[dict]) -> None:
    """Each successful transition recorded its event once, and no refused one did."""
    kinds = {"start": "task.started", "complete": "task.completed", "accept": "proposal.accepted"}
    ids = tuple(plan["task_ids"] + plan["proposal_ids"])
    marks = ", ".join(["%s"] * len(ids))
    events = Counter(
        database.query(
            f"SELECT kind, subject_id FROM events WHERE subject_id IN ({marks})",  # noqa: S608
            ids,
        )
    )
    for op, kind in kinds.items():
        key = "proposal_id" if op == "accept" else "task_id"
        expected = Counter(
            (kind, record[key]) for record in records if record["op"] == op and _succeeded(record)
        )
        recorded = Counter({event: n for event, n in events.items() if event[0] == kind})
        assert recorded == expected, f"{kind}: {recorded - expected} / {expected - recorded}"
    accounts = _accounts(database, plan)
    claimed = Counter(
        record["account_id"]
        for record in records
        if record["op"] in {"claim", "register_claim", "claim_parked"} and _succeeded(record)
    )
    marks = ", ".join(["%s"] * len(accounts))
    recorded_claims = Counter(
        subject
        for (subject,) in database.query(
            f"SELECT subject_id FROM events WHERE kind = 'account.claimed' "  # noqa: S608
            f"AND subject_id IN ({marks})",
            tuple(accounts),
        )
    )
    assert recorded_claims == claimed


def _accounts(database: ScratchDatabase, plan: dict[str, Any]) -> dict[str, str]:
    """Account id -> provider, for the plan's two providers."""
    providers = tuple(plan["providers"].values())
    return dict(
        database.query("SELECT id, provider FROM accounts WHERE provider IN (%s, %s)", providers)
    )


def check_round_robin(database: ScratchDatabase, plan: dict[str, Any], records: list) -> None:
    """Claims of the never-parked provider never hand out an account again while another
    one is free: between two claims of one account (by their ``last_used_at`` stamps,
    the order they were served in), every other account was claimed too, or a claim of
    it was in flight (its row locked, as a registration's claim holds it until the
    agent is committed) while the second claim ran."""
    claims = sorted(
        (record for record in records if record["op"] in {"claim", "register_claim"}),
        key=lambda record: record.get("stamp", 0),
    )
    assert all(_succeeded(record) for record in claims), "a round-robin claim was refused"
    round_robin = plan["providers"]["round_robin"]
    accounts = {a for a, provider in _accounts(database, plan).items() if provider == round_robin}
    assert len(accounts) == ROUND_ROBIN_ACCOUNTS
    previous: dict[str, dict[str, Any]] = {}
    for claim in claims:
        before = previous.get(claim["account_id"])
        previous[claim["account_id"]] = claim
        if before is None:
            continue
        for other in accounts - {claim["account_id"]}:
            taken = any(
                q["account_id"] == other
                and (
                    before["stamp"] < q["stamp"] < claim["stamp"]
                    or (q["sent"] < claim["answered"] and claim["sent"] < q["answered"])
                )
                for q in claims
            )
            assert taken, f"{claim} was handed the account of {before} again while {other} was free"
    stamps = [record["stamp"] for record in claims]
    assert len(set(stamps)) == len(stamps), "two claims share one stamp"
    last = {record["account_id"]: record["stamp"] for record in claims}
    stored = dict(
        database.query(
            "SELECT id, last_used_at FROM accounts WHERE provider = %s",
            (plan["providers"]["round_robin"],),
        )
    )
    for account, stamp in last.items():
        value = stored[account]
        if isinstance(value, str):  # SQLite's text
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        assert abs(value.timestamp() - stamp) < 1e-3, (account, value, stamp)


def check_parked_accounts(records: list[dict]) -> None:
    """No claim handed out an account while it was parked: a claim (stamp t) of an
    account that a park answered before the claim was sent had parked past t — unless
    a park of it that may have landed before the claim set an earlier time."""
    parks = defaultdict(list)
    for record in records:
        if record["op"] == "park" and _succeeded(record):
            parks[record["account_id"]].append(record)
    for claim in records:
        if claim["op"] != "claim_parked" or not _succeeded(claim):
            continue
        stamp, account = claim["stamp"], claim["account_id"]
        parked = [p for p in parks[account] if p["answered"] < claim["sent"] and p["until"] > stamp]
        shortened = [
            p for p in parks[account] if p["sent"] < claim["answered"] and p["until"] <= stamp
        ]
        assert not parked or shortened, f"claimed while parked: {claim} {parked}"


# --- the backup ------------------------------------------------------------------------


@dataclass
class Backup:
    copy: ScratchDatabase
    began: float
    ended: float
    report: str = ""


def backup_commands(database: ScratchDatabase, directory: Path) -> dict[str, Any] | None:
    """On PostgreSQL, the pg_dump and pg_restore commands ``cw_backup`` prints (asked
    before the load, so the dump itself starts when the test says)."""
    if database.is_sqlite:
        return None
    printed = json.loads(database.manage("cw_backup", str(directory / "backup.dump"), "--json"))
    assert printed["engine"] == "postgresql", printed
    return printed


@contextlib.contextmanager
def take_backup(
    database: ScratchDatabase, directory: Path, printed: dict[str, Any] | None, copied: Path
) -> Iterator[Backup]:
    """``cw_backup`` while the load runs (``copied`` is made once the copy is taken); the
    copy as a database of its own: a SQLite file, or a new PostgreSQL database restored
    from the dump with ``pg_restore`` (dropped afterwards)."""
    began = time.time()
    try:
        if printed is None:
            target = directory / "backup.sqlite3"
            result = json.loads(database.manage("cw_backup", str(target), "--json"))
            assert result["integrity"] == "ok", result
            report = f"cw_backup copied {result['bytes']} bytes, integrity ok"
        else:
            _run(printed["command"])  # pg_dump, as printed
            report = f"pg_dump wrote {(directory / 'backup.dump').stat().st_size} bytes"
    finally:
        ended = time.time()
        copied.touch()
    if printed is None:
        url = f"sqlite:///{target}"
        yield Backup(
            ScratchDatabase(url, directory, database.env | {"DATABASE_URL": url}),
            began,
            ended,
            report,
        )
        return
    server_url, name = database.url.rsplit("/", 1)
    restored = f"{name}_restored"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{restored}"')
    try:
        restore = list(printed["restore"])
        restore[restore.index("--dbname") + 1] = restored
        _run(restore)  # pg_restore, as printed, into the new database
        url = f"{server_url}/{restored}"
        copy = ScratchDatabase(url, directory, database.env | {"DATABASE_URL": url})
        yield Backup(copy, began, ended, f"{report}, pg_restore ok")
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')


def _run(command: list[str]) -> None:
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert run.returncode == 0, f"{command}:\n{run.stderr}{run.stdout}"


def check_backup(backup: Backup, plan: dict[str, Any], records: list[dict], token: str) -> None:
    """The copy is intact, consistent, as of a moment within the backup, and usable
    (``token``, a token of the original, is in the copy too)."""
    copy = backup.copy
    if copy.is_sqlite:
        assert copy.query("PRAGMA integrity_check") == [("ok",)]
        assert copy.query("PRAGMA foreign_key_check") == []
    else:
        assert _orphans(copy) == []
        assert copy.query("SELECT conname FROM pg_constraint WHERE NOT convalidated") == []
    state = Snapshot.load(copy, plan)
    state.assert_consistent(plan)
    missing = state.missing(records, answered_before=backup.began)
    late = state.unexpected(records, sent_after=backup.ended)
    assert not missing, f"{len(missing)} writes done before the backup are not in it: {missing[:5]}"
    assert not late, f"{len(late)} writes sent after the backup are in it: {late[:5]}"
    held = sum(bool(state.holds(record)) for record in records if _succeeded(record))

    # A cw database: its migrations are all applied, and it serves the API.
    with concurrent.futures.ThreadPoolExecutor(1) as aside, Server(copy, workers=1) as server:
        checking = aside.submit(copy.manage, "migrate", "--check")
        status, answer, _ = server.call(
            "GET", f"/api/proposals?initiative_id={plan['initiative_id']}&limit=1", token=""
        )
        assert status == 401, answer  # it answers, and still wants a token
        status, answer, _ = server.call(
            "GET", f"/api/tasks?initiative_id={plan['initiative_id']}&limit=1", token=token
        )
        assert status == 200, answer
        assert answer["total"] == len(state.tasks), answer
        checking.result()
    during = sum(
        backup.began < record["answered"] and record["sent"] < backup.ended for record in records
    )
    backup.report += (
        f" ({backup.ended - backup.began:.1f} s, {during} requests answered meanwhile)"
        f"; copy: {held} of the soak's successful writes, batches whole, "
        f"none half-applied, migrate --check ok, served {answer['total']} tasks"
    )


def _orphans(copy: ScratchDatabase) -> list[tuple]:
    """Rows whose foreign key names a missing row, over every foreign key of the copy."""
    keys = copy.query(
        "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, f.attname "
        "FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND cardinality(c.conkey) = 1"
    )
    assert keys, "no foreign keys in the copy"
    found = []
    for table, column, parent, parent_column in keys:
        count = copy.query(
            f'SELECT count(*) FROM {table} c WHERE c."{column}" IS NOT NULL AND NOT EXISTS '  # noqa: S608
            f'(SELECT 1 FROM {parent} p WHERE p."{parent_column}" = c."{column}")'
        )[0][0]
        if count:
            found.append((table, column, count))
    return found
