"""The core router's plans operations: initiatives, phases, tasks, dependencies and
transitions, the ready queue and checkpoints, pages, projects, and the people's gates."""

import json
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import (
    Event,
    Initiative,
    Page,
    Phase,
    PhaseDependency,
    PhaseStatus,
    Project,
    Task,
    TaskStatus,
    TaskType,
)
from core.tokens import api_token_create
from tests import factories as f
from tests.api.helpers import assert_error, patch_json, post_json, send_json

pytestmark = pytest.mark.django_db


def test_retrieve_phase_answers_the_phase_with_its_status(api_client):
    phase = f.PhaseFactory(name="Build")

    response = api_client.get(f"/api/phases/{phase.id}")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == phase.id
    assert body["initiative_id"] == phase.initiative_id
    assert (body["name"], body["status"]) == ("Build", "pending")


def test_retrieve_task_answers_the_task(api_client):
    task = f.TaskFactory(name="Write tests")

    body = api_client.get(f"/api/tasks/{task.id}").json()

    assert (body["id"], body["name"], body["status"], body["type"]) == (
        task.id,
        "Write tests",
        "pending",
        "auto",
    )


@pytest.mark.parametrize(
    ("path", "code"), [("phases", "phase_not_found"), ("tasks", "task_not_found")]
)
def test_unknown_ids_are_404_with_the_records_code(api_client, path, code):
    response = api_client.get(f"/api/{path}/nope")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == code


def test_the_openapi_enum_of_a_task_status_is_the_models(api_client):
    from core.models import TaskStatus

    schema = api_client.get("/api/openapi.json").json()["components"]["schemas"]

    assert schema["TaskStatus"]["enum"] == list(TaskStatus.values)


# --- the plans operations -------------------------------------------------------------------


@pytest.fixture
def person_client():
    """A client with a personal token: it passes the people's gates."""
    user = get_user_model().objects.create_user(username="lead", password="x" * 12)
    _token, clear = api_token_create(name="lead-laptop", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


def _kinds():
    """The kinds on the feed, oldest first, but the set-up's tokens' making."""
    found = Event.objects.exclude(kind="api_token.created").order_by("id")
    return list(found.values_list("kind", flat=True))


# --- initiatives


def test_create_initiative_answers_201_and_records_the_event(api_client):
    response = post_json(api_client, "/api/initiatives", {"name": " User auth "})

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    initiative = Initiative.objects.get()
    assert body == {
        "id": initiative.id,
        "name": "User auth",
        "status": "active",
        "branch": "cw/user-auth",
        "execution_mode": "review_per_phase",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert _kinds() == ["initiative.created"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "   "}, 400, "empty_name"),
        ({"name": "a\x00b"}, 422, "validation_error"),
        ({"name": "x" * 501}, 422, "validation_error"),
        ({"name": "ok", "execution_mode": "fast"}, 400, "invalid_execution_mode"),
        ({"name": "ok", "colour": "red"}, 422, "validation_error"),
        ({}, 400, "empty_name"),
    ],
)
def test_create_initiative_refuses_bad_input_and_writes_nothing(api_client, body, status, code):
    assert_error(post_json(api_client, "/api/initiatives", body), status, code)

    assert (Initiative.objects.count(), _kinds()) == (0, [])


def test_list_initiatives_filters_by_status(api_client):
    active = f.InitiativeFactory()
    f.InitiativeFactory(status="archived")

    body = api_client.get("/api/initiatives?status=active").json()

    assert (body["total"], [i["id"] for i in body["items"]]) == (1, [active.id])
    assert_error(api_client.get("/api/initiatives?status=nope"), 400, "invalid_status")


