"""What a person does in the agents admin, one button each: answer a waiting agent's
question, reply to a message, answer a conversation, release or park an account. Each
is a POST to an admin URL that calls the service and comes back with a message in
words — a refusal included, never a server error — and records read as words."""

import io
import json
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import Account, Agent, AgentLogChunk, Message
from tests import factories as f

pytestmark = pytest.mark.django_db


def press(client, model: str, button: str, obj, **data):
    """Post a button's form and follow back to the page; the response and its messages."""
    url = reverse(f"admin:agents_{model}_do", args=[obj.pk, button])
    response = client.post(url, data, follow=True)
    assert response.status_code == HTTPStatus.OK
    assert response.redirect_chain[0][0] == reverse(f"admin:agents_{model}_change", args=[obj.pk])
    return response, [str(m) for m in response.context["messages"]]


@pytest.fixture
def waiting():
    """An agent waiting for a person, with its question sent as a message."""
    agent = f.AgentFactory(
        name="saffron-tern",
        status="waiting_for_input",
        pending_questions='[{"question": "Limit per email or per IP?"}]',
    )
    question = f.MessageFactory(
        sender_id=agent.pk,
        type="question",
        requires_response=True,
        content="Limit per email or per IP?",
    )
    return agent, question


# --- answering an agent ---------------------------------------------------------------------


def test_a_waiting_agents_page_shows_its_questions_and_an_answer_form(admin_client, waiting):
    agent, question = waiting

    page = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    assert "saffron-tern is waiting for you" in page
    assert "Limit per email or per IP?" in page
    assert f'action="{reverse("admin:agents_agent_do", args=[agent.pk, "answer"])}"' in page
    assert f'name="message" value="{question.pk}"' in page
    assert "csrfmiddlewaretoken" in page


def test_answering_an_agents_question_replies_to_it(admin_client, waiting, admin_user):
    agent, question = waiting

    _, shown = press(
        admin_client, "agent", "answer", agent, message=question.pk, content="Both, please."
    )

    assert shown == ["Your answer was sent to saffron-tern."]
    reply = Message.objects.get(parent_message=question)
    assert (reply.content, reply.type, reply.sender_type, reply.sender_id) == (
        "Both, please.",
        "response",
        "user",
        str(admin_user.pk),
    )
    assert (reply.recipient_type, reply.recipient_id) == ("agent", agent.pk)
    question.refresh_from_db()
    assert question.status == "responded"


def test_a_waiting_agent_without_an_open_message_is_sent_the_answer(admin_client):
    agent = f.AgentFactory(name="calm-fox", status="waiting_for_input")

    _, shown = press(admin_client, "agent", "answer", agent, content="Go ahead.")

    assert shown == ["Your answer was sent to calm-fox."]
    sent = Message.objects.get()
    assert (sent.recipient_type, sent.recipient_id, sent.content) == (
        "agent",
        agent.pk,
        "Go ahead.",
    )


def test_an_agent_that_is_not_waiting_is_not_answered(admin_client):
    agent = f.AgentFactory(name="calm-fox", status="running")

    _, shown = press(admin_client, "agent", "answer", agent, content="Hello?")

    assert shown == ["calm-fox is running: it is not waiting for an answer."]
    assert not Message.objects.exists()


def test_a_blank_answer_is_refused_in_words(admin_client, waiting):
    agent, question = waiting

    _, shown = press(admin_client, "agent", "answer", agent, message=question.pk, content="  ")

    assert len(shown) == 1 and "content" in shown[0].lower()
    assert "Traceback" not in shown[0]
    question.refresh_from_db()
    assert question.status == "pending"
    assert Message.objects.count() == 1


def test_an_answer_to_another_agents_message_is_refused(admin_client, waiting):
    agent, _ = waiting
    other = f.MessageFactory(sender_id=f.AgentFactory().pk, type="question")

    _, shown = press(admin_client, "agent", "answer", agent, message=other.pk, content="Yes.")

    assert shown == ["That message is not from saffron-tern."]
    assert Message.objects.count() == 2


def _waiting_everywhere(client, agent) -> tuple[bool, bool, bool]:
    """Whether the agent's page, the dashboard and ``cw_status`` say it waits."""
    page = client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()
    dashboard = client.get(reverse("admin:index")).content.decode()
    out = io.StringIO()
    call_command("cw_status", "--json", stdout=out)
    waiting = {item["id"] for item in json.loads(out.getvalue())["questions"]["items"]}
    return (
        f"{agent.name} is waiting for you" in page,
        "Limit per email or per IP?" in dashboard,
        agent.pk in waiting,
    )


def test_an_answered_agent_is_no_longer_waiting_on_its_page_the_dashboard_or_cw_status(
    admin_client, waiting
):
    agent, question = waiting
    assert _waiting_everywhere(admin_client, agent) == (True, True, True)

    press(admin_client, "agent", "answer", agent, message=question.pk, content="Per email.")

    agent.refresh_from_db()
    assert (agent.status, agent.pending_questions) == ("running", None)
    assert _waiting_everywhere(admin_client, agent) == (False, False, False)


