"""Lists at a laptop's width (1,400 pixels, the browser tests' window): a list wider
than the room beside its filters takes the whole width, its filters below it, instead
of being cut at the edge of its box (``templates/admin/base_site.html``)."""

from datetime import UTC, datetime

import pytest

from tests import factories as f

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

#: Each part's box: how wide its content is, how wide it shows, and where it sits.
MEASURE = """() => {
  const box = (selector) => {
    const found = document.querySelector(selector);
    const rect = found.getBoundingClientRect();
    return {scroll: found.scrollWidth, client: found.clientWidth,
            left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom};
  };
  return {results: box('#changelist-form .results'), table: box('#result_list'),
          filter: box('#changelist-filter'), page: document.documentElement.clientWidth};
}"""


def test_a_list_too_wide_for_the_room_beside_its_filters_is_not_cut(page):
    # Its widest times (two-digit hours, the longest month's name), whatever the clock.
    widest = datetime(2026, 9, 30, 23, 59, tzinfo=UTC)
    for _ in range(3):
        f.RunFactory(started_at=widest, heartbeat_at=widest)
    page.goto("/admin/agents/run/")

    shown = page.evaluate(MEASURE)

    results, table, filters = shown["results"], shown["table"], shown["filter"]
    assert results["scroll"] <= results["client"] + 1  # every column shows, none cut
    assert table["right"] <= shown["page"]
    assert filters["top"] >= table["bottom"]  # the filters moved below the list
    assert filters["right"] <= shown["page"] + 1


def test_a_list_that_fits_beside_its_filters_keeps_them_beside_it(page):
    f.TaskFactory(name="Write the API")
    page.goto("/admin/core/task/")

    shown = page.evaluate(MEASURE)

    assert shown["results"]["scroll"] <= shown["results"]["client"] + 1
    assert shown["filter"]["left"] >= shown["table"]["right"]
