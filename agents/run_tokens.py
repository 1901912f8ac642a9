"""What a run's token may do (issue 22): the one list of the operations it may call.

Take-next and a resume hand the runner, with the run, a token of that run
(``run_token``; ``core.tokens.run_token_create``), which the runner gives the agent as
``CW_RUN_TOKEN``. With it the agent does only what its own agent may: ask and answer
questions, message people, propose changes, read its task's context, append and read
its own log, read its own task, agent and run. ``RUN_TOKEN_OPERATIONS`` lists those
operations, each by method and path (as the OpenAPI document names them) with its
operation id, and the rule for which of its path and body ids must be the run's own.

The check (``check_run_token_scope``) runs when the token is found (``core.auth``),
before anything is parsed or written. Any operation not listed, or one whose ids name
another agent, task, run or initiative, is refused with 403 ``run_token_out_of_scope``
(``details.operation``: ``METHOD /path``; ``details.reason``). A run's token is found
only while its run is live: once the run ended (finished, lost, cancelled,
budget-stopped, crashed by a resume), every request with it is 401, as with an unknown
token. Events recorded through it name the tool ``agent:<agent name>`` with the token's
id (``core.actors.actor_from_auth``).

The check costs nothing beyond the token's own lookup (one indexed query joining the run,
its agent and task), but for the two operations on a conversation by its id, which read
the conversation to see that it is the agent's.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from django.http import HttpRequest

from agents.repositories import ConversationRepository
from core.errors import PermissionRequired
from core.models import ApiToken
from core.repositories.tokens import RunScope

conversations = ConversationRepository()

#: Where the API is mounted: an operation's path is its route after this.
API_MOUNT = "/api"

#: Which of the run's own ids a path or body id must be.
Own = Literal["agent", "task", "run", "initiative"]


def _asked_or_asking(conversation_id: str, scope: RunScope) -> bool:
    found = conversations.find_by_id(conversation_id)
    return found is not None and scope.agent_id in (found.from_agent_id, found.to_agent_id)


def _asked(conversation_id: str, scope: RunScope) -> bool:
    found = conversations.find_by_id(conversation_id)
    return found is not None and found.to_agent_id == scope.agent_id


@dataclass(frozen=True)
class Allowed:
    """An operation a run's token may call, and what makes a call of it the run's own:
    each path parameter of ``path`` and body field of ``body`` is the run's own id of
    that kind, each body field of ``body_equals`` has that value, and ``record`` (given
    the path's record id and the scope) holds."""

    operation_id: str
    path: dict[str, Own] = field(default_factory=dict)
    body: dict[str, Own] = field(default_factory=dict)
    body_equals: dict[str, str] = field(default_factory=dict)
    record: tuple[str, Callable[[str, RunScope], bool], str] | None = None

    def describe(self) -> str:
        """The rule in words, as the OpenAPI document states it on the operation."""
        rules = [f"`{name}` {_OWN_WORDS[kind]}" for name, kind in self.path.items()]
        rules += [f"`{name}` `{value}`" for name, value in self.body_equals.items()]
        rules += [f"`{name}` {_OWN_WORDS[kind]}" for name, kind in self.body.items()]
        if self.record is not None:
            rules.append(f"`{self.record[0]}` {self.record[2]}")
        if not rules:
            return "A run's token (`CW_RUN_TOKEN`) may call this until its run ends (then 401)."
        return (
            f"A run's token (`CW_RUN_TOKEN`) may call this only with {', '.join(rules)} "
            "(else 403 `run_token_out_of_scope`), until its run ends (then 401)."
        )


_OWN_WORDS: dict[str, str] = {
    "agent": "its run's agent",
    "task": "its run's task",
    "run": "its run",
    "initiative": "its run's task's initiative",
}


#: Every operation a run's token may call, by (method, path as the OpenAPI document
#: names it). Anything else is refused.
RUN_TOKEN_OPERATIONS: dict[tuple[str, str], Allowed] = {
    # Who it is.
    ("GET", "/whoami"): Allowed("core_api_plans_retrieve_whoami"),
    # Its own run, agent and task, and its task's context.
    ("GET", "/runs/{run_id}"): Allowed("agents_api_runs_retrieve_run", path={"run_id": "run"}),
    ("GET", "/agents/{agent_id}"): Allowed("agents_api_retrieve_agent", path={"agent_id": "agent"}),
    ("GET", "/tasks/{task_id}"): Allowed("core_api_plans_retrieve_task", path={"task_id": "task"}),
    ("GET", "/tasks/{task_id}/context"): Allowed(
        "core_api_plans_retrieve_task_context", path={"task_id": "task"}
    ),
    # Its own log: append and read.
    ("POST", "/agents/{agent_id}/logs"): Allowed(
        "agents_api_append_agent_log", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/logs"): Allowed(
        "agents_api_list_agent_log", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/logs/stream"): Allowed(
        "agents_api_stream_agent_log", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/logs/events"): Allowed(
        "agents_api_follow_agent_log", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/logs/records"): Allowed(
        "agents_api_list_agent_log_records", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/logs/sessions"): Allowed(
        "agents_api_retrieve_agent_log_sessions", path={"agent_id": "agent"}
    ),
    # Questions: asked by its agent, asked of its agent, answered by its agent.
    ("POST", "/conversations"): Allowed("agents_api_ask_question", body={"from_agent_id": "agent"}),
    ("GET", "/agents/{agent_id}/questions"): Allowed(
        "agents_api_list_pending_questions", path={"agent_id": "agent"}
    ),
    ("GET", "/agents/{agent_id}/questions/stream"): Allowed(
        "agents_api_follow_agent_questions", path={"agent_id": "agent"}
    ),
    ("GET", "/conversations/{conversation_id}"): Allowed(
        "agents_api_retrieve_conversation",
        record=("conversation_id", _asked_or_asking, "a conversation its agent is part of"),
    ),
    ("POST", "/conversations/{conversation_id}/answer"): Allowed(
        "agents_api_answer_question",
        record=("conversation_id", _asked, "a question asked of its agent"),
    ),
    # Messages to people, from its agent.
    ("POST", "/messages"): Allowed(
        "agents_api_send_message",
        body={"sender_id": "agent"},
        body_equals={"sender_type": "agent", "recipient_type": "user"},
    ),
    # Proposals, by its agent, on its task's initiative.
    ("POST", "/proposals"): Allowed(
        "reviews_api_create_proposal", body={"agent_id": "agent", "initiative_id": "initiative"}
    ),
}


def document_run_token_scope(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document, changed in place) with each operation of
    ``RUN_TOKEN_OPERATIONS`` stating, in its description, what a run's token may do with
    it (the others are refused to it, as the API's description says)."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            allowed = RUN_TOKEN_OPERATIONS.get((method.upper(), path.removeprefix(API_MOUNT)))
            if allowed is not None:
                description = operation.get("description", "")
                operation["description"] = f"{description}\n\n{allowed.describe()}".strip()
    return schema


def _own_id(scope: RunScope, kind: Own) -> str | None:
    return {
        "agent": scope.agent_id,
        "task": scope.task_id,
        "run": scope.run_id,
        "initiative": scope.initiative_id,
    }[kind]


def _operation(request: HttpRequest) -> tuple[str, str, dict[str, Any]]:
    """The request's method, operation path (``/agents/{agent_id}/logs``) and path ids."""
    match = request.resolver_match
    if match is None or match.route is None:
        return request.method or "", request.path, {}
    route = "/" + match.route
    path = route.removeprefix(API_MOUNT) if route.startswith(API_MOUNT + "/") else route
    # Django's route names a parameter <name> or <converter:name>; OpenAPI {name}.
    parts = []
    for part in path.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].rsplit(":", 1)[-1] + "}"
        parts.append(part)
    return request.method or "", "/".join(parts), dict(match.kwargs)


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        parsed = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def check_run_token_scope(request: HttpRequest, token: ApiToken) -> None:
    """Refuse, with 403 ``run_token_out_of_scope``, a request of a run's token that
    ``RUN_TOKEN_OPERATIONS`` does not allow: an operation not listed, or one whose path
    or body ids are not the run's own (a body that is not a JSON object names none)."""
    method, path, path_ids = _operation(request)
    operation = f"{method} {path}"
    scope = token.run_scope

    def refuse(reason: str) -> PermissionRequired:
        return PermissionRequired(
            f"A run's token may not call {operation}: {reason}.",
            code="run_token_out_of_scope",
            details={"operation": operation, "reason": reason},
        )

    allowed = RUN_TOKEN_OPERATIONS.get((method, path))
    if allowed is None:
        raise refuse("a run's token calls only what its agent may (see the API's docs)")
    if scope is None or scope.agent_id is None:
        raise refuse("its run has no agent")
    for name, kind in allowed.path.items():
        if str(path_ids.get(name)) != _own_id(scope, kind):
            raise refuse(f"`{name}` is not its own {kind}'s id")
    body = _body(request) if allowed.body or allowed.body_equals else {}
    for name, value in allowed.body_equals.items():
        if body.get(name) != value:
            raise refuse(f"`{name}` must be '{value}'")
    for name, kind in allowed.body.items():
        if body.get(name) is None or body.get(name) != _own_id(scope, kind):
            raise refuse(f"`{name}` is not its own {kind}'s id")
    if allowed.record is not None:
        name, holds, what = allowed.record
        if not holds(str(path_ids.get(name)), scope):
            raise refuse(f"`{name}` is not {what}")
