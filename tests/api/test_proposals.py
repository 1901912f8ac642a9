"""The proposals API over HTTP: list, create, retrieve, accept, dismiss, accept-all,
dismiss-all, counts, and the change sets accepting records (retrieve, revert)."""

import json
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import Event, Task, TaskPriority
from core.repositories import readiness
from core.schemas import MAX_LIMIT
from core.tokens import api_token_create
from reviews.models import ChangeSet, ChangeSetStatus, Proposal, ProposalStatus
from tests import factories as f
from tests.api.helpers import as_json as iso
from tests.api.helpers import assert_error, assert_refusal, post_json, url

pytestmark = pytest.mark.django_db


# --- helpers -------------------------------------------------------------------------------


def proposal_body(proposal: Proposal) -> dict[str, Any]:
    proposal.refresh_from_db()
    return {
        "id": proposal.id,
        "agent_id": proposal.agent_id,
        "initiative_id": proposal.initiative_id,
        "target_type": proposal.target_type,
        "target_id": proposal.target_id,
        "title": proposal.title,
        "summary": proposal.summary,
        "content": proposal.content,
        "metadata": proposal.metadata,
        "status": proposal.status,
        "sort_order": proposal.sort_order,
        "created_at": iso(proposal.created_at),
        "updated_at": iso(proposal.updated_at),
    }


def change_set_body(change_set: ChangeSet) -> dict[str, Any]:
    change_set.refresh_from_db()
    return {
        "id": change_set.id,
        "initiative_id": change_set.initiative_id,
        "source": change_set.source,
        "proposal_id": change_set.proposal_id,
        "description": change_set.description,
        "status": change_set.status,
        "created_at": iso(change_set.created_at),
        "reverted_at": iso(change_set.reverted_at),
        "entries": [
            {
                "entity_type": entry.entity_type,
                "entity_id": entry.entity_id,
                "action": entry.action,
                "before": entry.before,
                "after": entry.after,
            }
            for entry in change_set.entries.order_by("sort_order")
        ],
    }


def statuses(*proposals: Proposal) -> list[str]:
    return [Proposal.objects.get(pk=p.pk).status for p in proposals]


@pytest.fixture
def agent():
    return f.AgentFactory()


@pytest.fixture
def person_client() -> Client:
    """A client with a personal token: a person, who passes the people's gates."""
    user = get_user_model().objects.create_user(username="reviewer", password="unused-password")
    _token, clear = api_token_create(name="reviewer-token", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


@pytest.fixture
def initiative():
    return f.InitiativeFactory()


@pytest.fixture
def phase(initiative):
    return f.PhaseFactory(initiative=initiative)


def make_proposal(agent, initiative, **fields) -> Proposal:
    return f.ProposalFactory(agent=agent, initiative=initiative, **fields)


def accept(client: Client, proposal: Proposal) -> ChangeSet:
    response = client.post(url("accept_proposal", proposal_id=proposal.id))
    assert response.status_code == HTTPStatus.OK, response.content
    return ChangeSet.objects.get(pk=response.json()["id"])


# --- authentication ------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "list_proposals", {}),
    ("post", "create_proposal", {}),
    ("get", "retrieve_proposal", {"proposal_id": "x"}),
    ("post", "accept_proposal", {"proposal_id": "x"}),
    ("post", "dismiss_proposal", {"proposal_id": "x"}),
    ("post", "accept_all_proposals", {"agent_id": "x"}),
    ("post", "dismiss_all_proposals", {"agent_id": "x"}),
    ("get", "count_agent_proposals", {"agent_id": "x"}),
    ("get", "retrieve_change_set", {"change_set_id": "x"}),
    ("post", "revert_change_set", {"change_set_id": "x"}),
]


@pytest.mark.parametrize(("method", "name", "kwargs"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_proposal_endpoint_requires_authentication(method, name, kwargs):
    response = Client().generic(method.upper(), url(name, **kwargs))
    assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_staff_session_can_list_proposals(staff_client, agent, initiative):
    proposal = make_proposal(agent, initiative)
    response = staff_client.get(url("list_proposals"))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["items"] == [proposal_body(proposal)]


def test_staff_session_post_without_csrf_token_is_403_csrf_failed(staff_user, agent, initiative):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = post_json(
        client,
        url("create_proposal"),
        {"agent_id": agent.id, "initiative_id": initiative.id, "target_type": "task", "title": "T"},
    )
    assert_error(response, HTTPStatus.FORBIDDEN, "csrf_failed")
    assert not Proposal.objects.exists()


# --- list ------------------------------------------------------------------------------------


def test_list_proposals_is_a_page_in_sort_order(api_client, agent, initiative):
    second = make_proposal(agent, initiative, sort_order=2, metadata={"priority": "high"})
    first = make_proposal(agent, initiative, sort_order=1, summary="Why", target_type="page")

    response = api_client.get(url("list_proposals"))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "items": [proposal_body(first), proposal_body(second)],
        "total": 2,
        "next_offset": None,
        "limit": 50,
        "offset": 0,
    }


def test_list_proposals_of_nothing_is_an_empty_page(api_client):
    response = api_client.get(url("list_proposals"))
    assert response.json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }


