"""The admin refuses what the API refuses: a census of every add and change form.

Each admin that can add or change records is given a valid submission (which must save),
then the same submission with one bad value at a time: NUL in text, blank required text,
a name longer than every door allows, an integer beyond 32 bits, and the cases the API
refuses for each record (a message into a closed session, a file path over two lines, a
target of another initiative, …). Each bad submission must come back as the form with the
domain error's words on it — never a constraint's name or a traceback — and must write
nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.forms.widgets import CheckboxInput, MultiWidget
from django.urls import reverse

from core.validators import NAME_MAX_LENGTH, TEXT_MAX_LENGTH
from tests import factories as f

pytestmark = pytest.mark.django_db

CW_APPS = ("core", "agents", "reviews")


def _admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def form_data(model_admin: admin.ModelAdmin, request, obj: models.Model) -> dict[str, Any]:
    """What the change form of ``obj`` would post unchanged, as a browser sends it."""
    form = model_admin.get_form(request, obj, change=True)(instance=obj)
    data: dict[str, Any] = {}
    for bound in form:
        widget = bound.field.widget
        value = bound.value()
        if isinstance(widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(widget, MultiWidget):
            parts = widget.decompress(value) if not isinstance(value, list) else value
            for index, (sub, part) in enumerate(zip(widget.widgets, parts, strict=False)):
                formatted = sub.format_value(part)
                data[f"{bound.html_name}_{index}"] = "" if formatted is None else formatted
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        else:
            data[bound.html_name] = "" if value is None else str(value)
    return data


@dataclass
class Case:
    """One submission to an admin form: what to send, and the words the refusal says."""

    name: str
    data: dict[str, Any]
    message: str | None = None


def _text_fields(form: forms.Form) -> list[str]:
    return [
        name
        for name, field in form.fields.items()
        if isinstance(field, forms.CharField)
        and not isinstance(field, forms.EmailField | forms.URLField)
        and getattr(field.widget, "input_type", "") != "password"
    ]


def _integer_fields(form: forms.Form) -> list[str]:
    return [name for name, field in form.fields.items() if isinstance(field, forms.IntegerField)]


def generic_cases(form: forms.Form, valid: dict[str, Any]) -> list[Case]:
    """NUL in every text field, blank required text, overlong names, 33-bit integers."""
    cases = []
    for name in _text_fields(form):
        if name not in valid:
            continue
        cases.append(Case(f"{name}-nul", {**valid, name: "a\x00b"}))
        if form.fields[name].required:
            cases.append(Case(f"{name}-blank", {**valid, name: "   "}))
        if name in ("name", "title"):
            cases.append(Case(f"{name}-too-long", {**valid, name: "x" * (NAME_MAX_LENGTH + 1)}))
    for name in _integer_fields(form):
        if name in valid:
            if (form.fields[name].max_value or 0) < 2**40:  # a 64-bit field takes it
                cases.append(Case(f"{name}-huge", {**valid, name: str(2**40)}))
            cases.append(Case(f"{name}-bool-like", {**valid, name: "1.5"}))
    return cases


# --- valid submissions per model (add forms) ----------------------------------------------


def _initiative() -> dict[str, Any]:
    return {"name": "Payments", "branch": "", "execution_mode": "review_per_phase"}


def _phase() -> dict[str, Any]:
    return {"initiative": f.InitiativeFactory().pk, "name": "Build", "content": ""}


def _task() -> dict[str, Any]:
    phase = f.PhaseFactory()
    return {
        "phase": phase.pk,
        "initiative": phase.initiative_id,
        "name": "Write it",
        "type": "auto",
        "category": "execute",
        "priority": "medium",
        "order": "0",
    }


def _page() -> dict[str, Any]:
    root = f.PageFactory()
    return {
        "initiative": root.initiative_id,
        "parent_page": root.pk,
        "title": "Notes",
        "sort_order": "0",
    }


def _project() -> dict[str, Any]:
    return {"name": "api", "url": "git@github.com:acme/api.git", "default_branch": "main"}


def _initiative_project() -> dict[str, Any]:
    return {"initiative": f.InitiativeFactory().pk, "project": f.ProjectFactory().pk}


def _phase_dependency() -> dict[str, Any]:
    phase = f.PhaseFactory()
    other = f.PhaseFactory(initiative=phase.initiative)
    return {"phase": phase.pk, "depends_on_phase": other.pk}


def _task_dependency() -> dict[str, Any]:
    task = f.TaskFactory()
    other = f.TaskFactory(phase=task.phase, initiative=task.initiative)
    return {"task": task.pk, "depends_on_task": other.pk}


def _account() -> dict[str, Any]:
    return {"email": "dev@example.com", "provider": "claude", "sort_order": "0"}


def _agent() -> dict[str, Any]:
    return {
        "name": "brave-otter",
        "worktree_id": "/srv/wt/1",
        "provider": "claude",
        "mode": "execute",
    }


def _message() -> dict[str, Any]:
    return {
        "sender_type": "agent",
        "sender_id": f.AgentFactory().pk,
        "recipient_type": "user",
        "type": "question",
        "content": "Which database?",
    }


def _conversation() -> dict[str, Any]:
    asker, answerer = f.AgentFactory(), f.AgentFactory()
    return {"from_agent": asker.pk, "to_agent": answerer.pk, "question": "Which port?"}


def _proposal() -> dict[str, Any]:
    agent = f.AgentFactory()
    initiative = f.InitiativeFactory()
    return {
        "agent": agent.pk,
        "initiative": initiative.pk,
        "target_type": "page",
        "title": "Docs",
        "content": "# Docs",
        "metadata": "null",
        "sort_order": "0",
    }


def _review_comment() -> dict[str, Any]:
    return {
        "phase": f.PhaseFactory().pk,
        "file_path": "src/app.py",
        "line_number": "3",
        "line_type": "added",
        "body": "Rename this.",
        "author": "you",
    }


def _chat_session() -> dict[str, Any]:
    phase = f.PhaseFactory()
    return {"target_type": "phase", "target_id": phase.pk, "initiative": phase.initiative_id}


def _chat_message() -> dict[str, Any]:
    session = f.ChatSessionFactory()
    return {"chat_session": session.pk, "role": "user", "content": "Split this phase."}


def _budget() -> dict[str, Any]:
    return {
        "scope_type": "all",
        "scope_id": "",
        "metric": "tokens",
        "limit": "100000",
        "window_seconds": "18000",
        "warn_percent": "80",
        "active": "on",
        "note": "",
    }


def _run_limit() -> dict[str, Any]:
    return {"scope_type": "runner", "scope_id": "census-runner", "max_live": "2"}


VALID_ADD: dict[str, Callable[[], dict[str, Any]]] = {
    "core.Initiative": _initiative,
    "core.Phase": _phase,
    "core.Task": _task,
    "core.Page": _page,
    "core.Project": _project,
    "core.InitiativeProject": _initiative_project,
    "core.PhaseDependency": _phase_dependency,
    "core.TaskDependency": _task_dependency,
    "agents.Account": _account,
    "agents.Agent": _agent,
    "agents.Message": _message,
    "agents.Conversation": _conversation,
    "agents.Budget": _budget,
    "agents.RunLimit": _run_limit,
    "reviews.Proposal": _proposal,
    "reviews.ReviewComment": _review_comment,
    "reviews.ChatSession": _chat_session,
    "reviews.ChatMessage": _chat_message,
}


def _specific_add_cases(label: str, valid: dict[str, Any]) -> list[Case]:
    """What the API refuses for this record, submitted on its add form."""
    if label == "reviews.ChatMessage":
        closed = f.ChatSessionFactory(status="closed")
        return [Case("closed-session", {**valid, "chat_session": closed.pk}, "is closed")]
    if label == "reviews.ReviewComment":
        return [
            Case("two-line-path", {**valid, "file_path": "src/a.py\nsrc/b.py"}, "one line"),
            Case("line-zero", {**valid, "line_number": "0"}),
        ]
    if label == "reviews.Proposal":
        other_task = f.TaskFactory()  # in another initiative
        return [
            Case(
                "target-of-another-initiative",
                {**valid, "target_type": "task", "target_id": other_task.pk},
                "initiative",
            ),
            Case("metadata-not-an-object", {**valid, "metadata": "[1, 2]"}),
        ]
    if label == "agents.Account":
        f.AccountFactory(email="taken@example.com", provider="claude")
        return [
            Case("duplicate-account", {**valid, "email": "Taken@example.com"}, "already exists"),
            Case("not-an-email", {**valid, "email": "not an email"}),
        ]
    if label == "core.Project":
        return [Case("not-a-url", {**valid, "url": "not a url"})]
    if label == "agents.Budget":
        return [
            Case(
                "scope-of-no-record",
                {**valid, "scope_type": "initiative", "scope_id": "no-such-initiative"},
                "does not exist",
            ),
            Case("id-with-everything", {**valid, "scope_id": "something"}),
            Case("window-not-in-buckets", {**valid, "window_seconds": "700"}),
            Case("limit-zero", {**valid, "limit": "0"}),
        ]
    if label == "agents.RunLimit":
        f.RunLimitFactory(scope_type="runner", scope_id="taken-runner")
        return [
            Case("second-on-a-scope", {**valid, "scope_id": "taken-runner"}, "already has"),
            Case("below-zero", {**valid, "max_live": "-1"}),
        ]
    if label in ("core.Phase", "core.Page"):
        # Content is written as markdown (any text is): only its length is refused.
        too_long = "x" * (TEXT_MAX_LENGTH + 1)
        return [Case("content-too-long", {**valid, "content": too_long}, "too long")]
    if label == "core.PhaseDependency":
        return [Case("self-edge", {**valid, "depends_on_phase": valid["phase"]}, "itself")]
    if label == "core.TaskDependency":
        return [Case("self-edge", {**valid, "depends_on_task": valid["task"]}, "itself")]
    if label == "core.Task":
        other_phase = f.PhaseFactory()  # another initiative's
        return [Case("phase-of-another-initiative", {**valid, "phase": other_phase.pk})]
    if label == "reviews.ChatSession":
        other_phase = f.PhaseFactory()
        return [
            Case("target-of-another-initiative", {**valid, "target_id": other_phase.pk}),
        ]
    return []


def _addable() -> list[str]:
    labels = []
    for app in CW_APPS:
        for model in apps.get_app_config(app).get_models():
            model_admin = admin.site.get_model_admin(model)
            if type(model_admin).has_add_permission is not admin.ModelAdmin.has_add_permission:
                # Admins that override it (history, tokens, log chunks) are checked below.
                continue
            labels.append(model._meta.label)
    return labels


ADDABLE = _addable()


def test_every_admin_that_adds_records_is_in_the_census():
    assert sorted(ADDABLE) == sorted(set(ADDABLE) & set(VALID_ADD))


def _form_errors(response) -> str:
    context = response.context
    assert context is not None, "the form was not shown again"
    form = context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _assert_refused(response, count_before: int, model, case: Case) -> None:
    assert response.status_code == HTTPStatus.OK, f"{case.name}: {response.status_code}"
    errors = _form_errors(response)
    assert errors, f"{case.name}: the form came back without an error"
    assert "Constraint" not in errors and "violated" not in errors, errors
    assert "Traceback" not in response.content.decode()
    if case.message:
        assert case.message.lower() in errors.lower(), errors
    assert model._default_manager.count() == count_before, f"{case.name} wrote a row"


@pytest.mark.parametrize("label", sorted(VALID_ADD))
def test_add_form_saves_a_valid_record_and_refuses_each_bad_value(admin_client, label):
    model = apps.get_model(label)
    url = _admin_url(model, "add")
    valid = VALID_ADD[label]()
    form = admin.site.get_model_admin(model).get_form(admin_client.request().wsgi_request)()
    cases = generic_cases(form, valid) + _specific_add_cases(label, valid)
    for case in cases:
        before = model._default_manager.count()
        _assert_refused(admin_client.post(url, case.data), before, model, case)

    before = model._default_manager.count()
    response = admin_client.post(url, valid)
    assert response.status_code == HTTPStatus.FOUND, _form_errors(response)
    assert model._default_manager.count() == before + 1


FACTORY_FOR = {
    "core.Initiative": f.InitiativeFactory,
    "core.Phase": f.PhaseFactory,
    "core.Task": f.TaskFactory,
    "core.Page": f.PageFactory,
    "core.Project": f.ProjectFactory,
    "agents.Account": f.AccountFactory,
    "agents.Agent": f.AgentFactory,
    "agents.Message": f.MessageFactory,
    "agents.Conversation": f.ConversationFactory,
    "agents.Budget": f.BudgetFactory,
    "agents.RunLimit": f.RunLimitFactory,
    "reviews.Proposal": f.ProposalFactory,
    "reviews.ReviewComment": f.ReviewCommentFactory,
    "reviews.ChatSession": f.ChatSessionFactory,
    "reviews.ChatMessage": f.ChatMessageFactory,
}


def _row(obj: models.Model) -> dict[str, Any]:
    return type(obj)._default_manager.filter(pk=obj.pk).values().get()


@pytest.mark.parametrize("label", sorted(FACTORY_FOR))
def test_change_form_refuses_each_bad_value_and_changes_nothing(admin_client, label):
    model = apps.get_model(label)
    obj = FACTORY_FOR[label]()
    model_admin = admin.site.get_model_admin(model)
    request = admin_client.request().wsgi_request
    if not model_admin.has_change_permission(request, obj):
        assert admin_client.get(_admin_url(model, "change", obj.pk)).status_code in (
            HTTPStatus.OK,
            HTTPStatus.FORBIDDEN,
        )
        return
    url = _admin_url(model, "change", obj.pk)
    valid = form_data(model_admin, request, obj)
    form = model_admin.get_form(request, obj, change=True)(instance=obj)
    before = _row(obj)
    for case in generic_cases(form, valid):
        response = admin_client.post(url, case.data)
        assert response.status_code == HTTPStatus.OK, f"{case.name}: {response.status_code}"
        assert _form_errors(response), f"{case.name}: no error shown"
        assert _row(obj) == before, f"{case.name} changed the record"

    response = admin_client.post(url, valid)
    assert response.status_code == HTTPStatus.FOUND, _form_errors(response)


# --- records that are history, or whose status only services change ----------------------


def test_change_sets_and_their_entries_cannot_be_added_or_edited(admin_client):
    change_set = f.ChangeSetFactory()
    other = f.InitiativeFactory()
    for model in (apps.get_model("reviews.ChangeSet"), apps.get_model("reviews.ChangeSetEntry")):
        assert admin_client.get(_admin_url(model, "add")).status_code == HTTPStatus.FORBIDDEN
    url = _admin_url(apps.get_model("reviews.ChangeSet"), "change", change_set.pk)
    admin_client.post(url, {"initiative": other.pk, "source": "chat", "description": "moved"})
    change_set.refresh_from_db()
    assert change_set.initiative_id != other.pk


@pytest.mark.parametrize(
    ("label", "field", "value"),
    [
        ("agents.Agent", "status", "running"),
        ("agents.Message", "status", "responded"),
        ("reviews.ChatSession", "status", "closed"),
        ("reviews.Proposal", "status", "accepted"),
        ("core.Task", "status", "completed"),
        ("core.Phase", "status", "completed"),
        ("core.Initiative", "status", "completed"),
    ],
)
def test_statuses_are_not_fields_of_any_change_form(admin_client, label, field, value):
    model = apps.get_model(label)
    obj = FACTORY_FOR[label]()
    model_admin = admin.site.get_model_admin(model)
    request = admin_client.request().wsgi_request
    form = model_admin.get_form(request, obj, change=True)
    assert field not in form.base_fields
    data = form_data(model_admin, request, obj)
    admin_client.post(_admin_url(model, "change", obj.pk), {**data, field: value})
    assert getattr(model._default_manager.get(pk=obj.pk), field) != value


def test_log_chunks_are_read_only_history(admin_client):
    chunk = f.AgentLogChunkFactory()
    model = apps.get_model("agents.AgentLogChunk")
    assert admin_client.get(_admin_url(model, "add")).status_code == HTTPStatus.FORBIDDEN
    admin_client.post(_admin_url(model, "change", chunk.pk), {"content": "not json"})
    chunk.refresh_from_db()
    assert chunk.content != "not json"
