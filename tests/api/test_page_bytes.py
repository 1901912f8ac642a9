"""Every page the API answers is capped in bytes as well as in items
(``CW_API_PAGE_MAX_BYTES``): offset pages (by the ORM and by the hot paths' prepared
statements) and the event feed. A reader that follows ``next_offset`` / ``next_after``
still sees every item exactly once, in order."""

import pytest

from core.models import Task
from core.repositories import offset_page
from core.repositories.pagination import bytes_of, text_columns
from reviews.models import Proposal, ReviewComment
from tests import factories as f
from tests.api.helpers import url

pytestmark = pytest.mark.django_db

#: Bytes of each record's long text: three fit under a cap of 1,000 with room for the
#: records' other texts, a fourth does not; one is larger than the cap on its own.
SIZES = [300, 300, 300, 300, 1500, 200, 600, 50, 50]
CAP = 1000


def text_of(size: int) -> str:
    """``size`` bytes of UTF-8 (``é`` is two)."""
    return "é" * (size // 2) + "x" * (size % 2)


def make_tasks(sizes: list[int]) -> tuple[str, dict[str, str]]:
    phase = f.PhaseFactory()
    for n, size in enumerate(sizes):
        f.TaskFactory(
            phase=phase, initiative=phase.initiative, name=f"t{n}", description=text_of(size)
        )
    return url("list_tasks"), {"phase_id": phase.id}


def make_proposals(sizes: list[int]) -> tuple[str, dict[str, str]]:
    agent = f.AgentFactory()
    initiative = f.InitiativeFactory()
    for n, size in enumerate(sizes):
        f.ProposalFactory(
            agent=agent, initiative=initiative, sort_order=n, content=text_of(size), metadata={}
        )
    return url("list_proposals"), {"agent_id": agent.id}


def make_comments(sizes: list[int]) -> tuple[str, dict[str, str]]:
    phase = f.PhaseFactory()
    for n, size in enumerate(sizes):
        f.ReviewCommentFactory(phase=phase, file_path="a.py", line_number=n + 1, body=text_of(size))
    return url("list_review_comments", phase_id=phase.id), {}


LISTS = {
    "tasks (ORM)": (make_tasks, Task),
    "proposals (prepared statement)": (make_proposals, Proposal),
    "review comments (prepared statement)": (make_comments, ReviewComment),
}


def item_bytes(model: type, ids: list[str]) -> dict[str, int]:
    """Each record's long texts in bytes, as the database measures them."""
    rows = model.objects.filter(pk__in=ids).annotate(size=bytes_of(model, text_columns(model)))
    return dict(rows.values_list("pk", "size"))


def walk(api_client, path: str, query: dict[str, str], limit: int) -> list[dict]:
    """Every page, following ``next_offset`` from 0 until it is null."""
    pages, offset = [], 0
    while offset is not None:
        page = api_client.get(path, {**query, "limit": limit, "offset": offset}).json()
        assert page["offset"] == offset and page["limit"] == limit
        pages.append(page)
        offset = page["next_offset"]
        assert len(pages) <= len(SIZES)
    return pages


@pytest.mark.parametrize("kind", list(LISTS))
def test_a_page_of_long_texts_stops_at_the_byte_cap_and_next_offset_goes_on(
    api_client, settings, kind
):
    make, model = LISTS[kind]
    path, query = make(SIZES)
    settings.CW_API_PAGE_MAX_BYTES = 10**9
    (whole,) = walk(api_client, path, query, limit=100)  # uncapped: one page of all
    ids = [item["id"] for item in whole["items"]]
    assert len(ids) == len(SIZES) and whole["next_offset"] is None
    sizes = item_bytes(model, ids)

    settings.CW_API_PAGE_MAX_BYTES = CAP
    pages = walk(api_client, path, query, limit=100)

    assert [item["id"] for page in pages for item in page["items"]] == ids  # all, once, in order
    assert {page["total"] for page in pages} == {len(SIZES)}
    seen = 0
    for page in pages:
        page_ids = [item["id"] for item in page["items"]]
        held = sum(sizes[i] for i in page_ids)
        # Within the cap, or one record alone; and not cut early: the next one would pass it.
        assert held <= CAP or len(page_ids) == 1
        seen += len(page_ids)
        if seen < len(ids):
            assert held + sizes[ids[seen]] > CAP
    # The cap made pages shorter than the limit before the list's end.
    assert len(pages) > 1 and len(pages[0]["items"]) < len(SIZES)


@pytest.mark.parametrize("kind", list(LISTS))
def test_the_limit_still_cuts_a_page_before_the_byte_cap(api_client, settings, kind):
    make, _model = LISTS[kind]
    path, query = make([10] * 5)
    settings.CW_API_PAGE_MAX_BYTES = CAP
    pages = walk(api_client, path, query, limit=2)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [page["next_offset"] for page in pages] == [2, 4, None]


def test_offset_page_without_a_cap_is_the_whole_limit(django_assert_num_queries):
    phase = f.PhaseFactory()
    for size in SIZES:
        f.TaskFactory(phase=phase, initiative=phase.initiative, description=text_of(size))
    qs = Task.objects.filter(phase=phase)
    with django_assert_num_queries(2):  # the total, the items: no sizes
        uncapped = offset_page(qs, limit=100)
    capped = offset_page(qs, limit=100, max_bytes=CAP)
    assert len(uncapped.items) == len(SIZES) and uncapped.total == len(SIZES)
    assert 0 < len(capped.items) < len(SIZES) and capped.total == len(SIZES)
    assert capped.items == uncapped.items[: len(capped.items)]


def test_a_json_column_counts_as_its_text(api_client, settings):
    agent = f.AgentFactory()
    initiative = f.InitiativeFactory()
    for n in range(3):
        f.ProposalFactory(
            agent=agent,
            initiative=initiative,
            sort_order=n,
            content="",
            summary="",
            title="t",
            metadata={"notes": "x" * 400},
        )
    settings.CW_API_PAGE_MAX_BYTES = 1000
    page = api_client.get(url("list_proposals"), {"agent_id": agent.id}).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2 and page["total"] == 3


def test_the_event_feed_is_capped_in_bytes_and_next_after_goes_on(api_client, settings):
    initiative = f.InitiativeFactory()
    for n in range(5):
        f.EventFactory(
            kind="initiative.updated",
            subject_type="initiative",
            subject_id=initiative.id,
            initiative_id=initiative.id,
            data={"fields": [f"field_{n}_" + "x" * 300]},
        )
    query = {"initiative_id": initiative.id}
    settings.CW_API_PAGE_MAX_BYTES = 700  # two of these events' data, not three
    pages, after = [], 0
    while True:
        page = api_client.get(url("list_events"), {**query, "after": after}).json()
        if not page["items"]:
            break
        pages.append([item["data"]["fields"][0][:8] for item in page["items"]])
        after = page["next_after"]
    assert pages == [["field_0_", "field_1_"], ["field_2_", "field_3_"], ["field_4_"]]

    settings.CW_API_PAGE_MAX_BYTES = 1  # smaller than any event: one per page, never none
    page = api_client.get(url("list_events"), query).json()
    assert len(page["items"]) == 1


def test_the_openapi_document_states_the_byte_cap_of_every_page(api_client):
    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]
    pages = [name for name in schemas if name.startswith("Page_")]
    assert len(pages) >= 8
    for name in pages:
        properties = schemas[name]["properties"]
        assert "CW_API_PAGE_MAX_BYTES" in properties["items"]["description"], name
        assert "4,000,000" in properties["items"]["description"], name
        assert "next_offset" in schemas[name]["required"], name
    events = schemas["EventPageOut"]["properties"]
    assert "CW_API_PAGE_MAX_BYTES" in events["items"]["description"]


def test_ready_tasks_are_capped_in_bytes_and_keep_the_queue_order(api_client, settings):
    phase = f.PhaseFactory(status="approved")
    for n, size in enumerate(SIZES):
        f.TaskFactory(
            phase=phase, initiative=phase.initiative, name=f"t{n}", description=text_of(size)
        )
    query = {"initiative_id": phase.initiative_id, "limit": 100}
    settings.CW_API_PAGE_MAX_BYTES = 10**9
    whole = [task["id"] for task in api_client.get(url("list_ready_tasks"), query).json()]
    assert len(whole) == len(SIZES)
    sizes = item_bytes(Task, whole)

    settings.CW_API_PAGE_MAX_BYTES = CAP
    capped = [task["id"] for task in api_client.get(url("list_ready_tasks"), query).json()]

    assert capped == whole[: len(capped)] and 0 < len(capped) < len(whole)
    assert sum(sizes[i] for i in capped) <= CAP < sum(sizes[i] for i in whole[: len(capped) + 1])

    settings.CW_API_PAGE_MAX_BYTES = 1  # never none while one is ready
    assert len(api_client.get(url("list_ready_tasks"), query).json()) == 1