@pytest.fixture
def assorted(agent, initiative):
    """Proposals differing in agent, initiative, status and target type."""
    other_agent, other_initiative = f.AgentFactory(), f.InitiativeFactory()
    return {
        "mine": make_proposal(agent, initiative, target_type="task"),
        "mine_page": make_proposal(agent, initiative, target_type="page"),
        "mine_dismissed": make_proposal(agent, initiative, status="dismissed"),
        "other_agent": make_proposal(other_agent, initiative, target_type="phase"),
        "elsewhere": make_proposal(agent, other_initiative, status="accepted"),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["mine", "mine_page", "mine_dismissed", "other_agent", "elsewhere"]),
        ({"agent_id": "AGENT"}, ["mine", "mine_page", "mine_dismissed", "elsewhere"]),
        ({"initiative_id": "INITIATIVE"}, ["mine", "mine_page", "mine_dismissed", "other_agent"]),
        ({"status": "pending"}, ["mine", "mine_page", "other_agent"]),
        ({"status": "dismissed"}, ["mine_dismissed"]),
        ({"status": "accepted"}, ["elsewhere"]),
        ({"target_type": "page"}, ["mine_page"]),
        ({"target_type": "phase"}, ["other_agent"]),
        (
            {"agent_id": "AGENT", "initiative_id": "INITIATIVE", "status": "pending"},
            ["mine", "mine_page"],
        ),
        ({"agent_id": "no-such-agent"}, []),
    ],
)
def test_list_proposals_filters_combine(api_client, agent, initiative, assorted, query, expected):
    query = {
        key: {"AGENT": agent.id, "INITIATIVE": initiative.id}.get(value, value)
        for key, value in query.items()
    }
    body = api_client.get(url("list_proposals"), query).json()
    assert sorted(item["id"] for item in body["items"]) == sorted(
        assorted[name].id for name in expected
    )
    assert body["total"] == len(expected)


@pytest.mark.parametrize(
    "query",
    [
        {"status": "approved"},
        {"status": ""},
        {"target_type": "epic"},
        {"limit": MAX_LIMIT + 1},
        {"limit": 0},
        {"limit": -1},
        {"limit": "many"},
        {"offset": -1},
        {"offset": 2**31},
        {"offset": 2**63},  # past SQLite's int64: an OverflowError (500) if let through
    ],
)
def test_list_proposals_refuses_bad_filters_and_page_bounds_with_their_codes(api_client, query):
    body = assert_error(
        api_client.get(url("list_proposals"), query),
        HTTPStatus.BAD_REQUEST,
        f"invalid_{next(iter(query))}",
    )
    [error] = body["details"]["errors"]
    assert error["loc"] == ["query", next(iter(query))]


@pytest.mark.parametrize(
    "metadata",
    [["a", {"b": 1}], "text", 7, None, {"nested": {"list": [1, "x", None]}}],
    ids=["list", "string", "number", "null", "object"],
)
def test_list_and_retrieve_answer_metadata_of_any_json_shape(
    api_client, agent, initiative, metadata
):
    # The admin and the ORM store any JSON value; a list must not break every list page.
    proposal = make_proposal(agent, initiative, metadata=metadata)

    listed = api_client.get(url("list_proposals"))
    retrieved = api_client.get(url("retrieve_proposal", proposal_id=proposal.id))

    assert listed.status_code == HTTPStatus.OK, listed.content[:500]
    assert listed.json()["items"] == [proposal_body(proposal)]
    assert listed.json()["items"][0]["metadata"] == metadata
    assert retrieved.json() == proposal_body(proposal)


def test_list_proposals_max_limit_is_accepted(api_client):
    response = api_client.get(url("list_proposals"), {"limit": MAX_LIMIT})
    assert response.status_code == HTTPStatus.OK


def test_list_proposals_offset_pages_are_disjoint_and_cover_everything(
    api_client, agent, initiative
):
    made = [make_proposal(agent, initiative, sort_order=i) for i in range(7)]
    pages = [
        api_client.get(url("list_proposals"), {"limit": 3, "offset": offset}).json()
        for offset in (0, 3, 6, 9)
    ]
    assert [page["total"] for page in pages] == [7, 7, 7, 7]
    assert [page["offset"] for page in pages] == [0, 3, 6, 9]
    ids = [[item["id"] for item in page["items"]] for page in pages]
    assert [len(page_ids) for page_ids in ids] == [3, 3, 1, 0]
    assert [item_id for page_ids in ids for item_id in page_ids] == [
        p.id for p in made
    ]  # in order, no overlap, no gap