def test_an_agent_answered_without_a_message_runs_again():
    agent = f.AgentFactory(name="calm-fox", status="waiting_for_input", pending_questions='["Go?"]')
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))

    press(client, "agent", "answer", agent, content="Go ahead.")

    agent.refresh_from_db()
    assert agent.status == "running"
    assert _waiting_everywhere(client, agent)[::2] == (False, False)


def test_an_agent_with_another_open_question_keeps_waiting(admin_client, waiting):
    agent, question = waiting
    f.MessageFactory(sender_id=agent.pk, type="question", requires_response=True, content="And?")

    press(admin_client, "agent", "answer", agent, message=question.pk, content="Per email.")

    agent.refresh_from_db()
    assert agent.status == "waiting_for_input"


# --- replying to a message -------------------------------------------------------------------


def test_a_message_page_has_a_reply_form_that_replies(admin_client, waiting):
    _, question = waiting
    page = admin_client.get(reverse("admin:agents_message_change", args=[question.pk]))
    assert reverse("admin:agents_message_do", args=[question.pk, "reply"]) in page.content.decode()

    _, shown = press(admin_client, "message", "reply", question, content="Per email.")

    assert shown == ["Your reply was sent."]
    question.refresh_from_db()
    assert question.status == "responded"
    assert question.replies.get().content == "Per email."
    page = admin_client.get(reverse("admin:agents_message_change", args=[question.pk]))
    assert "Response from a person: Per email." in page.content.decode()


def test_a_blank_reply_is_refused_and_nothing_is_written(admin_client, waiting):
    _, question = waiting

    _, shown = press(admin_client, "message", "reply", question, content="")

    assert len(shown) == 1 and "content" in shown[0].lower()
    assert Message.objects.count() == 1


