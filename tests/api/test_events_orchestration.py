"""Every change is on the feed, end to end over HTTP: a tool plans, an agent proposes
tasks with dependencies, a person accepts them and reverts one; the feed read with
``GET /api/events`` holds one event per record created, per edge added, and the reverse
of each for the revert, each naming who acted and through which change set."""

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from core.models import Task
from core.tokens import api_token_create
from tests.api.helpers import post_json, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def person() -> Client:
    user = get_user_model().objects.create_user(username="lead", password="unused-password")
    _token, clear = api_token_create(name="lead-token", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def created(response) -> dict:
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def read_feed(client: Client, after: int) -> tuple[list[dict], int]:
    """Every event after ``after``, following the cursor to the end."""
    found: list[dict] = []
    while True:
        page = client.get(url("list_events"), {"after": after, "limit": 2}).json()
        found += page["items"]
        if not page["items"]:
            return found, after
        after = page["next_after"]


def test_accepting_proposed_tasks_and_reverting_them_are_on_the_feed(api_client, person):
    # The orchestrator (a tool) plans: an initiative, a phase and two tasks.
    initiative = created(post_json(api_client, "/api/initiatives", {"name": "Search"}))
    phase = created(
        post_json(api_client, f"/api/initiatives/{initiative['id']}/phases", {"name": "Index"})
    )
    schema, crawler = (
        created(post_json(api_client, f"/api/phases/{phase['id']}/tasks", {"name": name}))
        for name in ("Schema", "Crawler")
    )
    agent = created(post_json(api_client, "/api/agents", {"worktree_id": "/wt/1"}))["agent"]
    _, cursor = read_feed(api_client, 0)

    # The agent proposes two tasks: three dependency edges in all.
    wanted = {"Indexer": [schema["id"], crawler["id"]], "Ranker": [schema["id"]]}
    proposals = [
        created(
            post_json(
                api_client,
                "/api/proposals",
                {
                    "agent_id": agent["id"],
                    "initiative_id": initiative["id"],
                    "target_type": "task",
                    "title": title,
                    "metadata": {"phase_id": phase["id"], "dependencies": dependencies},
                },
            )
        )
        for title, dependencies in wanted.items()
    ]
    proposed, cursor = read_feed(api_client, cursor)
    assert [event["kind"] for event in proposed] == ["proposal.created", "proposal.created"]
    assert {event["actor"]["type"] for event in proposed} == {"tool"}

    # A person accepts them all.
    accepted = person.post(url("accept_all_proposals", agent_id=agent["id"]))
    assert accepted.status_code == HTTPStatus.OK, accepted.content
    change_sets = [change_set["id"] for change_set in accepted.json()["change_sets"]]
    tasks = {task.name: task.pk for task in Task.objects.filter(name__in=wanted)}

    feed, cursor = read_feed(api_client, cursor)
    assert {
        (event["actor"]["type"], event["actor"]["name"], event["actor"]["via"]) for event in feed
    } == {("person", "lead", "api")}
    assert {event["initiative_id"] for event in feed} == {initiative["id"]}
    made = [event for event in feed if event["kind"] == "task.created"]
    assert sorted(
        (event["subject_id"], event["data"]["change_set_id"]) for event in made
    ) == sorted(zip((tasks["Indexer"], tasks["Ranker"]), change_sets, strict=True))
    assert all(event["data"]["phase_id"] == phase["id"] for event in made)
    edges = [
        (event["subject_id"], event["data"]["depends_on_id"])
        for event in feed
        if event["kind"] == "dependency.added"
    ]
    assert sorted(edges) == sorted(
        (tasks[title], depends_on) for title, deps in wanted.items() for depends_on in deps
    )
    assert [event["subject_id"] for event in feed if event["kind"] == "proposal.accepted"] == [
        proposal["id"] for proposal in proposals
    ]
    assert len(feed) == 2 + 3 + 2  # nothing else

    # The person reverts the first accept: the reverse of each record, then the revert.
    reverted = person.post(url("revert_change_set", change_set_id=change_sets[0]))
    assert reverted.status_code == HTTPStatus.OK, reverted.content

    feed, _ = read_feed(api_client, cursor)
    indexer = tasks["Indexer"]
    assert [(event["kind"], event["subject_id"]) for event in feed] == [
        ("proposal.reopened", proposals[0]["id"]),
        ("dependency.removed", indexer),
        ("dependency.removed", indexer),
        ("task.deleted", indexer),
        ("change_set.reverted", change_sets[0]),
    ]
    assert sorted(event["data"]["depends_on_id"] for event in feed[1:3]) == sorted(
        wanted["Indexer"]
    )
    assert all(
        (event["data"]["change_set_id"], event["data"]["reverted"]) == (change_sets[0], True)
        for event in feed[:4]
    )
    assert {event["actor"]["name"] for event in feed} == {"lead"}
    assert not Task.objects.filter(pk=indexer).exists()
