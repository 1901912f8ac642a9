"""Crash safety: gunicorn SIGKILLed at random moments while clients write, again and again.

One migrated scratch database serves every trial. Each trial starts the server, lets two
to four client threads append log batches (each chunk carrying its batch's marker),
create proposals and accept them (a person's token), and kills the whole process group
after a random delay, recording per request whether the client got its success answer.
After each kill the database, as the crash left it, must be whole:

- SQLite's ``integrity_check`` is ok and ``foreign_key_check`` empty; on PostgreSQL no
  row of any foreign key's table points at a missing row;
- every log batch (of 20 to 50 chunks, now and then of more than one INSERT takes) is
  all there or not at all, and every acknowledged one is there;
- every proposal is pending with no trace of its effect, or accepted with all of it
  (the task or phase with the proposed fields, its dependency, one change set whose
  entries name exactly those rows); every acknowledged accept is accepted, every
  acknowledged proposal exists;
- the event feed holds exactly the committed changes: one ``proposal.created`` per
  proposal, one ``proposal.accepted`` per accepted proposal naming its change set, none
  for anything else (log appends record none), every event's subject in the database,
  ids without gaps;

and the server restarted on it answers reads and writes normally.

The schedule is drawn from a seeded ``random.Random``: ``CW_CRASH_SEED=<seed>`` replays
one (the seed is printed; thread timing still varies from run to run).
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.serverprocess import ScratchDatabase, Server, scratch_database

pytestmark = [pytest.mark.concurrency, pytest.mark.processes]

TRIALS = 10
PHASES = 3
TASKS_PER_PHASE = 2
PRESEEDED_PROPOSALS = 100
KILL_AFTER_SECONDS = (0.2, 1.5)
BATCH_CHUNKS = (20, 50)
#: Now and then a batch too big for one INSERT (199 rows a statement on SQLite, 500 on
#: PostgreSQL), so a kill can fall between the statements of one append.
BIG_BATCH_CHUNKS = (501, 1000)
BIG_BATCH_SHARE = 0.15
#: A batch marker is "t<trial>w<thread>b<number>", always this wide, and every chunk's
#: content starts with '{"b":"<marker>"', so SQL can count the chunks of each batch.
MARKER_WIDTH = 11
MARKER_OFFSET = len('{"b":"') + 1
PROPOSAL_PREFIX = "crash proposal "
#: How long PostgreSQL may take to notice that the killed workers' sessions are gone.
SESSIONS_GONE_SECONDS = 60

#: What a request that never got an answer raises: the server died under it.
NO_ANSWER = (OSError, http.client.HTTPException)

#: The table of each event subject the clients' writes (and the set-up's tokens) can name.
SUBJECT_TABLES = {
    "api_token": "api_tokens",
    "initiative": "initiatives",
    "phase": "phases",
    "task": "tasks",
    "agent": "agents",
    "proposal": "proposals",
}


# --- what the clients sent and were told ---------------------------------------------------


@dataclass
class Ledger:
    """Every request the clients made and whether its success answer came back."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    batch_sizes: dict[str, int] = field(default_factory=dict)
    batches_acked: set[str] = field(default_factory=set)
    proposals_acked: set[str] = field(default_factory=set)
    accepts_sent: int = 0
    accepts_acked: set[str] = field(default_factory=set)
    unanswered: int = 0
    unexpected: list[str] = field(default_factory=list)

    def note(self, collection: set[str], value: str) -> None:
        with self.lock:
            collection.add(value)

    def no_answer(self) -> bool:
        """Count a request the kill cut off (or that found the server gone); False."""
        with self.lock:
            self.unanswered += 1
        return False

    def refuse(self, what: str, status: int, body: Any) -> None:
        with self.lock:
            self.unexpected.append(f"{what}: {status} {body}")


@dataclass
class Plan:
    """The records set up before the first kill, which proposals build on."""

    initiative_id: str
    phase_ids: list[str]
    task_ids: dict[str, list[str]]  # phase id -> its tasks
    writer_agent_ids: list[str]
    proposer_agent_id: str
    setup_events: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Trial:
    """The clients of one trial, sharing a server, tokens, a plan and a ledger."""

    number: int
    server: Server
    tool: str
    person: str
    plan: Plan
    ledger: Ledger
    pending: collections.deque[str]
    stop: threading.Event = field(default_factory=threading.Event)


