"""The review API over HTTP: a phase's inline review comments (list, create, edit, resolve,
unresolve, delete), its review brief, and the review decision (request changes, approve)."""

import json
import re
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from core.models import Event, ExecutionMode, InitiativeStatus, PhaseStatus, Task
from core.schemas import MAX_LIMIT
from core.tokens import api_token_create
from cw_project.api import api
from reviews.models import ReviewComment
from tests import factories as f
from tests.api.helpers import as_json as iso
from tests.api.helpers import assert_error, assert_refusal, send_json, url

pytestmark = pytest.mark.django_db


# --- helpers -------------------------------------------------------------------------------


def comment_body(comment: ReviewComment) -> dict[str, Any]:
    comment.refresh_from_db()
    return {
        "id": comment.id,
        "phase_id": comment.phase_id,
        "file_path": comment.file_path,
        "line_number": comment.line_number,
        "line_type": comment.line_type,
        "body": comment.body,
        "author": comment.author,
        "resolved": comment.resolved,
        "project_id": comment.project_id,
        "line_text": comment.line_text,
        "hunk": comment.hunk,
        "addressed_by_id": comment.addressed_by_id,
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
    }


def task_body(task: Task) -> dict[str, Any]:
    task.refresh_from_db()
    fields = [
        "id",
        "phase_id",
        "initiative_id",
        "parent_task_id",
        "name",
        "description",
        "type",
        "category",
        "priority",
        "status",
        "order",
        "summary",
    ]
    return {
        **{name: getattr(task, name) for name in fields},
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
    }


def phase_body(phase) -> dict[str, Any]:
    phase.refresh_from_db()
    return {
        "id": phase.id,
        "initiative_id": phase.initiative_id,
        "name": phase.name,
        "content": phase.content,
        "status": phase.status,
        "created_at": iso(phase.created_at),
        "updated_at": iso(phase.updated_at),
    }


def age(comment: ReviewComment) -> None:
    """Move ``updated_at`` an hour back, so any write shows as a newer timestamp."""
    ReviewComment.objects.filter(pk=comment.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )


VALID_COMMENT = {"file_path": "src/app.py", "line_number": 12, "line_type": "added", "body": "Hm"}


@pytest.fixture
def phase():
    return f.PhaseFactory(status=PhaseStatus.IN_PROGRESS, name="API")


@pytest.fixture
def phase_in_review():
    return f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW, name="API")


@pytest.fixture
def comment(phase):
    return f.ReviewCommentFactory(phase=phase, body="Rename this.")


@pytest.fixture
def person_client() -> Client:
    """A client with a personal token: a person, who passes the people's gates."""
    user = get_user_model().objects.create_user(username="reviewer", password="unused-password")
    _token, clear = api_token_create(name="reviewer-token", person=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {clear}")


# --- authentication ------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "list_review_comments", {"phase_id": "x"}),
    ("post", "create_review_comment", {"phase_id": "x"}),
    ("patch", "update_review_comment", {"comment_id": "x"}),
    ("post", "resolve_review_comment", {"comment_id": "x"}),
    ("post", "unresolve_review_comment", {"comment_id": "x"}),
    ("delete", "delete_review_comment", {"comment_id": "x"}),
    ("get", "retrieve_review_brief", {"phase_id": "x"}),
    ("post", "request_phase_changes", {"phase_id": "x"}),
    ("post", "approve_phase", {"phase_id": "x"}),
]


