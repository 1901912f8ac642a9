"""Helpers the API tests share: URLs, JSON requests, and the error-shape assertion."""

import json
from typing import Any

from django.test import Client
from django.urls import reverse

from core.errors import catalogue
from cw_project.renderers import FastJSONRenderer


def bearer(clear: str) -> Client:
    """A test client that sends ``clear`` as its bearer token."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def url(name: str, **kwargs: str) -> str:
    """The path of the operation whose handler is ``name``."""
    return reverse(f"api-1:{name}", kwargs=kwargs or None)


def as_json(value: Any) -> Any:
    """``value`` as the API's renderer writes it (datetimes in RFC 3339, to the
    microsecond, ``Z`` for UTC)."""
    return json.loads(FastJSONRenderer().render(None, value, response_status=200))  # type: ignore[arg-type]


def send_json(client: Client, method: str, path: str, data: Any) -> Any:
    return client.generic(method.upper(), path, json.dumps(data), content_type="application/json")


def post_json(client: Client, path: str, data: Any) -> Any:
    return send_json(client, "post", path, data)


def patch_json(client: Client, path: str, data: Any) -> Any:
    return send_json(client, "patch", path, data)


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` in the ``ErrorOut`` shape with ``code``; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    shape = {"code", "message", "details"}
    assert shape <= set(body) <= shape | {"deprecated_codes"}
    assert body["code"] == code
    assert body["message"]
    assert isinstance(body["details"], dict)
    # Only a code that replaced others lists them (core.errors.rename), never an empty list.
    entry = catalogue().get(code)
    replaces = list(entry.replaces) if entry is not None else []
    assert body.get("deprecated_codes", []) == replaces
    assert body.get("deprecated_codes") != []
    return body


def assert_refusal(response, code: str) -> dict[str, Any]:
    """The response is ``code`` with the status the catalogue gives it (400 for a field's
    own code such as ``invalid_limit``, 422 for ``validation_error``)."""
    entry = catalogue()[code]
    return assert_error(response, entry.status, code)
