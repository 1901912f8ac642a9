"""Every committed change is on the event feed, with who made it: a census of the doors.

Each write operation of the OpenAPI document, each admin add, change and delete (one or
a selection) and each command that writes runs on fresh records. The rows of every table
are compared before and after: a call that changed a row must have recorded at least one
event, every event it recorded must name the caller (the tool's token or its person, the
person through the admin, the command and its operator), and a call that changed nothing
must have recorded nothing. Bookkeeping that is not a change of the domain (the feed
itself, rate-limit windows, a token's last use) is left out.
"""

import io
import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agents.models import Account, Agent
from core.history import subject_type_of
from core.models import Event, Initiative, Page, Phase, Task
from core.repositories import readiness
from core.tokens import api_token_create
from reviews.models import ReviewComment
from tests import factories as f
from tests.api.openapi_calls import document, example, fill_path, operations, plausible_records
from tests.cw_project.test_admin_census import FACTORY_FOR, VALID_ADD, form_data

pytestmark = pytest.mark.django_db

CW_APPS = ("core", "agents", "reviews")
#: Tables that are not the domain's state: the feed itself and the rate limiter's windows.
BOOKKEEPING = {"core.Event", "core.ApiRateWindow"}
#: Columns that move on a read: a token's last use.
IGNORED_COLUMNS = {"core.ApiToken": {"last_used_at"}}


def snapshot() -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every cw table, by table and primary key."""
    rows: dict[str, dict[Any, dict[str, Any]]] = {}
    for app in CW_APPS:
        for model in apps.get_app_config(app).get_models():
            label = model._meta.label
            if label in BOOKKEEPING:
                continue
            ignored = IGNORED_COLUMNS.get(label, set())
            pk = model._meta.pk.attname
            columns = [c.attname for c in model._meta.concrete_fields if c.attname not in ignored]
            rows[label] = {row[pk]: row for row in model._default_manager.values(*columns)}
    return rows


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


class Census:
    """Runs one door's call and says what it changed and what it recorded."""

    def __init__(self) -> None:
        self.last_event = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def run(self, do: Callable[[], Any]) -> tuple[Any, list[str], list[Event]]:
        before = snapshot()
        result = do()
        after = snapshot()
        recorded = list(Event.objects.filter(id__gt=self.last_event).order_by("id"))
        self.last_event = recorded[-1].id if recorded else self.last_event
        return result, changed_tables(before, after), recorded


# --- the API -------------------------------------------------------------------------------

UNSAFE = {"post", "put", "patch", "delete"}
WRITE_OPERATIONS = [
    (method, path, operation) for method, path, operation in operations() if method in UNSAFE
]


class Secrets:
    def __init__(self) -> None:
        self.counter = itertools.count()

    def new(self, key: str = "token") -> str:
        return f'{{"{key}": "census-{next(self.counter)}"}}'


@dataclass
class Scenario:
    """What an operation needs to succeed on the plausible records: ids to put in its
    path and body (``<kind>`` for ``<kind>_id``), fields of its body, and whether a
    person must call it (a person's gate)."""

    ids: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    person: bool = False


def _phase(ids: dict[str, str], status: str) -> str:
    Phase.objects.filter(pk=ids["phase"]).update(status=status)
    readiness.rebuild()  # the update went past the repositories that keep it current
    return ids["phase"]


def _task(ids: dict[str, str], status: str, phase_status: str = "in_progress") -> str:
    _phase(ids, phase_status)
    Task.objects.filter(pk=ids["task"]).update(status=status)
    readiness.rebuild()
    return ids["task"]


def _sibling_phase(ids: dict[str, str]) -> str:
    return f.PhaseFactory(initiative_id=ids["initiative"]).pk


def _sibling_task(ids: dict[str, str]) -> str:
    task = Task.objects.get(pk=ids["task"])
    return f.TaskFactory(phase=task.phase).pk


def _in_review_with_comment(ids: dict[str, str]) -> Scenario:
    _phase(ids, "pending_review")
    return Scenario(person=True)


def _page_proposal(ids: dict[str, str], person: bool = True) -> Scenario:
    return Scenario(person=person)


def _two_child_pages(ids: dict[str, str]) -> Scenario:
    root = Page.objects.get(pk=ids["page"])
    moved, parent = (
        f.PageFactory(initiative_id=root.initiative_id, parent_page=root) for _ in range(2)
    )
    return Scenario(ids={"page": moved.pk}, body={"parent_page_id": parent.pk})


