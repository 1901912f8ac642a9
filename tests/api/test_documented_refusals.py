"""The codes the docs promise for refused values are the codes the server answers.

``docs/api.md`` ("Refused values") lists each field with a code of its own; the OpenAPI
document states it on the field (``x-error-code``, ``cw_project.errors``). For every
operation of the document this test builds, from the document alone, requests that are
valid but for one documented field, sends them, and checks each answers the documented
code, with the status the catalogue gives that code, which the operation documents.
Each operation also gets a request malformed otherwise (an unknown body field, a path id
with a NUL), which must answer 422 ``validation_error``, documented as well. So a new
field, a new operation or a changed schema cannot answer a code the docs do not name.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from core.errors import lookup
from cw_project.api import api
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = api.get_openapi_schema()
COMPONENTS: dict[str, Any] = DOCUMENT.get("components", {}).get("schemas", {})
#: A value no choice field takes.
NOT_A_CHOICE = "no-such-value"
#: Values tried, in order, for a string the document constrains by a pattern.
STRINGS = ("x", "main", "a@example.com", "https://example.com/repo.git")


def documented_table() -> dict[str, str]:
    """The fields and codes of docs/api.md's "Refused values" table."""
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("\n## Refused values\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| `([a-z_]+)` \|", section, re.MULTILINE)
    table = dict(rows)
    assert rows and len(table) == len(rows), "docs/api.md lists no field, or one twice"
    return table


# --- values read from the document -------------------------------------------------------


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    while isinstance(node.get("$ref"), str):
        node = COMPONENTS[node["$ref"].rsplit("/", 1)[-1]]
    return node


def not_null(node: dict[str, Any]) -> dict[str, Any]:
    """The schema of a value other than null (the first other choice of an ``anyOf``)."""
    node = resolved(node)
    for key in ("anyOf", "oneOf", "allOf"):
        # An object's own allOf holds conditions on its properties, not its choices.
        if key in node and node.get("type") != "object":
            return not_null(next(c for c in node[key] if resolved(c).get("type") != "null"))
    return node


