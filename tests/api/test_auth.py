"""Who may call the API: bearer tokens for tools, admin sessions for staff, nobody else."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from core.models import ApiToken
from core.tokens import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db

WHOAMI = "/api/whoami"
CSRF_SECRET = "a" * 32  # a well-formed CSRF secret: 32 alphanumeric characters


def assert_not_authenticated(response) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert set(body) == {"code", "message", "details"}


def test_no_credentials_is_401_in_the_error_shape():
    assert_not_authenticated(Client().get(WHOAMI))


@pytest.mark.parametrize(
    "header",
    ["Bearer garbage", "Bearer ", "Bearer cw_" + "x" * 43, "Basic dXNlcjpwYXNz", "cw_token"],
)
def test_garbage_or_malformed_authorization_is_401(header):
    assert_not_authenticated(Client(HTTP_AUTHORIZATION=header).get(WHOAMI))


def test_revoked_token_is_401(api_token):
    token, clear = api_token
    api_token_revoke(token_id_or_prefix=token.pk)
    assert_not_authenticated(Client(HTTP_AUTHORIZATION=f"Bearer {clear}").get(WHOAMI))


def test_valid_token_is_200_and_stamps_last_used_at(api_client, api_token):
    token, _ = api_token
    assert token.last_used_at is None
    response = api_client.get(WHOAMI)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "kind": "token",
        "name": "test-tool",
        "actor": {"type": "tool", "id": token.pk, "name": "test-tool", "via": "api"},
    }
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)


def test_recent_last_used_at_is_not_rewritten_on_every_request(
    api_client, api_token, django_assert_num_queries
):
    token, _ = api_token
    api_client.get(WHOAMI)
    token.refresh_from_db()
    first_use = token.last_used_at
    # One SELECT for the token, and no UPDATE while last_used_at is recent.
    with django_assert_num_queries(1):
        assert api_client.get(WHOAMI).status_code == HTTPStatus.OK
    token.refresh_from_db()
    assert token.last_used_at == first_use


def test_last_used_at_older_than_a_minute_is_stamped_again(api_client, api_token):
    token, _ = api_token
    stale = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    api_client.get(WHOAMI)
    token.refresh_from_db()
    assert token.last_used_at > stale + timedelta(minutes=1)


def test_staff_session_is_200_as_the_user(staff_client, staff_user):
    response = staff_client.get(WHOAMI)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "kind": "user",
        "name": "lead",
        "actor": {"type": "person", "id": str(staff_user.pk), "name": "lead", "via": "api"},
    }


def test_non_staff_session_is_403_staff_required():
    user = get_user_model().objects.create_user(username="visitor", password="unused-password")
    client = Client()
    client.force_login(user)
    response = client.get(WHOAMI)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["code"] == "staff_required"


def test_inactive_staff_session_is_401(staff_user, staff_client):
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])
    assert_not_authenticated(staff_client.get(WHOAMI))


def test_bad_bearer_token_does_not_fall_back_to_the_session(staff_client):
    assert_not_authenticated(staff_client.get(WHOAMI, HTTP_AUTHORIZATION="Bearer garbage"))


def test_bearer_token_wins_over_a_session(staff_client, api_token):
    _, clear = api_token
    response = staff_client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert response.json()["actor"]["type"] == "tool"
    assert response.json()["name"] == "test-tool"


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json"])
def test_docs_and_schema_answer_without_authentication(path):
    assert Client().get(path).status_code == HTTPStatus.OK


def test_database_never_holds_the_clear_token(api_client):
    tokens = [api_token_create(name=f"tool-{i}")[1] for i in range(3)]
    api_client.get(WHOAMI)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_tokens")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert stored  # the rows are there...
    for clear in tokens:
        assert clear not in stored  # ...but no clear token,
        assert clear[len("cw_") :] not in stored  # not even without its marker.


# --- unsafe methods: session requests need CSRF, bearer requests do not --------------------


@pytest.fixture
def csrf_staff_client(staff_user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


@pytest.mark.urls("tests.api.urls")
def test_session_post_without_csrf_token_is_403_csrf_failed(csrf_staff_client):
    response = csrf_staff_client.post("/api/echo", {"name": "x"}, content_type="application/json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["code"] == "csrf_failed"


@pytest.mark.urls("tests.api.urls")
def test_session_post_with_csrf_token_is_accepted(csrf_staff_client):
    csrf_staff_client.cookies["csrftoken"] = CSRF_SECRET
    response = csrf_staff_client.post(
        "/api/echo",
        {"name": "x"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=CSRF_SECRET,
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"name": "x", "count": 1}


@pytest.mark.urls("tests.api.urls")
def test_bearer_post_needs_no_csrf_token(api_token):
    _, clear = api_token
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {clear}")
    response = client.post("/api/echo", {"name": "x"}, content_type="application/json")
    assert response.status_code == HTTPStatus.OK


@pytest.mark.urls("tests.api.urls")
def test_garbage_bearer_post_is_401_not_a_csrf_failure():
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer garbage")
    response = client.post("/api/echo", {"name": "x"}, content_type="application/json")
    assert_not_authenticated(response)


@pytest.mark.urls("tests.api.urls")
def test_stale_session_cookie_post_is_401_not_a_csrf_failure():
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "no-such-session"
    response = client.post("/api/echo", {"name": "x"}, content_type="application/json")
    assert_not_authenticated(response)


@pytest.mark.urls("tests.api.urls")
def test_non_staff_session_post_is_403_staff_required_before_csrf():
    user = get_user_model().objects.create_user(username="visitor", password="unused-password")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/echo", {"name": "x"}, content_type="application/json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["code"] == "staff_required"
