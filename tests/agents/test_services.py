"""The agents services: every door adds and changes accounts through them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.models import Account, MessageStatus
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db

CONFIG = '{"token": "CONFIG-SECRET"}'


def test_account_create_adds_an_account_with_its_secrets():
    account = services.account_create(email="dev@example.com", config_json=CONFIG)

    stored = Account.objects.get(pk=account.pk)
    assert (stored.email, stored.provider, stored.sort_order) == ("dev@example.com", "claude", 0)
    assert (stored.config_json, stored.credentials) == (CONFIG, None)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"email": "not an email"}, "invalid_email"),
        ({"email": "dev@example.com", "credentials": "not json"}, "invalid_json"),
        ({"email": "dev@example.com", "sort_order": 2**31}, "invalid_value"),
    ],
    ids=["email", "secret-not-json", "sort-order-beyond-32-bits"],
)
def test_account_create_refuses_a_bad_field_and_writes_nothing(fields, code):
    with pytest.raises(InvalidInput) as error:
        services.account_create(**fields)

    assert error.value.code == code
    assert "not json" not in error.value.message
    assert not Account.objects.exists()


def test_account_create_refuses_the_same_provider_and_email_twice():
    services.account_create(email="dev@example.com")

    with pytest.raises(Conflict) as error:
        services.account_create(email="Dev@Example.com")

    assert error.value.code == "account_email_taken"
    assert Account.objects.count() == 1


def test_account_update_changes_only_the_fields_given_and_none_clears_a_secret():
    account = f.AccountFactory(config_json=CONFIG, credentials=CONFIG, sort_order=1)

    services.account_update(account_id=account.id, sort_order=5, credentials=None)

    stored = Account.objects.get(pk=account.pk)
    assert (stored.sort_order, stored.config_json, stored.credentials) == (5, CONFIG, None)


@pytest.mark.parametrize("field", ["is_exhausted", "exhausted_until", "last_used_at", "colour"])
def test_account_update_refuses_rotation_state_and_unknown_fields(field):
    account = f.AccountFactory(is_exhausted=True)

    with pytest.raises(InvalidInput) as error:
        services.account_update(account_id=account.id, **{field: None})

    assert (error.value.code, error.value.details) == ("invalid_field", {"fields": [field]})
    assert Account.objects.get(pk=account.pk).is_exhausted is True


def test_account_update_of_a_missing_account_is_not_found():
    with pytest.raises(NotFound) as error:
        services.account_update(account_id="missing", sort_order=1)
    assert error.value.code == "account_not_found"


def test_account_release_puts_a_parked_account_back():
    account = f.AccountFactory(
        is_exhausted=True, exhausted_until=timezone.now() + timedelta(hours=1)
    )

    services.account_release(account_id=account.id)

    stored = Account.objects.get(pk=account.pk)
    assert (stored.is_exhausted, stored.exhausted_until) == (False, None)


def test_message_mark_read_reads_a_pending_message_once():
    message = f.MessageFactory()

    assert services.message_mark_read(message_id=message.id).status == MessageStatus.READ
    with pytest.raises(NotFound):
        services.message_mark_read(message_id="missing")


# --- account events -------------------------------------------------------------------------


def test_account_claim_records_account_claimed():
    account = f.AccountFactory()
    services.account_claim(provider="claude")
    event = Event.objects.get(kind="account.claimed")
    assert (event.subject_type, event.subject_id) == ("account", account.id)


def test_account_exhaust_and_release_record_their_events():
    account = f.AccountFactory()
    until = timezone.now() + timedelta(hours=1)
    services.account_mark_exhausted(account_id=account.id, until=until)
    services.account_release(account_id=account.id)
    events = list(Event.objects.order_by("id"))
    assert [e.kind for e in events] == ["account.exhausted", "account.released"]
    assert events[0].data == {"until": until.isoformat()}


def test_clearing_expired_exhaustion_records_a_release_per_account():
    lapsed = f.AccountFactory(is_exhausted=True, exhausted_until=timezone.now() - timedelta(1))
    f.AccountFactory(is_exhausted=True, exhausted_until=timezone.now() + timedelta(1))
    assert services.account_clear_expired_exhaustion() == 1
    assert list(Event.objects.values_list("kind", "subject_id")) == [
        ("account.released", lapsed.id)
    ]


def account_events():
    return list(Event.objects.order_by("id").values_list("kind", "subject_id", "data"))


def test_account_create_update_and_delete_record_their_events_without_a_secret():
    account = services.account_create(email="dev@example.com", config_json=CONFIG)
    services.account_update(account_id=account.id, sort_order=0)  # no change
    services.account_update(account_id=account.id, credentials=None)  # clears nothing set
    services.account_update(account_id=account.id, sort_order=2, config_json=CONFIG)
    services.account_delete(account_id=account.id)

    login = {"provider": "claude", "email": "dev@example.com"}
    assert account_events() == [
        ("account.created", account.id, login),
        ("account.updated", account.id, {"fields": ["sort_order", "config_json"]}),
        ("account.deleted", account.id, login),
    ]
    assert "CONFIG-SECRET" not in str(list(Event.objects.values_list("data", flat=True)))
    assert not Account.objects.exists()


def test_clearing_a_secret_that_was_set_is_a_change():
    account = f.AccountFactory(credentials=CONFIG)

    services.account_update(account_id=account.id, credentials=None)

    assert account_events() == [("account.updated", account.id, {"fields": ["credentials"]})]


def test_refused_account_writes_record_nothing():
    taken = f.AccountFactory(email="taken@example.com")

    with pytest.raises(Conflict):
        services.account_create(email="taken@example.com")
    with pytest.raises(InvalidInput):
        services.account_update(account_id=taken.id, email="not an email")
    with pytest.raises(NotFound):
        services.account_delete(account_id="missing")

    assert account_events() == []


def test_releasing_an_account_that_is_not_parked_records_nothing():
    account = f.AccountFactory()

    services.account_release(account_id=account.id)

    assert account_events() == []


# --- providers ------------------------------------------------------------------------------


def test_an_account_or_agent_of_an_unknown_provider_is_refused():
    from agents import services as agent_services
    from agents.models import Account, Agent
    from core.errors import InvalidInput

    account = f.AccountFactory(provider="claude")
    agent = f.AgentFactory(provider="claude")
    calls = [
        lambda: agent_services.account_create(email="a@example.com", provider="clod"),
        lambda: agent_services.account_update(account_id=account.pk, provider="clod"),
        lambda: agent_services.agent_register(worktree_id="/w", provider="clod"),
        lambda: agent_services.agent_update(agent_id=agent.pk, provider="clod"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as refused:
            call()
        assert refused.value.code == "invalid_provider"
        assert refused.value.details["allowed"] == ["claude", "codex", "gemini"]
    assert list(Account.objects.values_list("provider", flat=True)) == ["claude"]
    assert list(Agent.objects.values_list("provider", flat=True)) == ["claude"]