@pytest.mark.parametrize("rows", [10, 200, 1000])
def test_list_proposals_query_count_does_not_grow_with_the_page(
    api_client, agent, initiative, rows, django_assert_max_num_queries
):
    Proposal.objects.bulk_create(
        Proposal(
            agent=agent,
            initiative=initiative,
            target_type="task",
            title=f"P{i}",
            metadata={"priority": "low"},
            sort_order=i,
        )
        for i in range(rows)
    )
    api_client.get(url("list_proposals"))  # stamps the token's last_used_at outside the measure
    # Authentication (1) + the texts' sizes (1) + the page (1) + the total (1).
    with django_assert_max_num_queries(4):
        response = api_client.get(url("list_proposals"), {"limit": MAX_LIMIT})
    body = response.json()
    assert (len(body["items"]), body["total"]) == (min(rows, MAX_LIMIT), rows)


# --- create ----------------------------------------------------------------------------------


def test_create_proposal_stores_it_pending_and_answers_201(api_client, agent, initiative, phase):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "  Add login  ",
        "summary": "Needed for auth",
        "content": "Implement **login**.",
        "metadata": {"phase_id": phase.id, "priority": "high", "dependencies": []},
        "sort_order": 3,
    }

    response = post_json(api_client, url("create_proposal"), payload)

    assert response.status_code == HTTPStatus.CREATED
    proposal = Proposal.objects.get()
    assert response.json() == proposal_body(proposal)
    assert (proposal.title, proposal.status, proposal.target_id) == ("Add login", "pending", None)
    assert proposal.metadata == payload["metadata"]
    assert (proposal.sort_order, proposal.summary) == (3, "Needed for auth")


def test_create_proposal_defaults_optional_fields(api_client, agent, initiative):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "page",
        "title": "Notes",
    }
    body = post_json(api_client, url("create_proposal"), payload).json()
    assert {k: body[k] for k in ("target_id", "summary", "content", "metadata", "sort_order")} == {
        "target_id": None,
        "summary": None,
        "content": None,
        "metadata": None,
        "sort_order": 0,
    }


def test_create_proposal_may_name_an_existing_target(api_client, agent, initiative, phase):
    task = f.TaskFactory(phase=phase)
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "target_id": task.id,
        "title": "Rename",
    }
    response = post_json(api_client, url("create_proposal"), payload)
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["target_id"] == task.id


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"agent_id": "no-such-agent"}, HTTPStatus.NOT_FOUND, "agent_not_found"),
        ({"initiative_id": "no-such-initiative"}, HTTPStatus.NOT_FOUND, "initiative_not_found"),
        ({"target_id": "no-such-task"}, HTTPStatus.NOT_FOUND, "proposal_target_missing"),
        ({"title": "   "}, HTTPStatus.BAD_REQUEST, "empty_title"),
        ({"title": "x", "colour": "red"}, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"),
    ],
)
def test_create_proposal_refusals(api_client, agent, initiative, change, status, code):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        **change,
    }
    assert_error(post_json(api_client, url("create_proposal"), payload), status, code)
    assert not Proposal.objects.exists()


def test_create_proposal_refuses_a_target_of_another_initiative(api_client, agent, initiative):
    foreign_task = f.TaskFactory()
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "target_id": foreign_task.id,
        "title": "T",
    }
    body = assert_error(
        post_json(api_client, url("create_proposal"), payload),
        HTTPStatus.BAD_REQUEST,
        "proposal_target_other_initiative",
    )
    assert body["details"] == {"target_type": "task", "target_id": foreign_task.id}
    assert not Proposal.objects.exists()


#: The code of a field with one of its own (400); any other refused field is 422.
FIELD_CODES = {
    ("title", ""): "empty_title",
    ("title", None): "empty_title",
    ("target_type", "epic"): "invalid_target_type",
    ("target_type", None): "invalid_target_type",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": None}, "title"),
        ({"target_type": "epic"}, "target_type"),
        ({"target_type": None}, "target_type"),
        ({"agent_id": None}, "agent_id"),
        ({"agent_id": 42}, "agent_id"),
        ({"initiative_id": ["a"]}, "initiative_id"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": "priority=high"}, "metadata"),
        ({"sort_order": "first"}, "sort_order"),
        ({"sort_order": 1.5}, "sort_order"),
        ({"summary": {"text": "x"}}, "summary"),
        ({"content": 7}, "content"),
    ],
)
def test_create_proposal_invalid_body_is_refused_naming_the_field(
    api_client, agent, initiative, change, field
):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        **change,
    }
    value = change[field]
    code = FIELD_CODES.get((field, value if isinstance(value, str | None) else "?"))
    body = assert_refusal(
        post_json(api_client, url("create_proposal"), payload), code or "validation_error"
    )
    assert ["body", "payload", field] in [e["loc"][:3] for e in body["details"]["errors"]]
    assert not Proposal.objects.exists()


