"""Every failure answers ``{"code", "message", "details"}`` with the status it maps to."""

import json
from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.test import Client

from reviews.models import Proposal
from tests.api.helpers import assert_error, url

pytestmark = pytest.mark.django_db


# --- mapped through a test-only API built like the real one (tests/api/urls.py) -------------


@pytest.mark.urls("tests.api.urls")
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("not_found", HTTPStatus.NOT_FOUND, "task_not_found"),
        ("invalid_input", HTTPStatus.BAD_REQUEST, "invalid_field"),
        ("conflict", HTTPStatus.CONFLICT, "token_already_revoked"),
        ("transition", HTTPStatus.CONFLICT, "task_not_ready"),
        ("cycle", HTTPStatus.CONFLICT, "dependency_cycle"),
        ("permission", HTTPStatus.FORBIDDEN, "person_required"),
        ("domain", HTTPStatus.BAD_REQUEST, "invalid_value"),
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
def test_unexpected_exception_is_never_described_in_the_body(api_token, settings, debug):
    # An exception's text can quote the input (a submitted secret); it is logged
    # server-side, never answered, even with DEBUG on.
    settings.DEBUG = debug
    _, clear = api_token
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {clear}")
    response = client.get("/api/raise/unexpected")
    body = assert_error(response, 500, "internal_error")
    assert body["details"] == {}
    assert "boom" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()


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
def test_a_refused_value_of_a_field_with_a_code_answers_that_code(api_client):
    response = api_client.get("/api/tokens", {"limit": "lots"})
    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_limit")
    assert body["details"]["errors"][0]["loc"] == ["query", "limit"]
    assert "lots" not in response.content.decode()  # the value is never answered


@pytest.mark.urls("tests.api.urls")
def test_several_refused_fields_with_codes_answer_the_first_and_list_all(api_client):
    response = api_client.get("/api/tokens", {"offset": -1, "limit": "lots"})
    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_limit")
    locations = [error["loc"] for error in body["details"]["errors"]]
    assert locations == [["query", "limit"], ["query", "offset"]]


@pytest.mark.urls("tests.api.urls")
def test_a_problem_without_a_code_beside_one_with_a_code_is_422(api_client):
    response = api_client.post("/api/echo", {"count": "many"}, content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")


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


# --- bodies larger than Django reads -----------------------------------------------------


def oversized_json() -> str:
    """A well-formed proposal body one byte over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    start = (
        '{"agent_id": "a", "initiative_id": "i", "target_type": "task", "title": "T", "content": "'
    )
    end = '"}'
    raw = start + "x" * (limit + 1 - len(start) - len(end)) + end
    assert len(raw.encode()) == limit + 1
    json.loads(raw)
    return raw


def test_body_over_the_upload_limit_is_413_payload_too_large(api_client):
    response = api_client.post(
        url("create_proposal"), oversized_json(), content_type="application/json"
    )

    body = assert_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    assert str(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["message"]
    assert body["details"] == {"max_bytes": django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert not Proposal.objects.exists()


def test_form_body_over_the_upload_limit_in_a_staff_session_is_413(staff_user):
    # The session's CSRF check reads the form body (request.POST) during authentication.
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.cookies["csrftoken"] = "a" * 32  # else the check fails before reading the form
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    form = "content=" + "x" * limit

    response = client.post(
        url("create_proposal"), form, content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    assert not Proposal.objects.exists()


def test_body_at_the_upload_limit_is_read(api_client):
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = oversized_json().replace("x", "", 1)
    assert len(raw.encode()) == limit

    response = api_client.post(url("create_proposal"), raw, content_type="application/json")

    # Read and validated (the ids name no records), not refused for its size.
    assert response.status_code != HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert 400 <= response.status_code < 500
