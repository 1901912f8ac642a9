"""The agents admin: accounts save through the services and never show a secret;
agents and messages save through their repositories with read-only statuses; log chunks
are read-only history."""

import json
import re
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agents import services
from agents.admin import AGENT_RUNTIME_FIELDS
from agents.models import Account, Agent, AgentLogChunk, Message
from core.models import Event
from tests import factories as f
from tests.admin_actions import run_admin_action

pytestmark = pytest.mark.django_db

CONFIG = '{"token": "CONFIG-SECRET-4b1d"}'
CREDENTIALS = '{"oauth": "CREDENTIAL-SECRET-9f2e"}'


@pytest.fixture
def account():
    return Account.objects.create(
        email="a@example.com", config_json=CONFIG, credentials=CREDENTIALS
    )


def test_changelist_and_change_page_never_show_secrets(admin_client, account):
    for url in (
        reverse("admin:agents_account_changelist"),
        reverse("admin:agents_account_change", args=[account.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK
        body = response.content.decode()
        assert "CONFIG-SECRET" not in body
        assert "CREDENTIAL-SECRET" not in body
        assert "fernet:" not in body


def _post(admin_client, account, **extra):
    data = {
        "email": account.email,
        "provider": account.provider,
        "sort_order": 0,
        "new_config_json": "",
        "new_credentials": "",
        **extra,
    }
    return admin_client.post(reverse("admin:agents_account_change", args=[account.pk]), data)


def test_saving_without_new_secrets_keeps_them(admin_client, account):
    response = _post(admin_client, account, email="b@example.com")
    assert response.status_code == HTTPStatus.FOUND
    account.refresh_from_db()
    assert (account.email, account.config_json, account.credentials) == (
        "b@example.com",
        CONFIG,
        CREDENTIALS,
    )


def test_a_secret_can_be_replaced_or_cleared(admin_client, account):
    _post(admin_client, account, new_config_json='{"token": "new"}', clear_credentials="on")
    account.refresh_from_db()
    assert account.config_json == '{"token": "new"}'
    assert account.credentials is None


def test_a_secret_that_is_not_json_is_refused_with_a_message(admin_client, account):
    response = _post(admin_client, account, new_credentials="not json")
    assert response.status_code == HTTPStatus.OK
    assert "must be JSON text" in response.content.decode()
    account.refresh_from_db()
    assert account.credentials == CREDENTIALS


def test_a_refused_form_does_not_echo_the_submitted_secrets(admin_client, account):
    response = _post(
        admin_client,
        account,
        email="not an email",
        new_config_json='{"token": "TYPED-SECRET-1"}',
        new_credentials='{"oauth": "TYPED-SECRET-2"}',
    )
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert "TYPED-SECRET" not in body


def test_exhaustion_is_read_only_in_the_form_and_released_by_an_action(admin_client, account):
    from datetime import timedelta

    from django.utils import timezone

    Account.objects.filter(pk=account.pk).update(
        is_exhausted=True, exhausted_until=timezone.now() + timedelta(hours=1)
    )
    page = admin_client.get(reverse("admin:agents_account_change", args=[account.pk]))
    assert 'name="is_exhausted"' not in page.content.decode()

    admin_client.post(
        reverse("admin:agents_account_changelist"),
        {"action": "account_release", "_selected_action": [account.pk]},
    )

    account.refresh_from_db()
    assert (account.is_exhausted, account.exhausted_until) == (False, None)


# --- accounts save through the services ---------------------------------------------------


def _add(admin_client, **data):
    return admin_client.post(
        reverse("admin:agents_account_add"),
        {
            "provider": "claude",
            "sort_order": 0,
            "new_config_json": "",
            "new_credentials": "",
            **data,
        },
    )


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def test_adding_an_account_goes_through_account_create(admin_client, monkeypatch):
    calls = []
    real = services.account_create

    def spy(**fields):
        calls.append(sorted(fields))
        return real(**fields)

    monkeypatch.setattr(services, "account_create", spy)

    response = _add(admin_client, email="dev@example.com", new_credentials=CREDENTIALS)

    assert response.status_code == HTTPStatus.FOUND
    stored = Account.objects.get()
    assert (stored.email, stored.credentials, stored.config_json) == (
        "dev@example.com",
        CREDENTIALS,
        None,
    )
    # Once to check the rules on the form (rolled back), once to save.
    assert calls == [["credentials", "email", "provider", "sort_order"]] * 2


def test_changing_an_account_goes_through_account_update_with_only_what_changed(
    admin_client, account, monkeypatch
):
    calls = []
    real = services.account_update

    def spy(**fields):
        calls.append(fields)
        return real(**fields)

    monkeypatch.setattr(services, "account_update", spy)

    response = _post(admin_client, account, sort_order=7, clear_config_json="on")

    assert response.status_code == HTTPStatus.FOUND
    assert calls[-1] == {"account_id": account.pk, "sort_order": 7, "config_json": None}
    account.refresh_from_db()
    assert (account.sort_order, account.config_json, account.credentials) == (7, None, CREDENTIALS)


@pytest.mark.parametrize("email", ["a@example.com", "A@Example.com"])
def test_a_duplicate_account_is_refused_on_the_add_form_and_nothing_is_written(
    admin_client, account, email
):
    response = _add(admin_client, email=email, new_config_json='{"token": "TYPED-SECRET"}')

    assert response.status_code == HTTPStatus.OK
    assert "already exists" in _errors(response)
    assert "Constraint" not in _errors(response)
    assert "TYPED-SECRET" not in response.content.decode()
    assert Account.objects.count() == 1


def test_an_account_cannot_be_changed_into_a_duplicate(admin_client, account):
    other = Account.objects.create(email="b@example.com")

    response = _post(admin_client, other, email="a@example.com")

    assert response.status_code == HTTPStatus.OK
    assert "already exists" in _errors(response)
    other.refresh_from_db()
    assert other.email == "b@example.com"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"email": "not an email"}, ("valid email",)),
        # Refused by the form on PostgreSQL (its integer range), by the repository on SQLite.
        ({"email": "dev@example.com", "sort_order": 2**40}, ("sort_order", "2147483647")),
    ],
    ids=["not-an-email", "sort-order-beyond-32-bits"],
)
def test_a_refused_add_shows_the_reason_in_words_and_writes_nothing(admin_client, data, words):
    response = _add(admin_client, **data)

    assert response.status_code == HTTPStatus.OK
    assert any(word in _errors(response) for word in words), _errors(response)
    assert not Account.objects.exists()


