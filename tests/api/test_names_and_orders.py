"""Names and titles are one line, orders start at 0, providers are the known ones: the
API refuses the rest (4xx, nothing written), and its document says so."""

import re
from http import HTTPStatus

import pytest

from agents.models import Account, Agent, Provider
from core.models import Initiative, Page, Phase, Project, Task
from core.schemas.base import ONE_LINE_NAME_PATTERN
from reviews.models import Proposal
from tests import factories as f
from tests.api.helpers import assert_error, patch_json, post_json, url

pytestmark = pytest.mark.django_db

BREAKS = ["\n", "\r\n", "\r", "\u2028", "\x0b"]


@pytest.fixture
def places():
    initiative = f.InitiativeFactory()
    return {
        "initiative": initiative,
        "phase": f.PhaseFactory(initiative=initiative),
        "agent": f.AgentFactory(initiative=initiative),
    }


def _creations(places) -> list[tuple[str, dict, str, type]]:
    """(path, body, the name field, model) of every creation that takes a name."""
    initiative, phase, agent = places["initiative"], places["phase"], places["agent"]
    return [
        ("/api/initiatives", {}, "name", Initiative),
        (f"/api/initiatives/{initiative.pk}/phases", {}, "name", Phase),
        (f"/api/phases/{phase.pk}/tasks", {}, "name", Task),
        (f"/api/initiatives/{initiative.pk}/pages", {}, "title", Page),
        ("/api/projects", {"url": "https://example.com/r.git"}, "name", Project),
        ("/api/agents", {"worktree_id": "/w"}, "name", Agent),
        (
            url("create_proposal"),
            {"agent_id": agent.pk, "initiative_id": initiative.pk, "target_type": "task"},
            "title",
            Proposal,
        ),
    ]


@pytest.mark.parametrize("line_break", BREAKS, ids=repr)
def test_a_name_of_several_lines_is_refused_by_every_creation(api_client, places, line_break):
    for path, body, field, model in _creations(places):
        before = model.objects.count()

        response = post_json(api_client, path, {**body, field: f"First{line_break}second"})

        assert_error(response, HTTPStatus.BAD_REQUEST, "validation_failed")
        assert model.objects.count() == before, path


def test_a_name_with_white_space_around_it_is_one_line(api_client, places):
    for path, body, field, _ in _creations(places):
        response = post_json(api_client, path, {**body, field: "\n  One line \n"})
        assert response.status_code == HTTPStatus.CREATED, (path, response.content)
        assert response.json().get(field, response.json().get("agent", {}).get(field)) == (
            "One line"
        )


def test_renaming_to_several_lines_is_refused(api_client):
    task = f.TaskFactory(name="Before")
    response = patch_json(api_client, url("update_task", task_id=task.pk), {"name": "A\nB"})
    assert_error(response, HTTPStatus.BAD_REQUEST, "validation_failed")
    task.refresh_from_db()
    assert task.name == "Before"


def test_the_document_states_names_are_one_line(api_client):
    document = api_client.get("/api/openapi.json").json()
    schemas = document["components"]["schemas"]
    for schema, field in [
        ("InitiativeIn", "name"),
        ("PhaseIn", "name"),
        ("TaskIn", "name"),
        ("TaskPatch", "name"),
        ("PageIn", "title"),
        ("ProjectIn", "name"),
        ("ProposalIn", "title"),
    ]:
        pattern = schemas[schema]["properties"][field]["pattern"]
        assert re.search(pattern, "One line"), schema
        assert not re.search(pattern, "One\nline"), schema
        assert not re.search(pattern, "One\u2028line"), schema
    assert re.fullmatch(ONE_LINE_NAME_PATTERN, " a\tb ")


def test_a_negative_order_is_refused_and_the_document_says_orders_start_at_0(api_client, places):
    task = f.TaskFactory(phase=places["phase"])
    page = f.PageFactory(initiative=places["initiative"])
    account = f.AccountFactory()
    before = (task.order, page.sort_order, account.sort_order)
    refused = [
        post_json(
            api_client, f"/api/phases/{places['phase'].pk}/tasks", {"name": "T", "order": -1}
        ),
        patch_json(api_client, url("update_task", task_id=task.pk), {"order": -1}),
        patch_json(api_client, url("update_page", page_id=page.pk), {"sort_order": -1}),
        post_json(api_client, "/api/accounts", {"email": "a@example.com", "sort_order": -1}),
        patch_json(api_client, url("update_account", account_id=account.pk), {"sort_order": -1}),
    ]
    for response in refused:
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content
    task.refresh_from_db()
    page.refresh_from_db()
    account.refresh_from_db()
    assert (task.order, page.sort_order, account.sort_order) == before  # nothing written
    assert Task.objects.count() == 1

    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]
    for schema, field in [
        ("TaskPatch", "order"),
        ("PagePatch", "sort_order"),
        ("AccountIn", "sort_order"),
        ("ProposalIn", "sort_order"),
    ]:
        assert schemas[schema]["properties"][field]["minimum"] == 0, schema


def test_an_account_of_an_unknown_provider_is_refused_and_the_document_lists_them(api_client):
    response = post_json(
        api_client, "/api/accounts", {"email": "a@example.com", "provider": "clod"}
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not Account.objects.exists()
    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]
    for schema in ("AccountIn", "AccountPatch", "AgentRegisterIn"):
        [ref] = schemas[schema]["properties"]["provider"]["allOf"]
        assert schemas[ref["$ref"].rsplit("/", 1)[-1]]["enum"] == Provider.values, schema
