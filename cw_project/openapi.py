"""Post-processing of the OpenAPI document Ninja generates: what it cannot say by itself.

``add_links`` adds OpenAPI links (``responses.<status>.links``) from each operation that
creates a resource to the operations taking that resource's id as a path parameter, so a
client generator or a stateful fuzzer knows where a new id can be used. They are derived
from the document itself, never listed by hand, so a new operation is linked on arrival:

- a response that is (or holds, one property deep) the schema the operations on a
  resource's own path answer (``GET``/``PATCH .../{x_id}``) gives that ``x_id``: its
  ``id`` (or its property of the same name: ``/agents/by-name/{name}``);
- a required, non-null string property of the response named like a path parameter
  (``depends_on_id``, ``initiative_id``) gives that parameter;
- the operation's own path parameters pass on as they were sent.

An operation creates when it is a ``POST`` answering 201 (``POST /initiatives``), or
answering a record other than the one its path names (``POST /proposals/{id}/accept``
answers the change set it made); a transition answering the record it acted on
(``POST /phases/{id}/start``) creates nothing. Each 2xx answer of a create links to each
other operation whose every path parameter is given as above, one of them at least by
the record created (or, for an answer that is no record, such as ``DependencyOut``, by a
related id the request did not give).
"""

from typing import Any

JsonDict = dict[str, Any]


def add_links(schema: JsonDict) -> JsonDict:
    """``schema`` (an OpenAPI document, changed in place) with the links described above."""
    operations = list(_operations(schema))
    param_names = {name for _, _, operation in operations for name in _path_params(operation)}
    retrieved = _retrieved_schemas(operations)
    components = schema.get("components", {}).get("schemas", {})
    for _, method, operation in operations:
        if method != "post":
            continue
        own = _path_params(operation)
        answers = [
            (response, _response_sources(body, components, retrieved, param_names))
            for status, response in operation.get("responses", {}).items()
            if str(status).startswith("2") and (body := _json_schema(response)) is not None
        ]
        creates = any(str(status) == "201" for status in operation.get("responses", {}))
        for response, (identity, related) in answers:
            new = set(identity) or set(related) - set(own)
            if not creates and (not identity or set(identity) & set(own)):
                continue  # a transition answering the record it acted on
            sources = {name: f"$request.path.{name}" for name in own} | related | identity
            links = _links_to(operations, operation, sources, new=new)
            if links:
                response.setdefault("links", {}).update(links)
    return schema


def _operations(schema: JsonDict) -> Any:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                yield path, method, operation


def _path_params(operation: JsonDict) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]


def _json_schema(response: JsonDict) -> JsonDict | None:
    return response.get("content", {}).get("application/json", {}).get("schema")


def _ref_name(schema: JsonDict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _retrieved_schemas(operations: list[tuple[str, str, JsonDict]]) -> dict[str, list[str]]:
    """The path parameters naming each resource, by the component answered by the
    operations on the resource's own path (the path ends with the parameter); the
    parameter's value is the component's property of the same name, else its ``id``:
    ``GET /phases/{phase_id}`` answering
    ``PhaseOut`` gives ``{"PhaseOut": ["phase_id"]}`` (from its ``id``), and
    ``GET /agents/by-name/{name}`` adds ``name`` to ``AgentOut``'s (from its ``name``)."""
    found: dict[str, list[str]] = {}
    for path, _, operation in operations:
        params = _path_params(operation)
        if not params or not path.endswith("{" + params[-1] + "}"):
            continue
        responses = operation.get("responses", {})
        body = _json_schema(responses.get(200, responses.get("200", {})))
        name = _ref_name(body) if body else None
        if name is not None:
            names = found.setdefault(name, [])
            if params[-1] not in names:
                names.append(params[-1])
    return found


def _response_sources(
    body: JsonDict,
    components: JsonDict,
    retrieved: dict[str, list[str]],
    param_names: set[str],
    prefix: str = "",
) -> tuple[dict[str, str], dict[str, str]]:
    """The path parameters a response of schema ``body`` gives, with their expressions:
    those naming the record it is (or holds), and those of related records
    (``initiative_id``)."""
    identity: dict[str, str] = {}
    related: dict[str, str] = {}
    name = _ref_name(body)
    if name is None:
        return identity, related
    component = components.get(name, {})
    properties = component.get("properties", {})
    required = set(component.get("required", []))
    for param in retrieved.get(name, []):
        prop = param if param in properties else "id"
        identity[param] = f"$response.body#{prefix}/{prop}"
    for prop, prop_schema in properties.items():
        if prop not in required:
            continue
        if not prefix and _ref_name(prop_schema) in retrieved:
            nested, _ = _response_sources(
                prop_schema, components, retrieved, param_names, f"/{prop}"
            )
            identity = nested | identity
        elif prop in param_names and prop.endswith("_id") and prop_schema.get("type") == "string":
            related[prop] = f"$response.body#{prefix}/{prop}"
    return identity, related


def _links_to(
    operations: list[tuple[str, str, JsonDict]],
    source: JsonDict,
    sources: dict[str, str],
    *,
    new: set[str],
) -> JsonDict:
    links: JsonDict = {}
    for _, _, target in operations:
        params = _path_params(target)
        if target is source or not params or not set(params) <= set(sources):
            continue
        if not new.intersection(params):
            continue
        links[target["operationId"]] = {
            "operationId": target["operationId"],
            "parameters": {param: sources[param] for param in params},
        }
    return links
