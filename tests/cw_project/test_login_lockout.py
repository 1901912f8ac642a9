"""Failed admin logins lock the username and address out for a while (django-axes)."""

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def lead(settings):
    # A fast hasher: every failed login hashes the password it was sent.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_user(
        username="lead", password=PASSWORD, is_staff=True, is_superuser=True
    )


def _login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
    )


def _fail(client: Client, times: int) -> None:
    for _ in range(times):
        response = _login(client, "lead", "wrong")
        assert response.status_code == HTTPStatus.OK  # the form again, with its error
        assert "Please enter the correct username and password" in response.text


def _lock_out(client: Client, limit: int) -> None:
    """Fail ``limit`` times: the last failure is answered with the lock."""
    _fail(client, limit - 1)
    assert _login(client, "lead", "wrong").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_a_few_mistakes_do_not_lock_anyone_out(client, lead, settings):
    _fail(client, settings.AXES_FAILURE_LIMIT - 1)

    response = _login(client, "lead", PASSWORD)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("admin:index")


def test_after_the_limit_even_the_right_password_is_refused_with_429(client, lead, settings):
    _lock_out(client, settings.AXES_FAILURE_LIMIT)

    response = _login(client, "lead", PASSWORD)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Login locked" in response.text
    assert "locked for 15 minutes after the last attempt" in response.text
    assert "manage.py axes_reset" in response.text
    assert "_auth_user_id" not in client.session
    # Thirty more tries are all refused the same way, never checked against the password.
    for _ in range(30):
        assert _login(client, "lead", "guess").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_the_lock_holds_the_username_from_that_address_only(client, lead, settings):
    _lock_out(client, settings.AXES_FAILURE_LIMIT)

    from_elsewhere = _login(Client(), "lead", PASSWORD, address="198.51.100.9")

    assert from_elsewhere.status_code == HTTPStatus.FOUND


def test_a_forwarded_for_header_does_not_move_the_lock_unless_behind_a_proxy(
    client, lead, settings
):
    _lock_out(client, settings.AXES_FAILURE_LIMIT)

    response = client.post(
        LOGIN,
        {"username": "lead", "password": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_axes_reset_lifts_the_lock(client, lead, settings):
    _lock_out(client, settings.AXES_FAILURE_LIMIT)
    assert _login(client, "lead", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS

    call_command("axes_reset", verbosity=0)

    assert _login(client, "lead", PASSWORD).status_code == HTTPStatus.FOUND


def test_the_lock_lifts_by_itself_after_the_cool_off(client, lead, settings):
    from axes.models import AccessAttempt

    _lock_out(client, settings.AXES_FAILURE_LIMIT)
    attempt = AccessAttempt.objects.get(username="lead")
    attempt.attempt_time -= settings.AXES_COOLOFF_TIME
    attempt.save()

    assert _login(client, "lead", PASSWORD).status_code == HTTPStatus.FOUND