@pytest.mark.parametrize(("method", "name", "kwargs"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_review_endpoint_requires_authentication(method, name, kwargs):
    response = Client().generic(method.upper(), url(name, **kwargs))
    assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_staff_session_can_list_review_comments(staff_client, comment):
    response = staff_client.get(url("list_review_comments", phase_id=comment.phase_id))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["items"] == [comment_body(comment)]


def test_staff_session_post_without_csrf_token_is_403_csrf_failed(staff_user, phase):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = send_json(
        client, "post", url("create_review_comment", phase_id=phase.id), VALID_COMMENT
    )
    assert_error(response, HTTPStatus.FORBIDDEN, "csrf_failed")
    assert not ReviewComment.objects.exists()


# --- list ------------------------------------------------------------------------------------


def test_list_review_comments_is_a_page_by_file_then_line(api_client, phase):
    make = f.ReviewCommentFactory
    b10 = make(phase=phase, file_path="b.py", line_number=10)
    a9 = make(phase=phase, file_path="a.py", line_number=9, line_type="removed", author="lead")
    a2 = make(phase=phase, file_path="a.py", line_number=2, resolved=True)
    make(file_path="a.py", line_number=1)  # another phase's

    response = api_client.get(url("list_review_comments", phase_id=phase.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "items": [comment_body(c) for c in (a2, a9, b10)],
        "total": 3,
        "next_offset": None,
        "limit": 50,
        "offset": 0,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["open_1", "done", "open_2"]),
        ({"resolved": "true"}, ["done"]),
        ({"resolved": "false"}, ["open_1", "open_2"]),
        ({"resolved": "1"}, ["done"]),
        ({"resolved": "0"}, ["open_1", "open_2"]),
    ],
)
def test_list_review_comments_filters_on_resolved(api_client, phase, query, expected):
    made = {
        "open_1": f.ReviewCommentFactory(phase=phase, line_number=1),
        "done": f.ReviewCommentFactory(phase=phase, line_number=2, resolved=True),
        "open_2": f.ReviewCommentFactory(phase=phase, line_number=3),
    }
    body = api_client.get(url("list_review_comments", phase_id=phase.id), query).json()
    assert [item["id"] for item in body["items"]] == [made[name].id for name in expected]
    assert body["total"] == len(expected)


@pytest.mark.parametrize(
    "query",
    [
        {"resolved": "maybe"},
        {"limit": MAX_LIMIT + 1},
        {"limit": 0},
        {"limit": -5},
        {"offset": -1},
        {"offset": "next"},
    ],
)
def test_list_review_comments_refuses_bad_filters_and_page_bounds(api_client, phase, query):
    # A page bound answers its own code; `resolved` has none (422).
    name = next(iter(query))
    body = assert_refusal(
        api_client.get(url("list_review_comments", phase_id=phase.id), query),
        "validation_error" if name == "resolved" else f"invalid_{name}",
    )
    [error] = body["details"]["errors"]
    assert error["loc"] == ["query", next(iter(query))]


def test_list_review_comments_of_unknown_phase_is_404(api_client):
    body = assert_error(
        api_client.get(url("list_review_comments", phase_id="nope")),
        HTTPStatus.NOT_FOUND,
        "phase_not_found",
    )
    assert body["details"] == {"id": "nope"}


def test_list_review_comments_offset_pages_are_disjoint_and_cover_everything(api_client, phase):
    made = [f.ReviewCommentFactory(phase=phase, line_number=i + 1) for i in range(5)]
    pages = [
        api_client.get(
            url("list_review_comments", phase_id=phase.id), {"limit": 2, "offset": offset}
        ).json()
        for offset in (0, 2, 4, 6)
    ]
    assert [page["total"] for page in pages] == [5, 5, 5, 5]
    ids = [[item["id"] for item in page["items"]] for page in pages]
    assert [len(page_ids) for page_ids in ids] == [2, 2, 1, 0]
    assert [item_id for page_ids in ids for item_id in page_ids] == [c.id for c in made]


@pytest.mark.parametrize("rows", [10, 200, 1000])
def test_list_review_comments_query_count_does_not_grow_with_the_page(
    api_client, phase, rows, django_assert_max_num_queries
):
    ReviewComment.objects.bulk_create(
        ReviewComment(
            phase=phase,
            file_path=f"src/file_{i % 7}.py",
            line_number=i + 1,
            line_type="context",
            body=f"Comment {i}",
        )
        for i in range(rows)
    )
    api_client.get(url("list_review_comments", phase_id=phase.id))  # token stamp, unmeasured
    # Authentication (1) + the phase (1) + the texts' sizes (1) + the page (1) + the
    # total (1).
    with django_assert_max_num_queries(5):
        response = api_client.get(
            url("list_review_comments", phase_id=phase.id), {"limit": MAX_LIMIT}
        )
    body = response.json()
    assert (len(body["items"]), body["total"]) == (min(rows, MAX_LIMIT), rows)


# --- create ----------------------------------------------------------------------------------


def test_create_review_comment_answers_201_and_stores_it_open(api_client, phase):
    response = send_json(
        api_client, "post", url("create_review_comment", phase_id=phase.id), VALID_COMMENT
    )
    assert response.status_code == HTTPStatus.CREATED
    comment = ReviewComment.objects.get()
    assert response.json() == comment_body(comment)
    assert (comment.phase_id, comment.file_path, comment.line_number) == (
        phase.id,
        "src/app.py",
        12,
    )
    assert (comment.line_type, comment.body, comment.author, comment.resolved) == (
        "added",
        "Hm",
        "you",
        False,
    )


def test_create_review_comment_keeps_a_given_author(api_client, phase):
    payload = {**VALID_COMMENT, "author": "reviewer-2", "line_type": "removed"}
    body = send_json(
        api_client, "post", url("create_review_comment", phase_id=phase.id), payload
    ).json()
    assert (body["author"], body["line_type"]) == ("reviewer-2", "removed")


def test_create_review_comment_on_unknown_phase_is_404(api_client):
    body = assert_error(
        send_json(api_client, "post", url("create_review_comment", phase_id="nope"), VALID_COMMENT),
        HTTPStatus.NOT_FOUND,
        "phase_not_found",
    )
    assert body["details"] == {"id": "nope"}
    assert not ReviewComment.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"line_number": 0}, "line_number"),
        ({"line_number": -3}, "line_number"),
        ({"line_number": 2.5}, "line_number"),
        ({"line_number": "twelve"}, "line_number"),
        ({"line_number": None}, "line_number"),
        ({"line_number": True}, "line_number"),  # a boolean is not a line
        ({"line_type": "modified"}, "line_type"),
        ({"line_type": "ADDED"}, "line_type"),
        ({"body": ""}, "body"),
        ({"body": None}, "body"),
        ({"body": ["x"]}, "body"),
        ({"file_path": ""}, "file_path"),
        ({"file_path": "x" * 4097}, "file_path"),
        ({"file_path": 3}, "file_path"),
        ({"author": ""}, "author"),
        ({"author": "a" * 256}, "author"),
    ],
)
def test_create_review_comment_invalid_body_is_refused_naming_the_field(
    api_client, phase, change, field
):
    # A field's own code (a blank or null text, a line type), else 422.
    value = change[field]
    if field == "line_type":
        code = "invalid_line_type"
    elif field != "line_number" and (
        value is None or (isinstance(value, str) and not value.strip())
    ):
        code = f"empty_{field}"
    else:
        code = "validation_error"
    body = assert_refusal(
        send_json(
            api_client,
            "post",
            url("create_review_comment", phase_id=phase.id),
            {**VALID_COMMENT, **change},
        ),
        code,
    )
    assert [e["loc"] for e in body["details"]["errors"]] == [["body", "payload", field]]
    assert not ReviewComment.objects.exists()


