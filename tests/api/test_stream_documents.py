"""The OpenAPI document describes what the server-sent event streams send: before OpenAPI
3.2's ``itemSchema``, a ``text/event-stream`` media type's ``schema`` is one event
(``id``, ``event``, ``data`` as strings), which is how schemathesis validates each event
a stream sends."""

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.specs.openapi.checks import response_schema_conformance

from agents.services import logs as services_logs
from core import services
from cw_project.api import api
from cw_project.wsgi import application
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """A stream ends after a second here, so a call returns with the whole stream."""
    monkeypatch.setenv("CW_SSE_MAX_SECONDS", "1")


@pytest.fixture(autouse=True)
def connection_kept():
    """The WSGI handler would close the test's connection (and its transaction) after each
    call: disconnected while the test runs, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _validated(path: str, parameters: dict[str, Any], token: str) -> None:
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    operation = schema[path]["GET"]
    case = operation.Case(path_parameters=parameters, headers={"Authorization": f"Bearer {token}"})
    response = case.call(app=application)
    assert response.status_code == 200
    assert b"data: " in response.content
    case.validate_response(response, checks=[response_schema_conformance])


def test_the_event_streams_events_match_the_document(api_token):
    services.initiative_create(name="One")
    _validated("/api/events/stream", {}, api_token[1])


def test_an_agents_log_events_match_the_document(api_token):
    agent = f.AgentFactory()
    services_logs.agent_log_append(agent_id=agent.id, chunks=[{"content": '{"n": 1}'}])
    _validated("/api/agents/{agent_id}/logs/events", {"agent_id": agent.id}, api_token[1])
