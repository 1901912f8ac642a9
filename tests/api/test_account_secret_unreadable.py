"""A claim (an account claim, a registration's, a take-next's) that meets a secret the
configured keys cannot decrypt answers 409 ``account_secret_unreadable`` in the error
shape, naming the account: never a 500, and nothing written."""

from http import HTTPStatus

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.urls import reverse

from agents.models import Account, Agent, Run
from core.models import Event
from tests.api.helpers import assert_error, post_json
from tests.factories import AccountFactory, InitiativeFactory, PhaseFactory, TaskFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-unreadable"}}'
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def stale_account() -> Account:
    """An account whose secrets were encrypted with a key no longer configured."""
    with override_settings(CW_SECRET_KEYS=[OLD_KEY]):
        return AccountFactory(email="stale@example.com", credentials=CREDENTIALS)


@override_settings(CW_SECRET_KEYS=[NEW_KEY])
def test_claim_with_an_unreadable_secret_is_409_naming_the_account(api_client, stale_account):
    response = post_json(api_client, reverse("api-1:claim_account"), {"provider": "claude"})

    body = assert_error(response, HTTPStatus.CONFLICT, "account_secret_unreadable")
    assert body["details"] == {
        "provider": "claude",
        "account_ids": [stale_account.pk],
        "setting": "CW_SECRET_KEYS",
    }
    assert "stale@example.com" in body["message"]
    assert "rotate_secrets" in body["message"]
    assert "sk-ant" not in response.content.decode()
    assert OLD_KEY not in response.content.decode()
    assert NEW_KEY not in response.content.decode()
    # Nothing was claimed nor recorded.
    assert Account.objects.values_list("last_used_at", flat=True).get() is None
    assert not Event.objects.filter(kind="account.claimed").exists()


@override_settings(CW_SECRET_KEYS=[NEW_KEY])
def test_registering_an_agent_with_a_claim_answers_the_same_code(api_client, stale_account):
    response = post_json(
        api_client, reverse("api-1:register_agent"), {"worktree_id": "/w/1", "claim_account": True}
    )

    assert_error(response, HTTPStatus.CONFLICT, "account_secret_unreadable")
    assert not Agent.objects.exists()


def test_the_claim_works_again_once_the_old_key_is_back(api_client, stale_account):
    with override_settings(CW_SECRET_KEYS=[NEW_KEY, OLD_KEY]):
        response = post_json(api_client, reverse("api-1:claim_account"), {"provider": "claude"})
    assert response.status_code == HTTPStatus.OK
    assert response.json()["credentials"] == CREDENTIALS


@override_settings(CW_SECRET_KEYS=[NEW_KEY])
def test_take_next_with_an_unreadable_secret_is_409_and_writes_nothing(api_client, stale_account):
    initiative = InitiativeFactory(execution_mode="yolo")
    task = TaskFactory(phase=PhaseFactory(initiative=initiative, status="in_progress"))
    body = {"runner_name": "runner-1", "runner_host": "build-01", "providers": ["claude"]}

    response = post_json(api_client, reverse("api-1:take_next_run"), body)

    error = assert_error(response, HTTPStatus.CONFLICT, "account_secret_unreadable")
    assert error["details"]["account_ids"] == [stale_account.pk]
    assert "sk-ant" not in response.content.decode()
    # Nothing of the claim was written: no run, no agent, the task still pending.
    task.refresh_from_db()
    assert task.status == "pending"
    assert not Run.objects.exists() and not Agent.objects.exists()
    assert Account.objects.values_list("last_used_at", flat=True).get() is None
    assert not Event.objects.exists()