def _documented_file_path_pattern() -> str:
    schema = api.get_openapi_schema()["components"]["schemas"]["ReviewCommentIn"]
    return schema["properties"]["file_path"]["pattern"]


@pytest.mark.parametrize("path", ["src/a.py\nsrc/b.py", "src/\ra.py", "src/a\tb.py", "a\r\nb"])
def test_a_file_path_of_more_than_one_line_is_refused_as_the_document_says(api_client, phase, path):
    # The fuzzer sent a path with a line break inside, which the document's pattern
    # allowed and the repository refused (400 invalid_file_path): the pattern states it now.
    assert re.fullmatch(_documented_file_path_pattern(), path) is None
    response = send_json(
        api_client,
        "post",
        url("create_review_comment", phase_id=phase.id),
        {**VALID_COMMENT, "file_path": path},
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_file_path")
    assert not ReviewComment.objects.exists()


@pytest.mark.parametrize("path", [" \n src/a b.py\t\r\n", "src/a\u2028b.py", "x" * 4096])
def test_a_file_path_the_document_allows_is_stored_stripped(api_client, phase, path):
    # Line breaks and tabs around the path are stripped, as the pattern allows them.
    assert re.fullmatch(_documented_file_path_pattern(), path)
    response = send_json(
        api_client,
        "post",
        url("create_review_comment", phase_id=phase.id),
        {**VALID_COMMENT, "file_path": path},
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["file_path"] == path.strip()


@pytest.mark.parametrize(
    ("missing", "code"),
    [
        ("file_path", "empty_file_path"),
        ("line_number", "validation_error"),
        ("line_type", "validation_error"),
        ("body", "empty_body"),
    ],
)
def test_create_review_comment_missing_field_is_refused(api_client, phase, missing, code):
    payload = {k: v for k, v in VALID_COMMENT.items() if k != missing}
    body = assert_refusal(
        send_json(api_client, "post", url("create_review_comment", phase_id=phase.id), payload),
        code,
    )
    assert body["details"]["errors"] == [
        {"loc": ["body", "payload", missing], "msg": "Field required", "type": "missing"}
    ]


@pytest.mark.parametrize("field", ["body", "file_path", "author"])
def test_create_review_comment_blank_text_is_empty_like_the_services_say(api_client, phase, field):
    body = assert_error(
        send_json(
            api_client,
            "post",
            url("create_review_comment", phase_id=phase.id),
            {**VALID_COMMENT, field: "  \n "},
        ),
        HTTPStatus.BAD_REQUEST,
        f"empty_{field}",
    )
    assert [e["loc"][-1] for e in body["details"]["errors"]] == [field]
    assert not ReviewComment.objects.exists()


@pytest.mark.parametrize(
    ("method", "name", "kwargs"),
    [
        ("post", "create_review_comment", {"phase_id": "PHASE"}),
        ("patch", "update_review_comment", {"comment_id": "COMMENT"}),
    ],
)
@pytest.mark.parametrize("raw", ["{not json", "{'body': 'x'}", b"\xff\xfe{", '{"body": "x"'])
def test_malformed_json_is_422(api_client, comment, method, name, kwargs, raw):
    ids = {"PHASE": comment.phase_id, "COMMENT": comment.id}
    path = url(name, **{key: ids[value] for key, value in kwargs.items()})
    response = api_client.generic(method.upper(), path, raw, content_type="application/json")
    assert_error(response, HTTPStatus.UNPROCESSABLE_ENTITY, "malformed_json")
    assert ReviewComment.objects.get().body == "Rename this."


# --- update ----------------------------------------------------------------------------------


def test_update_review_comment_replaces_the_body(api_client, comment):
    age(comment)
    before = comment_body(comment)
    response = send_json(
        api_client,
        "patch",
        url("update_review_comment", comment_id=comment.id),
        {"body": "Rename it to `fetch_all`."},
    )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body == comment_body(comment)
    assert body["body"] == "Rename it to `fetch_all`."
    assert body["updated_at"] > before["updated_at"]
    assert {k: v for k, v in body.items() if k not in ("body", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("body", "updated_at")
    }


def test_update_review_comment_refuses_fields_it_does_not_edit(api_client, comment):
    body = assert_error(
        send_json(
            api_client,
            "patch",
            url("update_review_comment", comment_id=comment.id),
            {"body": "New", "resolved": True, "phase_id": "elsewhere"},
        ),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    assert sorted(e["loc"][-1] for e in body["details"]["errors"]) == ["phase_id", "resolved"]
    comment.refresh_from_db()
    assert (comment.body, comment.resolved, comment.phase_id) == (
        "Rename this.",
        False,
        comment.phase.id,
    )


def test_update_unknown_review_comment_is_404(api_client):
    body = assert_error(
        send_json(
            api_client, "patch", url("update_review_comment", comment_id="nope"), {"body": "x"}
        ),
        HTTPStatus.NOT_FOUND,
        "review_comment_not_found",
    )
    assert body["details"] == {"id": "nope"}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "empty_body"),
        ({"body": ""}, "empty_body"),
        ({"body": None}, "empty_body"),
        ({"body": 5}, "validation_error"),
        ({"text": "x"}, "validation_error"),
    ],
)
def test_update_review_comment_invalid_body_is_refused(api_client, comment, payload, code):
    assert_refusal(
        send_json(
            api_client, "patch", url("update_review_comment", comment_id=comment.id), payload
        ),
        code,
    )
    assert ReviewComment.objects.get().body == "Rename this."


def test_update_review_comment_blank_body_is_empty_body(api_client, comment):
    assert_error(
        send_json(
            api_client, "patch", url("update_review_comment", comment_id=comment.id), {"body": " "}
        ),
        HTTPStatus.BAD_REQUEST,
        "empty_body",
    )
    assert ReviewComment.objects.get().body == "Rename this."


# --- resolve / unresolve ---------------------------------------------------------------------


def test_resolve_then_unresolve_review_comment(api_client, comment):
    response = api_client.post(url("resolve_review_comment", comment_id=comment.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == comment_body(comment)
    assert comment.resolved is True

    response = api_client.post(url("unresolve_review_comment", comment_id=comment.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == comment_body(comment)
    assert comment.resolved is False


@pytest.mark.parametrize(
    ("name", "resolved"),
    [("resolve_review_comment", True), ("unresolve_review_comment", False)],
)
def test_resolve_and_unresolve_are_idempotent_without_a_write(api_client, phase, name, resolved):
    comment = f.ReviewCommentFactory(phase=phase, resolved=resolved)
    age(comment)
    before = comment_body(comment)
    response = api_client.post(url(name, comment_id=comment.id))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == before == comment_body(comment)


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "resolve_review_comment"),
        ("post", "unresolve_review_comment"),
        ("delete", "delete_review_comment"),
    ],
)
def test_unknown_review_comment_is_404(api_client, method, name):
    body = assert_error(
        getattr(api_client, method)(url(name, comment_id="nope")),
        HTTPStatus.NOT_FOUND,
        "review_comment_not_found",
    )
    assert body["details"] == {"id": "nope"}


# --- delete ----------------------------------------------------------------------------------


def test_delete_review_comment_answers_204_then_404(api_client, comment):
    other = f.ReviewCommentFactory(phase=comment.phase)
    response = api_client.delete(url("delete_review_comment", comment_id=comment.id))
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert list(ReviewComment.objects.values_list("id", flat=True)) == [other.id]
    assert_error(
        api_client.delete(url("delete_review_comment", comment_id=comment.id)),
        HTTPStatus.NOT_FOUND,
        "review_comment_not_found",
    )


# --- review brief ----------------------------------------------------------------------------


def test_review_brief_renders_the_unresolved_comments(api_client, phase_in_review):
    make = f.ReviewCommentFactory
    make(phase=phase_in_review, file_path="b.py", line_number=30, body="Third")
    make(phase=phase_in_review, file_path="a.py", line_number=2, body="First", author="lead")
    make(phase=phase_in_review, file_path="a.py", line_number=1, body="Done", resolved=True)

    response = api_client.get(url("retrieve_review_brief", phase_id=phase_in_review.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "phase_id": phase_in_review.id,
        "unresolved": 2,
        "markdown": (
            '# Review of phase "API"\n\n'
            "2 unresolved comments in 2 files. Address each one, then complete this task "
            "with a summary of what you changed.\n\n"
            "## `a.py`\n\n"
            "- **Line 2** (added line, lead): First\n\n"
            "## `b.py`\n\n"
            "- **Line 30** (added line, you): Third\n"
        ),
    }


def test_review_brief_without_comments_says_so(api_client, phase):
    response = api_client.get(url("retrieve_review_brief", phase_id=phase.id))
    assert response.json() == {
        "phase_id": phase.id,
        "unresolved": 0,
        "markdown": '# Review of phase "API"\n\nNo unresolved review comments.\n',
    }


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "retrieve_review_brief"),
        ("post", "request_phase_changes"),
        ("post", "approve_phase"),
        ("post", "create_review_comment"),
    ],
)
def test_phase_operations_on_unknown_phase_are_404(person_client, method, name):
    path = url(name, phase_id="nope")
    response = send_json(person_client, method, path, VALID_COMMENT)
    body = assert_error(response, HTTPStatus.NOT_FOUND, "phase_not_found")
    assert body["details"] == {"id": "nope"}


