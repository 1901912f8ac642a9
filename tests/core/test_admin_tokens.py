"""API tokens in the admin (``core/admin/tokens.py``): a person makes a tool's or a
personal token and sees its secret once, sees whose each token is, and revokes one
after confirming; each through the token services, on the feed as the person's."""

import re
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from core.models import ApiToken, Event
from core.tokens import api_token_authenticate, api_token_create, hash_token
from tests import factories as f

pytestmark = pytest.mark.django_db

ADD = reverse("admin:core_apitoken_add")
LIST = reverse("admin:core_apitoken_changelist")


def _secret(html: str) -> str:
    found = re.search(r'id="cw-token-secret" type="text" readonly size="60" value="([^"]+)"', html)
    assert found is not None, "the secret is not on the page"
    return found.group(1)


def test_the_add_form_makes_a_tool_or_a_personal_token_never_a_runs(admin_client):
    html = admin_client.get(ADD).content.decode()

    assert re.findall(r'name="kind" value="([a-z]+)"', html) == ["tool", "person"]
    assert 'name="person"' in html
    assert "run" not in re.findall(r'name="kind" value="([a-z]+)"', html)


def test_a_tool_token_made_in_the_admin_shows_its_secret_once(admin_client, admin_user):
    response = admin_client.post(ADD, {"name": "ci-runner", "kind": "tool"})

    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response["Cache-Control"]
    clear = _secret(response.content.decode())
    token = ApiToken.objects.get()
    assert (token.name, token.kind, token.created_by, token.token_hash) == (
        "ci-runner",
        "tool",
        admin_user,
        hash_token(clear),
    )
    assert api_token_authenticate(clear) == token
    event = Event.objects.get(kind="api_token.created")
    assert (event.subject_id, event.data, event.actor_type, event.actor_id) == (
        token.pk,
        {"name": "ci-runner", "kind": "tool"},
        "person",
        str(admin_user.pk),
    )
    assert clear not in str(event.data)
    # Never again: neither the token's page nor the list shows it.
    for url in (reverse("admin:core_apitoken_change", args=[token.pk]), LIST):
        page = admin_client.get(url).content.decode()
        assert clear not in page
        assert token.prefix in page


def test_a_personal_token_acts_for_the_person_chosen(admin_client, admin_user):
    response = admin_client.post(
        ADD, {"name": "lead-laptop", "kind": "person", "person": admin_user.pk}
    )

    clear = _secret(response.content.decode())
    token = ApiToken.objects.get()
    assert (token.person, token.kind) == (admin_user, "person")
    assert Event.objects.get(kind="api_token.created").data == {
        "name": "lead-laptop",
        "kind": "person",
        "person_id": str(admin_user.pk),
    }
    assert api_token_authenticate(clear).person == admin_user


def test_a_personal_token_needs_its_person(admin_client):
    response = admin_client.post(ADD, {"name": "lead-laptop", "kind": "person"})

    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["person"] == [
        "Choose the person this personal token acts for."
    ]
    assert not ApiToken.objects.exists()


def test_only_a_superuser_makes_a_personal_token_for_someone_else(admin_user):
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"])
    )
    client = Client()
    client.force_login(staff)

    as_boss = client.post(ADD, {"name": "boss", "kind": "person", "person": admin_user.pk})
    as_self = client.post(ADD, {"name": "mine", "kind": "person", "person": staff.pk})

    assert as_boss.context["adminform"].form.errors["person"] == [
        "Only a superuser makes a personal token for someone else."
    ]
    assert as_self.status_code == HTTPStatus.OK and _secret(as_self.content.decode())
    assert list(ApiToken.objects.values_list("name", "person")) == [("mine", staff.pk)]


def test_a_name_an_active_token_has_is_refused_on_the_form(admin_client):
    api_token_create(name="ci-runner")

    response = admin_client.post(ADD, {"name": "ci-runner", "kind": "tool"})

    assert response.status_code == HTTPStatus.OK
    assert "An active token is already named &#x27;ci-runner&#x27;" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_the_list_says_whose_each_token_is_and_when_it_was_made_used_and_revoked(
    admin_client, admin_user
):
    api_token_create(name="ci-runner")
    api_token_create(name="lead-laptop", person=admin_user)
    run_token = ApiToken.objects.create(name="run:x", token_hash="h" * 64, prefix="cw_run00")

    response = admin_client.get(LIST)

    html = response.content.decode()
    assert "a tool&#x27;s" in html
    assert f"{admin_user.username}&#x27;s (personal)" in html
    for column in ("created_at", "last_used_at", "revoked_at", "created_by"):
        assert f"column-{column}" in html
    assert run_token.prefix in html


def test_revoking_a_token_asks_first_then_revokes_it_as_the_person(admin_client, admin_user):
    token, clear = api_token_create(name="ci-runner")
    change = reverse("admin:core_apitoken_change", args=[token.pk])
    revoke = reverse("admin:core_apitoken_do", args=[token.pk, "revoke"])
    assert f'action="{revoke}"' in admin_client.get(change).content.decode()

    asked = admin_client.post(revoke)

    assert "Whatever uses it is refused from now on" in asked.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None

    done = admin_client.post(revoke, {"confirmed": "yes"}, follow=True)

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_authenticate(clear) is None
    assert [str(m) for m in done.context["messages"]] == [f"The token {token} is revoked."]
    event = Event.objects.get(kind="api_token.revoked")
    assert (event.subject_id, event.actor_type, event.actor_id) == (
        token.pk,
        "person",
        str(admin_user.pk),
    )
    assert f'action="{revoke}"' not in admin_client.get(change).content.decode()


def test_a_token_is_neither_edited_nor_deleted_in_the_admin(admin_client):
    token, _ = api_token_create(name="ci-runner")
    change = reverse("admin:core_apitoken_change", args=[token.pk])

    admin_client.post(change, {"name": "renamed"})

    token.refresh_from_db()
    assert token.name == "ci-runner"
    assert 'name="name"' not in admin_client.get(change).content.decode()
    delete = admin_client.post(
        reverse("admin:core_apitoken_delete", args=[token.pk]), {"post": "yes"}
    )
    assert delete.status_code == HTTPStatus.FORBIDDEN
    assert ApiToken.objects.count() == 1


def test_a_runs_token_has_no_revoke_button():
    # Made by the system with its run, it ends with the run.
    run = f.RunFactory()
    token = ApiToken.objects.create(
        name=f"run:{run.pk}", token_hash="h" * 64, prefix="cw_run00", run=run
    )
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))

    html = client.get(reverse("admin:core_apitoken_change", args=[token.pk])).content.decode()

    assert "/do/revoke/" not in html
