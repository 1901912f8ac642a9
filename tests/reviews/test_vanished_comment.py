"""An edit, resolve or unresolve of a review comment deleted meanwhile answers 404
``review_comment_not_found``, never a 500 ("Save with update_fields did not affect any
rows"): the row is deleted between the read and the write, deterministically, and then
for real by racing threads."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from core.errors import NotFound
from core.models import Event
from core.tokens import api_token_create
from reviews import services
from reviews.models import ReviewComment
from reviews.repositories import ReviewCommentRepository
from reviews.services import review
from tests import factories as f
from tests.api.helpers import assert_error, patch_json, url
from tests.reviews.test_services_concurrency import race

pytestmark = pytest.mark.django_db

#: Each write of a comment a DELETE can overtake, as a service call.
WRITES: dict[str, Callable[[str], Any]] = {
    "update": lambda id: services.review_comment_update(comment_id=id, body="Rename it."),
    "resolve": lambda id: services.review_comment_resolve(comment_id=id),
    "unresolve": lambda id: services.review_comment_unresolve(comment_id=id),
}


def delete_after(read: Callable[..., ReviewComment]) -> Callable[..., ReviewComment]:
    """``read``, deleting the comment's row once it has read it: a DELETE that commits
    between a write's read and its save."""

    def read_then_delete(*args: Any, **kwargs: Any) -> ReviewComment:
        comment = read(*args, **kwargs)
        ReviewComment.objects.filter(pk=comment.pk).delete()
        return comment

    return read_then_delete


def test_the_repository_updating_a_comment_deleted_since_it_was_read_is_not_found():
    repository = ReviewCommentRepository()
    comment = repository.get(f.ReviewCommentFactory().pk)
    ReviewComment.objects.filter(pk=comment.pk).delete()

    with pytest.raises(NotFound) as refused:
        repository.update(comment, body="Rename it.")

    assert refused.value.code == "review_comment_not_found"
    assert refused.value.details == {"id": comment.pk}


@pytest.mark.parametrize("resolved", [False, True])
def test_the_repository_resolving_a_comment_deleted_after_its_read_is_not_found(
    monkeypatch, resolved
):
    repository = ReviewCommentRepository()
    comment = f.ReviewCommentFactory(resolved=resolved)
    monkeypatch.setattr(repository, "get", delete_after(repository.get))

    with pytest.raises(NotFound) as refused:
        repository.unresolve(comment.pk) if resolved else repository.resolve(comment.pk)

    assert refused.value.code == "review_comment_not_found"


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_service_write_overtaken_by_a_delete_is_not_found_and_records_nothing(monkeypatch, write):
    comment = f.ReviewCommentFactory(resolved=write == "unresolve")
    repository = review.review_comments
    # The service reads the row (locked), the repository reads it again before writing:
    # the row goes after either read.
    monkeypatch.setattr(repository, "get_for_update", delete_after(repository.get_for_update))
    monkeypatch.setattr(repository, "get", delete_after(repository.get))
    events_before = Event.objects.count()

    with pytest.raises(NotFound) as refused:
        WRITES[write](comment.pk)

    assert refused.value.code == "review_comment_not_found"
    assert Event.objects.count() == events_before


@pytest.mark.parametrize(
    ("method", "name", "payload"),
    [
        ("patch", "update_review_comment", {"body": "Rename it."}),
        ("post", "resolve_review_comment", None),
        ("post", "unresolve_review_comment", None),
    ],
)
def test_the_api_answers_404_to_a_write_overtaken_by_a_delete(monkeypatch, method, name, payload):
    api_client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_create(name='tool')[1]}")
    comment = f.ReviewCommentFactory(resolved=name == "unresolve_review_comment")
    repository = review.review_comments
    monkeypatch.setattr(repository, "get_for_update", delete_after(repository.get_for_update))
    monkeypatch.setattr(repository, "get", delete_after(repository.get))
    path = url(name, comment_id=comment.pk)

    response = patch_json(api_client, path, payload) if payload else api_client.post(path)

    body = assert_error(response, HTTPStatus.NOT_FOUND, "review_comment_not_found")
    assert body["details"] == {"id": comment.pk}


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_writes_racing_a_delete_of_the_same_comment_succeed_or_are_not_found(write):
    for _ in range(10):
        comment = f.ReviewCommentFactory(resolved=write == "unresolve")

        results, errors = race(
            lambda id=comment.pk: WRITES[write](id),
            lambda id=comment.pk: WRITES[write](id),
            lambda id=comment.pk: services.review_comment_delete(comment_id=id),
        )

        assert all(isinstance(error, NotFound) for error in errors), errors
        assert {error.code for error in errors} <= {"review_comment_not_found"}
        assert len(results) + len(errors) == 3
        assert not ReviewComment.objects.filter(pk=comment.pk).exists()
