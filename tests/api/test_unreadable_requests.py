"""Requests Django refuses to read answer in the API's error shape under /api/, never a
500 or an HTML page: over 1,000 query or form parameters, a foreign ``Host``, a chunked
body the WSGI server left unread (``cw_project.unreadable_requests``), and any other
``SuspiciousOperation`` raised outside an operation (``handler400``)."""

import io
import json
from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.exceptions import BadRequest, SuspiciousFileOperation
from django.test import Client, RequestFactory

from agents.models import Account
from core.api import plans
from cw_project.errors import bad_request
from tests import factories as f
from tests.api.helpers import assert_error, url

pytestmark = pytest.mark.django_db

#: One more query parameter than Django reads.
TOO_MANY = django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1


def many_parameters(count: int) -> str:
    return "&".join(f"p{index}=1" for index in range(count))


# --- too many parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["list_agents", "list_events", "retrieve_whoami", "list_proposals"]
)
def test_over_a_thousand_query_parameters_are_400_too_many_fields(api_client, name, settings):
    response = api_client.get(f"{url(name)}?{many_parameters(TOO_MANY)}")

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "too_many_fields")
    assert body["details"] == {"max_fields": django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}


def test_a_thousand_query_parameters_are_read(api_client):
    response = api_client.get(f"{url('list_agents')}?{many_parameters(TOO_MANY - 1)}")

    assert response.status_code == HTTPStatus.OK


def test_too_many_query_parameters_answer_json_with_debug_on_too(api_client, settings):
    settings.DEBUG = True

    response = api_client.get(f"{url('list_agents')}?{many_parameters(TOO_MANY)}")

    assert_error(response, HTTPStatus.BAD_REQUEST, "too_many_fields")


def test_a_form_of_over_a_thousand_fields_in_a_staff_session_is_400(staff_user):
    # The session's CSRF check reads the form (request.POST) during authentication.
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.cookies["csrftoken"] = "a" * 32

    response = client.post(
        url("create_account"),
        many_parameters(TOO_MANY),
        content_type="application/x-www-form-urlencoded",
    )

    assert_error(response, HTTPStatus.BAD_REQUEST, "too_many_fields")
    assert not Account.objects.exists()


# --- a foreign Host --------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_foreign_host_under_the_api_is_400_invalid_host(api_client, settings, debug, method):
    settings.DEBUG = debug

    response = getattr(api_client, method)(url("list_agents"), HTTP_HOST="evil.example")

    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_host")
    assert "evil.example" not in json.dumps(body)


def test_a_foreign_host_on_an_unknown_api_path_is_400_invalid_host(api_client):
    response = api_client.get("/api/no/such/path", HTTP_HOST="evil.example")

    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_host")


def test_a_foreign_host_outside_the_api_keeps_djangos_page(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("text/html")


# --- other refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [SuspiciousFileOperation("../etc/passwd"), BadRequest("../etc/passwd")]
)
def test_any_other_refusal_of_the_request_in_an_operation_is_400_bad_request(
    api_client, monkeypatch, error
):
    def refuse(*args: object) -> None:
        raise error

    monkeypatch.setattr(plans, "actor_from_auth", refuse)

    response = api_client.get(url("retrieve_whoami"))

    assert_error(response, HTTPStatus.BAD_REQUEST, "bad_request")
    assert "passwd" not in response.content.decode()


@pytest.mark.parametrize(
    "error", [SessionInterrupted("The session was deleted."), SuspiciousFileOperation("../etc")]
)
def test_handler400_answers_the_error_shape_under_the_api(error):
    request = RequestFactory().get("/api/agents")

    response = bad_request(request, error)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content) == {
        "code": "bad_request",
        "message": "The request cannot be read.",
        "details": {},
    }


def test_handler400_keeps_djangos_page_outside_the_api():
    request = RequestFactory().get("/admin/")

    response = bad_request(request, SessionInterrupted("The session was deleted."))

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not response["Content-Type"].startswith("application/json")


# --- a chunked body under WSGI -----------------------------------------------------------------

ACCOUNT = json.dumps({"email": "chunked@example.com"}).encode()


def chunked(client: Client, body: bytes, **environ: object):
    """POST ``body`` as a WSGI server hands a chunked request over: no Content-Length."""
    return client.generic(
        "POST",
        url("create_account"),
        body,
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **environ,
    )


def test_a_chunked_body_a_wsgi_server_left_unread_is_411_not_taken_as_empty(api_client):
    # runserver (make run) passes the chunks through undecoded and unterminated.
    response = chunked(api_client, ACCOUNT)

    assert_error(response, HTTPStatus.LENGTH_REQUIRED, "length_required")
    assert not Account.objects.exists()


def test_a_chunked_body_outside_the_api_is_411_in_words(admin_client):
    response = admin_client.generic(
        "POST", "/admin/login/", b"a=1", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert response.status_code == HTTPStatus.LENGTH_REQUIRED
    assert response["Content-Type"].startswith("text/plain")


def test_a_chunked_body_a_wsgi_server_decoded_is_read(api_client):
    # gunicorn de-chunks the body and says so with wsgi.input_terminated.
    response = chunked(
        api_client,
        ACCOUNT,
        **{"wsgi.input": io.BytesIO(ACCOUNT), "wsgi.input_terminated": True},
    )

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["email"] == "chunked@example.com"


def test_a_decoded_chunked_body_over_the_upload_limit_is_413(api_client):
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b'{"email": "' + b"x" * limit + b'"}'

    response = chunked(
        api_client, body, **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    )

    body_out = assert_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")
    assert body_out["details"] == {"max_bytes": limit}
    assert not Account.objects.exists()


def test_a_body_with_its_length_is_untouched(api_client):
    f.AccountFactory(email="other@example.com")

    response = api_client.post(url("create_account"), ACCOUNT, content_type="application/json")

    assert response.status_code == HTTPStatus.CREATED
