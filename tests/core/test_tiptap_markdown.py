"""Tiptap JSON back to markdown (``tiptap_to_markdown``): what a person edits reads back
as the same document, and markdown in the canonical form it writes reads back as itself."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tiptap import markdown_to_tiptap, tiptap_to_markdown

# Pure functions: no database is touched.

#: Markdown in the form tiptap_to_markdown writes: each reads back as itself.
CANONICAL = [
    "",
    "Just a sentence.",
    "# Plan\n\n## Scope\n\n###### Deep",
    "#",
    "Some **bold**, *italic*, ~~struck~~ and `code` text.",
    "**bold *and italic* inside**",
    "***both***",
    "**a *b***_c_",
    "*a***b**",
    "a*b*c and snake_case_name",
    "[a link](https://example.com/path?q=1) and <https://example.com>",
    "[**bold** link](/relative/page)",
    "[parens](<https://example.com/a(b>)",
    "[empty](<>)",
    "line one\\\nline two\\\n\\\nafter a blank line",
    "- one\n- two\n  - nested\n- three",
    "1. first\n2. second\n\n- other list",
    "- a\n\n* b\n\n- c",
    "1. a\n\n1) b",
    "7. seven\n8. eight",
    "- one\n\n- two\n\n  second paragraph",
    "-\n  ```\n  code first\n  ```",
    "- \\[ \\] not a task list, just brackets",
    "```python\ndef f():\n    return 1\n```",
    "```\nno language\n```",
    "````\n```\nfences inside\n```\n````",
    "```\n```",
    "> quoted\n>\n> - list in quote\n>\n> > nested",
    ">",
    "---",
    "above\n\n---\n\nbelow",
    "``a ` b``",
    "``` `` ```",
    "\\# not a heading, - not a list, 1. not a number",
    "1\\. not a number",
    "\\> not a quote",
    "\\* \\_ \\` \\[x\\] \\\\ escaped",
    "\\<div> and \\<script>alert(1)\\</script>",
    "5 < 6 & 7 > 3, AT&T, \\&amp;",
    "Wow\\!",
    "&#32;&#32;indented text",
    "ends with space&#32;",
    "\\=== not a setext underline",
    "a\\\n\\---",
    "# closing \\##",
    "x ~ y and \\~\\~not struck\\~\\~",
    "Ünïcödé ✓ 中文",
]


@pytest.mark.parametrize("markdown", CANONICAL)
def test_canonical_markdown_reads_back_as_itself(markdown):
    assert tiptap_to_markdown(markdown_to_tiptap(markdown)) == markdown


#: Markdown that is not canonical: the document survives, the spelling changes.
REWRITTEN = [
    ("Setext\n======", "# Setext"),
    ("* star\n* bullets", "- star\n- bullets"),
    ("    indented code", "```\nindented code\n```"),
    ("a  \nb", "a\\\nb"),
    ("soft\nbreak", "soft break"),
    ("__strong__ _em_", "**strong** *em*"),
    ("![alt](https://example.com/i.png)", "[alt](https://example.com/i.png)"),
    ("| a | b |\n|---|---|\n| 1 | 2 |", "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```"),
    ("<div>html</div>", "\\<div>html\\</div>"),
    ("- ```\n  x\n  ```", "-\n  ```\n  x\n  ```"),
    ("text&amp;", "text&"),
    ("1) after\n2) numbers", "1. after\n2. numbers"),
    ("[spaced](<https://example.com/a b>)", "[spaced](https://example.com/a%20b)"),
]


@pytest.mark.parametrize(("markdown", "canonical"), REWRITTEN)
def test_other_markdown_is_rewritten_canonically_as_the_same_document(markdown, canonical):
    doc = markdown_to_tiptap(markdown)
    assert tiptap_to_markdown(doc) == canonical
    assert markdown_to_tiptap(canonical) == doc


def test_accepts_stored_json_text_and_nothing():
    doc = markdown_to_tiptap("# Title\n\nbody")
    assert tiptap_to_markdown(json.dumps(doc)) == "# Title\n\nbody"
    assert tiptap_to_markdown(None) == ""
    assert tiptap_to_markdown("  ") == ""
    assert tiptap_to_markdown({"type": "doc", "content": [{"type": "paragraph"}]}) == ""


def text(value, *marks):
    node = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def paragraph(*content):
    return {"type": "paragraph", "content": list(content)}


def doc(*content):
    return {"type": "doc", "content": list(content)}


BOLD = {"type": "bold"}


@pytest.mark.parametrize(
    ("document", "markdown"),
    [
        # What markdown cannot say is written as near as it can.
        (doc(paragraph(text("x")), {"type": "paragraph"}, paragraph(text("y"))), "x\n\ny"),
        (doc(paragraph(text(" bold ", BOLD), text("x"))), "**&#32;bold** x"),
        (doc(paragraph(text("a"), text(" bold ", BOLD), text("x"))), "a **bold** x"),
        (doc(paragraph(text("a"), {"type": "hardBreak"})), "a"),
        (
            doc(
                {
                    "type": "heading",
                    "attrs": {"level": 2},
                    "content": [text("a"), {"type": "hardBreak"}, text("b")],
                }
            ),
            "## a b",
        ),
        (doc(paragraph(text("a\nb", {"type": "code"}))), "`a b`"),
        # Unknown nodes keep their text; a stray inline node becomes a paragraph.
        (doc({"type": "mention", "content": [text("@ann")]}), "@ann"),
        (doc({"type": "callout", "content": [paragraph(text("hi"))]}), "hi"),
        (doc(text("bare")), "bare"),
        (doc({"type": "heading", "attrs": {"level": 9}, "content": [text("h")]}), "# h"),
    ],
)
def test_what_markdown_cannot_say_is_written_as_near_as_it_can(document, markdown):
    assert tiptap_to_markdown(document) == markdown


# --- property: any document of the editor's shape reads back as itself ---------------

LINK_HREFS = [
    "https://example.com",
    "https://example.com/a%20b?x=1&y=2",
    "/pages/1",
    "mailto:a@b.c",
]
MARK_SETS = [
    [{"type": "bold"}],
    [{"type": "italic"}],
    [{"type": "strike"}],
    [{"type": "bold"}, {"type": "italic"}],
    [{"type": "bold"}, {"type": "italic"}, {"type": "strike"}],
    [{"type": "code"}],
    *([{"type": "link", "attrs": {"href": href, "target": None}}] for href in LINK_HREFS),
    [{"type": "link", "attrs": {"href": LINK_HREFS[0], "target": None}}, {"type": "bold"}],
]
# Markdown's syntax characters, whitespace, letters and a few beyond ASCII.
CHARACTERS = st.sampled_from(list("ab09 _*`[]\\#<>&!~-+=|:.()\t\"'é中✓"))
PLAIN_TEXT = st.text(CHARACTERS, min_size=1, max_size=12)
# A marked run's delimiters count only next to a letter (markdown's flanking rules).
WORD = st.text(st.sampled_from(list("abcXYZ019é")), min_size=1, max_size=4)
MARKED_TEXT = st.builds(
    lambda first, middle, last: first + middle + last,
    WORD,
    st.text(CHARACTERS, max_size=8),
    WORD,
)
CODE_TEXT = st.text(st.sampled_from(list("ab `*_\\<")), min_size=1, max_size=8).filter(
    lambda value: value.strip(" ")
)


@st.composite
def inline_content(draw, *, breaks=True):
    nodes = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["plain", "marked", "break"] if breaks else ["plain", "marked"])
        )
        if kind == "plain":
            nodes.append(text(draw(PLAIN_TEXT)))
        elif kind == "break":
            nodes.append({"type": "hardBreak"})
        else:
            marks = draw(st.sampled_from(MARK_SETS))
            value = draw(CODE_TEXT if marks == [{"type": "code"}] else MARKED_TEXT)
            # Marked runs are set apart by a space, as people write them.
            nodes.extend([text(" "), {**text(value), "marks": marks}, text(" ")])
    return _normalized(nodes)


def _normalized(nodes):
    merged = []
    for node in nodes:
        previous = merged[-1] if merged else None
        if (
            previous
            and node["type"] == previous["type"] == "text"
            and (previous.get("marks") == node.get("marks"))
        ):
            merged[-1] = {**previous, "text": previous["text"] + node["text"]}
        else:
            merged.append(node)
    while merged and merged[-1]["type"] == "hardBreak":
        merged.pop()
    return merged


@st.composite
def blocks(draw, depth=0):
    kinds = ["paragraph", "heading", "code", "rule"]
    if depth < 2:
        kinds += ["quote", "bullets", "numbers"]
    kind = draw(st.sampled_from(kinds))
    if kind == "paragraph":
        content = draw(inline_content())
        return {"type": "paragraph", "content": content} if content else {"type": "horizontalRule"}
    if kind == "heading":
        node = {"type": "heading", "attrs": {"level": draw(st.integers(1, 6))}}
        content = draw(inline_content(breaks=False))
        return {**node, "content": content} if content else node
    if kind == "code":
        code = draw(st.text(st.sampled_from(list("ab `~\n#-*\\")), max_size=20))
        node = {
            "type": "codeBlock",
            "attrs": {"language": draw(st.sampled_from([None, "py", "c++"]))},
        }
        code = code.removesuffix("\n")
        return {**node, "content": [text(code)]} if code else node
    if kind == "rule":
        return {"type": "horizontalRule"}
    if kind == "quote":
        return {
            "type": "blockquote",
            "content": draw(st.lists(blocks(depth + 1), min_size=1, max_size=3)),
        }
    items = []
    for _ in range(draw(st.integers(1, 3))):
        rest = draw(st.lists(blocks(depth + 1), max_size=2))
        if rest and rest[0]["type"] != "paragraph" and draw(st.booleans()):
            first = {"type": "paragraph"}
        else:
            content = draw(inline_content())
            first = {"type": "paragraph", "content": content} if content else {"type": "paragraph"}
            rest = [block for block in rest if block["type"] != "paragraph"] or rest[:0]
        items.append({"type": "listItem", "content": [first, *rest]})
    if kind == "bullets":
        return {"type": "bulletList", "content": items}
    return {"type": "orderedList", "attrs": {"start": draw(st.integers(0, 12))}, "content": items}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(blocks(), min_size=1, max_size=5))
def test_any_document_reads_back_as_itself(content):
    document = {"type": "doc", "content": content}
    assert markdown_to_tiptap(tiptap_to_markdown(document)) == document


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("ab1 \n*_`[]()#>-+.!<&~\\|=:")), max_size=40))
def test_the_document_of_any_markdown_survives_being_written_again(markdown):
    document = markdown_to_tiptap(markdown)
    assert markdown_to_tiptap(tiptap_to_markdown(document)) == document
