"""Pages' content and phases' descriptions in the admin (``core.admin.markdown``):
written as markdown and saved through the services as Tiptap documents, shown as
markdown to edit and as rendered, escaped HTML to read."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from core.models import Event, Page, Phase
from core.tiptap import markdown_to_tiptap, markdown_to_tiptap_json
from tests import factories as f

pytestmark = pytest.mark.django_db

MARKDOWN = (
    "# Goals\n\n- fast\n- **safe**\n\nSee [the docs](https://example.com/docs) and `make test`."
)


def test_a_page_written_as_markdown_is_saved_as_its_document_through_the_service(
    admin_client,
):
    initiative = f.InitiativeFactory()

    response = admin_client.post(
        reverse("admin:core_page_add"),
        {"initiative": initiative.pk, "title": "Plan", "content": MARKDOWN, "sort_order": 0},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    page = Page.objects.get(title="Plan")
    assert json.loads(page.content) == markdown_to_tiptap(MARKDOWN)
    assert Event.objects.filter(kind="page.created", subject_id=page.pk).exists()


def test_a_page_is_edited_as_markdown_and_read_rendered(admin_client):
    page = f.PageFactory(content=markdown_to_tiptap_json(MARKDOWN))

    html = admin_client.get(reverse("admin:core_page_change", args=[page.pk])).content.decode()

    assert f">\n{MARKDOWN}</textarea>" in html.replace("&quot;", '"').replace("&#x27;", "'")
    assert '"type": "doc"' not in html and "&quot;type&quot;" not in html
    assert "<h1>Goals</h1>" in html
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">' in html
    assert "<code>make test</code>" in html


def test_saving_the_same_markdown_changes_nothing(admin_client):
    page = f.PageFactory(content=markdown_to_tiptap_json(MARKDOWN))
    stored = page.content

    response = admin_client.post(
        reverse("admin:core_page_change", args=[page.pk]),
        {
            "title": page.title,
            "content": MARKDOWN.replace("\n", "\r\n"),  # as a browser posts a textarea
            "sort_order": 0,
        },
    )

    assert response.status_code == 302
    page.refresh_from_db()
    assert page.content == stored
    assert not Event.objects.filter(kind="page.updated", subject_id=page.pk).exists()


def test_editing_the_markdown_updates_the_document_and_clearing_it_empties_it(admin_client):
    page = f.PageFactory(content=markdown_to_tiptap_json("old"))
    url = reverse("admin:core_page_change", args=[page.pk])

    admin_client.post(url, {"title": page.title, "content": "*new*", "sort_order": 0})
    page.refresh_from_db()
    assert json.loads(page.content) == markdown_to_tiptap("*new*")
    updated = Event.objects.get(kind="page.updated", subject_id=page.pk)
    assert "content" in json.dumps(updated.data)

    admin_client.post(url, {"title": page.title, "content": "  ", "sort_order": 0})
    page.refresh_from_db()
    assert page.content is None


def test_a_phase_description_is_written_as_markdown(admin_client):
    phase = f.PhaseFactory(content=markdown_to_tiptap_json("## Scope"))
    url = reverse("admin:core_phase_change", args=[phase.pk])

    html = admin_client.get(url).content.decode()
    assert "Description" in html
    assert ">\n## Scope</textarea>" in html
    assert "<h2>Scope</h2>" in html

    admin_client.post(url, {"name": phase.name, "content": "1. one\n2. two"})
    phase.refresh_from_db()
    assert json.loads(phase.content) == markdown_to_tiptap("1. one\n2. two")


def test_scripts_and_unsafe_links_never_reach_the_page_unescaped(admin_client):
    written = (
        "<script>alert(1)</script>\n\n[click](javascript:alert(1))\n\n"
        '<img src=x onerror="alert(1)">'
    )
    stored = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "x",
                        "marks": [{"type": "link", "attrs": {"href": "javascript:alert(2)"}}],
                    },
                    {"type": "text", "text": '<b onmouseover="alert(3)">'},
                ],
            }
        ],
    }
    for content in (markdown_to_tiptap_json(written), json.dumps(stored)):
        page = f.PageFactory(content=content)
        html = admin_client.get(reverse("admin:core_page_change", args=[page.pk])).content
        html = html.decode()
        rendered = html.split("data-cw-rendered", 1)[1].split("</div>", 1)[0]
        for raw in ("<script>alert", "<img src=x", "<b onmouseover"):
            assert raw not in html
        assert "href" not in rendered  # the unsafe links are text, unlinked
        assert "&lt;" in rendered


def test_a_person_who_may_only_view_reads_the_content_rendered(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_page"))
    client.force_login(viewer)
    page = f.PageFactory(content=markdown_to_tiptap_json("# Read me\n\n<script>x</script>"))

    html = client.get(reverse("admin:core_page_change", args=[page.pk])).content.decode()

    assert "<h1>Read me</h1>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<textarea" not in html and "&quot;type&quot;" not in html


def test_content_that_is_not_a_document_is_shown_as_written(admin_client):
    phase = f.PhaseFactory()
    Phase.objects.filter(pk=phase.pk).update(content="plain old text")

    html = admin_client.get(reverse("admin:core_phase_change", args=[phase.pk])).content.decode()

    assert ">\nplain old text</textarea>" in html