def _exhausted_account(ids: dict[str, str]) -> Scenario:
    f.AccountFactory(is_exhausted=True, exhausted_until=timezone.now() - timedelta(minutes=1))
    return Scenario()


def _resolved_comment(ids: dict[str, str]) -> Scenario:
    ReviewComment.objects.filter(pk=ids["comment"]).update(resolved=True)
    return Scenario()


def _phase_edge(ids: dict[str, str]) -> Scenario:
    other = _sibling_phase(ids)
    f.PhaseDependencyFactory(phase_id=ids["phase"], depends_on_phase_id=other)
    return Scenario(ids={"depends_on": other})


def _task_edge(ids: dict[str, str]) -> Scenario:
    other = _sibling_task(ids)
    f.TaskDependencyFactory(task_id=ids["task"], depends_on_task_id=other)
    return Scenario(ids={"depends_on": other})


def _running_agent(ids: dict[str, str], **body: Any) -> Scenario:
    Agent.objects.filter(pk=ids["agent"]).update(status="running")
    return Scenario(body=body)


def _message_to_person(ids: dict[str, str]) -> Scenario:
    message = f.MessageFactory(
        sender_type="agent",
        sender_id=ids["agent"],
        recipient_type="user",
        type="question",
        requires_response=True,
    )
    return Scenario(ids={"message": message.pk}, person=True, body={"sender_type": "user"})


#: Per operation (by handler name), what it needs beyond the plausible records.
def _fetchable_project(ids: dict[str, str]) -> Scenario:
    """A project whose URL is a real repository (beside the test run's mirrors)."""
    from tests.runner.gitwork_helpers import make_origin

    folder = tempfile.mkdtemp(prefix="census-", dir=Path(settings.CW_MIRRORS_DIR).parent)
    origin = make_origin(Path(folder))
    return Scenario(ids={"project": f.ProjectFactory(url=f"file://{origin}").pk})


SCENARIOS: dict[str, Callable[[dict[str, str]], Scenario]] = {
    "approve_initiative": lambda ids: (
        Phase.objects.filter(initiative_id=ids["initiative"]).update(status="completed"),
        Initiative.objects.filter(pk=ids["initiative"]).update(status="pending_review"),
        readiness.rebuild(),
        Scenario(person=True),
    )[-1],
    "add_phase_dependency": lambda ids: Scenario(ids={"depends_on": _sibling_phase(ids)}),
    "remove_phase_dependency": _phase_edge,
    "approve_phase_plan": lambda ids: Scenario(person=True),
    "start_phase": lambda ids: (_phase(ids, "approved"), Scenario())[1],
    "block_phase": lambda ids: (_phase(ids, "in_progress"), Scenario())[1],
    "unblock_phase": lambda ids: (_phase(ids, "blocked"), Scenario())[1],
    "complete_phase": lambda ids: (
        _task(ids, "completed"),
        Scenario(),
    )[1],
    "approve_phase": lambda ids: (
        _task(ids, "completed", phase_status="pending_review"),
        Scenario(person=True),
    )[1],
    "add_task_dependency": lambda ids: Scenario(ids={"depends_on": _sibling_task(ids)}),
    "remove_task_dependency": _task_edge,
    "start_task": lambda ids: (_task(ids, "pending"), Scenario())[1],
    "unblock_task": lambda ids: (_task(ids, "blocked"), Scenario())[1],
    "complete_task": lambda ids: (_task(ids, "in_progress"), Scenario())[1],
    # An edit that changes nothing writes nothing: each edit here changes a field.
    "update_initiative": lambda ids: Scenario(body={"name": "Renamed in the census"}),
    "update_phase": lambda ids: Scenario(body={"name": "Renamed in the census"}),
    "update_task": lambda ids: Scenario(body={"name": "Renamed in the census"}),
    "update_page": lambda ids: Scenario(body={"title": "Renamed in the census"}),
    "update_project": lambda ids: Scenario(body={"default_branch": "census"}),
    "retrieve_root_page": lambda ids: Scenario(ids={"initiative": f.InitiativeFactory().pk}),
    "move_page": _two_child_pages,
    "create_project": lambda ids: Scenario(
        body={"name": "census", "url": "git@example.com:team/census.git"}
    ),
    "clear_expired_exhaustion": _exhausted_account,
    "mark_agent_waiting": lambda ids: _running_agent(
        ids, pending_questions={"questions": [{"id": "q1", "question": "Which port?"}]}
    ),
    "mark_agent_idle": lambda ids: _running_agent(ids),
    "append_agent_log": lambda ids: Scenario(),
    "send_message": lambda ids: Scenario(
        body={
            "sender_type": "agent",
            "sender_id": ids["agent"],
            "recipient_type": "user",
            "type": "info",
            "content": "Done.",
        }
    ),
    "reply_to_message": _message_to_person,
    "ask_question": lambda ids: Scenario(
        body={"from_agent_id": ids["agent"], "to_agent_id": f.AgentFactory().pk}
    ),
    "accept_proposal": _page_proposal,
    "dismiss_proposal": _page_proposal,
    "accept_all_proposals": _page_proposal,
    "dismiss_all_proposals": _page_proposal,
    "unresolve_review_comment": _resolved_comment,
    "request_phase_changes": _in_review_with_comment,
    "open_chat_session": lambda ids: Scenario(ids={"target": _sibling_phase(ids)}),
    "take_next_run": lambda ids: (
        Initiative.objects.filter(pk=ids["initiative"]).update(execution_mode="yolo"),
        _task(ids, "pending"),
        Scenario(body={**RUNNER, "providers": ["claude"], "wait": 0}),
    )[-1],
    "beat_run": lambda ids: _live_run(ids, usage=[{"model": "m", "input_tokens": 5}]),
    "finish_run": lambda ids: _live_run(ids, outcome="succeeded", end_commits=None, usage=[]),
    "cancel_run": lambda ids: Scenario(ids=_live_run(ids).ids, person=True),
    "resume_run": lambda ids: _live_run(ids, account=True),
    "report_run": lambda ids: _live_run(
        ids, pid=4242, worktree_path="/srv/census/run", session_id="census", start_commits=None
    ),
    "requeue_task": lambda ids: (_task(ids, "blocked"), Scenario(person=True))[1],
    "create_budget": lambda ids: Scenario(
        body={"scope_type": "all", "scope_id": "", "window_seconds": None, "limit": 100},
        person=True,
    ),
    "update_budget": lambda ids: Scenario(
        ids={"budget": f.BudgetFactory().pk}, body={"limit": 5}, person=True
    ),
    "delete_budget": lambda ids: Scenario(ids={"budget": f.BudgetFactory().pk}, person=True),
    "create_run_limit": lambda ids: Scenario(
        body={"scope_type": "runner", "scope_id": "census-runner", "max_live": 1}, person=True
    ),
    "update_run_limit": lambda ids: Scenario(
        ids={"run_limit": f.RunLimitFactory().pk}, body={"max_live": 9}, person=True
    ),
    "fetch_project": _fetchable_project,
    "delete_run_limit": lambda ids: Scenario(
        ids={"run_limit": f.RunLimitFactory().pk}, person=True
    ),
}