def append_batch(trial: Trial, agent_id: str, marker: str, size: int) -> bool:
    """POST one log batch; False when no answer came (the server was killed)."""
    assert len(marker) == MARKER_WIDTH, marker
    chunks = [{"content": f'{{"b":"{marker}","i":{i}}}'} for i in range(size)]
    with trial.ledger.lock:
        trial.ledger.batch_sizes[marker] = size
    try:
        status, body, _ = trial.server.call(
            "POST", f"/api/agents/{agent_id}/logs", token=trial.tool, body=chunks
        )
    except NO_ANSWER:
        return trial.ledger.no_answer()
    if status == 201 and body["count"] == size:
        trial.ledger.note(trial.ledger.batches_acked, marker)
    else:
        trial.ledger.refuse(f"log batch {marker}", status, body)
    return True


def propose(trial: Trial, rng: random.Random, title: str) -> str | None:
    """Create a task (mostly) or phase proposal whose accept writes several rows; its
    id, or None when no answer came."""
    plan = trial.plan
    phase_id = rng.choice(plan.phase_ids)
    body: dict[str, Any] = {
        "agent_id": plan.proposer_agent_id,
        "initiative_id": plan.initiative_id,
        "title": title,
        "content": f"Work for {title}.",
    }
    if rng.random() < 0.7:
        body |= {
            "target_type": "task",
            "metadata": {
                "phase_id": phase_id,
                "category": rng.choice(["execute", "research", "verify"]),
                "type": "auto",
                "priority": rng.choice(["low", "medium", "high"]),
                "order": rng.randint(1, 999),
                "dependencies": [rng.choice(plan.task_ids[phase_id])],
            },
        }
    else:
        body |= {"target_type": "phase", "metadata": {"dependencies": [phase_id]}}
    try:
        status, answer, _ = trial.server.call("POST", "/api/proposals", token=trial.tool, body=body)
    except NO_ANSWER:
        trial.ledger.no_answer()
        return None
    if status != 201:
        trial.ledger.refuse(f"proposal {title}", status, answer)
        return None
    trial.ledger.note(trial.ledger.proposals_acked, answer["id"])
    return answer["id"]


def accept(trial: Trial, proposal_id: str) -> bool:
    """A person accepts the proposal; False when no answer came."""
    with trial.ledger.lock:
        trial.ledger.accepts_sent += 1
    try:
        status, body, _ = trial.server.call(
            "POST", f"/api/proposals/{proposal_id}/accept", token=trial.person
        )
    except NO_ANSWER:
        return trial.ledger.no_answer()
    if status == 200 and body["proposal_id"] == proposal_id:
        trial.ledger.note(trial.ledger.accepts_acked, proposal_id)
    else:
        trial.ledger.refuse(f"accept {proposal_id}", status, body)
    return True


def log_writer(trial: Trial, worker: int, rng: random.Random) -> None:
    agent_id = trial.plan.writer_agent_ids[worker % len(trial.plan.writer_agent_ids)]
    number = 0
    while not trial.stop.is_set():
        number += 1
        marker = f"t{trial.number:02d}w{worker}b{number:05d}"
        size = rng.randint(*(BIG_BATCH_CHUNKS if rng.random() < BIG_BATCH_SHARE else BATCH_CHUNKS))
        if not append_batch(trial, agent_id, marker, size):
            return


def acceptor(trial: Trial, worker: int, rng: random.Random) -> None:
    number = 0
    while not trial.stop.is_set():
        try:
            proposal_id: str | None = trial.pending.popleft()
        except IndexError:
            number += 1
            title = f"{PROPOSAL_PREFIX}t{trial.number:02d}w{worker}n{number:05d}"
            if (proposal_id := propose(trial, rng, title)) is None:
                return
        if not accept(trial, proposal_id):
            return


def proposer(trial: Trial, worker: int, rng: random.Random) -> None:
    number = 0
    while not trial.stop.is_set():
        number += 1
        title = f"{PROPOSAL_PREFIX}t{trial.number:02d}w{worker}n{number:05d}"
        if (proposal_id := propose(trial, rng, title)) is None:
            return
        trial.pending.append(proposal_id)


ROLES = {"logs": log_writer, "accept": acceptor, "propose": proposer}


def client(role: Any, trial: Trial, worker: int, rng: random.Random) -> threading.Thread:
    """A thread running ``role``; an exception in it is recorded, failing the test."""

    def run() -> None:
        try:
            role(trial, worker, rng)
        except Exception as error:  # reported through the ledger
            with trial.ledger.lock:
                trial.ledger.unexpected.append(f"{role.__name__} {worker} raised {error!r}")

    return threading.Thread(target=run, name=f"crash-{role.__name__}-{worker}")


