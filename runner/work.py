"""One run, from the take-next answer to its finish: ``RunWork.execute``.

Prepare the worktrees and the prompt, start the agent, ship its output, heartbeat with
its usage, stop it when cw or the runner says so, keep its work (commit what it left,
push the run's branch, merge a success into the initiative's branch) and finish the run
with its outcome, exit code, end commits and summary.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import agent, gitwork
from runner.clean import end_here
from runner.client import ApiError, Client
from runner.config import AgentConfig
from runner.logship import LogShipper
from runner.state import Checkout, RunState
from runner.usage import StreamReader

if TYPE_CHECKING:
    from runner.loop import Runner

log = logging.getLogger("cw-runner")

#: Finishing a run is worth waiting for cw much longer than other calls.
FINISH_RETRY_SECONDS = 600
#: How long an agent told to stop has before it is killed.
STOP_GRACE_SECONDS = 10.0
#: The most characters of a run's error or summary sent to cw.
TEXT_LIMIT = 20_000
#: How long the runner waits for cw to fetch a project it pushed to (once, no retry).
FETCH_REQUEST_TIMEOUT = 60.0


def storable(text: str) -> str:
    """``text`` as cw stores text: a NUL and a lone surrogate (from an agent's JSON)
    written as escapes (``\\x00``, ``\\udXXX``) instead of refused."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "project"


class RunWork:
    def __init__(
        self, runner: Runner, answer: Mapping[str, Any], *, resumed: RunState | None = None
    ) -> None:
        self.runner = runner
        self.config = runner.config
        self.client: Client = runner.client
        self.answer = answer
        self.run: Mapping[str, Any] = answer["run"]
        self.task: Mapping[str, Any] = answer["task"]
        self.agent_record: Mapping[str, Any] = answer["agent"]
        self.account: Mapping[str, Any] = answer["account"]
        self.provider = str(self.account.get("provider") or self.agent_record.get("provider"))
        self.resumed = resumed
        #: The projects this run pushed its work to: cw is asked to fetch them at the end.
        self._pushed: list[str] = []
        self.folder = RunState.folder(self.config.workspace, self.run["id"])
        self.state = RunState(
            run_id=self.run["id"],
            task_id=self.task["id"],
            agent_id=self.agent_record["id"],
            provider=self.provider,
            session_number=int(self.run.get("session_number") or 1),
            spool=str(self.folder / "output.log"),
        )
        if resumed is not None:
            self.state.initiative_branch = resumed.initiative_branch
            self.state.cwd = resumed.cwd
            self.state.checkouts = resumed.checkouts
            self.state.session_id = resumed.session_id or self.run.get("session_id")
        self.stopped_by: str | None = None  # "runner" or "cw"
        self.stop_reason = ""
        self.reader: StreamReader | None = None
        self._told_to_stop = threading.Event()
        self.beat = Heartbeat(self)

    # --- the whole run -----------------------------------------------------------------

    def execute(self) -> str:
        """Run it to the end; the outcome reported (or ``"ended by cw"``)."""
        run_id = self.run["id"]
        log.info(
            "run %s: task %r (attempt %s, session %s)",
            run_id,
            self.task["name"],
            self.run.get("attempt"),
            self.state.session_number,
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state.save(self.config.workspace)
        if self.runner.draining.is_set():
            return self._finish({"outcome": "stopped", "error": "the runner is shutting down"})
        self.beat.start()  # from now until the finish: preparing and settling take time too
        try:
            return self._execute()
        finally:
            self.beat.stop()

    def _execute(self) -> str:
        run_id = self.state.run_id
        config = self.config.agents.get(self.provider)
        if config is None:
            return self._finish(
                {"outcome": "crashed", "error": f"this runner has no agent for {self.provider}"}
            )
        try:
            if self.resumed is None:
                self._prepare_worktrees()
            prompt = self.folder / "prompt.md"
            prompt.write_text(self._prompt())
        except (gitwork.GitError, ApiError, OSError) as error:
            log.error("run %s: could not prepare: %s", run_id, error)
            return self._finish(
                {"outcome": "crashed", "error": f"preparing the run failed: {error}"}
            )
        return self._run_agent(config, prompt)

    def _run_agent(self, config: AgentConfig, prompt: Path) -> str:
        credentials = self.folder / "credentials"
        agent.write_credentials(credentials, self.account)
        reader = self.reader = StreamReader(config.format)
        shipper = LogShipper(
            self.client,
            agent_id=self.state.agent_id,
            session_number=self.state.session_number,
            spool=Path(self.state.spool),
            offset=0,
            on_line=reader.feed,
            on_shipped=self._shipped,
            flush_seconds=self.config.log_flush_seconds,
        )
        try:
            values = {
                "prompt_file": str(prompt),
                "session_id": self.state.session_id or "",
                "worktree": self.state.cwd,
                "credentials_dir": str(credentials),
                "run_id": self.state.run_id,
                "task_id": self.state.task_id,
            }
            template = (
                config.resume if self.resumed is not None and config.resume else config.command
            )
            argv = [part.format(**values) for part in template]
            env = agent.environment(
                {
                    "CW_SERVER": self.config.server,
                    "CW_RUN_TOKEN": str(self.answer.get("run_token") or ""),
                    "CW_AGENT_ID": self.state.agent_id,
                    "CW_TASK_ID": self.state.task_id,
                    "CW_RUN_ID": self.state.run_id,
                    "CW_CREDENTIALS_DIR": str(credentials),
                    **{name: value.format(**values) for name, value in config.env.items()},
                }
            )
            Path(self.state.spool).touch()
            if self._told_to_stop.is_set():  # cancelled (or taken) while it was prepared
                log.info("run %s: ended by cw before its agent started", self.state.run_id)
                self._ended()
                return "ended by cw"
            try:
                process = agent.start(
                    argv, cwd=Path(self.state.cwd), env=env, spool=Path(self.state.spool)
                )
            except OSError as error:
                return self._finish(
                    {"outcome": "crashed", "error": f"could not start {argv[0]}: {error}"}
                )
            self.state.pid = process.pid
            self.state.boot_id = agent.boot_id()
            self.state.pid_started = agent.start_time(process.pid)
            self.state.save(self.config.workspace)
            shipper.start()
            try:
                self._report({"pid": process.pid})
                self._watch(process)
            except BaseException:
                # A bug here must not leave the agent running on its own.
                agent.stop_group(process.pid, grace=STOP_GRACE_SECONDS, process=process)
                raise
            finally:
                shipper.finish()
        finally:
            agent.remove_credentials(credentials)
        return self._settle(process.returncode, reader, shipper)

    # --- while it runs -----------------------------------------------------------------

    def _watch(self, process: Any) -> None:
        """Wait for the agent to exit; stop it when cw (through a heartbeat) or the
        runner says so."""
        while process.poll() is None:
            if self.runner.stop_now.is_set():
                if self.stopped_by is None:
                    self.stopped_by, self.stop_reason = "runner", "the runner is shutting down"
                break
            if self._told_to_stop.wait(0.2):
                break
        if process.poll() is None:
            log.info("run %s: stopping the agent (%s)", self.state.run_id, self.stop_reason)
            agent.stop_group(process.pid, grace=STOP_GRACE_SECONDS, process=process)
        process.wait()
        # What the agent started and left behind (still writing to the spool) goes too.
        agent.stop_leftovers(process.pid)
        if self.reader is not None and self.reader.session_id:
            self.state.session_id = self.reader.session_id

    def stop_for_cw(self, reason: str) -> None:
        """cw ended the run (a budget spent, a person's cancel, the sweep): stop."""
        if self.stopped_by is None:
            self.stopped_by, self.stop_reason = "cw", reason
        self._told_to_stop.set()

    def _shipped(self, offset: int) -> None:
        self.state.shipped = offset
        self.state.save(self.config.workspace)

    def _report(self, fields: dict[str, Any]) -> None:
        try:
            self.client.call(
                "PATCH",
                f"/api/runs/{self.state.run_id}",
                {"runner_name": self.config.name, **fields},
            )
        except ApiError as error:
            log.warning("run %s: report not taken (%s)", self.state.run_id, error)

    # --- preparing ---------------------------------------------------------------------

    def _prepare_worktrees(self) -> None:
        initiative_id = self.task.get("initiative_id")
        branch = ""
        projects: list[dict[str, Any]] = []
        if initiative_id:
            initiative = self.client.call("GET", f"/api/initiatives/{initiative_id}")
            branch = initiative.get("branch") or ""
            projects = self.client.call("GET", f"/api/initiatives/{initiative_id}/projects")
        root = self.config.workspace / "worktrees" / self.state.run_id
        root.mkdir(parents=True, exist_ok=True)
        self.state.initiative_branch = branch
        run_branch = f"{branch or 'cw'}-run-{self.state.run_id}"
        starts: dict[str, str] = {}
        for raw in projects:
            project = gitwork.Project(
                id=raw["id"], name=raw["name"], url=raw["url"], default_branch=raw["default_branch"]
            )
            mirror = gitwork.Mirror.of(self.config.workspace, project)
            mirror.fetch()
            self._mark_fetched(project.id)
            if len(projects) == 1:
                path = root / "worktree"
            else:
                path = root / _slug(project.name)
                if path.exists():  # "my app" and "my-app": the same folder name
                    path = root / f"{_slug(project.name)}-{_slug(project.id)}"
            start = mirror.add_worktree(path, run_branch, branch or project.default_branch)
            starts[project.id] = start
            self.state.checkouts.append(
                Checkout(project.id, str(mirror.path), str(path), run_branch, start)
            )
        self.state.cwd = str(self.state.checkouts[0].path if len(projects) == 1 else root)
        self.state.save(self.config.workspace)
        fields: dict[str, Any] = {"worktree_path": self.state.cwd}
        if starts:
            fields["start_commits"] = starts
        self._report(fields)

    def _mark_fetched(self, project_id: str) -> None:
        try:
            self.client.call("POST", f"/api/projects/{project_id}/fetched", {})
        except ApiError as error:
            log.debug("project %s: fetched not recorded (%s)", project_id, error)

    def _prompt(self) -> str:
        task = self.task
        parts = [f"# Task: {task['name']}", "", str(task.get("description") or "").strip(), ""]
        context = self.client.call("GET", f"/api/tasks/{task['id']}/context")
        done = [entry for entry in context if entry.get("summary")]
        if done:
            parts += ["## What the tasks before this one did", ""]
            parts += [f"- **{entry['name']}**: {entry['summary']}" for entry in done]
            parts.append("")
        attempts = self.answer.get("attempts") or []
        if attempts:
            parts += ["## Earlier attempts at this task (start from what failed)", ""]
            for attempt in attempts:
                parts.append(
                    f"### Attempt {attempt['attempt']}: {attempt['outcome']}"
                    f" (exit code {attempt.get('exit_code')})"
                )
                if attempt.get("error"):
                    parts += ["", str(attempt["error"])]
                tail = attempt.get("log_tail") or []
                if tail:
                    parts += ["", "Its last lines:", "", "```", *tail, "```"]
                parts.append("")
        parts += [
            "## How to work",
            "",
            f"You work in {self.state.cwd}, on branch {self.state.checkouts[0].branch}."
            if self.state.checkouts
            else f"You work in {self.state.cwd}.",
            "Commit your work with git as you go; what you leave uncommitted is committed "
            "for you at the end. Your final message is the task's summary for the tasks "
            "that depend on it.",
            "cw's API is at $CW_SERVER; $CW_RUN_TOKEN lets you ask questions, message "
            "people, propose changes to the plan and read your task's context.",
            "",
        ]
        return "\n".join(parts)

    # --- the end -----------------------------------------------------------------------

    def _settle(self, returncode: int, reader: StreamReader, shipper: LogShipper) -> str:
        end_commits, integration = self._keep_work(
            succeeded=returncode == 0 and not reader.is_error and self.stopped_by is None
        )
        self._pushed = list(end_commits)
        if self.stopped_by == "cw":
            log.info("run %s: ended by cw (%s)", self.state.run_id, self.stop_reason)
            self._ended()
            return "ended by cw"
        tail = "\n".join(shipper.tail)
        if self.stopped_by == "runner":
            body: dict[str, Any] = {"outcome": "stopped", "error": self.stop_reason}
        elif returncode == 0 and not reader.is_error:
            summary = reader.result if reader.result is not None else tail
            if integration == "conflict":
                summary += (
                    f"\n\n(The work could not be merged into {self.state.initiative_branch}: "
                    f"it is on {self.state.checkouts[0].branch}.)"
                )
            body = {"outcome": "succeeded", "summary": summary[-TEXT_LIMIT:] or None}
        else:
            outcome = "crashed" if returncode < 0 else "failed"
            why = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
            error = f"The agent ended with {why}." + (f"\n{tail}" if tail else "")
            body = {"outcome": outcome, "error": error[-TEXT_LIMIT:]}
            if reader.result:
                body["summary"] = reader.result[-TEXT_LIMIT:]
        body["exit_code"] = returncode if -(2**31) <= returncode < 2**31 else None
        if end_commits:
            body["end_commits"] = end_commits
        body["usage"] = reader.take_usage()
        return self._finish(body)

    def _keep_work(self, *, succeeded: bool) -> tuple[dict[str, str], str]:
        """Commit what the agent left, push the run's branch, merge a success into the
        initiative's branch; the end commit per project and how the merge went."""
        end_commits: dict[str, str] = {}
        integration = "none"
        for checkout in self.state.checkouts:
            path = Path(checkout.path)
            mirror = gitwork.Mirror(Path(checkout.mirror))
            try:
                end_commits[checkout.project_id] = gitwork.keep(
                    mirror, path, checkout.branch, self.state.run_id
                )
                if succeeded and self.state.initiative_branch:
                    how = gitwork.integrate(mirror, path, self.state.initiative_branch)
                    if how == "conflict":
                        log.warning(
                            "run %s: could not merge into %s; the work is on %s",
                            self.state.run_id,
                            self.state.initiative_branch,
                            checkout.branch,
                        )
                    if integration != "conflict":  # one project's conflict is the run's
                        integration = how
            except gitwork.GitError as error:
                log.error("run %s: keeping the work failed: %s", self.state.run_id, error)
                integration = "conflict"
        return end_commits, integration

    def _ask_cw_to_fetch(self) -> None:
        """Once the run is finished, have cw fetch the projects it pushed to into its own
        mirrors, so their review pages show the work (best effort, once, briefly: cw
        fetches one mirror at a time, and a person can fetch from the project's page)."""
        for project_id in self._pushed:
            try:
                self.client.call(
                    "POST",
                    f"/api/projects/{project_id}/fetch",
                    {},
                    timeout=FETCH_REQUEST_TIMEOUT,
                    retry_seconds=0,
                )
            except ApiError as error:
                log.info("project %s: cw did not fetch (%s)", project_id, error)

    def _finish(self, body: dict[str, Any]) -> str:
        self.beat.stop()
        outcome = str(body["outcome"])
        for key in ("error", "summary"):
            if isinstance(body.get(key), str):
                body[key] = storable(body[key])
        try:
            self._send_finish(body)
            log.info("run %s: finished %s", self.state.run_id, outcome)
            self._ask_cw_to_fetch()
        except ApiError as error:
            log.warning("run %s: finish not taken (%s)", self.state.run_id, error)
            if error.status not in (404, 409):
                return outcome  # cw is away: keep the state; a restart settles it
        self._ended()
        return outcome

    def _send_finish(self, body: dict[str, Any]) -> None:
        """Finish the run; a finish cw refuses as it is (a text it will not store, a
        commit it will not take) goes again with its outcome and exit code alone, so the
        run never stays live for want of a detail."""
        path = f"/api/runs/{self.state.run_id}/finish"
        full = {"runner_name": self.config.name, **body}
        try:
            self.client.call("POST", path, full, retry_seconds=FINISH_RETRY_SECONDS)
        except ApiError as error:
            if error.status not in (400, 422):
                raise
            log.warning("run %s: finish refused (%s); sent again bare", self.state.run_id, error)
            bare = {
                key: full[key] for key in ("runner_name", "outcome", "exit_code") if key in full
            }
            self.client.call("POST", path, bare, retry_seconds=FINISH_RETRY_SECONDS)

    def _ended(self) -> None:
        try:
            end_here(self.config, self.state)
        except Exception:
            log.exception("run %s: cleaning up failed", self.state.run_id)


class Heartbeat:
    """A run's heartbeats, every ``heartbeat_seconds`` from take-next to its finish (a
    first fetch or a slow merge must not get it swept as lost), with the usage its
    agent's output told since the last one. cw's "stop", or its refusal of a run that is
    no longer live, stops the run's agent."""

    def __init__(self, work: RunWork) -> None:
        self.work = work
        self.reported_session: str | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"beat-{self.work.state.run_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.work.config.heartbeat_seconds):
            try:
                self.beat()
            except Exception:  # a bug must not end the heartbeats in silence
                log.exception("run %s: heartbeat failed", self.work.state.run_id)

    def beat(self) -> None:
        work, reader = self.work, self.work.reader
        usage = reader.take_usage() if reader is not None else []
        body: dict[str, Any] = {"runner_name": work.config.name, "usage": usage}
        session = reader.session_id if reader is not None else None
        if session and session != self.reported_session:
            body["session_id"] = session[:255]
        try:
            answer = work.client.call(
                "POST",
                f"/api/runs/{work.state.run_id}/heartbeat",
                body,
                retry_seconds=0,
                idempotent=False,
            )
        except ApiError as error:
            if error.status in (404, 409):
                work.stop_for_cw(f"{error.code}: {error.message}")
            elif error.status in (400, 422):
                # What cw will never take as it is: said once, not sent again.
                log.warning("run %s: heartbeat refused (%s)", work.state.run_id, error)
                self.reported_session = session
            else:
                # Sent again with the next one (counted twice if cw took it and only the
                # answer was lost: a budget then stops early, never late).
                if reader is not None:
                    reader.give_back(usage)
                log.warning("run %s: heartbeat failed (%s)", work.state.run_id, error)
            return
        if "session_id" in body:
            self.reported_session = session
            work.state.session_id = session
            work.state.save(work.config.workspace)
        if answer.get("decision") == "stop":
            work.stop_for_cw(str(answer.get("reason") or "stop"))
