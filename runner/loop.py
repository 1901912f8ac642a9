"""The runner's life: lock the workspace, settle the runs a killed predecessor left,
then one loop per slot takes the next run and works it, until SIGTERM.

SIGTERM (or SIGINT): take no more work; runs may go on for ``grace_seconds``, then are
stopped and reported ``stopped`` (their tasks go back to the queue). A second signal
stops them at once. After a kill or a reboot, ``recover`` finds the runs cw says this
runner holds: their agents still running are stopped, their output is shipped, their
work kept, and each is resumed (``resume`` configured and a session id known: a new run
and session continue the conversation) or reported crashed. A run of the workspace cw
no longer holds (lost while the runner was down) is settled the same way, without a
word to cw about its end.
"""

from __future__ import annotations

import fcntl
import logging
import queue
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from runner import agent, gitwork
from runner.clean import clean_run, end_here
from runner.client import ApiError, Client
from runner.config import Config
from runner.logship import LogShipper
from runner.state import RunState
from runner.work import RunWork

log = logging.getLogger("cw-runner")

#: A refusal of take-next that no retry will cure: the runner stops with its reason.
FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})


class RunnerError(Exception):
    """The runner cannot go on; the message says why in one line."""


class Runner:
    def __init__(self, config: Config, client: Client | None = None) -> None:
        self.config = config
        self.client = client or Client(config.server, config.token)
        self.draining = threading.Event()
        self.stop_now = threading.Event()
        self.resumes: queue.Queue[tuple[dict[str, Any], RunState]] = queue.Queue()
        self.fatal: str | None = None
        self._lock_file: Any = None
        self._drain_started: float | None = None

    # --- the workspace -----------------------------------------------------------------

    def lock_workspace(self) -> None:
        self.config.workspace.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.config.workspace / ".runner.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunnerError(
                f"another cw-runner is using the workspace {self.config.workspace}"
            ) from None

    # --- signals -----------------------------------------------------------------------

    def on_signal(self, number: int, frame: FrameType | None) -> None:
        if self.draining.is_set():
            log.warning("second signal: stopping every run now")
            self.stop_now.set()
            return
        log.info(
            "signal %s: taking no more work; runs have %.0f s to finish",
            signal.Signals(number).name,
            self.config.grace_seconds,
        )
        self._drain_started = time.monotonic()
        self.draining.set()

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        self.lock_workspace()
        try:
            who = self.client.call("GET", "/api/whoami", retry_seconds=30)
        except ApiError as error:
            raise RunnerError(f"cw at {self.config.server} refused the token: {error}") from None
        log.info(
            "cw-runner %s on %s: %s as %s, %d slot(s), providers %s",
            self.config.name,
            self.config.host,
            self.config.server,
            who.get("name", "?") if isinstance(who, dict) else "?",
            self.config.concurrency,
            ", ".join(self.config.providers),
        )
        self.recover()
        workers = [
            threading.Thread(target=self._slot, args=(slot,), name=f"slot-{slot}", daemon=True)
            for slot in range(self.config.concurrency)
        ]
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            time.sleep(0.2)
            if (
                self._drain_started is not None
                and not self.stop_now.is_set()
                and time.monotonic() - self._drain_started > self.config.grace_seconds
            ):
                log.info("grace period over: stopping the runs still going")
                self.stop_now.set()
        if self.fatal:
            raise RunnerError(self.fatal)
        log.info("cw-runner %s stopped", self.config.name)
        return 0

    def _slot(self, slot: int) -> None:
        body = {
            "runner_name": self.config.name,
            "runner_host": self.config.host,
            "providers": self.config.providers,
            "heartbeat_timeout_seconds": self.config.heartbeat_timeout_seconds,
        }
        while True:
            if self.draining.is_set():
                # Resumes already taken from cw still get their word: stopped at once.
                while not self.resumes.empty():
                    self._work(slot, *self.resumes.get())
                return
            try:
                answer, resumed = self.resumes.get_nowait()
            except queue.Empty:
                try:
                    found = self.client.take_next(body, wait=self.config.wait_seconds)
                except ApiError as error:
                    if error.status in FATAL_STATUSES:
                        self.fatal = f"cw refused to hand out work: {error}"
                        self.draining.set()
                        self._drain_started = time.monotonic()
                        return
                    log.warning("slot %d: take-next failed (%s); trying again", slot, error)
                    time.sleep(2)
                    continue
                except Exception:  # a bug must not end the slot in silence
                    log.exception("slot %d: take-next failed; trying again", slot)
                    time.sleep(2)
                    continue
                if found is None:
                    continue
                answer, resumed = found, None
            self._work(slot, answer, resumed)

    def _work(self, slot: int, answer: dict[str, Any], resumed: RunState | None) -> None:
        work = RunWork(self, answer, resumed=resumed)
        try:
            work.execute()
        except Exception:  # a bug in the runner: the run is reported, not left to be lost
            log.exception("slot %d: run %s failed in the runner", slot, work.state.run_id)
            try:
                self._finish_crashed(
                    work.state.run_id, "the runner failed working this run", state=work.state
                )
            except Exception:
                log.exception("run %s: could not be reported crashed", work.state.run_id)

    # --- after a crash -----------------------------------------------------------------

    def recover(self) -> None:
        """Settle every run cw says this runner holds (its predecessor's)."""
        held = self.client.pages(
            "/api/runs", {"runner_name": self.config.name, "outcome": "running"}
        )
        for run in held:
            try:
                self._recover_one(run)
            except ApiError as error:
                log.error("run %s: could not be settled (%s)", run["id"], error)
        live = {run["id"] for run in held} | {state.run_id for _, state in list(self.resumes.queue)}
        for state in RunState.all(self.config.workspace):
            if not state.ended and state.run_id not in live:
                self._settle_orphan(state)
            elif state.ended and state.unshipped() and self._ship_rest(state):
                # cw was away when the run ended: its last lines went now.
                clean_run(self.config, state, dry_run=False)

    def _settle_orphan(self, state: RunState) -> None:
        """A run of this workspace cw no longer holds for it (lost while the runner was
        down, cancelled, or finished before the runner could record so): its agent is
        stopped, what it printed shipped, its work kept, and its worktree cleaned."""
        log.info("run %s: over in cw; settling what is left of it here", state.run_id)
        self._stop_ship_keep(state)
        end_here(self.config, state)

    def _stop_ship_keep(self, state: RunState) -> str:
        """Stop the run's agent if it still runs, ship what it printed, commit and push
        what it did; whether its process was "gone" or "still running"."""
        was = "gone"
        if agent.alive(state.pid, state.boot_id, state.pid_started) and state.pid:
            was = "still running"
            log.info("run %s: stopping its orphaned agent (pid %s)", state.run_id, state.pid)
            agent.stop_group(state.pid)
        elif state.pid and agent.leftovers(state.pid, state.boot_id):
            log.info("run %s: stopping what its agent left running", state.run_id)
            agent.stop_leftovers(state.pid)
        self._ship_rest(state)
        for checkout in state.checkouts:
            path = Path(checkout.path)
            if path.exists():
                try:
                    mirror = gitwork.Mirror(Path(checkout.mirror))
                    gitwork.keep(mirror, path, checkout.branch, state.run_id)
                except gitwork.GitError as error:
                    log.error("run %s: keeping its work failed: %s", state.run_id, error)
        return was

    def _recover_one(self, run: dict[str, Any]) -> None:
        state = RunState.load(self.config.workspace, run["id"])
        run_id = run["id"]
        if state is None:
            log.warning("run %s: no record of it here; reporting it crashed", run_id)
            self._finish_crashed(run_id, "the runner restarted with no record of this run")
            return
        was = self._stop_ship_keep(state)
        config = self.config.agents.get(state.provider)
        session_id = run.get("session_id") or state.session_id
        if config is not None and config.resume and session_id and Path(state.cwd).exists():
            try:
                answer = self.client.call(
                    "POST",
                    f"/api/runs/{run_id}/resume",
                    {"runner_name": self.config.name},
                    idempotent=False,
                )
            except ApiError as error:
                log.info("run %s: cannot resume (%s); reporting it crashed", run_id, error)
            else:
                state.session_id = session_id
                new_id = answer["run"]["id"]
                resumed = RunState(
                    **{
                        **state.__dict__,
                        "run_id": new_id,
                        "session_number": int(answer["run"].get("session_number") or 1),
                        "checkouts": list(state.checkouts),
                        "pid": None,
                        "shipped": 0,
                        "spool": str(RunState.folder(self.config.workspace, new_id) / "output.log"),
                    }
                )
                # The worktrees are the new run's now, on record before the old one's
                # record lets them go (so no clean ever sees them unheld).
                resumed.save(self.config.workspace)
                state.checkouts, state.ended = [], True
                state.save(self.config.workspace)
                log.info("run %s: resumed as run %s", run_id, answer["run"]["id"])
                self.resumes.put((answer, resumed))
                return
        self._finish_crashed(
            run_id, f"the runner restarted; the agent's process was {was}", state=state
        )

    def _ship_rest(self, state: RunState) -> bool:
        """Ship what the run's spool holds past what cw acknowledged; whether all went."""
        shipper = LogShipper(
            self.client,
            agent_id=state.agent_id,
            session_number=state.session_number,
            spool=Path(state.spool),
            offset=state.shipped,
            on_line=lambda line: None,
            on_shipped=lambda offset: self._shipped(state, offset),
            flush_seconds=0,
        )
        return shipper.start().finish()

    def _shipped(self, state: RunState, offset: int) -> None:
        state.shipped = offset
        state.save(self.config.workspace)

    def _finish_crashed(self, run_id: str, error: str, state: RunState | None = None) -> None:
        body: dict[str, Any] = {
            "runner_name": self.config.name,
            "outcome": "crashed",
            "error": error,
        }
        if state is not None:
            commits = {}
            for checkout in state.checkouts:
                try:
                    commits[checkout.project_id] = gitwork.head(Path(checkout.path))
                except gitwork.GitError:
                    continue
            if commits:
                body["end_commits"] = commits
        try:
            self.client.call("POST", f"/api/runs/{run_id}/finish", body)
        except ApiError as error_:
            if error_.status not in (404, 409):
                raise
        if state is not None:
            end_here(self.config, state)
