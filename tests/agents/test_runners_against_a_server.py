"""A fleet of runner processes against gunicorn: issue 21's "How it will be checked".

Three runner processes (a stdlib script written to ``tmp_path``) work a plan of dependent
tasks over HTTP against a scratch database of the suite's kind served by gunicorn:
``take-next`` → a few heartbeats with usage → ``finish``, under tight limits (2 live runs
overall, 1 on the preferred account) and a token budget on that account. Tasks whose
name holds "flaky" always fail, so they are blocked after ``max_attempts`` (2, no
back-off). One runner hangs mid-run on the "sleepy" task and is SIGKILLed; its run is
swept ``lost`` once its heartbeat timeout (10 s) passes (``cw_reconcile`` or a waiting
take-next, whichever comes first) and the task is retried. A monitor samples
``GET /api/runs?outcome=running`` the whole time.

At the end: every task completed or blocked (the blocked ones list their failures on
their ``task.blocked`` event), no limit ever exceeded (by the monitor's samples and by
the runs' own start and end times), the budget passed by at most one heartbeat's usage
for the one run it stopped, the killed run lost and its task retried, and the event feed,
read with its cursor, tells every run's story: ``run.started``, then exactly one end.

``pytest -s`` prints one summary line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.serverprocess import (
    ScratchDatabase,
    Server,
    every,
    make_tokens,
    ok,
    scratch_database,
    the_feed,
)

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.processes,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
    ),
]

MAX_ATTEMPTS = 2
HEARTBEAT_TIMEOUT = 10
OVERALL_LIMIT = 2
PREFERRED_ACCOUNT_LIMIT = 1
BEATS_PER_RUN = 3
BEAT_SECONDS = 0.15
#: Tokens one heartbeat reports (input + output); the budget is in tokens.
BEAT_INPUT, BEAT_OUTPUT = 60, 40
BEAT_TOKENS = BEAT_INPUT + BEAT_OUTPUT
#: The preferred account's budget: spent during its second run (5 beats of 100).
BUDGET_TOKENS = 450
#: The most a runner lives (a safety net: the fleet takes about 20 s).
RUNNER_LIFETIME = 120
FLEET_SECONDS = 150
#: The events that end a run: each run's story has exactly one, after its run.started.
RUN_ENDS = ("run.finished", "run.lost", "run.budget_stopped", "run.cancelled")

#: name: the names of the tasks it depends on. "flaky" tasks always fail (so nothing
#: depends on them); "sleepy" hangs the victim runner, which is killed (a leaf too: its
#: lost run and a budget stop could spend its attempts).
PLAN: dict[str, list[str]] = {
    "sleepy migration": [],
    "schema": [],
    "cleanup": [],
    "flaky lint": [],
    "models": ["schema"],
    "bench": ["schema"],
    "api": ["models"],
    "tests": ["models"],
    "docs": ["api"],
    "ui": ["api"],
    "flaky e2e": ["ui"],
    "release": ["docs", "ui", "tests"],
}

RUNNER_SCRIPT = r'''
"""A runner: take-next, a few heartbeats with usage, finish; until nothing is left."""
import json, sys, time, urllib.error, urllib.request

spec = json.loads(sys.argv[1])
journal = open(spec["journal"], "a", buffering=1)


def note(**entry):
    journal.write(json.dumps({"at": time.time(), **entry}) + "\n")


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(spec["base_url"] + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + spec["token"])
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return status, (json.loads(payload) if payload else None)


def work(taken):
    run, name = taken["run"], taken["task"]["name"]
    path = "/api/runs/" + run["id"]
    for beat in range(spec["beats"]):
        time.sleep(spec["beat_seconds"])
        usage = [{"model": "m", "input_tokens": spec["beat_input"],
                  "output_tokens": spec["beat_output"]}]
        status, answer = call("POST", path + "/heartbeat",
                              {"runner_name": spec["name"], "usage": usage})
        note(op="heartbeat", run_id=run["id"], status=status, answer=answer)
        if status != 200 or answer["decision"] != "continue":
            return  # stopped (budget spent) or taken away: kill the agent, do not finish
        if spec["hang_on"] and spec["hang_on"] in name:
            open(spec["marker"], "w").write(run["id"])
            time.sleep(3600)  # hung mid-run: the test kills this process
    if "flaky" in name:
        body = {"runner_name": spec["name"], "outcome": "failed", "exit_code": 1,
                "error": "flaky: " + name + " failed on attempt " + str(run["attempt"])}
    else:
        body = {"runner_name": spec["name"], "outcome": "succeeded", "exit_code": 0,
                "summary": name + " done by " + spec["name"]}
    status, answer = call("POST", path + "/finish", body)
    note(op="finish", run_id=run["id"], status=status, outcome=body["outcome"])


idle, deadline = 0, time.time() + spec["lifetime"]
while idle < 2 and time.time() < deadline:
    status, taken = call("POST", "/api/runs/take-next", {
        "runner_name": spec["name"], "runner_host": "fleet-host",
        "providers": spec["providers"], "heartbeat_timeout_seconds": spec["timeout"],
        "wait": 1,
    })
    if status == 204:
        _, running = call("GET", "/api/runs?outcome=running&limit=1")
        idle = idle + 1 if running["total"] == 0 else 0
        continue
    note(op="take", status=status, run_id=(taken or {}).get("run", {}).get("id"),
         task=(taken or {}).get("task", {}).get("name"), answer=None if status == 200 else taken)
    if status != 200:
        time.sleep(0.2)
        continue
    idle = 0
    work(taken)
note(op="exit", idle=idle)
'''


@dataclass
class Fleet:
    """What the test set up: ids by name, tokens, and where the runners write."""

    initiative_id: str
    task_ids: dict[str, str]
    preferred_account: str
    other_account: str
    budget_id: str
    lead: str
    runner_tokens: dict[str, str]
    samples: list[list[dict[str, Any]]] = field(default_factory=list)
    monitor_errors: list[str] = field(default_factory=list)


def build_fleet(database: ScratchDatabase, server: Server, runners: list[str]) -> Fleet:
    """The plan, accounts, limits and budget, through the API (the retry policy, which
    only the shell sets, through manage.py)."""
    tokens = make_tokens(database, runners, lead="fleet-lead")
    lead, tool = tokens["lead"], tokens[runners[0]]
    initiative = ok(
        server,
        "POST",
        "/api/initiatives",
        lead,
        {"name": "Fleet", "branch": "fleet", "execution_mode": "yolo"},
    )
    database.manage(
        "shell",
        "-c",
        "from core.models import Initiative\n"
        f"Initiative.objects.filter(pk={initiative['id']!r}).update("
        f"max_attempts={MAX_ATTEMPTS}, retry_backoff_seconds=0)\n",
    )
    phase = ok(server, "POST", f"/api/initiatives/{initiative['id']}/phases", lead, {"name": "Do"})
    task_ids = {}
    for name in PLAN:
        body = {"name": name, "priority": "high" if "sleepy" in name else "medium"}
        task_ids[name] = ok(server, "POST", f"/api/phases/{phase['id']}/tasks", tool, body)["id"]
    for name, needs in PLAN.items():
        for need in needs:
            ok(
                server,
                "POST",
                f"/api/tasks/{task_ids[name]}/dependencies",
                tool,
                {"depends_on_id": task_ids[need]},
            )
    preferred, other = (
        ok(server, "POST", "/api/accounts", lead, {"email": f"{p}@fleet.test", "provider": p})
        for p in ("claude", "codex")
    )
    ok(server, "POST", "/api/run-limits", lead, {"scope_type": "all", "max_live": OVERALL_LIMIT})
    ok(
        server,
        "POST",
        "/api/run-limits",
        lead,
        {"scope_type": "account", "scope_id": preferred["id"], "max_live": PREFERRED_ACCOUNT_LIMIT},
    )
    budget = ok(
        server,
        "POST",
        "/api/budgets",
        lead,
        {
            "scope_type": "account",
            "scope_id": preferred["id"],
            "metric": "tokens",
            "limit": BUDGET_TOKENS,
        },
    )
    ok(server, "POST", f"/api/phases/{phase['id']}/approve-plan", lead)
    return Fleet(
        initiative_id=initiative["id"],
        task_ids=task_ids,
        preferred_account=preferred["id"],
        other_account=other["id"],
        budget_id=budget["id"],
        lead=lead,
        runner_tokens={name: tokens[name] for name in runners},
    )


# --- the processes -----------------------------------------------------------------------


def start_runner(
    directory: Path,
    server: Server,
    fleet: Fleet,
    name: str,
    providers: list[str],
    hang_on: str = "",
) -> subprocess.Popen:
    spec = {
        "name": name,
        "base_url": server.url,
        "token": fleet.runner_tokens[name],
        "providers": providers,
        "timeout": HEARTBEAT_TIMEOUT,
        "beats": BEATS_PER_RUN,
        "beat_seconds": BEAT_SECONDS,
        "beat_input": BEAT_INPUT,
        "beat_output": BEAT_OUTPUT,
        "hang_on": hang_on,
        "marker": str(directory / f"{name}.hung"),
        "journal": str(directory / f"{name}.jsonl"),
        "lifetime": RUNNER_LIFETIME,
    }
    with (directory / f"{name}.log").open("a") as output:
        return subprocess.Popen(  # noqa: S603  (our runner script, arguments we chose)
            [sys.executable, str(directory / "runner.py"), json.dumps(spec)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def journal(directory: Path, name: str) -> list[dict[str, Any]]:
    path = directory / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def monitor(server: Server, fleet: Fleet, stop: threading.Event) -> None:
    """Sample the live runs until ``stop``: each sample the page of running runs."""
    while not stop.is_set():
        status, page, _ = server.call(
            "GET", "/api/runs?outcome=running&limit=200", token=fleet.lead
        )
        if status == 200:
            fleet.samples.append(page["items"])
        else:
            fleet.monitor_errors.append(f"{status}: {page}")
        stop.wait(0.05)


def wait_for(path: Path, process: subprocess.Popen, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, f"the runner exited with {process.returncode}"
        assert time.monotonic() < deadline, f"no {path.name} after {seconds} s"
        time.sleep(0.05)
    return path.read_text()


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def most_live_at_once(runs: list[dict[str, Any]], key: Any = None) -> Counter:
    """The most runs live at once, by ``key(run)`` (one group when None), from the runs'
    start and end times (a run ending at the instant another starts is not both)."""
    moments = []
    for run in runs:
        group = key(run) if key else "all"
        moments.append((_when(run["started_at"]), 1, group))
        moments.append((_when(run["ended_at"]), 0, group))
    live: Counter = Counter()
    most: Counter = Counter()
    for _, starts, group in sorted(moments, key=lambda m: (m[0], m[1])):
        live[group] += 1 if starts else -1
        most[group] = max(most[group], live[group])
    return most


# --- the test ------------------------------------------------------------------------------


def test_a_fleet_of_runner_processes_works_the_plan_within_its_limits_and_budget(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    victim, workers = "runner-victim", ["runner-1", "runner-2"]
    with scratch_database(tmp_path, CW_API_WRITE_RATE_LIMIT="1000000") as database:
        database.manage("migrate", "--no-input")
        with Server(database, workers=3, threads=4) as server:
            fleet = build_fleet(database, server, [victim, *workers])
            (tmp_path / "runner.py").write_text(RUNNER_SCRIPT)
            stop = threading.Event()
            watcher = threading.Thread(target=monitor, args=(server, fleet, stop), daemon=True)
            watcher.start()
            processes: dict[str, subprocess.Popen] = {}
            fleet_began = time.monotonic()
            try:
                # The victim alone first: it takes the high-priority "sleepy" task on the
                # other account, beats once and hangs; then the others start, and it dies.
                processes[victim] = start_runner(
                    tmp_path, server, fleet, victim, ["codex"], hang_on="sleepy"
                )
                victim_run = wait_for(tmp_path / f"{victim}.hung", processes[victim], 30)
                for name in workers:
                    processes[name] = start_runner(
                        tmp_path, server, fleet, name, ["claude", "codex"]
                    )
                time.sleep(1)
                held = ok(server, "GET", f"/api/runs/{victim_run}", fleet.lead)
                assert held["outcome"] == "running" and held["runner_name"] == victim
                os.kill(processes[victim].pid, signal.SIGKILL)  # mid-run
                processes[victim].wait()
                # The operator's cron sweeps once the run's heartbeat timeout passed; a
                # runner's waiting take-next may have swept it already.
                due = _when(held["heartbeat_at"]) + timedelta(seconds=HEARTBEAT_TIMEOUT + 0.5)
                time.sleep(max(0.0, due.timestamp() - time.time()))
                reconciled = database.manage("cw_reconcile")
                for name in workers:
                    processes[name].wait(timeout=FLEET_SECONDS)
            finally:
                stop.set()
                for process in processes.values():
                    if process.poll() is None:
                        process.kill()
                        process.wait()
            watcher.join(timeout=30)
            fleet_seconds = time.monotonic() - fleet_began
            setup_seconds = fleet_began - began

            tasks = {
                t["name"]: t
                for t in every(
                    server, fleet.lead, f"/api/tasks?initiative_id={fleet.initiative_id}"
                )
            }
            runs = every(server, fleet.lead, "/api/runs")
            events = the_feed(server, fleet.lead)
            logs = {name: (tmp_path / f"{name}.log").read_text() for name in processes}

    # The runners: the two that lived exited by themselves, having met no refusal but the
    # budget's stop; the victim died by SIGKILL.
    assert processes[victim].returncode == -signal.SIGKILL
    for name in workers:
        assert processes[name].returncode == 0, f"{name}:\n{logs[name]}"
        entries = journal(tmp_path, name)
        assert entries[-1]["op"] == "exit" and entries[-1]["idle"] == 2, entries[-1]
        refused = [
            e for e in entries if e["op"] in ("take", "heartbeat", "finish") and e["status"] != 200
        ]
        assert refused == [], refused
    assert fleet.monitor_errors == []

    by_id = {run["id"]: run for run in runs}
    runs_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r["attempt"]):
        runs_of[run["task_id"]].append(run)
    name_of = {task_id: name for name, task_id in fleet.task_ids.items()}

    # Every task ended completed or blocked: the flaky ones blocked after MAX_ATTEMPTS
    # failures, every task something depends on completed.
    assert set(tasks) == set(PLAN)
    statuses = Counter(task["status"] for task in tasks.values())
    assert set(statuses) <= {"completed", "blocked"}, statuses
    blocked = {name for name, task in tasks.items() if task["status"] == "blocked"}
    flaky = {name for name in PLAN if "flaky" in name}
    assert flaky <= blocked <= flaky | {"sleepy migration"}, blocked
    needed = {need for needs in PLAN.values() for need in needs}
    assert all(tasks[name]["status"] == "completed" for name in needed)

    # Every run is over, numbered 1, 2, … per task, and held by one of the runners.
    assert all(run["outcome"] != "running" and run["ended_at"] for run in runs)
    for task_id, its_runs in runs_of.items():
        assert [run["attempt"] for run in its_runs] == list(range(1, len(its_runs) + 1))
        if tasks[name_of[task_id]]["status"] == "completed":
            assert [run["outcome"] for run in its_runs][-1] == "succeeded"
    outcomes = Counter(run["outcome"] for run in runs)

    # The killed runner's run was swept lost after its heartbeat timeout, and its task
    # retried by another runner.
    lost = [run for run in runs if run["outcome"] == "lost"]
    assert [run["id"] for run in lost] == [victim_run]
    gone = by_id[victim_run]
    assert gone["runner_name"] == victim and gone["attempt"] == 1
    assert _when(gone["ended_at"]) >= _when(gone["heartbeat_at"]) + timedelta(
        seconds=HEARTBEAT_TIMEOUT
    )
    retries = runs_of[fleet.task_ids["sleepy migration"]][1:]
    assert retries and retries[0]["runner_name"] in workers
    assert "Took back" in reconciled  # the run, or nothing: a take-next swept it first

    # No limit was ever exceeded: by the monitor's samples and by the runs' own times
    # (which include the lost run's time until it was swept).
    assert fleet.samples, "the monitor took no sample"
    sampled = max(len(sample) for sample in fleet.samples)
    sampled_preferred = max(
        sum(run["account_id"] == fleet.preferred_account for run in sample)
        for sample in fleet.samples
    )
    assert sampled <= OVERALL_LIMIT and sampled_preferred <= PREFERRED_ACCOUNT_LIMIT
    overall = most_live_at_once(runs)["all"]
    per_account = most_live_at_once(runs, key=lambda run: run["account_id"])
    assert overall == OVERALL_LIMIT  # the limit was reached (the lost run held a slot)
    assert per_account[fleet.preferred_account] == PREFERRED_ACCOUNT_LIMIT

    # The budget stopped exactly the run that spent it, on the preferred account, and was
    # passed by at most that heartbeat's usage; no run started on that account after.
    stopped = [run for run in runs if run["outcome"] == "budget_stopped"]
    assert len(stopped) == 1, outcomes
    assert stopped[0]["account_id"] == fleet.preferred_account
    spent = sum(
        run["input_tokens"]
        + run["output_tokens"]
        + run["cache_read_tokens"]
        + run["cache_write_tokens"]
        for run in runs
        if run["account_id"] == fleet.preferred_account
    )
    assert BUDGET_TOKENS <= spent <= BUDGET_TOKENS - 1 + BEAT_TOKENS * len(stopped), spent
    assert not any(
        run["account_id"] == fleet.preferred_account
        and _when(run["started_at"]) > _when(stopped[0]["ended_at"])
        for run in runs
    )
    told_to_stop = [
        e["run_id"]
        for name in workers
        for e in journal(tmp_path, name)
        if e["op"] == "heartbeat" and e["answer"].get("decision") == "stop"
    ]
    assert told_to_stop == [stopped[0]["id"]]

    # The feed tells every run's story: run.started, then exactly one end, which agrees
    # with the run's outcome; and every task's: a start per run, a requeue per run that
    # failed short of the last, and its completion or its block with its failures.
    story: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        story[f"{event['subject_type']}:{event['subject_id']}"].append(event)
    assert {key.split(":", 1)[1] for key in story if key.startswith("run:")} == set(by_id)
    ending = {"succeeded": "run.finished", "failed": "run.finished", "lost": "run.lost"}
    ending["budget_stopped"] = "run.budget_stopped"
    for run in runs:
        kinds = [e["kind"] for e in story[f"run:{run['id']}"]]
        assert kinds[0] == "run.started", kinds
        ends = [kind for kind in kinds if kind in RUN_ENDS]
        assert ends == [ending[run["outcome"]]] and kinds[-1] == ends[0], (run["outcome"], kinds)
        first = story[f"run:{run['id']}"][0]
        assert first["data"]["attempt"] == run["attempt"]
        assert first["data"]["runner_name"] == run["runner_name"]
        assert first["actor"]["type"] == "tool" and first["actor"]["name"] == run["runner_name"]
    end_event = {e["subject_id"]: e for e in events if e["kind"] in RUN_ENDS}
    assert end_event[stopped[0]["id"]]["data"]["budget_ids"] == [fleet.budget_id]
    for run in runs:
        if run["outcome"] in ("succeeded", "failed"):
            assert end_event[run["id"]]["data"]["outcome"] == run["outcome"]
    lost_at = end_event[victim_run]["id"]
    assert all(e["id"] > lost_at for e in story[f"run:{retries[0]['id']}"]), (
        "the retry started before the lost run was swept"
    )

    task_kinds = ("task.started", "task.requeued", "task.completed", "task.blocked")
    completed_at = {}
    for name, task in tasks.items():
        told = [e for e in story[f"task:{task['id']}"] if e["kind"] in task_kinds]
        its_runs = runs_of[task["id"]]
        kinds = [e["kind"] for e in told]
        final = "task.completed" if task["status"] == "completed" else "task.blocked"
        expected = []
        for _ in its_runs[:-1]:
            expected += ["task.started", "task.requeued"]
        assert kinds == [*expected, "task.started", final], (name, kinds)
        if final == "task.completed":
            completed_at[name] = told[-1]["id"]
            continue
        data = told[-1]["data"]
        assert data["reason"] == "attempts_spent"
        failures = data["failures"]
        assert len(failures) == MAX_ATTEMPTS
        assert [f["run_id"] for f in failures] == [run["id"] for run in its_runs]
        assert [f["outcome"] for f in failures] == [run["outcome"] for run in its_runs]
    # Dependencies held: no task started before every task it depends on completed.
    for name, needs in PLAN.items():
        started = min(
            e["id"] for e in story[f"task:{tasks[name]['id']}"] if e["kind"] == "task.started"
        )
        assert all(started > completed_at[need] for need in needs), name

    print(
        f"\nfleet on {'SQLite' if database.is_sqlite else 'PostgreSQL'}: {len(tasks)} tasks "
        f"({statuses['completed']} completed, {statuses['blocked']} blocked), {len(runs)} runs "
        f"({', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))}), "
        f"{len(events)} events, {len(fleet.samples)} samples (most live {sampled}), "
        f"budget {spent}/{BUDGET_TOKENS} tokens, lost run swept by "
        f"{end_event[victim_run]['actor']['name'] or end_event[victim_run]['actor']['type']}; "
        f"set-up {setup_seconds:.1f} s, fleet {fleet_seconds:.1f} s"
    )
