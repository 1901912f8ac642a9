"""A pending proposal's page shows what it changes in a text as a highlighted
difference (``reviews.text_diff``) and a page's or phase's new content as it will read,
everything escaped."""

import pytest
from django.urls import reverse

from core.tiptap import markdown_to_tiptap_json
from reviews.models import ProposalTargetType
from reviews.text_diff import text_diff_html
from tests import factories as f

pytestmark = pytest.mark.django_db


def preview_of(admin_client, proposal) -> str:
    page = admin_client.get(reverse("admin:reviews_proposal_change", args=[proposal.pk]))
    return page.content.decode().split('id="proposal-preview"', 1)[1].split("</table>", 1)[0]


def test_words_that_go_are_deleted_and_words_that_come_are_inserted():
    assert text_diff_html("Says hi to all.", "Says hello to all!") == (
        "Says <del>hi</del><ins>hello</ins> to all<del>.</del><ins>!</ins>"
    )
    assert text_diff_html(None, "new") == "<ins>new</ins>"
    assert text_diff_html("old", "") == "<del>old</del>"
    assert text_diff_html("same", "same") == "same"


def test_every_text_in_a_difference_is_escaped():
    html = text_diff_html("<b>kept</b> <i>", "<b>kept</b> <script>alert(1)</script>")
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;/script&gt;" in html and "&lt;b&gt;kept&lt;/b&gt;" in html


def test_a_page_content_change_is_highlighted_and_shown_as_it_will_read(admin_client):
    page = f.PageFactory(title="Emails", content=markdown_to_tiptap_json("# Emails\n\nSays hi."))
    proposal = f.ProposalFactory(
        initiative=page.initiative,
        target_type=ProposalTargetType.PAGE,
        target_id=page.pk,
        title="Mails",
        content="# Emails\n\nSays hello, **never** the IP <script>alert(1)</script>.",
        metadata=None,
    )

    preview = preview_of(admin_client, proposal)

    assert "<del>Emails</del><ins>Mails</ins>" in preview  # the title
    assert "Says <del>hi</del><ins>hello, **never** the IP" in preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in preview
    assert "<script>alert" not in preview
    reads = preview.split("as it will read", 1)[1]
    assert "<h1>Emails</h1>" in reads
    assert "<strong>never</strong>" in reads


def test_a_phase_description_change_is_highlighted(admin_client):
    phase = f.PhaseFactory(name="Build", content=markdown_to_tiptap_json("- one\n- two"))
    proposal = f.ProposalFactory(
        initiative=phase.initiative,
        target_type=ProposalTargetType.PHASE,
        target_id=phase.pk,
        title="Build",
        content="- one\n- three",
        metadata=None,
    )

    preview = preview_of(admin_client, proposal)

    assert "- one\n- <del>two</del><ins>three</ins>" in preview
    assert "<ul><li><p>one</p></li><li><p>three</p></li></ul>" in preview


def test_a_new_page_is_previewed_as_it_will_read(admin_client):
    initiative = f.InitiativeFactory()
    proposal = f.ProposalFactory(
        initiative=initiative,
        target_type=ProposalTargetType.PAGE,
        title="Runbook",
        content="## Steps\n\n1. [deploy](javascript:alert(1))",
        metadata=None,
    )

    page = admin_client.get(reverse("admin:reviews_proposal_change", args=[proposal.pk]))
    html = page.content.decode()

    assert "<h2>Steps</h2>" in html
    assert 'href="javascript' not in html
