"""Every event names who made the change: the door in force says who acts."""

from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.urls import reverse

from core import services
from core.actors import SYSTEM, Actor, acting_as, current_actor
from core.models import Event, InitiativeStatus
from core.tokens import api_token_create
from tests import factories as f

pytestmark = pytest.mark.django_db


def last_event() -> Event:
    return Event.objects.order_by("-id").first()


def test_a_service_called_outside_any_door_is_the_systems():
    services.initiative_create(name="Quiet")
    assert last_event().actor == {"type": "system", "id": None, "name": "cw", "via": "system"}


def test_acting_as_names_the_actor_only_inside_the_block(django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    with acting_as(Actor.person(alice)):
        services.initiative_create(name="Hers")
        assert current_actor().name == "alice"
    assert current_actor() is SYSTEM
    assert last_event().actor == {
        "type": "person",
        "id": str(alice.pk),
        "name": "alice",
        "via": "admin",
    }


def test_a_tool_token_is_the_tool_and_a_personal_token_its_person(client, django_user_model):
    tool, tool_clear = api_token_create(name="ci-runner")
    lead = django_user_model.objects.create_user(username="lead")
    _, personal_clear = api_token_create(name="lead-laptop", person=lead)

    for clear in (tool_clear, personal_clear):
        response = client.post(
            "/api/initiatives",
            {"name": f"By {clear[:8]}"},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {clear}",
        )
        assert response.status_code == HTTPStatus.CREATED, response.content

    by_tool, by_person = Event.objects.filter(kind="initiative.created").order_by("id")
    assert by_tool.actor == {"type": "tool", "id": tool.pk, "name": "ci-runner", "via": "api"}
    assert by_person.actor == {"type": "person", "id": str(lead.pk), "name": "lead", "via": "api"}
    # The request's scope ended with it: what runs next is the system's again.
    assert current_actor() is SYSTEM


def test_the_event_feed_answers_each_events_actor(client):
    _, clear = api_token_create(name="ci-runner")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {clear}"}
    client.post("/api/initiatives", {"name": "Fed"}, content_type="application/json", **auth)

    items = client.get("/api/events", **auth).json()["items"]

    # The token was made by the system (no door named anyone), the initiative by the tool.
    assert [(item["kind"], item["actor"]["name"]) for item in items] == [
        ("api_token.created", "cw"),
        ("initiative.created", "ci-runner"),
    ]


def test_an_admin_button_is_the_logged_in_person_through_the_admin(admin_client, admin_user):
    initiative = f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW)

    response = admin_client.post(
        reverse("admin:core_initiative_do", args=[initiative.pk, "approve"])
    )

    assert response.status_code == HTTPStatus.FOUND
    assert last_event().kind == "initiative.status_changed"
    assert last_event().actor == {
        "type": "person",
        "id": str(admin_user.pk),
        "name": admin_user.username,
        "via": "admin",
    }


def test_a_command_is_the_system_under_its_name_and_the_operators(monkeypatch):
    account = f.AccountFactory()

    call_command("cw_accounts", "exhaust", account.pk, "--until", "2h", operator="alice")
    assert last_event().actor == {
        "type": "system",
        "id": None,
        "name": "cw_accounts (alice)",
        "via": "command",
    }

    call_command("cw_accounts", "release", account.pk)
    assert last_event().actor["name"] == "cw_accounts"

    monkeypatch.setenv("CW_OPERATOR", "bob")
    call_command("cw_accounts", "exhaust", account.pk, "--until", "2h")
    assert last_event().actor["name"] == "cw_accounts (bob)"
    assert current_actor() is SYSTEM