def test_update_archive_and_execution_mode_of_an_initiative(api_client):
    initiative = f.InitiativeFactory()
    path = f"/api/initiatives/{initiative.id}"

    assert patch_json(api_client, path, {"name": "Renamed"}).json()["name"] == "Renamed"
    mode = post_json(api_client, f"{path}/execution-mode", {"execution_mode": "yolo"})
    assert mode.json()["execution_mode"] == "yolo"
    assert api_client.post(f"{path}/archive").json()["status"] == "archived"
    assert_error(api_client.post(f"{path}/archive"), 409, "transition_not_allowed")
    assert api_client.get(path).json()["name"] == "Renamed"
    assert_error(api_client.get("/api/initiatives/nope"), 404, "initiative_not_found")


# --- the people's gates


@pytest.fixture
def gated():
    """A record waiting at each gate."""
    checkpoint_phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    checkpoint = f.TaskFactory(phase=checkpoint_phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    return {
        "approve_phase_plan": f"/api/phases/{f.PhaseFactory().id}/approve-plan",
        "approve_phase": f"/api/phases/{f.PhaseFactory(status='pending_review').id}/approve",
        "approve_initiative": (
            f"/api/initiatives/{f.InitiativeFactory(status='pending_review').id}/approve"
        ),
        "start_task": f"/api/tasks/{checkpoint.id}/start",
        "complete_task": f"/api/tasks/{checkpoint.id}/complete",
    }


GATES = ["approve_phase_plan", "approve_phase", "approve_initiative", "start_task", "complete_task"]


@pytest.mark.parametrize("operation", GATES)
def test_a_tools_token_gets_403_person_required_at_each_gate(api_client, gated, operation):
    response = post_json(api_client, gated[operation], {})

    body = assert_error(response, 403, "person_required")
    # One release long, the former code of a checkpoint's start is listed beside it.
    assert body["deprecated_codes"] == ["checkpoint_requires_person"]
    assert _kinds() == []


@pytest.mark.parametrize("operation", GATES)
def test_a_personal_token_passes_each_gate(person_client, gated, operation):
    response = post_json(person_client, gated[operation], {})

    assert response.status_code == HTTPStatus.OK, response.content
    expected = {"approve_phase_plan": "approved", "start_task": "in_progress"}
    assert response.json()["status"] == expected.get(operation, "completed")


# --- phases


def test_create_phase_converts_markdown_to_a_tiptap_document(api_client):
    initiative = f.InitiativeFactory()

    response = post_json(
        api_client,
        f"/api/initiatives/{initiative.id}/phases",
        {"name": "Build", "content_markdown": "# Plan\n\nDo **it**."},
    )

    assert response.status_code == HTTPStatus.CREATED
    content = json.loads(response.json()["content"])
    assert content["type"] == "doc"
    assert content["content"][0] == {
        "type": "heading",
        "attrs": {"level": 1},
        "content": [{"type": "text", "text": "Plan"}],
    }
    assert _kinds() == ["phase.created"]


def test_create_phase_takes_tiptap_json_but_not_both_forms(api_client):
    initiative = f.InitiativeFactory()
    path = f"/api/initiatives/{initiative.id}/phases"
    doc = {"type": "doc", "content": [{"type": "paragraph"}]}

    assert post_json(api_client, path, {"name": "A", "content": doc}).status_code == 201
    both = post_json(api_client, path, {"name": "B", "content": doc, "content_markdown": "x"})
    assert_error(both, 422, "validation_error")
    not_tiptap = post_json(api_client, path, {"name": "C", "content": {"type": "page"}})
    assert not_tiptap.status_code == HTTPStatus.BAD_REQUEST
    assert_error(post_json(api_client, "/api/initiatives/nope/phases", {"name": "D"}), 404,
                 "initiative_not_found")  # fmt: skip
    assert Phase.objects.count() == 1


def test_update_and_delete_a_phase(api_client):
    phase = f.PhaseFactory(name="Old")

    updated = patch_json(api_client, f"/api/phases/{phase.id}", {"content_markdown": "Hi"})
    assert updated.json()["name"] == "Old"
    assert json.loads(updated.json()["content"])["type"] == "doc"
    assert api_client.delete(f"/api/phases/{phase.id}").status_code == HTTPStatus.NO_CONTENT
    assert_error(api_client.delete(f"/api/phases/{phase.id}"), 404, "phase_not_found")
    assert _kinds() == ["phase.updated", "phase.deleted"]


def test_phase_dependencies_add_list_refuse_and_remove(api_client):
    first = f.PhaseFactory()
    second = f.PhaseFactory(initiative=first.initiative)
    elsewhere = f.PhaseFactory()
    deps = f"/api/phases/{second.id}/dependencies"

    added = post_json(api_client, deps, {"depends_on_id": first.id})
    assert (added.status_code, added.json()) == (201, {"id": second.id, "depends_on_id": first.id})
    assert [p["id"] for p in api_client.get(deps).json()] == [first.id]
    cycle = post_json(
        api_client, f"/api/phases/{first.id}/dependencies", {"depends_on_id": second.id}
    )
    assert_error(cycle, 409, "dependency_cycle")
    assert_error(post_json(api_client, deps, {"depends_on_id": first.id}), 409, "dependency_taken")
    cross = post_json(api_client, deps, {"depends_on_id": elsewhere.id})
    assert_error(cross, 400, "dependency_other_initiative")
    assert_error(post_json(api_client, deps, {"depends_on_id": "nope"}), 404, "phase_not_found")
    assert PhaseDependency.objects.count() == 1

    assert api_client.delete(f"{deps}/{first.id}").status_code == HTTPStatus.NO_CONTENT
    assert_error(api_client.delete(f"{deps}/{first.id}"), 404, "dependency_not_found")
    assert _kinds() == ["dependency.added", "dependency.removed"]


def test_phase_transitions_and_their_refusals(api_client, person_client):
    phase = f.PhaseFactory()
    path = f"/api/phases/{phase.id}"

    assert_error(api_client.post(f"{path}/start"), 409, "transition_not_allowed")
    assert person_client.post(f"{path}/approve-plan").json()["status"] == "approved"
    assert api_client.post(f"{path}/block").json()["status"] == "blocked"
    assert api_client.post(f"{path}/unblock").json()["status"] == "approved"
    assert api_client.post(f"{path}/start").json()["status"] == "in_progress"
    assert api_client.post(f"{path}/complete").json()["status"] == "pending_review"
    assert_error(api_client.post("/api/phases/nope/start"), 404, "phase_not_found")


def test_list_phases_filters_by_initiative_and_status(api_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    f.PhaseFactory(initiative=phase.initiative)
    f.PhaseFactory(status=PhaseStatus.APPROVED)

    body = api_client.get(f"/api/phases?initiative_id={phase.initiative_id}&status=approved").json()

    assert (body["total"], [p["id"] for p in body["items"]]) == (1, [phase.id])


# --- tasks


def test_a_task_goes_from_creation_through_the_ready_queue_to_completion(api_client, person_client):
    initiative = f.InitiativeFactory(execution_mode="yolo")
    phase = f.PhaseFactory(initiative=initiative)
    first = post_json(api_client, f"/api/phases/{phase.id}/tasks", {"name": "First"}).json()
    second = post_json(
        api_client, f"/api/phases/{phase.id}/tasks", {"name": "Second", "priority": "high"}
    ).json()
    post_json(api_client, f"/api/tasks/{second['id']}/dependencies", {"depends_on_id": first["id"]})

    assert_error(api_client.post(f"/api/tasks/{first['id']}/start"), 409, "task_not_ready")
    assert api_client.get("/api/ready-tasks").json() == []
    person_client.post(f"/api/phases/{phase.id}/approve-plan")
    assert [t["id"] for t in api_client.get("/api/ready-tasks").json()] == [first["id"]]

    assert api_client.post(f"/api/tasks/{first['id']}/start").json()["status"] == "in_progress"
    done = post_json(api_client, f"/api/tasks/{first['id']}/complete", {"summary": "Built A."})
    assert (done.json()["status"], done.json()["summary"]) == ("completed", "Built A.")
    assert api_client.get(f"/api/tasks/{second['id']}/context").json() == [
        {"task_id": first["id"], "name": "First", "summary": "Built A."}
    ]
    api_client.post(f"/api/tasks/{second['id']}/start")
    post_json(api_client, f"/api/tasks/{second['id']}/complete", {})

    assert api_client.get(f"/api/initiatives/{initiative.id}").json()["status"] == "completed"
    assert _kinds() == [
        "task.created",
        "task.created",
        "dependency.added",
        "phase.status_changed",
        "phase.status_changed",
        "task.started",
        "task.completed",
        "task.started",
        "task.completed",
        "phase.status_changed",
        "initiative.status_changed",
    ]


def test_the_ready_queue_is_high_priority_first_then_oldest_and_limited(api_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    low = f.TaskFactory(phase=phase, priority="low")
    medium = f.TaskFactory(phase=phase, priority="medium")
    high = f.TaskFactory(phase=phase, priority="high")
    other = f.TaskFactory(phase=f.PhaseFactory(status=PhaseStatus.APPROVED), priority="high")

    ids = [t["id"] for t in api_client.get("/api/ready-tasks").json()]
    assert ids == [high.id, other.id, medium.id, low.id]
    scoped = api_client.get(f"/api/ready-tasks?initiative_id={phase.initiative_id}&limit=2")
    assert [t["id"] for t in scoped.json()] == [high.id, medium.id]
    assert_error(api_client.get("/api/ready-tasks?limit=0"), 400, "invalid_limit")


def test_checkpoints_waiting_for_a_person_are_listed_apart(api_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    f.TaskFactory(phase=phase)
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)

    body = api_client.get(f"/api/checkpoints?initiative_id={phase.initiative_id}").json()

    assert [t["id"] for t in body] == [checkpoint.id]


def test_initiative_tasks_subtasks_and_list_filters(api_client):
    phase = f.PhaseFactory()
    loose = post_json(
        api_client, f"/api/initiatives/{phase.initiative_id}/tasks", {"name": "Loose"}
    ).json()
    parent = post_json(api_client, f"/api/phases/{phase.id}/tasks", {"name": "Parent"}).json()
    child = post_json(api_client, f"/api/tasks/{parent['id']}/subtasks", {"name": "Child"})

    assert child.status_code == HTTPStatus.CREATED
    assert (child.json()["phase_id"], child.json()["parent_task_id"]) == (phase.id, parent["id"])
    assert loose["phase_id"] is None

    def ids(query):
        return {t["id"] for t in api_client.get(f"/api/tasks?{query}").json()["items"]}

    assert ids(f"initiative_id={phase.initiative_id}") == {
        loose["id"],
        parent["id"],
        child.json()["id"],
    }
    assert ids(f"phase_id={phase.id}") == {parent["id"], child.json()["id"]}
    assert ids(f"parent_task_id={parent['id']}") == {child.json()["id"]}
    assert ids("status=completed&type=auto") == set()
    assert_error(api_client.get("/api/tasks?type=nope"), 400, "invalid_type")


def test_update_block_unblock_and_delete_a_task(api_client):
    task = f.TaskFactory()
    other_phase = f.PhaseFactory()
    path = f"/api/tasks/{task.id}"

    assert patch_json(api_client, path, {"name": "Renamed", "order": 3}).json()["order"] == 3
    moved = patch_json(api_client, path, {"phase_id": other_phase.id})
    assert_error(moved, 400, "task_phase_other_initiative")
    assert_error(patch_json(api_client, path, {"status": "completed"}), 422, "validation_error")
    assert api_client.post(f"{path}/block").json()["status"] == "blocked"
    assert api_client.post(f"{path}/unblock").json()["status"] == "pending"
    assert api_client.delete(path).status_code == HTTPStatus.NO_CONTENT
    assert_error(api_client.get(path), 404, "task_not_found")
    assert _kinds() == ["task.updated", "task.blocked", "task.unblocked", "task.deleted"]


def test_task_dependencies_refuse_other_initiatives_and_cycles(api_client):
    first = f.TaskFactory()
    second = f.TaskFactory(phase=first.phase)
    deps = f"/api/tasks/{second.id}/dependencies"

    assert post_json(api_client, deps, {"depends_on_id": first.id}).status_code == 201
    back = post_json(
        api_client, f"/api/tasks/{first.id}/dependencies", {"depends_on_id": second.id}
    )
    assert_error(back, 409, "dependency_cycle")
    other = post_json(api_client, deps, {"depends_on_id": f.TaskFactory().id})
    assert_error(other, 400, "dependency_other_initiative")
    assert_error(
        post_json(api_client, deps, {"depends_on_id": second.id}), 400, "dependency_self_edge"
    )
    assert [t["id"] for t in api_client.get(deps).json()] == [first.id]
    assert api_client.delete(f"{deps}/{first.id}").status_code == HTTPStatus.NO_CONTENT
    assert_error(api_client.get("/api/tasks/nope/dependencies"), 404, "task_not_found")


def test_completing_a_task_not_in_progress_is_409_and_records_nothing(api_client):
    task = f.TaskFactory()

    assert_error(post_json(api_client, f"/api/tasks/{task.id}/complete", {}), 409,
                 "transition_not_allowed")  # fmt: skip
    assert Task.objects.get().status == TaskStatus.PENDING
    assert _kinds() == []


# --- pages


def test_pages_tree_root_create_move_and_delete(api_client):
    initiative = f.InitiativeFactory(name="Auth")
    base = f"/api/initiatives/{initiative.id}/pages"

    root = api_client.post(f"{base}/root").json()
    assert (root["title"], root["parent_page_id"]) == ("Auth", None)
    assert api_client.post(f"{base}/root").json()["id"] == root["id"]
    b = post_json(api_client, base, {"title": "B", "sort_order": 2}).json()
    a = post_json(api_client, base, {"title": "A", "sort_order": 1, "content_markdown": "x"}).json()
    a1 = post_json(api_client, base, {"title": "A1", "parent_page_id": a["id"]}).json()
    assert json.loads(a["content"])["type"] == "doc"

    titles = [p["title"] for p in api_client.get(base).json()]
    assert titles == ["Auth", "A", "A1", "B"]

    moved = post_json(api_client, f"/api/pages/{a1['id']}/move", {"parent_page_id": b["id"]})
    assert moved.json()["parent_page_id"] == b["id"]
    cycle = post_json(api_client, f"/api/pages/{b['id']}/move", {"parent_page_id": a1["id"]})
    assert_error(cycle, 400, "page_parent_cycle")
    assert (
        patch_json(api_client, f"/api/pages/{b['id']}", {"title": "Bee"}).json()["title"] == "Bee"
    )
    assert api_client.delete(f"/api/pages/{b['id']}").status_code == HTTPStatus.NO_CONTENT
    assert [p["title"] for p in api_client.get(base).json()] == ["Auth", "A"]
    assert_error(api_client.get(f"/api/pages/{b['id']}"), 404, "page_not_found")


def test_a_page_parent_of_another_initiative_is_400(api_client):
    other = f.PageFactory()
    initiative = f.InitiativeFactory()

    response = post_json(
        api_client,
        f"/api/initiatives/{initiative.id}/pages",
        {"title": "X", "parent_page_id": other.id},
    )

    assert_error(response, 400, "page_parent_other_initiative")
    assert Page.objects.filter(initiative=initiative).count() == 0


# --- projects


def test_projects_crud_fetched_and_the_initiatives_set(api_client):
    created = post_json(api_client, "/api/projects", {"name": "cw", "url": "https://x.org/cw.git"})
    assert (created.status_code, created.json()["default_branch"]) == (201, "main")
    project = created.json()
    path = f"/api/projects/{project['id']}"
    duplicate = post_json(api_client, "/api/projects", {"name": "cw", "url": "https://x.org/y.git"})
    assert duplicate.status_code == HTTPStatus.CONFLICT
    bad_url = post_json(api_client, "/api/projects", {"name": "z", "url": "not a url"})
    assert bad_url.status_code == HTTPStatus.BAD_REQUEST

    assert patch_json(api_client, path, {"default_branch": "dev"}).json()["default_branch"] == "dev"
    assert api_client.post(f"{path}/fetched").json()["last_fetched_at"] is not None
    assert api_client.get("/api/projects").json()["total"] == 1

    initiative = f.InitiativeFactory()
    links = f"/api/initiatives/{initiative.id}/projects"
    put = send_json(api_client, "put", links, {"project_ids": [project["id"]]})
    assert [p["id"] for p in put.json()] == [project["id"]]
    unknown = send_json(api_client, "put", links, {"project_ids": ["nope"]})
    assert_error(unknown, 404, "project_not_found")
    assert [p["id"] for p in api_client.get(links).json()] == [project["id"]]

    assert api_client.delete(path).status_code == HTTPStatus.NO_CONTENT
    assert api_client.get(links).json() == []
    assert_error(api_client.get(path), 404, "project_not_found")


# --- lists cost the same at 1 and 100 items


def _make(count):
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    root = f.PageFactory(initiative=initiative, parent_page=None)
    hub = f.PhaseFactory(initiative=initiative)
    hub_task = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)
    for index in range(count):
        f.InitiativeFactory()
        other = f.PhaseFactory(initiative=initiative)
        f.PhaseDependencyFactory(phase=hub, depends_on_phase=other)
        task = f.TaskFactory(phase=phase, priority=("high", "low")[index % 2])
        f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)
        f.TaskDependencyFactory(task=hub_task, depends_on_task=task)
        f.PageFactory(initiative=initiative, parent_page=root)
        project = f.ProjectFactory()
        f.InitiativeProjectFactory(initiative=initiative, project=project)
    return initiative, hub, hub_task


LIST_PATHS = [
    "/api/initiatives?limit=200",
    "/api/phases?limit=200",
    "/api/tasks?limit=200",
    "/api/ready-tasks?limit=200",
    "/api/checkpoints",
    "/api/projects?limit=200",
    "/api/initiatives/{initiative}/pages",
    "/api/initiatives/{initiative}/projects",
    "/api/phases/{hub}/dependencies",
    "/api/tasks/{hub_task}/dependencies",
    "/api/tasks/{hub_task}/context",
]


def _query_counts(client, count):
    initiative, hub, hub_task = _make(count)
    client.get("/api/whoami")  # the token's once-a-minute ``last_used_at`` write, done first
    counts = {}
    for template in LIST_PATHS:
        path = template.format(initiative=initiative.id, hub=hub.id, hub_task=hub_task.id)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == HTTPStatus.OK, (path, response.content)
        assert len(response.json()) > 0, path
        counts[template] = len(queries)
    return counts


def test_lists_cost_the_same_number_of_queries_at_1_and_100_items(api_client):
    one = _query_counts(api_client, 1)
    Initiative.objects.all().delete()  # with their phases, tasks, pages and links
    Project.objects.all().delete()
    hundred = _query_counts(api_client, 100)

    assert hundred == one


# --- the OpenAPI document


PLANS_OPERATIONS = {
    "create_initiative": ("post", "/api/initiatives"),
    "list_initiatives": ("get", "/api/initiatives"),
    "retrieve_initiative": ("get", "/api/initiatives/{initiative_id}"),
    "update_initiative": ("patch", "/api/initiatives/{initiative_id}"),
    "archive_initiative": ("post", "/api/initiatives/{initiative_id}/archive"),
    "set_execution_mode": ("post", "/api/initiatives/{initiative_id}/execution-mode"),
    "approve_initiative": ("post", "/api/initiatives/{initiative_id}/approve"),
    "create_phase": ("post", "/api/initiatives/{initiative_id}/phases"),
    "list_phases": ("get", "/api/phases"),
    "retrieve_phase": ("get", "/api/phases/{phase_id}"),
    "update_phase": ("patch", "/api/phases/{phase_id}"),
    "delete_phase": ("delete", "/api/phases/{phase_id}"),
    "list_phase_dependencies": ("get", "/api/phases/{phase_id}/dependencies"),
    "add_phase_dependency": ("post", "/api/phases/{phase_id}/dependencies"),
    "remove_phase_dependency": ("delete", "/api/phases/{phase_id}/dependencies/{depends_on_id}"),
    "approve_phase_plan": ("post", "/api/phases/{phase_id}/approve-plan"),
    "start_phase": ("post", "/api/phases/{phase_id}/start"),
    "block_phase": ("post", "/api/phases/{phase_id}/block"),
    "unblock_phase": ("post", "/api/phases/{phase_id}/unblock"),
    "complete_phase": ("post", "/api/phases/{phase_id}/complete"),
    "approve_phase": ("post", "/api/phases/{phase_id}/approve"),
    "create_task": ("post", "/api/phases/{phase_id}/tasks"),
    "create_initiative_task": ("post", "/api/initiatives/{initiative_id}/tasks"),
    "create_subtask": ("post", "/api/tasks/{task_id}/subtasks"),
    "list_tasks": ("get", "/api/tasks"),
    "retrieve_task": ("get", "/api/tasks/{task_id}"),
    "update_task": ("patch", "/api/tasks/{task_id}"),
    "delete_task": ("delete", "/api/tasks/{task_id}"),
    "list_task_dependencies": ("get", "/api/tasks/{task_id}/dependencies"),
    "add_task_dependency": ("post", "/api/tasks/{task_id}/dependencies"),
    "remove_task_dependency": ("delete", "/api/tasks/{task_id}/dependencies/{depends_on_id}"),
    "start_task": ("post", "/api/tasks/{task_id}/start"),
    "block_task": ("post", "/api/tasks/{task_id}/block"),
    "unblock_task": ("post", "/api/tasks/{task_id}/unblock"),
    "complete_task": ("post", "/api/tasks/{task_id}/complete"),
    "retrieve_task_context": ("get", "/api/tasks/{task_id}/context"),
    "list_ready_tasks": ("get", "/api/ready-tasks"),
    "list_waiting_checkpoints": ("get", "/api/checkpoints"),
    "list_pages": ("get", "/api/initiatives/{initiative_id}/pages"),
    "retrieve_root_page": ("post", "/api/initiatives/{initiative_id}/pages/root"),
    "create_page": ("post", "/api/initiatives/{initiative_id}/pages"),
    "retrieve_page": ("get", "/api/pages/{page_id}"),
    "update_page": ("patch", "/api/pages/{page_id}"),
    "delete_page": ("delete", "/api/pages/{page_id}"),
    "move_page": ("post", "/api/pages/{page_id}/move"),
    "create_project": ("post", "/api/projects"),
    "list_projects": ("get", "/api/projects"),
    "retrieve_project": ("get", "/api/projects/{project_id}"),
    "update_project": ("patch", "/api/projects/{project_id}"),
    "delete_project": ("delete", "/api/projects/{project_id}"),
    "mark_project_fetched": ("post", "/api/projects/{project_id}/fetched"),
    "fetch_project": ("post", "/api/projects/{project_id}/fetch"),
    "list_initiative_projects": ("get", "/api/initiatives/{initiative_id}/projects"),
    "set_initiative_projects": ("put", "/api/initiatives/{initiative_id}/projects"),
}
GATES = {"approve_initiative", "approve_phase_plan", "approve_phase", "complete_task"}


def test_every_plans_operation_is_documented_with_a_summary_tag_and_its_errors(api_client):
    paths = api_client.get("/api/openapi.json").json()["paths"]

    for name, (method, path) in PLANS_OPERATIONS.items():
        operation = paths.get(path, {}).get(method)
        assert operation is not None, f"{name}: {method.upper()} {path} is missing"
        assert operation["operationId"].endswith(name), (name, operation["operationId"])
        assert operation.get("summary") or operation.get("description"), name
        assert "plans" in operation["tags"], name
        statuses = set(operation["responses"])
        assert {"401", "403", "422"} <= statuses, name
        if name in GATES:
            assert "403" in statuses and "409" in statuses, name