UNSTORABLE_TEXT = {
    "nul": "a\u0000b",
    "lone_high_surrogate": "a\ud800b",
    "lone_low_surrogate": "\udfff",
}

UNSTORABLE_FIELDS = {
    "title": lambda bad: {"title": bad},
    "summary": lambda bad: {"summary": bad},
    "content": lambda bad: {"content": bad},
    "metadata_value": lambda bad: {"metadata": {"priority": bad}},
    "metadata_key": lambda bad: {"metadata": {bad: "high"}},
    "metadata_in_a_list": lambda bad: {"metadata": {"dependencies": ["t1", bad]}},
    "metadata_deep": lambda bad: {"metadata": {"a": [{"b": {"c": [[bad]]}}]}},
    "metadata_deep_key": lambda bad: {"metadata": {"a": [{"b": {bad: 1}}]}},
}


@pytest.mark.parametrize("where", UNSTORABLE_FIELDS)
@pytest.mark.parametrize("bad", UNSTORABLE_TEXT.values(), ids=UNSTORABLE_TEXT.keys())
def test_create_proposal_refuses_text_no_database_can_store_with_422(
    api_client, agent, initiative, where, bad
):
    # NUL: PostgreSQL refuses it in text and jsonb, SQLite keeps it. A lone surrogate
    # cannot be encoded as UTF-8 at all. Both databases must give the same answer.
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        **UNSTORABLE_FIELDS[where](bad),
    }
    # json.dumps writes a lone surrogate as a \uXXXX escape, which the API parser reads back.
    response = post_json(api_client, url("create_proposal"), payload)

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    field = where.partition("_")[0]
    [error] = body["details"]["errors"]
    assert error["loc"] == ["body", "payload", field]
    # Constrained strings (title) are refused by pydantic itself as not unicode.
    assert error["type"] in ("value_error", "string_unicode")
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_create_proposal_refuses_non_finite_numbers_in_metadata_with_422(
    api_client, agent, initiative, number
):
    # Python's JSON parser reads them; PostgreSQL's jsonb and every other client do not.
    raw = json.dumps(
        {
            "agent_id": agent.id,
            "initiative_id": initiative.id,
            "target_type": "task",
            "title": "T",
            "metadata": {"order": "__NUMBER__"},
        }
    ).replace('"__NUMBER__"', number)

    response = api_client.post(url("create_proposal"), raw, content_type="application/json")

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert [error["loc"] for error in body["details"]["errors"]] == [
        ["body", "payload", "metadata"]
    ]
    assert not Proposal.objects.exists()


def test_create_proposal_metadata_error_names_where_without_echoing_the_value(
    api_client, agent, initiative
):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        "metadata": {"tasks": [{"name": "ok"}, {"name": "SECRET-VALUE\u0000"}]},
    }

    response = post_json(api_client, url("create_proposal"), payload)

    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    [error] = body["details"]["errors"]
    assert "tasks[1].name" in error["msg"]
    assert "SECRET-VALUE" not in response.content.decode()


def test_create_proposal_accepts_deeply_nested_storable_metadata(api_client, agent, initiative):
    metadata = {"phase_id": None, "dependencies": ["a", "b"], "x": [{"y": [1, 2.5, True, "ü€😀"]}]}
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        "metadata": metadata,
    }

    response = post_json(api_client, url("create_proposal"), payload)

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["metadata"] == metadata
    assert Proposal.objects.get().metadata == metadata


@pytest.mark.parametrize("missing", ["agent_id", "initiative_id", "target_type", "title"])
def test_create_proposal_missing_required_field_is_refused(api_client, agent, initiative, missing):
    # 422, but for the title: a title left out is empty_title, as the service says.
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
    }
    del payload[missing]
    body = assert_refusal(
        post_json(api_client, url("create_proposal"), payload),
        "empty_title" if missing == "title" else "validation_error",
    )
    assert body["details"]["errors"] == [
        {"loc": ["body", "payload", missing], "msg": "Field required", "type": "missing"}
    ]


