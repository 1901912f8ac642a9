"""A person writes a page in markdown in the admin, reads it rendered, and edits the
markdown again, in a real browser."""

import json
import re

import pytest

from core.models import Page
from core.tiptap import markdown_to_tiptap
from tests import factories as f

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

WRITTEN = """# Release plan

- Freeze the branch
- Run `make test`

See [the runbook](https://example.com/runbook).

```sh
make deploy
```"""


def test_a_page_is_written_in_markdown_read_rendered_and_edited_again(page):
    initiative = f.InitiativeFactory(name="Launch")
    # The initiative comes chosen, as from the initiative's page.
    page.goto(f"/admin/core/page/add/?initiative={initiative.pk}")
    page.fill("#id_title", "Release")
    textarea = page.locator("textarea#id_content")
    assert "monospace" in textarea.evaluate("element => getComputedStyle(element).fontFamily")
    textarea.fill(WRITTEN)
    page.click('input[name="_continue"]')
    page.wait_for_url(re.compile(r"/admin/core/page/[\w-]+/change/"))

    stored = Page.objects.get(title="Release", initiative=initiative)
    assert json.loads(stored.content) == markdown_to_tiptap(WRITTEN)

    # Read back rendered: a heading, a list, a link, code; no JSON, no markdown syntax.
    shown = page.locator("[data-cw-rendered]")
    expect(shown.locator("h1")).to_have_text("Release plan")
    expect(shown.locator("ul > li")).to_have_count(2)
    expect(shown.locator("li code")).to_have_text("make test")
    link = shown.locator("a", has_text="the runbook")
    expect(link).to_have_attribute("href", "https://example.com/runbook")
    expect(shown.locator("pre code")).to_have_text("make deploy")
    text = shown.inner_text()
    for syntax in ('"type"', "# Release", "- Freeze", "](https", "```"):
        assert syntax not in text

    # Edited again: the textarea holds the markdown, not the stored JSON.
    assert textarea.input_value() == WRITTEN
    assert '"type"' not in textarea.input_value()
    textarea.fill(WRITTEN.replace("- Run", "- Tag the release\n- Run"))
    page.click('input[name="_continue"]')
    page.wait_for_url(re.compile(r"/admin/core/page/[\w-]+/change/"))
    expect(page.locator("[data-cw-rendered] ul > li")).to_have_count(3)
    assert (
        page.locator("textarea#id_content")
        .input_value()
        .startswith("# Release plan\n\n- Freeze the branch\n- Tag the release")
    )