def test_a_button_is_a_post_only(admin_client, waiting):
    _, question = waiting

    response = admin_client.get(reverse("admin:agents_message_do", args=[question.pk, "reply"]))

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_a_reply_to_a_deleted_message_goes_back_to_the_list(admin_client):
    url = reverse("admin:agents_message_do", args=["gone", "reply"])

    response = admin_client.post(url, {"content": "Hi"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:agents_message_changelist")
    assert any("gone" in str(m) for m in response.context["messages"])


# --- answering a conversation ------------------------------------------------------------------


def test_a_pending_conversation_is_answered_once(admin_client):
    asker = f.AgentFactory(name="saffron-tern")
    conversation = f.ConversationFactory(from_agent=asker, question="Does it raise?")
    page = admin_client.get(reverse("admin:agents_conversation_change", args=[conversation.pk]))
    assert reverse("admin:agents_conversation_do", args=[conversation.pk, "answer"]) in (
        page.content.decode()
    )

    _, first = press(admin_client, "conversation", "answer", conversation, content="It raises.")
    _, second = press(admin_client, "conversation", "answer", conversation, content="No.")

    assert first == ["Your answer was sent to saffron-tern."]
    assert second == ["This conversation has already been answered."]
    conversation.refresh_from_db()
    assert (conversation.status, conversation.answer) == ("answered", "It raises.")


# --- accounts: release and park ---------------------------------------------------------------


@pytest.fixture
def parked():
    return Account.objects.create(
        email="dev@example.com",
        credentials='{"k": "SECRET-42"}',
        is_exhausted=True,
        exhausted_until=timezone.now() + timedelta(hours=3),
    )


def test_an_exhausted_account_is_released_by_its_button(admin_client, parked):
    page = admin_client.get(reverse("admin:agents_account_change", args=[parked.pk]))
    body = page.content.decode()
    assert "Release it now" in body
    assert "SECRET-42" not in body

    response, shown = press(admin_client, "account", "release", parked)

    assert shown == ["The account dev@example.com (claude) is back in the rotation."]
    assert "SECRET-42" not in response.content.decode()
    parked.refresh_from_db()
    assert (parked.is_exhausted, parked.exhausted_until) == (False, None)


def test_releasing_an_account_in_the_rotation_is_refused_in_words(admin_client):
    account = Account.objects.create(email="dev@example.com")

    _, shown = press(admin_client, "account", "release", account)

    assert shown == [
        "dev@example.com (claude) is in the rotation already: there is nothing to release."
    ]


def test_an_account_is_parked_by_its_button_for_a_chosen_time(admin_client):
    account = Account.objects.create(email="dev@example.com")

    _, shown = press(admin_client, "account", "park", account, hours="5")
    _, refused = press(admin_client, "account", "park", account, hours="500")

    assert shown == ["The account dev@example.com (claude) is parked for 5 hours."]
    assert refused[0].startswith("Choose how long to park the account")
    account.refresh_from_db()
    assert account.is_exhausted
    expected = timezone.now() + timedelta(hours=5)
    assert abs(account.exhausted_until - expected) < timedelta(minutes=1)


def test_the_park_action_parks_accounts_for_an_hour(admin_client):
    from tests.admin_actions import run_admin_action

    account = Account.objects.create(email="dev@example.com")

    shown = run_admin_action(admin_client, "agents_account", "account_park_for_an_hour", account)

    assert shown == ["Park (exhausted) for an hour: done for 1 record(s)."]
    account.refresh_from_db()
    assert account.is_exhausted


# --- who may press ---------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in_and_nothing_changes(client, parked):
    response = client.post(reverse("admin:agents_account_do", args=[parked.pk, "release"]))

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("admin:login"))
    parked.refresh_from_db()
    assert parked.is_exhausted


def test_staff_who_may_only_view_are_refused_and_see_no_button(parked):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client = Client()
    client.force_login(viewer)

    page = client.get(reverse("admin:agents_account_change", args=[parked.pk]))
    response = client.post(reverse("admin:agents_account_do", args=[parked.pk, "release"]))

    assert page.status_code == HTTPStatus.OK
    assert "Release it now" not in page.content.decode()
    assert response.status_code == HTTPStatus.FORBIDDEN
    parked.refresh_from_db()
    assert parked.is_exhausted


# --- records in words -----------------------------------------------------------------------


def test_records_say_what_they_are_in_words():
    brave = f.AgentFactory(name="brave-otter", status="running")
    calm = f.AgentFactory(name="calm-heron", status="waiting_for_input")
    long = "Which OAuth provider should the sign-in use first, Google or GitHub, and why?"
    question = f.MessageFactory(sender_id=brave.pk, type="question", content=long)
    from_a_person = f.MessageFactory(sender_type="user", recipient_type="agent", content="Hi")
    asked = f.ConversationFactory(from_agent=brave, to_agent=calm, question="Is the\nmailer up?")
    chunk = f.AgentLogChunkFactory(agent_id=brave.pk, agent_name="brave-otter", session_number=2)

    assert str(brave) == "brave-otter (running)"
    assert str(calm) == "calm-heron (waiting for input)"
    assert str(Message.objects.get(pk=question.pk)) == (
        "Question from brave-otter: Which OAuth provider should the sign-in use first, Google o…"
    )
    assert str(from_a_person) == "Info from a person: Hi"
    assert str(asked) == "brave-otter asks calm-heron: Is the mailer up?"
    assert str(chunk) == f"brave-otter, session 2, chunk {chunk.pk}"


def test_the_message_list_names_senders_and_cuts_long_text_at_a_fixed_cost(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    agent = f.AgentFactory(name="brave-otter")
    url = reverse("admin:agents_message_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == HTTPStatus.OK
        return len(captured.captured_queries)

    f.MessageFactory(sender_id=agent.pk, type="question", content="Which one? " + "x" * 200)
    one = queries()
    f.MessageFactory.create_batch(10, sender_id=agent.pk)

    assert queries() == one
    page = admin_client.get(url).content.decode()
    assert "Question from brave-otter: Which one? xxx" in page
    assert "x" * 100 not in page


def test_the_agent_list_filters_by_status_and_initiative_and_searches_names(admin_client):
    initiative = f.InitiativeFactory(name="Payments")
    wanted = f.AgentFactory(name="brave-otter", status="running", initiative=initiative)
    f.AgentFactory(name="calm-fox", status="running")
    f.AgentFactory(name="brave-ant", status="idle", initiative=initiative)
    url = reverse("admin:agents_agent_changelist")

    def listed(**params) -> list[str]:
        response = admin_client.get(url, params)
        assert response.status_code == HTTPStatus.OK
        return [agent.name for agent in response.context["cl"].result_list]

    assert listed(status__exact="running", initiative__id__exact=initiative.pk) == [wanted.name]
    assert sorted(listed(q="brave")) == ["brave-ant", "brave-otter"]


def test_the_agent_form_picks_tasks_initiatives_and_accounts_by_search(admin_client):
    page = admin_client.get(reverse("admin:agents_agent_add")).content.decode()

    for name in ("task", "initiative", "account"):
        assert f'name="{name}"' in page
    assert page.count("admin-autocomplete") >= 3


def test_log_chunks_and_agents_stay_history_when_buttons_are_pressed(admin_client, waiting):
    # Pressing buttons writes messages (and the answered agent runs again): its log stays.
    agent, question = waiting
    f.AgentLogChunkFactory(agent_id=agent.pk, agent_name=agent.name)

    press(admin_client, "agent", "answer", agent, message=question.pk, content="Both.")

    assert Agent.objects.get(pk=agent.pk).status == "running"
    assert AgentLogChunk.objects.count() == 1