def test_saving_an_account_decrypts_no_secret(admin_client, account, monkeypatch):
    def refuse_to_decrypt(value: str) -> str:
        raise AssertionError("a secret was decrypted")

    monkeypatch.setattr("agents.secrets.decrypt", refuse_to_decrypt)

    response = _post(admin_client, account, sort_order=3)

    assert response.status_code == HTTPStatus.FOUND
    monkeypatch.undo()
    account.refresh_from_db()
    assert (account.sort_order, account.credentials) == (3, CREDENTIALS)


# --- agents and messages: statuses are read-only; log chunks are history -------------------


def test_agent_status_and_runtime_columns_are_read_only(admin_client):
    agent = f.AgentFactory(pid=12, session_id="sess-1")
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    page = admin_client.get(url).content.decode()
    for name in AGENT_RUNTIME_FIELDS:
        assert f'name="{name}"' not in page

    response = admin_client.post(
        url,
        {
            "name": "renamed",
            "worktree_id": agent.worktree_id,
            "provider": agent.provider,
            "mode": agent.mode,
            "status": "running",
            "pid": "99",
            "session_id": "sess-2",
            "result": "{}",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    agent.refresh_from_db()
    assert (agent.name, agent.status, agent.pid, agent.session_id, agent.result) == (
        "renamed",
        "idle",
        12,
        "sess-1",
        None,
    )


def test_an_agent_added_in_the_admin_goes_through_the_repository(admin_client):
    f.AgentFactory(name="brave-otter")
    data = {"worktree_id": "/srv/wt/1", "provider": "claude", "mode": "execute"}

    refused = admin_client.post(reverse("admin:agents_agent_add"), {**data, "name": "brave-otter"})
    added = admin_client.post(reverse("admin:agents_agent_add"), {**data, "name": "calm-fox"})

    assert refused.status_code == HTTPStatus.OK
    assert "already exists" in _errors(refused)
    assert added.status_code == HTTPStatus.FOUND
    assert Agent.objects.get(name="calm-fox").status == "idle"


def test_agent_pages_never_read_their_accounts_secrets(admin_client, monkeypatch):
    account = Account.objects.create(email="a@example.com", credentials=CREDENTIALS)
    agent = f.AgentFactory(account=account)

    def refuse_to_decrypt(value: str) -> str:
        raise AssertionError("a secret was decrypted")

    monkeypatch.setattr("agents.secrets.decrypt", refuse_to_decrypt)

    for url in (
        reverse("admin:agents_agent_changelist"),
        reverse("admin:agents_agent_change", args=[agent.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK
        assert "a@example.com" in response.content.decode()


def test_the_agent_list_costs_the_same_queries_at_any_size(admin_client):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse("admin:agents_agent_changelist")).status_code == 200
        return len(captured)

    f.AgentFactory(task=f.TaskFactory(), account=f.AccountFactory())
    few = queries_for_the_list()
    for _ in range(10):
        f.AgentFactory(task=f.TaskFactory(), account=f.AccountFactory())

    assert queries_for_the_list() == few


def test_message_status_is_read_only_and_changes_through_the_mark_read_action(admin_client):
    message = f.MessageFactory()
    url = reverse("admin:agents_message_change", args=[message.pk])
    assert 'name="status"' not in admin_client.get(url).content.decode()

    admin_client.post(
        url,
        {
            "sender_type": message.sender_type,
            "recipient_type": message.recipient_type,
            "type": message.type,
            "content": message.content,
            "status": "responded",
        },
    )
    message.refresh_from_db()
    assert message.status == "pending"

    admin_client.post(
        reverse("admin:agents_message_changelist"),
        {"action": "message_mark_read", "_selected_action": [message.pk]},
    )
    message.refresh_from_db()
    assert message.status == "read"


def test_a_message_with_blank_content_is_refused_on_the_add_form(admin_client):
    response = admin_client.post(
        reverse("admin:agents_message_add"),
        {"sender_type": "agent", "recipient_type": "user", "type": "info", "content": "   "},
    )

    assert response.status_code == HTTPStatus.OK
    assert _errors(response)
    assert not Message.objects.exists()


def test_log_chunks_cannot_be_added_or_changed_but_can_be_deleted(admin_client):
    chunk = f.AgentLogChunkFactory()
    change = reverse("admin:agents_agentlogchunk_change", args=[chunk.pk])

    assert admin_client.get(reverse("admin:agents_agentlogchunk_add")).status_code == (
        HTTPStatus.FORBIDDEN
    )
    page = admin_client.get(change)
    assert page.status_code == HTTPStatus.OK  # a view-only page
    assert 'name="content"' not in page.content.decode()
    admin_client.post(change, {"content": '{"edited": true}'})
    chunk.refresh_from_db()
    assert chunk.content != '{"edited": true}'

    response = admin_client.post(
        reverse("admin:agents_agentlogchunk_delete", args=[chunk.pk]), {"post": "yes"}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert not AgentLogChunk.objects.filter(pk=chunk.pk).exists()


def test_the_log_chunk_list_filters_by_agent_and_session(admin_client):
    wanted = f.AgentLogChunkFactory(agent_id="a" * 22, session_number=2)
    f.AgentLogChunkFactory(agent_id="a" * 22, session_number=1)
    f.AgentLogChunkFactory(agent_id="b" * 22, session_number=2)

    response = admin_client.get(
        reverse("admin:agents_agentlogchunk_changelist"),
        {"agent_id": "a" * 22, "session_number": "2"},
    )

    assert response.status_code == HTTPStatus.OK
    assert [c.pk for c in response.context["cl"].result_list] == [wanted.pk]


# --- agents change through the services' actions ------------------------------------------


def test_dismiss_action_dismisses_a_finished_agent_and_refuses_one_at_work(admin_client):
    finished = f.AgentFactory(status="stopped")
    working = f.AgentFactory(status="running")
    shown = run_admin_action(admin_client, "agents_agent", "agent_dismiss", finished, working)
    finished.refresh_from_db()
    working.refresh_from_db()
    assert finished.user_dismissed_at is not None
    assert working.user_dismissed_at is None
    assert any("done for 1" in message for message in shown)
    assert any(working.name in message for message in shown)
    assert list(Event.objects.values_list("kind", flat=True)) == ["agent.dismissed"]


def test_mark_stopped_action_stops_a_running_agent(admin_client):
    agent = f.AgentFactory(status="running")
    run_admin_action(admin_client, "agents_agent", "agent_mark_stopped", agent)
    agent.refresh_from_db()
    assert agent.status == "stopped"


def test_the_message_list_filters_by_whether_a_reply_came(admin_client):
    """The "reply" filter: also what makes the dashboard's ``replies__isnull`` links
    legal (Django accepts a lookup across a reverse relation only from a list filter)."""
    asked = f.MessageFactory(requires_response=True)
    f.MessageFactory(parent_message=asked, sender_type="user", recipient_type="agent")
    waiting = f.MessageFactory(requires_response=True)
    url = reverse("admin:agents_message_changelist")

    def listed(value: str) -> set[str]:
        page = admin_client.get(url, {"replies__isnull": value, "requires_response__exact": "1"})
        assert page.status_code == HTTPStatus.OK
        return {obj.pk for obj in page.context["cl"].result_list}

    assert listed("True") == {waiting.pk}
    assert listed("False") == {asked.pk}


# --- an agent's result and questions read in words -------------------------------------------


def test_an_agents_result_shows_as_labelled_fields_not_json(admin_client):
    agent = f.AgentFactory(
        result=json.dumps(
            {"subtype": "success", "result": "Wrote the views.\nAll tests pass.", "num_turns": 7}
        )
    )
    page = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    assert "<dt>Outcome</dt><dd>success</dd>" in page
    assert "<dt>Result</dt><dd>Wrote the views.<br>All tests pass.</dd>" in page
    assert "<dt>Turns</dt><dd>7</dd>" in page
    assert "&quot;subtype&quot;" not in page and '"subtype"' not in page


def test_an_agents_pending_questions_show_as_a_list_with_their_options(admin_client):
    questions = [
        {
            "question": "Which database?",
            "header": "Storage",
            "options": [{"label": "PostgreSQL", "description": "several workers"}],
        }
    ]
    agent = f.AgentFactory(status="waiting_for_input", pending_questions=json.dumps(questions))
    page = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    assert '<ol class="cw-questions"><li><span class="cw-question-header">Storage</span>' in page
    assert "<li><strong>PostgreSQL</strong> — several workers</li>" in page
    assert "&quot;question&quot;" not in page


# --- whom a message is from, which provider an account is of -------------------------------


def test_a_messages_sender_is_chosen_among_the_agents_and_people(admin_client, admin_user):
    agent = f.AgentFactory(name="brave-otter")

    html = admin_client.get(reverse("admin:agents_message_add")).content.decode()

    sender = re.search(r'<select name="sender_id".*?</select>', html, re.DOTALL)
    assert sender is not None
    assert f'<option value="{agent.pk}">brave-otter</option>' in sender.group(0)
    assert f'<option value="{admin_user.pk}">{admin_user.username}</option>' in sender.group(0)


def test_a_message_from_no_such_agent_is_refused_on_the_form(admin_client):
    agent = f.AgentFactory()
    message = services.message_send(
        sender_type="agent", sender_id=agent.pk, recipient_type="user", content="Hi"
    )
    form = {"sender_type": "agent", "recipient_type": "user", "type": "info", "content": "Hi"}

    added = admin_client.post(
        reverse("admin:agents_message_add"), {**form, "sender_id": "no-such-agent"}
    )
    changed = admin_client.post(
        reverse("admin:agents_message_change", args=[message.pk]),
        {**form, "sender_id": "no-such-agent"},
    )
    unnamed = admin_client.post(reverse("admin:agents_message_add"), {**form, "sender_id": ""})

    for response in (added, changed):
        assert response.status_code == HTTPStatus.OK
        assert "no-such-agent is not one of the available choices" in str(_errors(response))
    assert "A message from an agent names the agent" in unnamed.content.decode()
    assert list(Message.objects.values_list("sender_id", flat=True)) == [agent.pk]


def test_an_accounts_provider_is_a_choice_of_the_known_ones(admin_client):
    html = admin_client.get(reverse("admin:agents_account_add")).content.decode()
    provider = re.search(r'<select name="provider".*?</select>', html, re.DOTALL)
    assert provider is not None
    assert re.findall(r'<option value="([a-z]*)"', provider.group(0)) == [
        "claude",
        "codex",
        "gemini",
    ]

    response = admin_client.post(
        reverse("admin:agents_account_add"),
        {"email": "dev@example.com", "provider": "clod", "sort_order": 0},
    )

    assert response.status_code == HTTPStatus.OK
    assert "clod is not one of the available choices" in str(_errors(response))
    assert not Account.objects.exists()


def test_an_agents_provider_is_a_choice_of_the_known_ones(admin_client):
    agent = f.AgentFactory(provider="codex")

    html = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    provider = re.search(r'<select name="provider".*?</select>', html, re.DOTALL)
    assert provider is not None
    assert '<option value="codex" selected>Codex CLI</option>' in provider.group(0)


def test_a_message_naming_a_deleted_agent_can_still_be_edited(admin_client):
    message = f.MessageFactory(
        sender_type="agent", sender_id="gone-agent-id", recipient_type="user", recipient_id=None
    )
    page = admin_client.get(reverse("admin:agents_message_change", args=[message.pk]))
    assert 'value="gone-agent-id" selected' in page.content.decode()
    assert "gone-agent-id (as recorded)" in page.content.decode()