RUNNER = {"runner_name": "runner-1", "runner_host": "build-01"}


def _live_run(ids: dict[str, str], *, account: bool = False, **body: Any) -> Scenario:
    """A live run, held by ``runner-1``, of the plausible task (in progress), with an
    account when ``account``."""
    run = f.RunFactory(
        task=Task.objects.get(pk=_task(ids, "in_progress")),
        account=f.AccountFactory() if account else None,
    )
    return Scenario(ids={"run": run.pk}, body={"runner_name": RUNNER["runner_name"], **body})


def _handler(operation: dict[str, Any]) -> str:
    """The handler's name: the operation id less its module's prefix."""
    return next(
        (name for name in SCENARIOS if operation["operationId"].endswith("_" + name)),
        operation["operationId"],
    )


def api_call(client: Client, method: str, path: str, operation: dict[str, Any], ids, scenario):
    components = document().get("components", {}).get("schemas", {})
    ids = {**ids, **scenario.ids}
    url = fill_path(path, operation, ids)
    body_schema = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema")
    )
    body = example("", body_schema, components, ids, Secrets()) if body_schema else {}
    if isinstance(body, dict):
        body.update(scenario.body)
    if operation["operationId"].endswith("append_agent_log"):
        body = [{"content": '{"type": "system"}'}]
    return getattr(client, method)(url, body, content_type="application/json")