@pytest.mark.parametrize("raw", ["{not json", '{"title": "T",}', b"\xff\xfe{"])
def test_create_proposal_malformed_json_is_422(api_client, raw):
    response = api_client.post(url("create_proposal"), raw, content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")
    assert not Proposal.objects.exists()


def test_create_proposal_without_a_body_is_422_body_missing(api_client):
    response = api_client.post(url("create_proposal"), "", content_type="application/json")
    body = assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error")
    assert [(e["loc"], e["type"]) for e in body["details"]["errors"]] == [
        (["body", "payload"], "missing")
    ]


def test_create_proposal_too_deeply_nested_json_is_422_malformed_json(api_client):
    # Valid JSON in theory, but deeper than the parser goes (RecursionError, not ValueError).
    raw = '{"metadata":' * 100_000 + "{}" + "}" * 100_000
    response = api_client.post(url("create_proposal"), raw, content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")


# --- retrieve --------------------------------------------------------------------------------


def test_retrieve_proposal(api_client, agent, initiative):
    proposal = make_proposal(agent, initiative, metadata={"category": "research"})
    response = api_client.get(url("retrieve_proposal", proposal_id=proposal.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == proposal_body(proposal)


def test_retrieve_unknown_proposal_is_404(api_client):
    body = assert_error(
        api_client.get(url("retrieve_proposal", proposal_id="nope")),
        HTTPStatus.NOT_FOUND,
        "proposal_not_found",
    )
    assert body["details"] == {"id": "nope"}


# --- accept ----------------------------------------------------------------------------------


def test_accept_proposal_creates_the_task_and_answers_its_change_set(
    person_client, agent, initiative, phase
):
    proposal = make_proposal(
        agent,
        initiative,
        title="Write docs",
        content="Document the API.",
        metadata={"phase_id": phase.id, "priority": "high", "category": "research"},
    )

    response = person_client.post(url("accept_proposal", proposal_id=proposal.id))

    assert response.status_code == HTTPStatus.OK
    change_set = ChangeSet.objects.get()
    body = response.json()
    assert body == change_set_body(change_set)
    task = Task.objects.get()
    assert (task.name, task.description, task.phase_id) == (
        "Write docs",
        "Document the API.",
        phase.id,
    )
    assert (task.priority, task.category) == ("high", "research")
    assert (body["source"], body["proposal_id"], body["status"]) == (
        "proposal",
        proposal.id,
        "applied",
    )
    assert [(e["entity_type"], e["entity_id"], e["action"]) for e in body["entries"]] == [
        ("tasks", task.id, "create"),
        ("proposals", proposal.id, "update"),
    ]
    assert statuses(proposal) == ["accepted"]


def test_accept_page_proposal_updates_the_page(person_client, agent, initiative):
    page = f.PageFactory(initiative=initiative, title="Old", content=None)
    proposal = make_proposal(
        agent, initiative, target_type="page", target_id=page.id, title="New", content="# Hi"
    )
    body = person_client.post(url("accept_proposal", proposal_id=proposal.id)).json()
    page.refresh_from_db()
    assert page.title == "New"
    assert json.loads(page.content)["type"] == "doc"
    [page_entry, _] = body["entries"]
    assert (page_entry["action"], page_entry["before"]["title"], page_entry["after"]["title"]) == (
        "update",
        "Old",
        "New",
    )


@pytest.mark.parametrize("status", [ProposalStatus.ACCEPTED, ProposalStatus.DISMISSED])
@pytest.mark.parametrize("action", ["accept_proposal", "dismiss_proposal"])
def test_accept_or_dismiss_a_decided_proposal_is_409(
    person_client, agent, initiative, status, action
):
    proposal = make_proposal(agent, initiative, status=status)
    body = assert_error(
        person_client.post(url(action, proposal_id=proposal.id)),
        HTTPStatus.CONFLICT,
        "proposal_not_pending",
    )
    assert body["details"] == {"id": proposal.id, "status": status}
    assert statuses(proposal) == [status]
    assert not ChangeSet.objects.exists()


@pytest.mark.parametrize("action", ["accept_proposal", "dismiss_proposal"])
def test_accept_or_dismiss_unknown_proposal_is_404(person_client, action):
    assert_error(
        person_client.post(url(action, proposal_id="nope")),
        HTTPStatus.NOT_FOUND,
        "proposal_not_found",
    )


def test_accept_proposal_whose_target_was_deleted_is_409_and_keeps_it_pending(
    person_client, agent, initiative, phase
):
    task = f.TaskFactory(phase=phase)
    proposal = make_proposal(agent, initiative, target_id=task.id)
    Task.objects.filter(pk=task.pk).delete()
    body = assert_error(
        person_client.post(url("accept_proposal", proposal_id=proposal.id)),
        HTTPStatus.CONFLICT,
        "proposal_target_deleted",
    )
    assert body["details"] == {"target_type": "task", "target_id": task.pk}
    assert statuses(proposal) == ["pending"]
    assert not ChangeSet.objects.exists()


def test_accept_proposal_with_bad_metadata_is_400_and_writes_nothing(
    person_client, agent, initiative
):
    proposal = make_proposal(agent, initiative, metadata={"priority": "urgent"})
    body = assert_error(
        person_client.post(url("accept_proposal", proposal_id=proposal.id)),
        HTTPStatus.BAD_REQUEST,
        "invalid_metadata",
    )
    assert body["details"] == {"id": proposal.id, "key": "priority"}
    assert (Task.objects.count(), ChangeSet.objects.count()) == (0, 0)
    assert statuses(proposal) == ["pending"]


# --- dismiss ---------------------------------------------------------------------------------


def test_dismiss_proposal_changes_only_its_status(person_client, agent, initiative):
    proposal = make_proposal(agent, initiative)
    before = proposal_body(proposal)

    response = person_client.post(url("dismiss_proposal", proposal_id=proposal.id))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body == proposal_body(proposal)
    assert body["status"] == "dismissed"
    assert {k: v for k, v in body.items() if k not in ("status", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("status", "updated_at")
    }
    assert (Task.objects.count(), ChangeSet.objects.count()) == (0, 0)


# --- accept-all / dismiss-all ----------------------------------------------------------------


def test_accept_all_accepts_every_pending_proposal_of_the_agent_in_order(
    person_client, agent, initiative
):
    second = make_proposal(agent, initiative, title="Second", sort_order=2)
    first = make_proposal(agent, initiative, title="First", sort_order=1)
    dismissed = make_proposal(agent, initiative, status="dismissed")
    someone_elses = make_proposal(f.AgentFactory(), initiative)

    response = person_client.post(url("accept_all_proposals", agent_id=agent.id))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    change_sets = [ChangeSet.objects.get(proposal=p) for p in (first, second)]
    assert body == {"accepted": 2, "change_sets": [change_set_body(cs) for cs in change_sets]}
    assert statuses(first, second, dismissed, someone_elses) == [
        "accepted",
        "accepted",
        "dismissed",
        "pending",
    ]
    assert sorted(Task.objects.values_list("name", flat=True)) == ["First", "Second"]


def test_accept_all_with_nothing_pending_accepts_nothing(person_client, agent):
    response = person_client.post(url("accept_all_proposals", agent_id=agent.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"accepted": 0, "change_sets": []}


def test_accept_all_is_all_or_nothing_and_names_the_bad_proposal(person_client, agent, initiative):
    good = make_proposal(agent, initiative, sort_order=1, metadata={"priority": "high"})
    bad = make_proposal(agent, initiative, sort_order=2, metadata={"priority": "urgent"})
    after = make_proposal(agent, initiative, sort_order=3)

    body = assert_error(
        person_client.post(url("accept_all_proposals", agent_id=agent.id)),
        HTTPStatus.BAD_REQUEST,
        "invalid_metadata",
    )

    assert body["details"]["proposal_id"] == bad.id
    assert bad.title in body["message"]
    assert statuses(good, bad, after) == ["pending", "pending", "pending"]
    assert (Task.objects.count(), ChangeSet.objects.count()) == (0, 0)


def test_dismiss_all_dismisses_only_the_agents_pending_proposals(person_client, agent, initiative):
    pending = [make_proposal(agent, initiative) for _ in range(3)]
    accepted = make_proposal(agent, initiative, status="accepted")
    someone_elses = make_proposal(f.AgentFactory(), initiative)

    response = person_client.post(url("dismiss_all_proposals", agent_id=agent.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"dismissed": 3}
    assert statuses(*pending, accepted, someone_elses) == [
        "dismissed",
        "dismissed",
        "dismissed",
        "accepted",
        "pending",
    ]
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "accept_all_proposals"),
        ("post", "dismiss_all_proposals"),
        ("get", "count_agent_proposals"),
    ],
)
def test_agent_proposal_operations_on_unknown_agent_are_404(person_client, method, name):
    body = assert_error(
        getattr(person_client, method)(url(name, agent_id="nobody")),
        HTTPStatus.NOT_FOUND,
        "agent_not_found",
    )
    assert body["details"] == {"id": "nobody"}


# --- counts ----------------------------------------------------------------------------------


def test_count_agent_proposals_by_status(api_client, agent, initiative):
    for status in ["pending", "pending", "accepted", "pending"]:
        make_proposal(agent, initiative, status=status)
    make_proposal(f.AgentFactory(), initiative, status="dismissed")
    response = api_client.get(url("count_agent_proposals", agent_id=agent.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"pending": 3, "accepted": 1, "dismissed": 0}


def test_count_agent_proposals_of_an_agent_without_any_is_all_zero(api_client, agent):
    response = api_client.get(url("count_agent_proposals", agent_id=agent.id))
    assert response.json() == {"pending": 0, "accepted": 0, "dismissed": 0}


# --- change sets -----------------------------------------------------------------------------


def test_retrieve_change_set_with_its_entries(person_client, agent, initiative):
    change_set = accept(person_client, make_proposal(agent, initiative))
    response = person_client.get(url("retrieve_change_set", change_set_id=change_set.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == change_set_body(change_set)
    assert len(response.json()["entries"]) == 2


@pytest.mark.parametrize(
    ("method", "name"), [("get", "retrieve_change_set"), ("post", "revert_change_set")]
)
def test_unknown_change_set_is_404(api_client, method, name):
    body = assert_error(
        getattr(api_client, method)(url(name, change_set_id="nope")),
        HTTPStatus.NOT_FOUND,
        "change_set_not_found",
    )
    assert body["details"] == {"id": "nope"}


def test_revert_change_set_undoes_the_accept(person_client, agent, initiative):
    proposal = make_proposal(agent, initiative)
    change_set = accept(person_client, proposal)
    assert Task.objects.count() == 1

    response = person_client.post(url("revert_change_set", change_set_id=change_set.id))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body == change_set_body(change_set)
    assert body["status"] == "reverted"
    assert body["reverted_at"] is not None
    assert not Task.objects.exists()
    assert statuses(proposal) == ["pending"]
    assert ChangeSet.objects.get().status == ChangeSetStatus.REVERTED


def test_revert_twice_is_409(person_client, agent, initiative):
    change_set = accept(person_client, make_proposal(agent, initiative))
    person_client.post(url("revert_change_set", change_set_id=change_set.id))
    body = assert_error(
        person_client.post(url("revert_change_set", change_set_id=change_set.id)),
        HTTPStatus.CONFLICT,
        "change_set_already_reverted",
    )
    assert body["details"]["id"] == change_set.id


def test_revert_after_the_record_changed_is_409_stale_and_writes_nothing(
    person_client, agent, initiative
):
    proposal = make_proposal(agent, initiative)
    change_set = accept(person_client, proposal)
    task = Task.objects.get()
    Task.objects.filter(pk=task.pk).update(priority=TaskPriority.LOW, name="Edited by hand")
    readiness.rebuild()  # the edit went past the repositories that keep the queue

    body = assert_error(
        person_client.post(url("revert_change_set", change_set_id=change_set.id)),
        HTTPStatus.CONFLICT,
        "change_set_stale",
    )

    assert body["details"] == {
        "id": change_set.id,
        "changed": [{"table": "tasks", "id": task.id}],
    }
    assert Task.objects.get().name == "Edited by hand"
    assert statuses(proposal) == ["accepted"]
    assert ChangeSet.objects.get().status == ChangeSetStatus.APPLIED


# --- garbage bodies never give a 500 ---------------------------------------------------------

GARBAGE = {
    "empty_array": "[]",
    "string": '"x"',
    "number": "123",
    "null": "null",
    "true": "true",
    "empty_object": "{}",
    "array_of_objects": '[{"title": "T"}]',
    "wrong_types": json.dumps(
        {
            "agent_id": {"$ne": None},
            "initiative_id": [1, 2],
            "target_type": 5,
            "title": ["t"],
            "metadata": "yes",
            "sort_order": "first",
            "line_number": "many",
            "body": {"text": "x"},
        }
    ),
    "huge_strings": json.dumps(
        {"agent_id": "a" * 100_000, "title": "t" * 1_000_000, "body": "b" * 1_000_000}
    ),
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"a":' * 5_000 + "1" + "}" * 5_000,
    "nul_in_keys": '{"\\u0000": "\\u0000"}',
    "lone_surrogate": '{"title": "\\ud800"}',
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_body_to_create_proposal_is_a_4xx_in_the_error_shape(api_client, raw):
    response = api_client.post(url("create_proposal"), raw, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content[:500]
    assert set(response.json()) == {"code", "message", "details"}
    assert not Proposal.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"title": "nul \u0000 byte"},
        {"summary": "nul \u0000 byte"},
        {"content": "nul \u0000 byte"},
        {"metadata": {"priority": "nul \u0000 byte"}},
        {"agent_id": "a\u0000"},
        {"sort_order": 2**63},
        {"sort_order": -(2**70)},
        {"metadata": {"order": 2**70}},
        {"title": "t" * 500, "summary": "s" * 1_000_000, "content": "c" * 1_000_000},
    ],
    ids=[
        "nul_title",
        "nul_summary",
        "nul_content",
        "nul_metadata",
        "nul_id",
        "int64_overflow",
        "huge_negative",
        "huge_metadata_int",
        "huge_texts",
    ],
)
def test_hostile_values_in_a_well_formed_proposal_never_give_a_500(
    api_client, agent, initiative, change
):
    payload = {
        "agent_id": agent.id,
        "initiative_id": initiative.id,
        "target_type": "task",
        "title": "T",
        **change,
    }
    response = post_json(api_client, url("create_proposal"), payload)
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "details"}


@pytest.mark.parametrize("raw", list(GARBAGE.values())[:8], ids=list(GARBAGE)[:8])
@pytest.mark.parametrize(
    "name", ["accept_proposal", "dismiss_proposal", "accept_all_proposals", "revert_change_set"]
)
def test_garbage_body_to_an_action_without_body_is_ignored(
    person_client, agent, initiative, name, raw
):
    proposal = make_proposal(agent, initiative)
    kwargs = {
        "accept_proposal": {"proposal_id": proposal.id},
        "dismiss_proposal": {"proposal_id": proposal.id},
        "accept_all_proposals": {"agent_id": agent.id},
        "revert_change_set": {"change_set_id": "no-such-change-set"},
    }[name]
    response = person_client.post(url(name, **kwargs), raw, content_type="application/json")
    expected = HTTPStatus.NOT_FOUND if name == "revert_change_set" else HTTPStatus.OK
    assert response.status_code == expected, response.content[:500]


@pytest.mark.parametrize(
    ("method", "name", "kwargs"),
    [
        ("get", "retrieve_proposal", {"proposal_id": "a\u0000b"}),
        ("post", "accept_proposal", {"proposal_id": "a\u0000b"}),
        ("get", "count_agent_proposals", {"agent_id": "a\u0000b"}),
        ("get", "retrieve_change_set", {"change_set_id": "a\u0000b"}),
    ],
)
def test_nul_byte_in_a_path_id_is_refused_not_a_500(api_client, method, name, kwargs):
    # No record can have such an id: a 404, or a 400/422 refusing the value, are both fine.
    response = getattr(api_client, method)(url(name, **kwargs))
    assert response.status_code in (400, 404, 422), response.content[:500]
    assert set(response.json()) == {"code", "message", "details"}


@pytest.mark.parametrize("param", ["agent_id", "initiative_id"])
def test_nul_byte_in_a_list_filter_is_not_a_500(api_client, param):
    response = api_client.get(url("list_proposals"), {param: "a\u0000b"})
    assert response.status_code < 500, response.content[:500]
    if response.status_code == HTTPStatus.OK:
        assert response.json()["items"] == []
    else:
        assert set(response.json()) == {"code", "message", "details"}


# --- people's gates ------------------------------------------------------------------------

GATED = ["accept_proposal", "dismiss_proposal", "accept_all_proposals", "dismiss_all_proposals"]


def gated_path(name: str, proposal: Proposal) -> str:
    if name in {"accept_proposal", "dismiss_proposal"}:
        return url(name, proposal_id=proposal.id)
    return url(name, agent_id=proposal.agent_id)


@pytest.mark.parametrize("name", GATED)
def test_a_tools_token_is_refused_403_person_required_and_nothing_changes(
    api_client, agent, initiative, name
):
    proposal = make_proposal(agent, initiative, metadata=None)
    events_before = Event.objects.count()

    body = assert_error(
        api_client.post(gated_path(name, proposal)), HTTPStatus.FORBIDDEN, "person_required"
    )

    assert body["details"] == {"action": body["details"]["action"], "actor": "tool"}
    assert statuses(proposal) == [ProposalStatus.PENDING]
    assert (ChangeSet.objects.count(), Event.objects.count()) == (0, events_before)


@pytest.mark.parametrize("name", GATED)
@pytest.mark.parametrize("who", ["person_client", "staff_client"])
def test_a_personal_token_or_a_staff_session_passes_the_gate(request, agent, initiative, name, who):
    client = request.getfixturevalue(who)
    proposal = make_proposal(agent, initiative, metadata=None)

    response = client.post(gated_path(name, proposal))

    assert response.status_code == HTTPStatus.OK, response.content
    assert statuses(proposal) != [ProposalStatus.PENDING]
    kind = "proposal.accepted" if "accept" in name else "proposal.dismissed"
    assert Event.objects.filter(kind=kind, subject_id=proposal.id).count() == 1


def test_the_gate_refuses_before_looking_up_the_record(api_client):
    assert_error(
        api_client.post(url("accept_proposal", proposal_id="missing")),
        HTTPStatus.FORBIDDEN,
        "person_required",
    )


def test_creating_a_proposal_records_proposal_created(api_client, agent, initiative):
    response = post_json(
        api_client,
        url("create_proposal"),
        {"agent_id": agent.id, "initiative_id": initiative.id, "target_type": "task", "title": "T"},
    )

    event = Event.objects.get(kind="proposal.created")
    assert (event.subject_id, event.initiative_id) == (response.json()["id"], initiative.id)


def test_a_refused_proposal_records_nothing(api_client, agent):
    response = post_json(
        api_client,
        url("create_proposal"),
        {"agent_id": agent.id, "initiative_id": "missing", "target_type": "task", "title": "T"},
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Event.objects.exists()


def test_revert_records_change_set_reverted(person_client, api_client, agent, initiative):
    change_set = accept(person_client, make_proposal(agent, initiative, metadata=None))

    api_client.post(url("revert_change_set", change_set_id=change_set.id))

    event = Event.objects.get(kind="change_set.reverted")
    assert (event.subject_id, event.initiative_id) == (change_set.id, initiative.id)
