"""Every failure answers ``{"code", "message", "details"}`` with the status it maps to."""

from http import HTTPStatus

import pytest
from django.test import Client

from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db


# --- mapped through a test-only API built like the real one (tests/api/urls.py) -------------


@pytest.mark.urls("tests.api.urls")
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("not_found", HTTPStatus.NOT_FOUND, "task_not_found"),
        ("invalid_input", HTTPStatus.BAD_REQUEST, "bad_value"),
        ("conflict", HTTPStatus.CONFLICT, "clash"),
        ("transition", HTTPStatus.CONFLICT, "bad_transition"),
        ("cycle", HTTPStatus.CONFLICT, "dependency_cycle"),
        ("permission", HTTPStatus.FORBIDDEN, "person_required"),
        ("domain", HTTPStatus.BAD_REQUEST, "generic_refusal"),
        ("authorization", HTTPStatus.FORBIDDEN, "permission_denied"),
        ("http_error", 418, "http_418"),
        ("http404", HTTPStatus.NOT_FOUND, "not_found"),
    ],
)
def test_each_error_class_maps_to_its_status_and_code(api_client, kind, status, code):
    assert_error(api_client.get(f"/api/raise/{kind}"), status, code)


@pytest.mark.urls("tests.api.urls")
def test_domain_error_details_are_passed_through(api_client):
    body = assert_error(api_client.get("/api/raise/cycle"), HTTPStatus.CONFLICT, "dependency_cycle")
    assert body == {
        "code": "dependency_cycle",
        "message": "Cycle.",
        "details": {"cycle": ["a", "b", "a"]},
    }
    body = assert_error(
        api_client.get("/api/raise/not_found"), HTTPStatus.NOT_FOUND, "task_not_found"
    )
    assert body["details"] == {"id": "t1"}


@pytest.mark.urls("tests.api.urls")
def test_unexpected_exception_is_500_in_the_error_shape(api_token):
    _, clear = api_token
    # The test client re-raises what the API signals as an uncaught error; here the
    # response itself is under test.
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert_error(client.get("/api/raise/unexpected"), 500, "internal_error")


@pytest.mark.urls("tests.api.urls")
@pytest.mark.parametrize("debug", [False, True])
def test_unexpected_exception_details_name_the_exception_only_in_debug(api_token, settings, debug):
    settings.DEBUG = debug
    _, clear = api_token
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {clear}")
    body = assert_error(client.get("/api/raise/unexpected"), 500, "internal_error")
    assert body["details"] == ({"exception": "RuntimeError('boom')"} if debug else {})


@pytest.mark.urls("tests.api.urls")
def test_unexpected_exception_still_reaches_django_error_reporting(api_client):
    with pytest.raises(RuntimeError, match="boom"):
        api_client.get("/api/raise/unexpected")


@pytest.mark.urls("tests.api.urls")
def test_invalid_body_is_422_with_field_errors(api_client):
    response = api_client.post("/api/echo", {"count": "many"}, content_type="application/json")
    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    by_loc = {tuple(error["loc"]): error for error in body["details"]["errors"]}
    assert set(by_loc) == {("body", "payload", "name"), ("body", "payload", "count")}
    assert by_loc[("body", "payload", "name")]["type"] == "missing"
    assert "body.payload.name" in body["message"]


@pytest.mark.urls("tests.api.urls")
@pytest.mark.parametrize("raw", ["{not json", "{'name': 'x'}", b"\xff\xfe{"])
def test_malformed_json_body_is_422_not_500(api_client, raw):
    response = api_client.post("/api/echo", raw, content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")


@pytest.mark.urls("tests.api.urls")
def test_json_that_is_not_an_object_is_a_validation_error(api_client):
    response = api_client.post("/api/echo", "[1, 2]", content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


@pytest.mark.urls("tests.api.urls")
def test_bad_query_parameter_is_422(api_client):
    response = api_client.get("/api/tokens", {"limit": "lots"})
    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert body["details"]["errors"][0]["loc"] == ["query", "limit"]


# --- the real API ------------------------------------------------------------------------


def test_wrong_method_is_405_in_the_error_shape_with_allow(api_client):
    response = api_client.post("/api/whoami")
    body = assert_error(response, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert response["Allow"] == "GET"
    assert body["details"] == {"allowed": ["GET"]}


@pytest.mark.parametrize("path", ["/api/", "/api/no-such-thing", "/api/whoami/", "/api/a/b/c"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_a_json_404(api_client, path, method):
    body = assert_error(getattr(api_client, method)(path), HTTPStatus.NOT_FOUND, "not_found")
    assert body["details"] == {"path": path}


def test_unauthenticated_request_is_401_in_the_error_shape():
    assert_error(Client().get("/api/whoami"), HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_paths_outside_the_api_keep_django_responses():
    response = Client().get("/not-the-api/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not response["Content-Type"].startswith("application/json")