#: Operations that run git (a fetch into cw's mirror): their census starts processes.
RUNS_GIT = {"fetch_project"}


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        pytest.param(
            *row,
            marks=[pytest.mark.processes] if _handler(row[2]) in RUNS_GIT else [],
            id=row[2]["operationId"],
        )
        for row in WRITE_OPERATIONS
    ],
)
def test_each_api_write_succeeds_and_records_its_change_by_its_caller(
    method, path, operation, django_user_model
):
    ids = plausible_records(f.AccountFactory())
    scenario = SCENARIOS.get(_handler(operation), lambda ids: Scenario())(ids)
    if scenario.person:
        lead = django_user_model.objects.create_user(username="lead")
        token, clear = api_token_create(name="lead-laptop", person=lead)
        expected = {"type": "person", "id": str(lead.pk), "name": "lead", "via": "api"}
    else:
        token, clear = api_token_create(name="census-tool")
        expected = {"type": "tool", "id": token.pk, "name": "census-tool", "via": "api"}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    census = Census()

    response, changed, recorded = census.run(
        lambda: api_call(client, method, path, operation, ids, scenario)
    )

    name = operation["operationId"]
    assert response.status_code < 300, f"{name}: {response.status_code} {response.content!r}"
    assert changed, f"{name} succeeded and changed nothing"
    changed = [label for label in changed if label not in UNRECORDED.get(_handler(operation), ())]
    if not changed:
        return
    assert recorded, f"{name} changed {changed} and recorded no event"
    for event in recorded:
        assert event.actor == expected, (name, event.kind, event.actor)


#: Changes an operation makes that are not on the feed, by design: an agent's log output
#: is a feed of its own, read forward with its own cursor (docs/decisions.md); a
#: heartbeat is too frequent for it.
UNRECORDED: dict[str, set[str]] = {
    "append_agent_log": {"agents.AgentLogChunk"},
    # A heartbeat is too frequent for the feed: it moves the run's heartbeat and adds its
    # usage, on record in the run's totals (docs/decisions.md, "Runs: heartbeat").
    "beat_run": {"agents.Run", "agents.RunUsage", "agents.UsageBucket"},
}


# --- the admin -----------------------------------------------------------------------------


def _admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _person(user) -> dict[str, Any]:
    return {"type": "person", "id": str(user.pk), "name": user.username, "via": "admin"}


def _assert_recorded(what: str, changed: list[str], recorded: list[Event], user) -> None:
    assert changed, f"{what} changed nothing"
    assert recorded, f"{what} changed {changed} and recorded no event"
    for event in recorded:
        assert event.actor == _person(user), (what, event.kind, event.actor)


@pytest.mark.parametrize("label", sorted(VALID_ADD))
def test_each_admin_add_records_the_new_record_by_the_person(admin_client, admin_user, label):
    model = apps.get_model(label)
    valid = VALID_ADD[label]()
    census = Census()

    response, changed, recorded = census.run(
        lambda: admin_client.post(_admin_url(model, "add"), valid)
    )

    assert response.status_code == HTTPStatus.FOUND, label
    _assert_recorded(f"adding a {label}", changed, recorded, admin_user)


#: The field each change form edits, and the value it is given.
EDITS = {
    "core.Initiative": ("name", "Renamed"),
    "core.Phase": ("name", "Renamed"),
    "core.Task": ("name", "Renamed"),
    "core.Page": ("title", "Renamed"),
    "core.Project": ("name", "renamed"),
    "agents.Account": ("sort_order", "7"),
    "agents.Agent": ("worktree_id", "/srv/wt/renamed"),
    "agents.Message": ("content", "Edited."),
    "agents.Conversation": ("question", "Edited?"),
    "agents.Budget": ("limit", "2000"),
    "agents.RunLimit": ("max_live", "5"),
    "reviews.Proposal": ("title", "Renamed"),
    "reviews.ReviewComment": ("body", "Edited."),
    "reviews.ChatSession": ("agent", lambda: f.AgentFactory().pk),
    "reviews.ChatMessage": ("content", "Edited."),
}


@pytest.mark.parametrize("label", sorted(FACTORY_FOR))
def test_each_admin_change_records_the_change_by_the_person(admin_client, admin_user, label):
    model = apps.get_model(label)
    obj = FACTORY_FOR[label]()
    model_admin = admin.site.get_model_admin(model)
    request = admin_client.request().wsgi_request
    if not model_admin.has_change_permission(request, obj):
        return
    data = form_data(model_admin, request, obj)
    name, value = EDITS[label]
    value = value() if callable(value) else value
    if name not in data:
        pytest.fail(f"{label}'s change form has no {name} field: {sorted(data)}")
    census = Census()

    response, changed, recorded = census.run(
        lambda: admin_client.post(_admin_url(model, "change", obj.pk), {**data, name: value})
    )

    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    _assert_recorded(f"changing a {label}", changed, recorded, admin_user)


class _Superuser:
    """A request whose user may do anything the admin offers (no database needed)."""

    class user:
        is_active = is_staff = is_superuser = True

        @staticmethod
        def has_perm(perm: str, obj: object = None) -> bool:
            return True


