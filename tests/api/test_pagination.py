"""``PageParams`` / ``Page`` / ``paginate``: the list convention every router reuses."""

from http import HTTPStatus

import pytest

from core.models import ApiToken
from core.schemas import MAX_LIMIT, MAX_OFFSET, PageParams, page_of, paginate

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]


def make_tokens(count: int) -> None:
    ApiToken.objects.bulk_create(
        ApiToken(name=f"t{i:04d}", token_hash=f"{i:064x}", prefix=f"cw_{i:05d}")
        for i in range(count)
    )


def test_default_page_is_the_first_fifty_with_the_total(api_client):
    make_tokens(60)  # plus the client's own token: 61
    body = api_client.get("/api/tokens").json()
    assert (body["total"], body["limit"], body["offset"]) == (61, 50, 0)
    assert len(body["items"]) == 50
    assert body["items"][0] == {"name": "test-tool", "prefix": ApiToken.objects.first().prefix}


def test_limit_and_offset_select_the_page(api_client):
    make_tokens(10)
    body = api_client.get("/api/tokens", {"limit": 3, "offset": 4}).json()
    assert [item["name"] for item in body["items"]] == ["t0003", "t0004", "t0005"]
    assert (body["total"], body["limit"], body["offset"]) == (11, 3, 4)
    assert body["next_offset"] == 7


def test_offset_past_the_end_is_an_empty_page_with_the_total(api_client):
    body = api_client.get("/api/tokens", {"offset": 500}).json()
    assert body == {"items": [], "total": 1, "limit": 50, "offset": 500, "next_offset": None}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": MAX_LIMIT + 1},
        {"limit": 0},
        {"limit": -1},
        {"offset": -1},
        {"offset": MAX_OFFSET + 1},
        # Past a 64-bit integer: SQLite's driver raised OverflowError (a 500) and
        # PostgreSQL refused the OFFSET (a 400) before the bound.
        {"offset": 2**63},
        {"offset": 10**30},
    ],
)
def test_out_of_range_limit_or_offset_is_refused_with_its_code(api_client, query):
    # The code the repositories' pagination contract gives the same refusal.
    response = api_client.get("/api/tokens", query)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == f"invalid_{next(iter(query))}"


def test_largest_offset_is_accepted_as_an_empty_page(api_client):
    response = api_client.get("/api/tokens", {"offset": MAX_OFFSET})
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "items": [],
        "total": 1,
        "limit": 50,
        "offset": MAX_OFFSET,
        "next_offset": None,
    }


def test_max_limit_is_accepted(api_client):
    response = api_client.get("/api/tokens", {"limit": MAX_LIMIT})
    assert response.status_code == HTTPStatus.OK


@pytest.mark.parametrize("rows", [10, 1000])
def test_paginate_costs_two_queries_whatever_the_page_size(rows, django_assert_max_num_queries):
    make_tokens(rows)
    with django_assert_max_num_queries(2):
        page = paginate(ApiToken.objects.all(), PageParams(limit=MAX_LIMIT, offset=0))
    assert page["total"] == rows
    assert len(page["items"]) == min(rows, MAX_LIMIT)


@pytest.mark.parametrize("rows", [10, 1000])
def test_list_endpoint_query_count_does_not_grow_with_rows(
    api_client, rows, django_assert_max_num_queries
):
    make_tokens(rows)
    api_client.get("/api/tokens")  # stamps last_used_at once, outside the measure
    # Authentication (1) + count (1) + page (1).
    with django_assert_max_num_queries(3):
        response = api_client.get("/api/tokens", {"limit": MAX_LIMIT})
    assert len(response.json()["items"]) == min(rows + 1, MAX_LIMIT)


def test_paginate_orders_an_unordered_queryset_by_primary_key():
    make_tokens(5)
    page = paginate(ApiToken.objects.order_by(), PageParams(limit=5, offset=0))
    assert [token.pk for token in page["items"]] == sorted(token.pk for token in page["items"])


def test_page_of_wraps_items_already_fetched():
    params = PageParams(limit=2, offset=4)
    assert page_of(["a", "b"], total=9, params=params) == {
        "items": ["a", "b"],
        "total": 9,
        "limit": 2,
        "offset": 4,
        "next_offset": 6,
    }
