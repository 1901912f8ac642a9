"""Fixtures for API tests: a token-authenticated client, and staff/non-staff sessions."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import ApiToken, Event
from core.tokens import api_token_create


@pytest.fixture
def api_token() -> tuple[ApiToken, str]:
    """An active API token and its clear value. Its making is the test's set-up, not
    one of the changes a test looks for on the feed: its event is left out."""
    token, clear = api_token_create(name="test-tool")
    Event.objects.filter(kind="api_token.created", subject_id=token.pk).delete()
    return token, clear


@pytest.fixture
def api_client(api_token: tuple[ApiToken, str]) -> Client:
    """A client sending ``Authorization: Bearer <api_token>`` on every request."""
    _, clear = api_token
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user(
        username="lead", password="unused-password", is_staff=True
    )


@pytest.fixture
def staff_client(staff_user) -> Client:
    """A browser-like client logged into the admin as a (non-superuser) staff user."""
    client = Client()
    client.force_login(staff_user)
    return client