# --- request changes -------------------------------------------------------------------------


def test_request_changes_makes_one_review_task_and_reopens_the_phase(
    person_client, phase_in_review
):
    first = f.ReviewCommentFactory(phase=phase_in_review, body="Rename x")
    second = f.ReviewCommentFactory(phase=phase_in_review, body="Add a test")
    done = f.ReviewCommentFactory(phase=phase_in_review, body="Old news", resolved=True)

    response = person_client.post(url("request_phase_changes", phase_id=phase_in_review.id))

    assert response.status_code == HTTPStatus.CREATED
    task = Task.objects.get()
    assert response.json() == task_body(task)
    assert (task.phase_id, task.initiative_id) == (
        phase_in_review.id,
        phase_in_review.initiative_id,
    )
    assert (task.category, task.type, task.priority, task.status) == (
        "review",
        "auto",
        "high",
        "pending",
    )
    assert "Rename x" in task.description
    assert "Add a test" in task.description
    assert "Old news" not in task.description
    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.IN_PROGRESS
    # The open comments stay open, handed to the rework task; the resolved one is left.
    handed = dict(ReviewComment.objects.values_list("pk", "addressed_by_id"))
    assert handed == {first.pk: task.pk, second.pk: task.pk, done.pk: None}
    assert not ReviewComment.objects.get(pk=first.pk).resolved