# --- setting up ----------------------------------------------------------------------------


def created(server: Server, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = server.call("POST", path, token=token, body=body)
    assert status == 201, (path, status, answer)
    return answer


def set_up(
    database: ScratchDatabase, server: Server, tool: str, rng: random.Random, ledger: Ledger
) -> Plan:
    """An initiative with phases and tasks, agents, and pending proposals."""
    initiative = created(server, tool, "/api/initiatives", {"name": "Crash safety"})
    phase_ids, task_ids = [], {}
    for p in range(PHASES):
        phase = created(
            server, tool, f"/api/initiatives/{initiative['id']}/phases", {"name": f"Phase {p}"}
        )
        phase_ids.append(phase["id"])
        task_ids[phase["id"]] = [
            created(server, tool, f"/api/phases/{phase['id']}/tasks", {"name": f"Task {p}.{t}"})[
                "id"
            ]
            for t in range(TASKS_PER_PHASE)
        ]
    agents = [
        created(
            server,
            tool,
            "/api/agents",
            {"worktree_id": f"/work/agent-{a}", "initiative_id": initiative["id"]},
        )["agent"]["id"]
        for a in range(5)
    ]
    plan = Plan(initiative["id"], phase_ids, task_ids, agents[:4], agents[4])
    seeding = Trial(0, server, tool, "", plan, ledger, collections.deque())

    def seed_proposals(trial: Trial, worker: int, rng: random.Random) -> None:
        for n in range(PRESEEDED_PROPOSALS // 4):
            propose(trial, rng, f"{PROPOSAL_PREFIX}setupw{worker}n{n:05d}")

    threads = [
        client(seed_proposals, seeding, w, random.Random(rng.getrandbits(64))) for w in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not seeding.ledger.unexpected, seeding.ledger.unexpected
    assert len(seeding.ledger.proposals_acked) == PRESEEDED_PROPOSALS
    plan.setup_events = [
        (id, kind, subject_id)
        for id, kind, subject_id in database.query(
            "SELECT id, kind, subject_id FROM events WHERE kind <> 'proposal.created' ORDER BY id"
        )
    ]
    return plan


#: One process makes the person (accepting proposals is a person's gate) and both
#: tokens, as ``create_api_token`` does: each ``manage.py`` costs a Django start.
MAKE_TOKENS = """
from django.contrib.auth import get_user_model
from core.tokens import api_token_create
person = get_user_model().objects.create_user("crash-person")
print(api_token_create(name="crash-tool")[1])
print(api_token_create(name="crash-person", person=person)[1])
"""


def make_tokens(database: ScratchDatabase) -> tuple[str, str]:
    """A tool's token and a person's."""
    tool, person = [
        line
        for line in database.manage("shell", "-c", MAKE_TOKENS).splitlines()
        if line.startswith("cw_")
    ]
    return tool, person


# --- checking ------------------------------------------------------------------------------


class Reader:
    """One snapshot of the database through the test's own connection."""

    def __init__(self, database: ScratchDatabase) -> None:
        self.database = database
        self.connection = database.connect()
        self.connection.execute(
            "BEGIN" if database.is_sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        )

    def rows(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        if self.database.is_sqlite:
            sql = sql.replace("%s", "?")
        cursor = self.connection.cursor()
        cursor.execute(sql, parameters)
        return cursor.fetchall()

    def close(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def wait_until_sessions_gone(database: ScratchDatabase) -> None:
    """On PostgreSQL, wait until the killed workers' sessions have ended (rolled back
    what they had not committed), so the checks see the state that lasts."""
    if database.is_sqlite:
        return
    deadline = time.monotonic() + SESSIONS_GONE_SECONDS
    while True:
        (others,) = database.query(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )[0]
        if others == 0:
            return
        assert time.monotonic() < deadline, f"{others} sessions outlived the server"
        time.sleep(0.05)


def check_structure(reader: Reader) -> None:
    """No corruption and no row pointing at a missing row."""
    if reader.database.is_sqlite:
        integrity = reader.rows("PRAGMA integrity_check")
        assert integrity == [("ok",)], f"the database file is damaged: {integrity}"
        orphans = reader.rows("PRAGMA foreign_key_check")
        assert orphans == [], f"rows pointing at missing rows: {orphans}"
        return
    foreign_keys = reader.rows(
        """
        SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.o),
               array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                     ORDER BY k.o)
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
        """
    )
    expected = {
        (model._meta.db_table, f.column)
        for model in django_models()
        for f in model._meta.concrete_fields
        if f.is_relation and f.db_constraint
    }
    found = {(child.strip('"'), columns[0]) for _, child, _, columns, _ in foreign_keys}
    assert expected <= found, f"foreign keys missing from the schema: {expected - found}"
    for name, child, parent, columns, parent_columns in foreign_keys:
        given = " AND ".join(f'c."{column}" IS NOT NULL' for column in columns)
        matches = " AND ".join(
            f'p."{p}" = c."{c}"' for c, p in zip(columns, parent_columns, strict=True)
        )
        orphans = reader.rows(
            f"SELECT count(*) FROM {child} c WHERE {given} "  # noqa: S608 (catalog names)
            f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {matches})"
        )[0][0]
        assert orphans == 0, f"{orphans} rows of {child} break {name}"


def django_models() -> list[Any]:
    from django.apps import apps

    return list(apps.get_models())


def check_logs(reader: Reader, ledger: Ledger) -> tuple[int, int]:
    """Every batch whole or absent, every acknowledged one present; (present, absent)."""
    counts = dict(
        reader.rows(
            f"SELECT substr(content, {MARKER_OFFSET}, {MARKER_WIDTH}), count(*) "  # noqa: S608
            "FROM agent_log_chunks GROUP BY 1"
        )
    )
    for marker, count in counts.items():
        assert marker in ledger.batch_sizes, f"chunks of a batch never sent: {marker}"
        assert count == ledger.batch_sizes[marker], (
            f"batch {marker} half there: {count} of {ledger.batch_sizes[marker]} chunks"
        )
    lost = ledger.batches_acked - set(counts)
    assert not lost, f"acknowledged batches lost: {sorted(lost)}"
    return len(counts), len(ledger.batch_sizes) - len(counts)


def check_proposals(reader: Reader, ledger: Ledger, plan: Plan) -> dict[str, str]:
    """Each proposal pending without effect or accepted with all of it; returns the
    change set id of each accepted proposal."""
    proposals = {
        id: (target_type, title, content, as_json(metadata), status)
        for id, target_type, title, content, metadata, status in reader.rows(
            "SELECT id, target_type, title, content, metadata, status FROM proposals"
        )
    }
    tasks: dict[str, list[tuple]] = collections.defaultdict(list)
    for row in reader.rows(
        'SELECT name, id, initiative_id, phase_id, description, category, type, priority, "order" '
        "FROM tasks"
    ):
        tasks[row[0]].append(row[1:])
    phases: dict[str, list[tuple]] = collections.defaultdict(list)
    for row in reader.rows("SELECT name, id, initiative_id, content FROM phases"):
        phases[row[0]].append(row[1:])
    task_dependencies = {
        (task, on): id
        for id, task, on in reader.rows(
            "SELECT id, task_id, depends_on_task_id FROM task_dependencies"
        )
    }
    phase_dependencies = {
        (phase, on): id
        for id, phase, on in reader.rows(
            "SELECT id, phase_id, depends_on_phase_id FROM phase_dependencies"
        )
    }
    change_sets: dict[str, list[tuple]] = collections.defaultdict(list)
    for id, proposal_id, source, status, initiative_id in reader.rows(
        "SELECT id, proposal_id, source, status, initiative_id FROM change_sets"
    ):
        change_sets[proposal_id].append((id, source, status, initiative_id))
    entries: dict[str, set[tuple]] = collections.defaultdict(set)
    for change_set_id, entity_type, entity_id, action in reader.rows(
        "SELECT change_set_id, entity_type, entity_id, action FROM change_set_entries"
    ):
        entries[change_set_id].add((entity_type, entity_id, action))

    assert set(change_sets) <= set(proposals), "a change set of no proposal"
    accepted: dict[str, str] = {}
    for id, (target_type, title, content, metadata, status) in proposals.items():
        records = (tasks if target_type == "task" else phases).get(title, [])
        if status == "pending":
            assert not records, f"pending proposal {id} ({title}) has its {target_type}"
            assert not change_sets.get(id), f"pending proposal {id} has a change set"
            continue
        assert status == "accepted", f"proposal {id} is {status}"
        assert len(records) == 1, f"accepted proposal {id} made {len(records)} {target_type}s"
        [change_set] = change_sets.get(id) or [None]
        assert change_set is not None, f"accepted proposal {id} has no change set"
        change_set_id, source, change_set_status, initiative_id = change_set
        assert (source, change_set_status, initiative_id) == (
            "proposal",
            "applied",
            plan.initiative_id,
        )
        [depends_on] = metadata["dependencies"]
        if target_type == "task":
            record_id, *fields = records[0]
            assert fields == [
                plan.initiative_id,
                metadata["phase_id"],
                content,
                metadata["category"],
                metadata["type"],
                metadata["priority"],
                metadata["order"],
            ], f"task of proposal {id} is not as proposed: {fields}"
            dependency_id = task_dependencies.get((record_id, depends_on))
            tables = ("tasks", "task_dependencies")
        else:
            record_id, initiative_id, phase_content = records[0]
            assert initiative_id == plan.initiative_id
            assert f"Work for {title}." in phase_content, f"phase of {id} lacks its content"
            dependency_id = phase_dependencies.get((record_id, depends_on))
            tables = ("phases", "phase_dependencies")
        assert dependency_id is not None, f"accepted proposal {id} lacks its dependency"
        assert entries[change_set_id] == {
            (tables[0], record_id, "create"),
            (tables[1], dependency_id, "create"),
            ("proposals", id, "update"),
        }, f"change set of proposal {id} records {entries[change_set_id]}"
        accepted[id] = change_set_id

    made = {name for name in (*tasks, *phases) if name.startswith(PROPOSAL_PREFIX)}
    assert made == {proposals[id][1] for id in accepted}, "a record of no accepted proposal"
    lost = ledger.proposals_acked - set(proposals)
    assert not lost, f"acknowledged proposals lost: {sorted(lost)}"
    lost = ledger.accepts_acked - set(accepted)
    assert not lost, f"acknowledged accepts lost: {sorted(lost)}"
    return accepted


def check_events(reader: Reader, plan: Plan, accepted: dict[str, str]) -> None:
    """The feed holds one event per committed change and nothing else."""
    events = [
        (id, kind, subject_type, subject_id, as_json(data))
        for id, kind, subject_type, subject_id, data in reader.rows(
            "SELECT id, kind, subject_type, subject_id, data FROM events ORDER BY id"
        )
    ]
    assert [event[0] for event in events] == list(range(1, len(events) + 1)), "event ids skip"
    proposal_ids = {id for (id,) in reader.rows("SELECT id FROM proposals")}
    others = [
        (id, kind, subject_id)
        for id, kind, _, subject_id, data in events
        if kind != "proposal.created" and "change_set_id" not in data
    ]
    assert others == plan.setup_events, "events of changes the clients did not make"
    # An accept records the record it created and its edge, then proposal.accepted, each
    # with the change set's id, in its transaction.
    target_types = dict(reader.rows("SELECT id, target_type FROM proposals"))
    by_change_set: dict[str, list[tuple[str, str]]] = {}
    for _, kind, _, subject_id, data in events:
        if "change_set_id" in data:
            by_change_set.setdefault(data["change_set_id"], []).append((kind, subject_id))
    assert set(by_change_set) == set(accepted.values()), "events of a change set not applied"
    for proposal_id, change_set_id in accepted.items():
        (created_kind, record_id), (edge_kind, node_id), last = by_change_set[change_set_id]
        assert (created_kind, edge_kind, last) == (
            f"{target_types[proposal_id]}.created",
            "dependency.added",
            ("proposal.accepted", proposal_id),
        ), f"events of the accept of {proposal_id}: {by_change_set[change_set_id]}"
        assert node_id == record_id, f"the edge of {proposal_id} is not its record's"
    created = Counter(
        subject_id for _, kind, _, subject_id, _ in events if kind == "proposal.created"
    )
    assert set(created) == proposal_ids, "proposal.created events and proposals differ"
    assert set(created.values()) == {1}, "a proposal.created event twice"
    accepts = [
        (subject_id, data["change_set_id"])
        for _, kind, _, subject_id, data in events
        if kind == "proposal.accepted"
    ]
    assert len(accepts) == len(dict(accepts)), "a proposal.accepted event twice"
    assert dict(accepts) == accepted, "proposal.accepted events and accepted proposals differ"
    for subject_type, table in SUBJECT_TABLES.items():
        subjects = {subject_id for _, _, type_, subject_id, _ in events if type_ == subject_type}
        existing = {id for (id,) in reader.rows(f"SELECT id FROM {table}")}  # noqa: S608
        assert subjects <= existing, f"events about missing {table}: {subjects - existing}"
    assert {event[2] for event in events} <= set(SUBJECT_TABLES)


def check_database(database: ScratchDatabase, ledger: Ledger, plan: Plan) -> dict[str, Any]:
    reader = Reader(database)
    try:
        check_structure(reader)
        present, absent = check_logs(reader, ledger)
        accepted = check_proposals(reader, ledger, plan)
        check_events(reader, plan, accepted)
        pending = [id for (id,) in reader.rows("SELECT id FROM proposals WHERE status = 'pending'")]
    finally:
        reader.close()
    return {"present": present, "absent": absent, "accepted": len(accepted), "pending": pending}


def check_serving(trial: Trial) -> None:
    """The restarted server answers a read of each kind and a write."""
    server, tool = trial.server, trial.tool
    status, body, _ = server.call("GET", "/api/whoami", token=tool)
    assert status == 200, body
    status, body, _ = server.call("GET", "/api/events?limit=1", token=tool)
    assert status == 200 and body["items"], body
    status, body, _ = server.call("GET", "/api/proposals?status=pending&limit=1", token=tool)
    assert status == 200, body
    agent_id = trial.plan.writer_agent_ids[0]
    assert append_batch(trial, agent_id, f"t{trial.number:02d}prb00000", BATCH_CHUNKS[0])
    assert f"t{trial.number:02d}prb00000" in trial.ledger.batches_acked, trial.ledger.unexpected


# --- the test ------------------------------------------------------------------------------


def test_the_database_survives_kills_mid_write(tmp_path: Path) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("CW_CRASH_SEED") or secrets.randbits(32))
    print(f"\ncrash safety: CW_CRASH_SEED={seed}")
    rng = random.Random(seed)
    ledger = Ledger()
    kills = 0
    # --preload: the master imports cw once and forks the workers, instead of each worker
    # importing it (a restart costs a third of the CPU on this small machine). The master
    # opens no database connection, so each worker still has its own, as under
    # `make serve`. The write rate limit stays on (one more write a request) but never
    # refuses.
    with scratch_database(
        tmp_path, CW_API_WRITE_RATE_LIMIT="1000000", GUNICORN_CMD_ARGS="--preload"
    ) as database:
        database.manage("migrate", "--no-input")
        tool, person = make_tokens(database)
        server = Server(database, workers=3)
        server.start()
        try:
            plan = set_up(database, server, tool, rng, ledger)
            figures = check_database(database, ledger, plan)
            for number in range(1, TRIALS + 1):
                if server.process is None:
                    server.start()
                pending = list(figures["pending"])
                rng.shuffle(pending)
                trial = Trial(
                    number, server, tool, person, plan, ledger, collections.deque(pending)
                )
                check_serving(trial)
                roles = ["logs", "accept", *rng.choices(list(ROLES), k=rng.randint(0, 2))]
                threads = [
                    client(ROLES[role], trial, worker, random.Random(rng.getrandbits(64)))
                    for worker, role in enumerate(roles)
                ]
                for thread in threads:
                    thread.start()
                time.sleep(rng.uniform(*KILL_AFTER_SECONDS))
                server.kill()
                kills += 1
                trial.stop.set()
                for thread in threads:
                    thread.join()
                assert not ledger.unexpected, ledger.unexpected
                wait_until_sessions_gone(database)
                figures = check_database(database, ledger, plan)
            server.start()
            check_serving(
                Trial(TRIALS + 1, server, tool, person, plan, ledger, collections.deque())
            )
        finally:
            server.stop()
        wait_until_sessions_gone(database)
        figures = check_database(database, ledger, plan)
    assert not ledger.unexpected, ledger.unexpected
    started = time.monotonic() - started
    print(
        f"crash safety: trials={TRIALS} kills={kills} cut-off requests={ledger.unanswered} "
        f"batches sent={len(ledger.batch_sizes)} acknowledged={len(ledger.batches_acked)} "
        f"present={figures['present']} absent={figures['absent']} "
        f"accepts sent={ledger.accepts_sent} acknowledged={len(ledger.accepts_acked)} "
        f"accepted={figures['accepted']} pending={len(figures['pending'])} corrupted=0 "
        f"({started:.0f} s)"
    )
