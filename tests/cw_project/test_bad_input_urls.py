"""A NUL or bytes that are not UTF-8 in an admin URL's id or filter answer 400, never 500.

PostgreSQL refuses a NUL in a query parameter (SQLite does not): every admin page of
every registered model, Django's auth admin included, is walked with such ids and
filters. The API answers them itself, in its error shape.
"""

from http import HTTPStatus

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.test import AsyncClient, Client
from django.urls import reverse

from core.tokens import api_token_create
from tests.api.helpers import assert_error

pytestmark = pytest.mark.django_db

REFUSED = {HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND}

#: Percent-encoded: a NUL, a NUL inside an id, an encoded lone surrogate, a stray byte.
BAD_VALUES = ["%00", "x%00y", "%ED%A0%80", "%FF"]

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)

PLACEHOLDER = "PLACEHOLDER-ID"


def admin_url(model, page: str, object_id: str | None = None) -> str:
    opts = model._meta
    name = f"admin:{opts.app_label}_{opts.model_name}_{page}"
    if object_id is None:
        return reverse(name)
    # reverse() would quote the id; the raw percent-encoded bytes are the point here.
    return reverse(name, args=[PLACEHOLDER]).replace(PLACEHOLDER, object_id)


def filter_fields(model) -> list[str]:
    """The primary key and the first few other stored fields: exact lookups the admin
    accepts on any changelist."""
    fields = [field.name for field in model._meta.concrete_fields]
    return fields[:4]


def assert_refused(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code in REFUSED, (url, response.status_code)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_changelist_refuses_a_bad_search_or_filter_value(admin_client, model):
    changelist = admin_url(model, "changelist")
    for value in BAD_VALUES:
        assert_refused(admin_client, f"{changelist}?q={value}")
        assert_refused(admin_client, f"{changelist}?{value}=1")
        for field in filter_fields(model):
            assert_refused(admin_client, f"{changelist}?{field}__exact={value}")


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_change_history_and_delete_pages_refuse_a_bad_id(admin_client, model):
    for value in BAD_VALUES:
        for page in ("change", "history", "delete"):
            assert_refused(admin_client, admin_url(model, page, value))


def test_the_password_page_and_autocomplete_refuse_bad_input(admin_client):
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    autocomplete = reverse("admin:autocomplete")
    for value in BAD_VALUES:
        assert_refused(admin_client, admin_url(user_model, "password_change", value))
        assert_refused(
            admin_client,
            f"{autocomplete}?app_label=core&model_name=task&field_name=phase&term={value}",
        )


def test_the_refusal_is_a_plain_page_saying_why(admin_client):
    response = admin_client.get("/admin/core/task/?status__exact=%00")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "NUL character or bytes that are not valid UTF-8" in response.content.decode()


def test_the_refusal_comes_before_the_login_check(client):
    assert client.get("/admin/core/task/%00/change/").status_code == HTTPStatus.BAD_REQUEST


def test_an_asgi_request_is_refused_too():
    response = async_to_sync(AsyncClient().get)("/admin/core/task/?q=%00")
    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_valid_non_ascii_text_still_reaches_the_admin(admin_client):
    assert admin_client.get("/admin/core/task/?q=caf%C3%A9+%F0%9F%9A%80").status_code == 200
    # An unknown id is the admin's usual redirect with a message, not a refusal.
    response = admin_client.get("/admin/core/task/caf%C3%A9/change/")
    assert response.status_code == HTTPStatus.FOUND
    # A percent sign written as text is not a byte: "%2500" is the three characters "%00".
    assert admin_client.get("/admin/core/task/?q=%2500").status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/tasks/%00", HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"),
        ("/api/tasks/x%00y", HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"),
        ("/api/accounts/%00", HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"),
        ("/api/phases?initiative_id=%00", HTTPStatus.UNPROCESSABLE_ENTITY, "validation_error"),
        # A filter with a code of its own answers it (docs/api.md, "Refused values").
        ("/api/tasks?status=%00", HTTPStatus.BAD_REQUEST, "invalid_status"),
        ("/api/tasks?status=%FF", HTTPStatus.BAD_REQUEST, "invalid_status"),
        ("/api/tasks/%FF", HTTPStatus.NOT_FOUND, "task_not_found"),
        ("/api/tasks/%ED%A0%80", HTTPStatus.NOT_FOUND, "task_not_found"),
    ],
)
def test_the_api_answers_bad_input_in_its_own_error_shape(url, status, code):
    _, clear = api_token_create(name="bad-input")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert_error(client.get(url), status, code)