def test_request_changes_without_unresolved_comments_is_400_and_changes_nothing(
    person_client, phase_in_review
):
    f.ReviewCommentFactory(phase=phase_in_review, resolved=True)
    body = assert_error(
        person_client.post(url("request_phase_changes", phase_id=phase_in_review.id)),
        HTTPStatus.BAD_REQUEST,
        "review_no_comments",
    )
    assert body["details"] == {"id": phase_in_review.id}
    phase_in_review.refresh_from_db()
    assert phase_in_review.status == PhaseStatus.PENDING_REVIEW
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "status",
    [PhaseStatus.PENDING, PhaseStatus.APPROVED, PhaseStatus.IN_PROGRESS, PhaseStatus.COMPLETED],
)
@pytest.mark.parametrize("name", ["request_phase_changes", "approve_phase"])
def test_review_decision_on_a_phase_not_in_review_is_409(person_client, status, name):
    phase = f.PhaseFactory(status=status)
    comment = f.ReviewCommentFactory(phase=phase)
    body = assert_error(
        person_client.post(url(name, phase_id=phase.id)),
        HTTPStatus.CONFLICT,
        "transition_not_allowed",
    )
    assert body["details"] == {
        "id": phase.id,
        "status": status,
        "allowed_from": [PhaseStatus.PENDING_REVIEW],
    }
    phase.refresh_from_db()
    assert phase.status == status
    assert not Task.objects.exists()
    assert ReviewComment.objects.get(pk=comment.pk).resolved is False


