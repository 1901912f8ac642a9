"""Issue 22's proof: ``cw-runner`` processes against a gunicorn server (of the suite's
database kind) work a plan with the fake agent, in real git worktrees.

- Two runners (two slots each, a limit of three live runs) complete a plan of
  dependent tasks: no task run twice, the limit held, every line the agent printed —
  JSON or not, cut by a read or not — in the log in order, every commit on the
  initiative's branch and in the runs' records, a question asked with the run's token
  and answered by a person.
- A runner killed with SIGKILL mid-run is restarted: it stops the orphaned agent, ships
  what it printed, and resumes its conversation as a new run and session.
- A budget crossed mid-run stops the agent within one heartbeat; SIGTERM stops a hung
  agent after the grace period and reports its run stopped.

``pytest -s`` prints the figures.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.runner.harness import (
    Answerer,
    RunnerProcess,
    git,
    make_origin,
    make_plan,
    runner_process,
    the_log,
    trace,
    wait_until,
)
from tests.serverprocess import Server, every, ok, scratch_database, the_feed

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.processes,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
    ),
]

OVERALL_LIMIT = 3
PLAN: dict[str, tuple[str, list[str]]] = {
    "schema": (
        "Make the schema.\nFAKE: say starting the schema\n"
        "FAKE: stderr Error: rate limit reached, retrying in 30s\n"
        "FAKE: write schema.txt the schema\nFAKE: partial",
        [],
    ),
    "lint": ("FAKE: write lint.txt lint rules\nFAKE: lines 40", []),
    "models": ("FAKE: write models.txt the models\nFAKE: lines 120", ["schema"]),
    "api": (
        "FAKE: write api.txt the api\nFAKE: ask Which port should the API use?\n"
        "FAKE: stderr warning: 3 deprecated calls",
        ["schema"],
    ),
    "docs": ("FAKE: write docs.txt the docs\nFAKE: say documented", ["models", "api"]),
    "release": ("FAKE: write release.txt v1\nFAKE: sleep 0.5", ["docs", "lint"]),
}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def most_live_at_once(runs: list[dict[str, Any]]) -> int:
    moments = sorted(
        [(_when(r["started_at"]), 1) for r in runs] + [(_when(r["ended_at"]), 0) for r in runs]
    )
    live = most = 0
    for _, starts in moments:
        live += 1 if starts else -1
        most = max(most, live)
    return most


def logged_lines(chunks: list[dict[str, Any]], session: int) -> list[str]:
    return [c["content"] for c in chunks if c["session_number"] == session]


def printed_lines(traced: list[dict[str, Any]]) -> list[str]:
    return [entry["text"] for entry in traced if entry["text"].strip()]


def stop(*runners: RunnerProcess) -> None:
    for runner in runners:
        if runner.process is not None and runner.process.poll() is None:
            runner.process.send_signal(signal.SIGTERM)
    for runner in runners:
        assert runner.process is not None
        runner.process.wait(timeout=60)


def test_two_runners_complete_a_plan_of_dependent_tasks(tmp_path: Path) -> None:
    began = time.monotonic()
    names = ["runner-1", "runner-2"]
    with scratch_database(tmp_path, CW_API_WRITE_RATE_LIMIT="1000000") as database:
        database.manage("migrate", "--no-input")
        with Server(database, workers=3, threads=4) as server:
            origin = make_origin(tmp_path / "git")
            plan = make_plan(database, server, origin, names, PLAN)
            ok(
                server,
                "POST",
                "/api/run-limits",
                plan.lead,
                {"scope_type": "all", "max_live": OVERALL_LIMIT},
            )
            runners = [
                runner_process(tmp_path, server, name, plan.tokens[name], concurrency=2)
                for name in names
            ]
            with Answerer(server, plan.lead) as answerer:
                for runner in runners:
                    runner.start()
                try:
                    wait_until(
                        "every task completed",
                        lambda: all(
                            t["status"] == "completed"
                            for t in every(
                                server, plan.lead, f"/api/tasks?initiative_id={plan.initiative_id}"
                            )
                        ),
                        180,
                        *runners,
                    )
                finally:
                    stop(*runners)
            worked = time.monotonic() - began
            runs = every(server, plan.lead, "/api/runs")
            events = the_feed(server, plan.lead)
            logs = {run["agent_id"]: the_log(server, plan.lead, run["agent_id"]) for run in runs}
            commits = {
                run["id"]: ok(server, "GET", f"/api/runs/{run['id']}", plan.lead) for run in runs
            }

    for runner in runners:
        assert runner.process is not None and runner.process.returncode == 0, runner.output
    assert answerer.errors == []

    # No task was run twice: one run per task, each succeeded at its first attempt, the
    # work split between both runners, and never more than the limit live at once.
    assert Counter(run["task_id"] for run in runs) == Counter(plan.tasks.values())
    assert {run["outcome"] for run in runs} == {"succeeded"}
    assert {run["attempt"] for run in runs} == {1}
    assert {run["runner_name"] for run in runs} == set(names)
    assert most_live_at_once(runs) <= OVERALL_LIMIT

    # The question was asked with the run's token (as its agent) and answered.
    asked = [e for e in events if e["kind"] == "question.asked"]
    assert len(asked) == 1 and answerer.answered == [asked[0]["subject_id"]]

    # Every line the agent printed, JSON or not, is in its log, in order.
    lines = 0
    for run in runs:
        printed = printed_lines(trace(runners[0].traces, run["id"]))
        logged = logged_lines(logs[run["agent_id"]], run["session_number"])
        assert printed and logged == printed, (run["id"], printed[:5], logged[:5])
        lines += len(logged)
    schema_run = next(r for r in runs if r["task_id"] == plan.tasks["schema"])
    schema_log = logged_lines(logs[schema_run["agent_id"]], 1)
    assert "Error: rate limit reached, retrying in 30s" in schema_log
    assert schema_log[-1].startswith('{"type":"result"')  # the last line had no newline

    # Every commit: each run's end commit is on the initiative's branch, which holds every
    # task's file; the runs recorded where they started and ended.
    branch_log = git("log", "--format=%H", "cw/plan", cwd=origin)
    for run in runs:
        recorded = {c["project_id"]: c for c in commits[run["id"]]["commits"]}
        assert set(recorded) == {plan.project_id}
        end = recorded[plan.project_id]["end_commit"]
        assert end and end in branch_log.split()
    files = git("ls-tree", "--name-only", "cw/plan", cwd=origin).split()
    assert {"schema.txt", "lint.txt", "models.txt", "api.txt", "docs.txt", "release.txt"} <= set(
        files
    )
    # cw was asked to fetch after each run: its own mirror (which the phase's review page
    # reads) holds the initiative's branch as a run left it (the last run's request may
    # come after the runners were stopped).
    mirror = tmp_path / "mirrors" / f"{plan.project_id}.git"
    assert git("rev-parse", "refs/heads/cw/plan", cwd=mirror) in branch_log.split()

    # The dependents were told what their dependencies did.
    docs = next(r for r in runs if r["task_id"] == plan.tasks["docs"])
    started = {e["subject_id"]: e["id"] for e in events if e["kind"] == "run.started"}
    finished = {e["subject_id"]: e["id"] for e in events if e["kind"] == "run.finished"}
    for need in ("models", "api"):
        need_run = next(r for r in runs if r["task_id"] == plan.tasks[need])
        assert finished[need_run["id"]] < started[docs["id"]]

    # Nothing is left in the workspaces: every run ended and its work is on origin.
    for runner in runners:
        assert not any((runner.workspace / "worktrees").iterdir())
    print(
        f"\ntwo runners on {'SQLite' if database.is_sqlite else 'PostgreSQL'}: "
        f"{len(plan.tasks)} tasks, {len(runs)} runs, {lines} lines logged, "
        f"{len(events)} events, 0 restarts, {worked:.1f} s"
    )


def test_a_runner_killed_mid_run_is_restarted_and_resumes_the_agent(tmp_path: Path) -> None:
    began = time.monotonic()
    plan_tasks = {
        "long": (
            "FAKE: write first.txt one\nFAKE: stderr plain words before the kill\n"
            "FAKE: sleep 3\nFAKE: write second.txt two\nFAKE: say done",
            [],
        )
    }
    with scratch_database(tmp_path, CW_API_WRITE_RATE_LIMIT="1000000") as database:
        database.manage("migrate", "--no-input")
        with Server(database, workers=3, threads=4) as server:
            origin = make_origin(tmp_path / "git")
            plan = make_plan(database, server, origin, ["victim"], plan_tasks, accounts=1)
            runner = runner_process(tmp_path, server, "victim", plan.tokens["victim"])
            runner.start()
            try:
                first = wait_until(
                    "the agent's first commit",
                    lambda: next(
                        (
                            r
                            for r in every(server, plan.lead, "/api/runs")
                            if any("first.txt" in e["text"] for e in trace(runner.traces, r["id"]))
                            and r["session_id"]
                        ),
                        None,
                    ),
                    60,
                    runner,
                )
                assert runner.process is not None
                os.kill(runner.process.pid, signal.SIGKILL)
                runner.process.wait()
                runner.restart()
                wait_until(
                    "the task completed",
                    lambda: (
                        ok(server, "GET", f"/api/tasks/{plan.tasks['long']}", plan.lead)["status"]
                        == "completed"
                    ),
                    60,
                    runner,
                )
            finally:
                stop(runner)
            runs = sorted(every(server, plan.lead, "/api/runs"), key=lambda r: r["attempt"])
            chunks = the_log(server, plan.lead, first["agent_id"])
            events = the_feed(server, plan.lead)

    assert runner.process is not None and runner.process.returncode == 0, runner.output
    # The killed run ended crashed; its conversation went on as a new run and session
    # with the same agent and CLI session, which completed the task.
    assert [r["outcome"] for r in runs] == ["crashed", "succeeded"], runs
    killed, resumed = runs
    assert killed["id"] == first["id"] and "restarted" in (killed["error"] or "")
    assert resumed["agent_id"] == killed["agent_id"]
    assert resumed["session_number"] == killed["session_number"] + 1
    assert resumed["session_id"] == killed["session_id"]
    # Nothing printed was lost: each session's log is what the agent printed in it (the
    # killed session's lines shipped by the restarted runner).
    for run in runs:
        assert logged_lines(chunks, run["session_number"]) == printed_lines(
            trace(runner.traces, run["id"])
        )
    assert any(
        f"resumed session {killed['session_id']}" in line for line in logged_lines(chunks, 2)
    )
    files = git("ls-tree", "--name-only", "cw/plan", cwd=origin).split()
    assert {"first.txt", "second.txt"} <= set(files)
    assert not any(r["outcome"] == "running" for r in runs)
    story = [e["kind"] for e in events if e["subject_id"] == killed["id"]]
    assert story[0] == "run.started" and story[-1] == "run.resumed", story
    print(
        f"\nkilled and restarted on {'SQLite' if database.is_sqlite else 'PostgreSQL'}: "
        f"1 task, {len(runs)} runs, {len(chunks)} lines logged, 1 restart, "
        f"{time.monotonic() - began:.1f} s"
    )


def test_a_budget_crossed_mid_run_stops_the_agent_and_sigterm_stops_a_hung_one(
    tmp_path: Path,
) -> None:
    plan_tasks = {
        "spender": ("FAKE: tokens 1000\nFAKE: hang", []),
        "hanger": ("FAKE: say waiting\nFAKE: hang", []),
    }
    heartbeat = 0.5
    with scratch_database(tmp_path, CW_API_WRITE_RATE_LIMIT="1000000") as database:
        database.manage("migrate", "--no-input")
        with Server(database, workers=3, threads=4) as server:
            origin = make_origin(tmp_path / "git")
            plan = make_plan(database, server, origin, ["r"], plan_tasks, accounts=2)
            budget = ok(
                server,
                "POST",
                "/api/budgets",
                plan.lead,
                {
                    "scope_type": "task",
                    "scope_id": plan.tasks["spender"],
                    "metric": "tokens",
                    "limit": 500,
                },
            )
            runner = runner_process(
                tmp_path,
                server,
                "r",
                plan.tokens["r"],
                concurrency=2,
                heartbeat_seconds=heartbeat,
                grace_seconds=1,
            )
            runner.start()
            try:
                stopped = wait_until(
                    "the spender's run budget_stopped",
                    lambda: next(
                        (r for r in every(server, plan.lead, "/api/runs?outcome=budget_stopped")),
                        None,
                    ),
                    60,
                    runner,
                )
                hung = wait_until(
                    "the hanger running",
                    lambda: next(
                        (
                            r
                            for r in every(server, plan.lead, "/api/runs?outcome=running")
                            if r["task_id"] == plan.tasks["hanger"] and r["pid"]
                        ),
                        None,
                    ),
                    30,
                    runner,
                )
                # The spender's agent is gone (its group stopped) within a few heartbeats.
                wait_until(
                    "the spender's agent stopped",
                    lambda: not _alive(stopped["pid"]),
                    10,
                    runner,
                )
                assert runner.process is not None
                runner.process.send_signal(signal.SIGTERM)
                runner.process.wait(timeout=60)
            finally:
                stop(runner)
            hung_after = ok(server, "GET", f"/api/runs/{hung['id']}", plan.lead)
            hanger_task = ok(server, "GET", f"/api/tasks/{plan.tasks['hanger']}", plan.lead)
            spent = ok(server, "GET", f"/api/runs/{stopped['id']}", plan.lead)

    assert runner.process.returncode == 0, runner.output
    assert stopped["task_id"] == plan.tasks["spender"]
    # Over the budget by at most the one heartbeat that crossed it (1,500 tokens here).
    assert 500 <= spent["input_tokens"] + spent["output_tokens"] <= 500 + 1500
    assert budget["id"]
    assert not _alive(hung["pid"])
    assert hung_after["outcome"] == "stopped"
    assert hanger_task["status"] == "pending"  # back in the queue


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of the (dead) runner is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
