"""Calling every operation of the API's OpenAPI document with plausible input.

Shared by the tests that walk the whole API from its document (so a new operation is
walked as soon as it exists): ``operations()`` lists them, ``call()`` sends one with
its path parameters filled from ``ids`` (``<kind>_id`` → ``ids[kind]``) and a body made
from its schema by ``example()``, and ``response_text()`` is what a response shows a
client (headers, cookies and body) as one text to search.
"""

import functools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from agents.models import Account
from cw_project.api import api
from reviews.models import ProposalTargetType
from tests.factories import (
    AgentFactory,
    AgentLogChunkFactory,
    ChangeSetFactory,
    ChatMessageFactory,
    ChatSessionFactory,
    ConversationFactory,
    InitiativeFactory,
    InitiativeProjectFactory,
    MessageFactory,
    PageFactory,
    PhaseFactory,
    ProposalFactory,
    ReviewCommentFactory,
    TaskFactory,
)

#: The fields of an account that hold a secret.
SECRET_FIELDS = ("config_json", "credentials")
#: The id put in a path parameter that names no record the test made.
DUMMY_ID = "x" * 22
#: Unsafe methods run after reads, deletes last, so every read sees every record.
METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 2, "delete": 3}


class SecretSource(Protocol):
    def new(self, key: str = "token") -> str:
        """A fresh secret to put in a secret field."""
        ...


def plausible_records(account: Account) -> dict[str, str]:
    """A real id for each kind of record a path parameter may name (``<kind>_id``), made
    around ``account`` (the agent's)."""
    initiative = InitiativeFactory()
    phase = PhaseFactory(initiative=initiative)
    task = TaskFactory(phase=phase)
    agent = AgentFactory(account=account, initiative=initiative, task=task)
    proposal = ProposalFactory(
        agent=agent, initiative=initiative, target_type=ProposalTargetType.PAGE, target_id=None
    )
    comment = ReviewCommentFactory(phase=phase)
    chat_session = ChatSessionFactory(initiative=initiative, target_id=phase.id, agent=agent)
    ids = {
        "account": account.id,
        "agent": agent.id,
        "initiative": initiative.id,
        "phase": phase.id,
        "task": task.id,
        "page": PageFactory(initiative=initiative).id,
        "project": InitiativeProjectFactory(initiative=initiative).project_id,
        "proposal": proposal.id,
        "comment": comment.id,
        "review_comment": comment.id,
        "change_set": ChangeSetFactory(initiative=initiative).id,
        "chat_session": chat_session.id,
        "chat_message": ChatMessageFactory(chat_session=chat_session).id,
        "message": MessageFactory(sender_id=agent.id).id,
        "conversation": ConversationFactory(from_agent=agent).id,
        "log_chunk": AgentLogChunkFactory(agent_id=agent.id).id,
    }
    ids["session"] = ids["chat_session"]
    ids["chunk"] = ids["log_chunk"]
    return ids


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    for combinator in ("anyOf", "oneOf", "allOf"):
        # An object's own allOf holds conditions on its properties, not its choices.
        if combinator in schema and schema.get("type") != "object":
            options = [resolve(option, components) for option in schema[combinator]]
            concrete = [option for option in options if option.get("type") != "null"]
            return concrete[0] if concrete else options[0]
    return schema


def example(
    name: str,
    schema: dict[str, Any],
    components: dict[str, Any],
    ids: dict[str, str],
    secrets: SecretSource,
) -> Any:
    """A plausible value for property ``name``: real ids, secrets for secret fields."""
    schema = resolve(schema, components)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        wanted = set(schema.get("required", ())) | (set(SECRET_FIELDS) & set(properties))
        return {
            prop: example(prop, properties[prop], components, ids, secrets)
            for prop in properties
            if prop in wanted
        }
    if kind == "array":
        return []
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if name in SECRET_FIELDS:
        return secrets.new()
    if schema.get("format") == "date-time":
        return (timezone.now() + timedelta(hours=1)).isoformat()
    if name.endswith("_id"):
        return ids.get(name.removesuffix("_id"), DUMMY_ID)
    if name == "email":
        return "crawler@example.com"
    return "text" + "x" * max(schema.get("minLength", 0) - 4, 0)


@functools.cache
def document() -> dict[str, Any]:
    """The API's OpenAPI document, built once (building it takes a second or more);
    read it, never change it."""
    return api.get_openapi_schema()


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation, reads first, deletes last."""
    schema = document()
    found = [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHOD_ORDER
    ]
    yield from sorted(found, key=lambda op: METHOD_ORDER[op[0]])


def fill_path(path: str, operation: dict[str, Any], ids: dict[str, str]) -> str:
    """``path`` with each path parameter ``<kind>_id`` (or ``<kind>``) replaced by
    ``ids[kind]``, else by ``DUMMY_ID``."""
    for parameter in operation.get("parameters", ()):
        if parameter["in"] == "path":
            kind = parameter["name"].removesuffix("_id")
            path = path.replace("{" + parameter["name"] + "}", ids.get(kind, DUMMY_ID))
    return path


def call(
    client: Client,
    method: str,
    path: str,
    operation: dict[str, Any],
    ids: dict[str, str],
    secrets: SecretSource,
    **extra: Any,
):
    """Send the operation with plausible input; ``extra`` goes to the client (headers)."""
    components = document().get("components", {}).get("schemas", {})
    path = fill_path(path, operation, ids)
    query = {
        parameter["name"]: example(
            parameter["name"], parameter.get("schema", {}), components, ids, secrets
        )
        for parameter in operation.get("parameters", ())
        if parameter["in"] == "query" and parameter.get("required")
    }
    if method == "get":
        return client.get(path, query, **extra)
    body_schema = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema")
    )
    body = example("", body_schema, components, ids, secrets) if body_schema else {}
    return getattr(client, method)(path, body, content_type="application/json", **extra)


def response_text(response) -> str:
    """The headers, cookies and body of a response, as one text to search."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    cookies = response.cookies.output()
    return headers + "\n" + cookies + "\n" + body_of(response).decode(errors="replace")


def body_of(response) -> bytes:
    """A response's whole body, streamed (synchronously or not) or not."""
    if not response.streaming:
        return response.content
    if getattr(response, "is_async", False):

        async def collect() -> bytes:
            return b"".join([part async for part in response.streaming_content])

        return async_to_sync(collect)()
    return b"".join(response.streaming_content)