# --- approve ---------------------------------------------------------------------------------


def test_approve_phase_completes_it(person_client):
    initiative = f.InitiativeFactory(execution_mode=ExecutionMode.REVIEW_PER_PHASE)
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW)
    f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)

    response = person_client.post(url("approve_phase", phase_id=phase.id))

    assert response.status_code == HTTPStatus.OK
    assert response.json() == phase_body(phase)
    assert phase.status == PhaseStatus.COMPLETED
    initiative.refresh_from_db()
    assert initiative.status == InitiativeStatus.ACTIVE  # another phase is still open


def test_approving_the_last_phase_puts_the_initiative_in_review(person_client):
    initiative = f.InitiativeFactory(execution_mode=ExecutionMode.REVIEW_PER_PHASE)
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW)
    f.PhaseFactory(initiative=initiative, status=PhaseStatus.COMPLETED)
    assert person_client.post(url("approve_phase", phase_id=phase.id)).status_code == HTTPStatus.OK
    initiative.refresh_from_db()
    assert initiative.status == InitiativeStatus.PENDING_REVIEW


# --- garbage bodies never give a 500 ---------------------------------------------------------

GARBAGE = {
    "empty_array": "[]",
    "string": '"x"',
    "number": "123",
    "null": "null",
    "false": "false",
    "empty_object": "{}",
    "array_of_objects": json.dumps([VALID_COMMENT]),
    "wrong_types": json.dumps(
        {"file_path": {"a": 1}, "line_number": [12], "line_type": 1, "body": {"x": ["y"]}}
    ),
    "huge_strings": json.dumps(
        {
            "file_path": "p" * 1_000_000,
            "line_number": "9" * 100_000,
            "line_type": "x" * 100_000,
            "body": {"text": "b" * 1_000_000},
        }
    ),
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "deep_object": '{"body":' * 5_000 + '"x"' + "}" * 5_000,
    "lone_surrogate": '{"body": "\\ud800"}',
}

