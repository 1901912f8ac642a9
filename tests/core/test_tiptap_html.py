"""Tiptap JSON as HTML (``tiptap_to_html``): the document's elements, and nothing a page
could run: every text escaped, links only to safe addresses."""

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.tiptap import markdown_to_tiptap, safe_link, tiptap_to_html

# Pure functions: no database is touched.

ALLOWED = {
    "p": set(),
    "h1": set(),
    "h2": set(),
    "h3": set(),
    "h4": set(),
    "h5": set(),
    "h6": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "pre": set(),
    "code": {"class"},
    "blockquote": set(),
    "hr": set(),
    "br": set(),
    "strong": set(),
    "em": set(),
    "s": set(),
    "a": {"href", "rel"},
}


class Elements(HTMLParser):
    """The elements and attributes a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def parsed(html: str) -> Elements:
    elements = Elements()
    elements.feed(html)
    elements.close()
    return elements


def assert_safe(html: str) -> None:
    for tag, attrs in parsed(html).elements:
        assert tag in ALLOWED, f"<{tag}> in {html!r}"
        assert set(attrs) <= ALLOWED[tag], f"<{tag} {attrs}> in {html!r}"
        if tag == "a":
            assert safe_link(attrs["href"]) is not None


def test_each_node_and_mark_becomes_its_element():
    html = tiptap_to_html(
        markdown_to_tiptap(
            "# Title\n\nSome **bold**, *italic*, ~~struck~~, `code` and [a link](https://e.com).\\\n"
            "next\n\n- one\n\n3. three\n\n```py\nx = 1\n```\n\n> quoted\n\n---"
        )
    )
    assert html == (
        "<h1>Title</h1>"
        "<p>Some <strong>bold</strong>, <em>italic</em>, <s>struck</s>, <code>code</code> and "
        '<a href="https://e.com" rel="nofollow noopener noreferrer">a link</a>.<br>next</p>'
        "<ul><li><p>one</p></li></ul>"
        '<ol start="3"><li><p>three</p></li></ol>'
        '<pre><code class="language-py">x = 1</code></pre>'
        "<blockquote><p>quoted</p></blockquote>"
        "<hr>"
    )


def test_accepts_stored_json_and_nothing():
    assert tiptap_to_html('{"type": "doc", "content": [{"type": "paragraph"}]}') == "<p></p>"
    assert tiptap_to_html(None) == ""
    assert tiptap_to_html("") == ""


@pytest.mark.parametrize(
    "markdown",
    [
        "<script>alert(1)</script>",
        "text <script>alert(1)</script> inline",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">click</a>',
        '<div onmouseover="alert(1)">hover</div>',
        "```\n</code></pre><script>alert(1)</script>\n```",
        "`<script>`",
    ],
)
def test_raw_html_in_markdown_is_shown_as_text(markdown):
    html = tiptap_to_html(markdown_to_tiptap(markdown))
    assert_safe(html)
    assert "<script" not in html and "<img" not in html and "<div" not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        None,
        42,
    ],
)
def test_a_link_to_an_unsafe_address_keeps_its_text_unlinked(href):
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "click",
                        "marks": [{"type": "link", "attrs": {"href": href}}],
                    }
                ],
            }
        ],
    }
    assert tiptap_to_html(doc) == "<p>click</p>"


@pytest.mark.parametrize(
    "href", ["https://e.com/a?b=1", "http://e.com", "mailto:a@b.c", "/admin/", "#top", "page"]
)
def test_a_link_to_a_safe_address_is_a_link(href):
    assert safe_link(href) == href


def test_attributes_and_text_in_a_stored_document_are_escaped():
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": '1 onclick="alert(1)"'},
                "content": [{"type": "text", "text": "<b onclick=alert(1)>x</b>"}],
            },
            {
                "type": "orderedList",
                "attrs": {"start": '1" onclick="alert(1)'},
                "content": [{"type": "listItem", "content": [{"type": "paragraph"}]}],
            },
            {
                "type": "codeBlock",
                "attrs": {"language": 'py" onmouseover="alert(1)'},
                "content": [{"type": "text", "text": "</pre><script>alert(1)</script>"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "x",
                        "marks": [
                            {"type": "link", "attrs": {"href": '/a" onclick="alert(1)'}},
                            {"type": "bold", "attrs": {"onclick": "alert(1)"}},
                        ],
                    }
                ],
            },
            {"type": "script", "text": "alert(1)"},
            {"type": "iframe", "content": [{"type": "text", "text": "<iframe>"}]},
        ],
    }
    html = tiptap_to_html(doc)
    assert_safe(html)
    elements = parsed(html)
    assert ("a", {"href": '/a" onclick="alert(1)', "rel": "nofollow noopener noreferrer"}) in (
        elements.elements
    )
    assert "<b onclick=alert(1)>x</b>" in elements.text
    assert "</pre><script>alert(1)</script>" in elements.text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([*"ab <>\"'=/:&;()[]*`#-\n!", "javascript:", "onerror=", "<script>"]))
)
def test_no_markdown_makes_html_a_page_would_run(pieces):
    assert_safe(tiptap_to_html(markdown_to_tiptap("".join(pieces))))