#: A record of every kind the admin lists, edges and links included.
RECORD_FOR = {
    **FACTORY_FOR,
    "core.PhaseDependency": f.PhaseDependencyFactory,
    "core.TaskDependency": f.TaskDependencyFactory,
    "core.InitiativeProject": f.InitiativeProjectFactory,
}
#: The records the admin offers to delete, as a superuser sees it.
DELETABLE = sorted(
    label
    for label in RECORD_FOR
    if admin.site.get_model_admin(apps.get_model(label)).has_delete_permission(_Superuser)
)


def test_the_census_deletes_what_the_admin_deletes():
    assert len(DELETABLE) >= 10, DELETABLE


@pytest.mark.parametrize("label", DELETABLE)
def test_each_admin_delete_records_what_went_by_the_person(admin_client, admin_user, label):
    model = apps.get_model(label)
    obj = RECORD_FOR[label]()
    census = Census()

    response, changed, recorded = census.run(
        lambda: admin_client.post(_admin_url(model, "delete", obj.pk), {"post": "yes"})
    )

    assert response.status_code == HTTPStatus.FOUND, label
    _assert_recorded(f"deleting a {label}", changed, recorded, admin_user)


@pytest.mark.parametrize("label", DELETABLE)
def test_each_admin_bulk_delete_records_each_record_by_the_person(admin_client, admin_user, label):
    model = apps.get_model(label)
    objs = [RECORD_FOR[label]() for _ in range(2)]
    census = Census()

    response, changed, recorded = census.run(
        lambda: admin_client.post(
            _admin_url(model, "changelist"),
            {"action": "delete_selected", "_selected_action": [o.pk for o in objs], "post": "yes"},
        )
    )

    assert response.status_code == HTTPStatus.FOUND, label
    _assert_recorded(f"deleting two {label}", changed, recorded, admin_user)
    assert len(recorded) >= len(objs)
    own = [e for e in recorded if e.subject_type == subject_type_of(model)]
    if own:  # an edge's or a link's events are about the records it joins
        assert {e.subject_id for e in own} >= {str(o.pk) for o in objs}


# --- the commands --------------------------------------------------------------------------


def _system(name: str) -> dict[str, Any]:
    return {"type": "system", "id": None, "name": name, "via": "command"}


def _run(*args: str) -> None:
    call_command(*args, operator="ops", stdout=io.StringIO(), stderr=io.StringIO())


def _exhausted_until_past() -> str:
    account = f.AccountFactory()
    Account.objects.filter(pk=account.pk).update(
        is_exhausted=True, exhausted_until=timezone.now() - timedelta(minutes=1)
    )
    return account.pk


COMMANDS: dict[str, Callable[[Any], tuple[str, ...]]] = {
    "cw_accounts add": lambda tmp_path: (
        "cw_accounts", "add", "--provider", "claude", "--email", "ops@example.com",
    ),
    "cw_accounts exhaust": lambda tmp_path: (
        "cw_accounts", "exhaust", f.AccountFactory().pk, "--until", "2h",
    ),
    "cw_accounts release": lambda tmp_path: (
        "cw_accounts", "release", _exhausted_until_past(),
    ),
    "cw_accounts clear-expired": lambda tmp_path: (
        _exhausted_until_past() and ("cw_accounts", "clear-expired")
    ),
    "cw_import --as-new": lambda tmp_path: _exported(tmp_path),
    "cw_demo": lambda tmp_path: ("cw_demo",),
}  # fmt: skip


def _exported(tmp_path) -> tuple[str, ...]:
    initiative = f.InitiativeFactory()
    f.TaskFactory(phase=f.PhaseFactory(initiative=initiative))
    path = tmp_path / "export.json"
    call_command("cw_export", initiative.pk, "-o", str(path), stdout=io.StringIO())
    return ("cw_import", str(path), "--as-new")


#: The commands that start processes: the demo makes its git repositories and fetches them.
STARTING_PROCESSES = {"cw_demo"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.processes) if name in STARTING_PROCESSES else name
        for name in sorted(COMMANDS)
    ],
)
def test_each_command_that_writes_records_its_changes_by_the_system(name, tmp_path):
    args = COMMANDS[name](tmp_path)
    census = Census()

    _result, changed, recorded = census.run(lambda: _run(*args))

    assert changed, f"{name} changed nothing"
    assert recorded, f"{name} changed {changed} and recorded no event"
    for event in recorded:
        assert event.actor == _system(f"{args[0]} (ops)"), (name, event.kind, event.actor)