BODY_ENDPOINTS = [
    ("post", "create_review_comment"),
    ("patch", "update_review_comment"),
]


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize(("method", "name"), BODY_ENDPOINTS, ids=[e[1] for e in BODY_ENDPOINTS])
def test_garbage_body_is_a_4xx_in_the_error_shape(api_client, comment, method, name, raw):
    kwargs = {
        "create_review_comment": {"phase_id": comment.phase_id},
        "update_review_comment": {"comment_id": comment.id},
    }[name]
    response = api_client.generic(
        method.upper(), url(name, **kwargs), raw, content_type="application/json"
    )
    assert 400 <= response.status_code < 500, response.content[:500]
    assert set(response.json()) == {"code", "message", "details"}
    assert list(ReviewComment.objects.values_list("body", flat=True)) == ["Rename this."]


@pytest.mark.parametrize(
    "change",
    [
        {"body": "nul \u0000 byte"},
        {"file_path": "src/\u0000.py"},
        {"author": "\u0000"},
        {"line_number": 2**31},
        {"line_number": 2**63},
        {"line_number": 10**40},
        {"body": "b" * 2_000_000},
    ],
    ids=["nul_body", "nul_path", "nul_author", "int32_overflow", "int64_overflow", "huge", "long"],
)
def test_hostile_values_in_a_well_formed_comment_never_give_a_500(api_client, phase, change):
    response = send_json(
        api_client,
        "post",
        url("create_review_comment", phase_id=phase.id),
        {**VALID_COMMENT, **change},
    )
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "details"}


def test_nul_byte_in_a_patched_body_never_gives_a_500(api_client, comment):
    response = send_json(
        api_client,
        "patch",
        url("update_review_comment", comment_id=comment.id),
        {"body": "a\u0000"},
    )
    assert response.status_code < 500, response.content[:500]


@pytest.mark.parametrize("raw", list(GARBAGE.values())[:8], ids=list(GARBAGE)[:8])
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("resolve_review_comment", HTTPStatus.OK),
        ("unresolve_review_comment", HTTPStatus.OK),
        ("request_phase_changes", HTTPStatus.CREATED),
        ("approve_phase", HTTPStatus.OK),
    ],
)
def test_garbage_body_to_an_action_without_body_is_ignored(
    person_client, phase_in_review, name, status, raw
):
    comment = f.ReviewCommentFactory(phase=phase_in_review)
    kwargs = {"comment_id": comment.id} if "comment" in name else {"phase_id": phase_in_review.id}
    response = person_client.post(url(name, **kwargs), raw, content_type="application/json")
    assert response.status_code == status, response.content[:500]


