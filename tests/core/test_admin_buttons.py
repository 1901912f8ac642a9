"""The buttons on a record's page (``core.admin_base.ButtonsAdmin``): one POST-only view
per model behind the change permission, whose outcome is always a message in words and a
way back — to the record's page, or to the list when the record is gone."""

from http import HTTPStatus

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse

from core.admin_base import Button, ButtonsAdmin, Refused, dry_run_refusal, service_button
from core.errors import TransitionNotAllowed
from core.models import Task
from tests import factories as f

pytestmark = pytest.mark.django_db

pressed: list[str] = []


def _rename(request, task: Task) -> str:
    pressed.append(request.POST.get("name", ""))
    return f"Renamed {task.name}."


def _refuse(request, task: Task) -> str:
    raise Refused(f"{task.name} is not in a state for this.")


def _conflict(request, task: Task) -> str:
    raise TransitionNotAllowed(f"{task.name} clashes.")


def _task_touch(*, task_id: str) -> str:
    return task_id


class TaskButtonsAdmin(ButtonsAdmin):
    buttons = (
        Button("rename", "Rename", _rename, shown=lambda task: task.name != "hidden"),
        Button("refuse", "Refuse", _refuse, style="default"),
        Button("conflict", "Conflict", _conflict),
        service_button("touch", "Touch", _task_touch, id_argument="task_id"),
    )


@pytest.fixture
def model_admin() -> TaskButtonsAdmin:
    return TaskButtonsAdmin(Task, admin.site)


def _request(user: User, method: str = "post", **data: str):
    request = getattr(RequestFactory(), method)("/", data)
    request.user = user
    request._messages = CookieStorage(request)
    return request


def _shown(request) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(request)]


def _change_url(task: Task) -> str:
    return reverse("admin:core_task_change", args=[task.pk])


def test_a_button_runs_with_the_posted_fields_and_says_so_on_the_record_page(
    model_admin, admin_user
):
    task = f.TaskFactory(name="cw")
    request = _request(admin_user, name="new name")

    response = model_admin.button_view(request, task.pk, "rename")

    assert (response.status_code, response["Location"]) == (HTTPStatus.FOUND, _change_url(task))
    assert _shown(request) == [("success", "Renamed cw.")]
    assert pressed[-1] == "new name"


def test_a_service_button_says_what_was_done_to_which_record(model_admin, admin_user):
    task = f.TaskFactory(name="cw")
    request = _request(admin_user)

    model_admin.button_view(request, task.pk, "touch")

    assert _shown(request) == [("success", "Touch: done for task 'cw'.")]


def test_a_refusal_in_this_state_is_a_warning_and_a_domain_error_an_error(model_admin, admin_user):
    task = f.TaskFactory(name="cw")
    refused, conflict = _request(admin_user), _request(admin_user)

    assert model_admin.button_view(refused, task.pk, "refuse")["Location"] == (_change_url(task))
    model_admin.button_view(conflict, task.pk, "conflict")

    assert _shown(refused) == [("warning", "cw is not in a state for this.")]
    assert _shown(conflict) == [("error", "cw clashes.")]


def test_a_button_is_post_only(model_admin, admin_user):
    task = f.TaskFactory()

    response = model_admin.button_view(_request(admin_user, "get"), task.pk, "rename")

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_a_button_needs_the_change_permission_and_is_not_shown_without_it(model_admin):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_task"))
    task = f.TaskFactory()

    with pytest.raises(PermissionDenied):
        model_admin.button_view(_request(viewer), task.pk, "rename")
    assert model_admin.button_context(_request(viewer), task) == {
        "record_buttons": [],
        "button_urls": {},
    }


def test_a_record_deleted_meanwhile_sends_back_to_the_list_with_a_warning(model_admin, admin_user):
    request = _request(admin_user)

    response = model_admin.button_view(request, "gone", "rename")

    assert response["Location"] == reverse("admin:core_task_changelist")
    assert _shown(request) == [("warning", "There is no task 'gone' any more.")]


def test_an_unknown_button_is_not_found(model_admin, admin_user):
    task = f.TaskFactory()
    with pytest.raises(Http404):
        model_admin.button_view(_request(admin_user), task.pk, "nothing")


def test_the_page_lists_the_buttons_shown_and_every_button_url(model_admin, admin_user):
    task = f.TaskFactory(name="hidden")

    context = model_admin.button_context(_request(admin_user, "get"), task)

    url = reverse("admin:core_task_do", args=[task.pk, "refuse"])
    assert [b["slug"] for b in context["record_buttons"]] == ["refuse", "conflict", "touch"]
    assert context["record_buttons"][0] == {
        "slug": "refuse",
        "label": "Refuse",
        "style": "default",
        "url": url,
        "refusal": None,
    }
    assert context["button_urls"]["refuse"] == url
    assert set(context["button_urls"]) == {"rename", "refuse", "conflict", "touch"}


def test_a_button_its_service_would_refuse_is_listed_with_the_reason(model_admin, admin_user):
    task = f.TaskFactory(name="Waiting")
    model_admin.buttons = (
        Button("go", "Go", _rename, refusal=lambda task: f"{task.name} waits for another."),
        Button("stay", "Stay", _rename, refusal=lambda task: None),
    )

    context = model_admin.button_context(_request(admin_user, "get"), task)

    refusals = {b["slug"]: b["refusal"] for b in context["record_buttons"]}
    assert refusals == {"go": "Waiting waits for another.", "stay": None}


def test_a_dry_run_says_what_a_service_would_refuse_and_keeps_nothing():
    task = f.TaskFactory(name="Kept")

    def rename_then_refuse(*, task_id: str) -> None:
        Task.objects.filter(pk=task_id).update(name="Changed")
        raise TransitionNotAllowed("Not now.")

    def rename(*, task_id: str) -> None:
        Task.objects.filter(pk=task_id).update(name="Changed")

    assert dry_run_refusal(rename_then_refuse, task_id=task.pk) == "Not now."
    assert dry_run_refusal(rename, task_id=task.pk) is None
    task.refresh_from_db()
    assert task.name == "Kept"