def valid(node: dict[str, Any]) -> Any:
    """A value ``node`` takes (an object with its required properties only)."""
    node = not_null(node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        return {name: valid(properties[name]) for name in node.get("required", [])}
    if kind == "array":
        return [valid(node["items"]) for _ in range(node.get("minItems", 0))]
    if kind in ("integer", "number"):
        return max(node.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    if kind == "string" and node.get("format") == "date-time":
        return "2099-01-01T00:00:00Z"
    pattern = node.get("pattern")
    for text in STRINGS:
        if kind == "string" and (pattern is None or re.search(pattern, text)):
            return text
    raise AssertionError(f"no valid value known for {node}")


def refused(node: dict[str, Any], code: str) -> Any:
    """A value the document refuses for a field whose refusal answers ``code``."""
    if code.startswith("empty_"):
        return "   "
    node = not_null(node)
    if "enum" in node:
        return NOT_A_CHOICE
    kind = node.get("type")
    if kind == "array":
        return [NOT_A_CHOICE] if "enum" in not_null(node["items"]) else NOT_A_CHOICE
    if kind in ("integer", "number"):
        return node["maximum"] + 1 if "maximum" in node else node.get("minimum", 0) - 1
    if kind == "string":
        return "\x00" * max(node.get("minLength", 1), 1)
    raise AssertionError(f"no refused value known for {node}")


# --- one request per documented field of each operation ------------------------------------


@dataclass(frozen=True)
class Probe:
    """A request to one operation, and the code the docs promise for it."""

    template: str
    method: str
    operation: str
    path: str
    what: str
    code: str
    #: The documented field it refuses (None: a request malformed otherwise).
    field: str | None = None
    query: tuple[tuple[str, Any], ...] = ()
    body: Any = None

    def send(self, client: Any) -> Any:
        target = self.path + (f"?{urlencode(self.query, doseq=True)}" if self.query else "")
        if self.body is None:
            return client.generic(self.method.upper(), target)
        data = json.dumps(self.body)
        return client.generic(self.method.upper(), target, data, content_type="application/json")


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]


def filled(path: str, parameters: list[dict[str, Any]], value: str | None = None) -> str:
    """``path`` with each path parameter given ``value`` (default: a valid one)."""
    for parameter in parameters:
        if parameter["in"] == "path":
            given = valid(parameter["schema"]) if value is None else value
            path = path.replace("{" + parameter["name"] + "}", quote(str(given), safe=""))
    return path


def probes_of(template: str, method: str, operation: dict[str, Any]) -> list[Probe]:
    name = operation["operationId"].rsplit("_api_", 1)[-1]
    parameters = operation.get("parameters", [])
    path = filled(template, parameters)
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json", {}).get("schema")
    body = resolved(body) if body is not None else None
    # A batch (a log append): its items are what the fields belong to.
    items = resolved(body["items"]) if body is not None and body.get("type") == "array" else None
    fields = items if items is not None else body
    base = valid(fields) if fields is not None else None

    def sent(value: Any) -> Any:
        return [value] if items is not None else value

    def probe(what: str, code: str, **kwargs: Any) -> Probe:
        return Probe(template, method, name, kwargs.pop("at", path), what, code, **kwargs)

    found = []
    for parameter in parameters:
        code = parameter.get("x-error-code")
        if parameter["in"] == "query" and code:
            query = ((parameter["name"], refused(parameter["schema"], code)),)
            body_sent = sent(base) if base is not None else None
            found.append(
                probe(parameter["name"], code, field=parameter["name"], query=query, body=body_sent)
            )
    if fields is not None:
        for prop, node in fields.get("properties", {}).items():
            code = node.get("x-error-code")
            if code is None:
                continue
            found.append(
                probe(prop, code, field=prop, body=sent({**base, prop: refused(node, code)}))
            )
            if prop in fields.get("required", []) and code.startswith("empty_"):
                left_out = {key: value for key, value in base.items() if key != prop}
                found.append(probe(f"{prop}-left-out", code, field=prop, body=sent(left_out)))
        unknown = sent({**base, "no_such_field": 1})
        found.append(
            probe("unknown-field", fields.get("x-error-code", "validation_error"), body=unknown)
        )
        return found
    if any(parameter["in"] == "path" for parameter in parameters):
        found.append(probe("nul-id", "validation_error", at=filled(template, parameters, "a\x00b")))
        return found
    texts = [
        parameter["name"]
        for parameter in parameters
        if parameter["in"] == "query"
        and not parameter.get("x-error-code")
        and not_null(parameter["schema"]).get("type") == "string"
    ]
    if texts:
        found.append(probe(f"{texts[0]}-nul", "validation_error", query=((texts[0], "a\x00b"),)))
    return found


PROBES = [
    probe
    for path, method, operation in operations()
    for probe in probes_of(path, method, operation)
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda probe: f"{probe.operation}-{probe.what}")
def test_each_operation_answers_the_documented_code_with_a_documented_status(api_client, probe):
    status = lookup(probe.code).status
    assert_error(probe.send(api_client), status, probe.code)
    responses = DOCUMENT["paths"][probe.template][probe.method]["responses"]
    assert str(status) in {str(documented) for documented in responses}, (
        f"{probe.operation} answers {status} `{probe.code}` but does not document {status}"
    )
    if probe.field is not None:
        assert documented_table().get(probe.field) == probe.code, (
            f"docs/api.md's Refused values do not give `{probe.field}` the code `{probe.code}`"
        )


def test_every_operation_taking_input_is_probed():
    probed = {probe.operation for probe in PROBES}
    taking_input = {
        operation["operationId"].rsplit("_api_", 1)[-1]
        for _, _, operation in operations()
        if operation.get("parameters") or operation.get("requestBody")
    }
    assert taking_input - probed == set()


def test_the_docs_table_is_every_field_code_the_document_states():
    stated = {(probe.field, probe.code) for probe in PROBES if probe.field is not None}
    assert stated == set(documented_table().items())


def test_each_documented_code_is_a_catalogued_refused_value():
    for field, code in documented_table().items():
        entry = lookup(code)
        assert (entry.status, entry.error is not None) == (400, True), code
        assert code in (f"invalid_{field}", f"empty_{field}", "invalid_cursor"), (
            f"`{field}`: the code of a refused field is invalid_<field> or empty_<field>"
        )