@pytest.mark.parametrize(
    ("method", "name", "kwargs"),
    [
        ("get", "list_review_comments", {"phase_id": "a\u0000b"}),
        ("post", "resolve_review_comment", {"comment_id": "a\u0000b"}),
        ("delete", "delete_review_comment", {"comment_id": "a\u0000b"}),
        ("post", "approve_phase", {"phase_id": "a\u0000b"}),
    ],
)
def test_nul_byte_in_a_path_id_is_refused_not_a_500(person_client, method, name, kwargs):
    # No record can have such an id: a 404, or a 400/422 refusing the value, are both fine.
    response = getattr(person_client, method)(url(name, **kwargs))
    assert response.status_code in (400, 404, 422), response.content[:500]
    assert set(response.json()) == {"code", "message", "details"}


# --- people's gate and events ----------------------------------------------------------------


def test_request_changes_with_a_tools_token_is_403_person_required_and_changes_nothing(
    api_client, phase_in_review
):
    comment = f.ReviewCommentFactory(phase=phase_in_review)

    body = assert_error(
        api_client.post(url("request_phase_changes", phase_id=phase_in_review.id)),
        HTTPStatus.FORBIDDEN,
        "person_required",
    )

    assert body["details"]["actor"] == "tool"
    phase_in_review.refresh_from_db()
    comment.refresh_from_db()
    assert (phase_in_review.status, comment.resolved) == (PhaseStatus.PENDING_REVIEW, False)
    assert not Task.objects.exists()
    assert not Event.objects.exists()


def test_request_changes_in_a_staff_session_passes_the_gate(staff_client, phase_in_review):
    f.ReviewCommentFactory(phase=phase_in_review)

    response = staff_client.post(url("request_phase_changes", phase_id=phase_in_review.id))

    assert response.status_code == HTTPStatus.CREATED
    assert Event.objects.filter(kind="review_comment.handed_over").count() == 1


def test_creating_and_resolving_a_comment_record_events(api_client, phase):
    response = send_json(
        api_client, "post", url("create_review_comment", phase_id=phase.id), VALID_COMMENT
    )
    comment_id = response.json()["id"]
    api_client.post(url("resolve_review_comment", comment_id=comment_id))
    api_client.post(url("resolve_review_comment", comment_id=comment_id))

    assert list(Event.objects.values_list("kind", "subject_id", "initiative_id")) == [
        ("review_comment.created", comment_id, phase.initiative_id),
        ("review_comment.resolved", comment_id, phase.initiative_id),
    ]


def test_a_refused_comment_records_nothing(api_client, phase):
    response = send_json(
        api_client,
        "post",
        url("create_review_comment", phase_id=phase.id),
        {**VALID_COMMENT, "file_path": "a\nb"},
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Event.objects.exists()


def test_approve_phase_is_no_longer_a_reviews_operation():
    from reviews.api import router

    assert all(not path.endswith("/approve") for path in router.path_operations)


# --- the feed ----------------------------------------------------------------------------


def test_editing_reopening_and_deleting_a_comment_are_on_the_feed(api_client, comment):
    comment.resolved = True
    comment.save()
    patch = url("update_review_comment", comment_id=comment.id)
    reopen = url("unresolve_review_comment", comment_id=comment.id)

    assert send_json(api_client, "patch", patch, {"body": "Rename it."}).status_code == 200
    assert send_json(api_client, "patch", patch, {"body": "Rename it."}).status_code == 200
    assert api_client.post(reopen).status_code == 200
    assert api_client.post(reopen).status_code == 200
    delete = url("delete_review_comment", comment_id=comment.id)
    assert api_client.delete(delete).status_code == HTTPStatus.NO_CONTENT
    assert_error(api_client.delete(delete), 404, "review_comment_not_found")

    events = Event.objects.order_by("id")
    assert [(e.kind, e.subject_id, e.data, e.actor_type) for e in events] == [
        (
            "review_comment.updated",
            comment.id,
            {"phase_id": comment.phase_id, "fields": ["body"]},
            "tool",
        ),
        ("review_comment.unresolved", comment.id, {"phase_id": comment.phase_id}, "tool"),
        ("review_comment.deleted", comment.id, {"phase_id": comment.phase_id}, "tool"),
    ]
