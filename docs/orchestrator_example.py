#!/usr/bin/env python3
"""An example orchestrator: drives cw over HTTP only, with the standard library.

It builds an initiative with two phases (the second depends on the first), each with
two tasks (the second depends on the first); approves the plans; takes tasks from the
ready queue, one agent per task, which logs its work, asks the previous agent a
question, proposes a page; completes each task with a summary; in ``review_per_phase``
mode approves each phase's review and then the initiative; and follows the event feed
until the initiative is completed. Every call is one from docs/api.md.

    manage.py create_api_token lead-laptop --person alice     # prints the token once
    python docs/orchestrator_example.py --base-url http://127.0.0.1:8000 \\
        --token cw_... --mode review_per_phase

One token does everything here, so it must be a **personal** token: approving plans,
phase reviews and the initiative, and accepting proposals are people's gates, and a
tool's token gets 403 ``person_required`` there. A team would normally split the two:
the orchestrator holds a tool's token (``create_api_token orchestrator``) and stops at
each gate, while a person passes it with their own token or in the admin.

It prints each event it reads from the feed, then one summary line
``initiative <id> completed: operations=N events=M`` and exits 0; on a refusal it prints
the error body (``{code, message, details}``) to stderr and exits 1.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

#: How long to follow the feed for the initiative's completion before giving up.
FOLLOW_TIMEOUT_SECONDS = 60
#: The long-poll each feed read asks for (the API allows up to 30 seconds).
FEED_WAIT_SECONDS = 5


class ApiError(Exception):
    """The API refused a call: its status and its ``{code, message, details}`` body."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} answered {status}")
        self.status = status
        self.body = body


class Api:
    """A bearer-token JSON client that counts the operations it runs."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/") + "/api"
        self.token = token
        self.operations = 0

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """One operation; its JSON answer (None for 204). ``query`` values that are
        lists repeat the parameter; ``None`` values are left out."""
        params = {k: v for k, v in query.items() if v is not None}
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        self.operations += 1
        # A long poll may hold the request for its whole wait: allow for it.
        timeout = float(params.get("wait", 0)) + 30
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = raw.decode(errors="replace")
            raise ApiError(method, path, error.code, answer) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, **query)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.call("POST", path, body, **query)


class EventFeed:
    """Follows ``GET /events`` for one initiative: every event once, in commit order."""

    def __init__(self, api: Api, initiative_id: str) -> None:
        self.api = api
        self.initiative_id = initiative_id
        self.cursor = 0  # ``after``: the id of the last event read
        self.seen: list[dict[str, Any]] = []

    def read(self, wait: float = 0) -> list[dict[str, Any]]:
        """The next events (after waiting up to ``wait`` seconds for one)."""
        page = self.api.get(
            "/events", after=self.cursor, initiative_id=self.initiative_id, wait=wait
        )
        for event in page["items"]:
            print(
                f"event {event['id']} {event['kind']} {event['subject_type']}:"
                f"{event['subject_id']} {json.dumps(event['data'])}"
            )
        self.seen.extend(page["items"])
        self.cursor = page["next_after"]
        return page["items"]

    def drain(self) -> None:
        """Read everything committed so far."""
        while self.read():
            pass

    def until_initiative_completed(self) -> None:
        """Read until the initiative's ``initiative.status_changed`` to completed."""
        deadline = time.monotonic() + FOLLOW_TIMEOUT_SECONDS
        while not any(is_completion(event, self.initiative_id) for event in self.seen):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the feed did not report initiative {self.initiative_id} completed "
                    f"within {FOLLOW_TIMEOUT_SECONDS} s"
                )
            self.read(wait=FEED_WAIT_SECONDS)
        self.drain()  # anything committed with or just after the completion


def is_completion(event: dict[str, Any], initiative_id: str) -> bool:
    return (
        event["kind"] == "initiative.status_changed"
        and event["subject_id"] == initiative_id
        and event["data"].get("to") == "completed"
    )


# --- the plan --------------------------------------------------------------------------


def build_plan(api: Api, mode: str) -> dict[str, Any]:
    """An initiative with two dependent phases of two dependent tasks; plans approved."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    initiative = api.post(
        "/initiatives",
        {"name": f"Example {stamp}", "branch": f"example-{stamp}", "execution_mode": mode},
    )
    previous_phase = None
    for number in (1, 2):
        phase = api.post(
            f"/initiatives/{initiative['id']}/phases",
            {
                "name": f"Phase {number}",
                "content_markdown": f"# Phase {number}\n\nBuild part {number}.",
            },
        )
        if previous_phase:
            api.post(f"/phases/{phase['id']}/dependencies", {"depends_on_id": previous_phase["id"]})
        first = api.post(
            f"/phases/{phase['id']}/tasks",
            {"name": f"Design part {number}", "description": "Write the design down."},
        )
        second = api.post(
            f"/phases/{phase['id']}/tasks",
            {"name": f"Build part {number}", "description": "Implement the design."},
        )
        api.post(f"/tasks/{second['id']}/dependencies", {"depends_on_id": first["id"]})
        api.post(f"/phases/{phase['id']}/approve-plan")  # a person's gate
        previous_phase = phase
    return initiative


# --- one agent per task ----------------------------------------------------------------


def run_task(api: Api, task: dict[str, Any], state: dict[str, Any]) -> None:
    """Register an agent for ``task``, let it work, and complete the task."""
    registered = api.post(
        "/agents",
        {
            "worktree_id": f"worktrees/{task['id']}",
            "task_id": task["id"],
            "initiative_id": task["initiative_id"],
        },
    )
    agent = registered["agent"]
    api.post(f"/tasks/{task['id']}/start")
    api.post(f"/agents/{agent['id']}/running", {"pid": 4242, "session_id": f"s-{task['id']}"})

    # What the agent prints: one JSONL record per chunk, appended in one batch.
    records = [
        {"type": "system", "text": f"working on {task['name']}"},
        {"type": "assistant", "text": "reading the task's context"},
        {"type": "tool_use", "name": "edit", "input": {"path": "README.md"}},
    ]
    api.post(f"/agents/{agent['id']}/logs", [{"content": json.dumps(r)} for r in records])
    api.get(f"/tasks/{task['id']}/context")  # the summaries of the tasks it depends on

    # The second agent asks the first a question, then proposes a page.
    previous = state.get("previous_agent")
    if previous is not None and not state.get("collaborated"):
        ask_and_answer(api, asking=agent, answering=previous, task=task)
        propose_page(api, agent=agent, task=task)
        state["collaborated"] = True

    summary = f"{task['name']}: done by {agent['name']}."
    api.post(f"/agents/{agent['id']}/idle", {"exit_code": 0, "result": summary})
    api.post(f"/tasks/{task['id']}/complete", {"summary": summary})
    state["previous_agent"] = agent


def ask_and_answer(
    api: Api, *, asking: dict[str, Any], answering: dict[str, Any], task: dict[str, Any]
) -> None:
    """One agent asks another; the other finds the question in its queue and answers."""
    api.post(
        "/conversations",
        {
            "from_agent_id": asking["id"],
            "to_agent_id": answering["id"],
            "question": "Which file holds the design you wrote?",
            "initiative_id": task["initiative_id"],
            "task_id": task["id"],
        },
    )
    for question in api.get(f"/agents/{answering['id']}/questions", wait=1):
        api.post(
            f"/conversations/{question['id']}/answer", {"answer": "docs/design.md, section 2."}
        )


def propose_page(api: Api, *, agent: dict[str, Any], task: dict[str, Any]) -> None:
    """The agent proposes a new page; a person (this token) accepts it."""
    proposal = api.post(
        "/proposals",
        {
            "agent_id": agent["id"],
            "initiative_id": task["initiative_id"],
            "target_type": "page",
            "title": "Design notes",
            "content": "## Decisions\n\n- The design lives in `docs/design.md`.",
        },
    )
    api.post(f"/proposals/{proposal['id']}/accept")  # a person's gate


# --- the loop --------------------------------------------------------------------------


def orchestrate(api: Api, mode: str) -> EventFeed:
    """Build the plan, work the ready queue to the end, and follow the feed."""
    initiative = build_plan(api, mode)
    feed = EventFeed(api, initiative["id"])
    state: dict[str, Any] = {}
    while True:
        ready = api.get("/ready-tasks", initiative_id=initiative["id"])
        for task in ready:
            run_task(api, task, state)
            feed.drain()
        if ready:
            continue
        current = api.get(f"/initiatives/{initiative['id']}")
        if current["status"] == "completed":
            break
        if not review(api, current):
            raise RuntimeError(
                f"nothing is ready and nothing waits for review, but initiative "
                f"{initiative['id']} is {current['status']}"
            )
    feed.until_initiative_completed()
    return feed


def review(api: Api, initiative: dict[str, Any]) -> bool:
    """Pass the people's gates that are waiting (review mode); whether any was."""
    passed = False
    waiting = api.get("/phases", initiative_id=initiative["id"], status="pending_review")
    for phase in waiting["items"]:
        api.post(f"/phases/{phase['id']}/approve")  # a person's gate
        passed = True
    if initiative["status"] == "pending_review":
        api.post(f"/initiatives/{initiative['id']}/approve")  # a person's gate
        passed = True
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a personal API token (see above)")
    parser.add_argument("--mode", choices=["yolo", "review_per_phase"], default="yolo")
    args = parser.parse_args(argv)

    api = Api(args.base_url, args.token)
    try:
        feed = orchestrate(api, args.mode)
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except (urllib.error.URLError, TimeoutError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"initiative {feed.initiative_id} completed: "
        f"operations={api.operations} events={len(feed.seen)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
