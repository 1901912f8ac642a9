"""Markdown to Tiptap JSON: the shape Tiptap's StarterKit (plus Link) schema accepts,
nothing else."""

import json
from collections.abc import Iterator

import pytest

from core.tiptap import markdown_to_tiptap, markdown_to_tiptap_json, tiptap_to_text

# Pure functions: no database is touched.

EMPTY_DOC = {"type": "doc", "content": [{"type": "paragraph"}]}


def text(value: str, *marks: dict) -> dict:
    node = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def paragraph(*content: dict) -> dict:
    node = {"type": "paragraph"}
    if content:
        node["content"] = list(content)
    return node


def item(*content: dict) -> dict:
    return {"type": "listItem", "content": list(content)}


def link(href: str) -> dict:
    return {"type": "link", "attrs": {"href": href, "target": None}}


BOLD = {"type": "bold"}
ITALIC = {"type": "italic"}
CODE = {"type": "code"}
STRIKE = {"type": "strike"}


def walk(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("content", []):
        yield from walk(child)


def assert_no_empty_text(doc: dict) -> None:
    for node in walk(doc):
        if node["type"] == "text":
            assert node["text"], f"empty text node in {doc}"
        if "content" in node:
            assert node["content"], f"empty content list on {node['type']}"


REPRESENTATIVE = """\
# Plan

Intro with **bold**, *italic*, `code` and a [link](https://example.com/a).

## Steps

- first
  - nested one
  - nested two
- second

### Then

3. third
4. fourth

```python
print("hi")
```

> Quoted:
>
> - a point

---

line one\\
line two
"""

REPRESENTATIVE_DOC = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [text("Plan")]},
        paragraph(
            text("Intro with "),
            text("bold", BOLD),
            text(", "),
            text("italic", ITALIC),
            text(", "),
            text("code", CODE),
            text(" and a "),
            text("link", link("https://example.com/a")),
            text("."),
        ),
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Steps")]},
        {
            "type": "bulletList",
            "content": [
                item(
                    paragraph(text("first")),
                    {
                        "type": "bulletList",
                        "content": [
                            item(paragraph(text("nested one"))),
                            item(paragraph(text("nested two"))),
                        ],
                    },
                ),
                item(paragraph(text("second"))),
            ],
        },
        {"type": "heading", "attrs": {"level": 3}, "content": [text("Then")]},
        {
            "type": "orderedList",
            "attrs": {"start": 3},
            "content": [item(paragraph(text("third"))), item(paragraph(text("fourth")))],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "python"},
            "content": [text('print("hi")')],
        },
        {
            "type": "blockquote",
            "content": [
                paragraph(text("Quoted:")),
                {"type": "bulletList", "content": [item(paragraph(text("a point")))]},
            ],
        },
        {"type": "horizontalRule"},
        paragraph(text("line one"), {"type": "hardBreak"}, text("line two")),
    ],
}


def test_representative_document_converts_to_the_whole_expected_tiptap_json():
    assert markdown_to_tiptap(REPRESENTATIVE) == REPRESENTATIVE_DOC


def test_json_variant_serializes_the_same_document_keeping_non_ascii_characters():
    stored = markdown_to_tiptap_json("# Café — ünïcode\n")

    assert "Café — ünïcode" in stored
    assert json.loads(stored) == {
        "type": "doc",
        "content": [
            {"type": "heading", "attrs": {"level": 1}, "content": [text("Café — ünïcode")]}
        ],
    }


@pytest.mark.parametrize("markdown", ["", " ", "\n\n", " \t \n  \n"])
def test_empty_or_blank_input_gives_a_doc_with_one_empty_paragraph(markdown):
    assert markdown_to_tiptap(markdown) == EMPTY_DOC


def test_bold_inside_a_link_carries_both_marks_in_schema_order():
    doc = markdown_to_tiptap("[see **this** now](https://x.test)")

    href = link("https://x.test")
    assert doc["content"] == [
        paragraph(text("see ", href), text("this", href, BOLD), text(" now", href))
    ]


def test_nested_emphasis_and_strike_accumulate_marks_in_schema_order():
    doc = markdown_to_tiptap("***both*** and ~~*gone*~~")

    assert doc["content"] == [
        paragraph(text("both", BOLD, ITALIC), text(" and "), text("gone", ITALIC, STRIKE))
    ]


def test_inline_code_keeps_only_the_code_mark_because_code_excludes_all_marks():
    doc = markdown_to_tiptap("**bold `x`** [`file.py`](https://x.test)")

    assert doc["content"] == [
        paragraph(text("bold ", BOLD), text("x", CODE), text(" "), text("file.py", CODE))
    ]


def test_code_block_without_language_has_null_language():
    doc = markdown_to_tiptap("```\nplain\n```\n\n    indented\n")

    assert doc["content"] == [
        {"type": "codeBlock", "attrs": {"language": None}, "content": [text("plain")]},
        {"type": "codeBlock", "attrs": {"language": None}, "content": [text("indented")]},
    ]


def test_code_block_language_is_the_first_word_of_the_info_string():
    doc = markdown_to_tiptap("```ts title=x.ts\nlet a = 1;\n\nlet b;\n```\n")

    assert doc["content"] == [
        {
            "type": "codeBlock",
            "attrs": {"language": "ts"},
            "content": [text("let a = 1;\n\nlet b;")],
        }
    ]


def test_empty_code_block_has_no_content_rather_than_an_empty_text_node():
    doc = markdown_to_tiptap("```js\n```\n")

    assert doc["content"] == [{"type": "codeBlock", "attrs": {"language": "js"}}]


def test_ordered_list_without_explicit_start_starts_at_one():
    doc = markdown_to_tiptap("1. a\n2. b\n")

    assert doc["content"][0]["attrs"] == {"start": 1}


def test_list_item_always_opens_with_a_paragraph():
    doc = markdown_to_tiptap("- \n- ```\n  code\n  ```\n")

    assert doc["content"] == [
        {
            "type": "bulletList",
            "content": [
                item(paragraph()),
                item(
                    paragraph(),
                    {"type": "codeBlock", "attrs": {"language": None}, "content": [text("code")]},
                ),
            ],
        }
    ]


def test_empty_blockquote_holds_an_empty_paragraph():
    assert markdown_to_tiptap(">\n")["content"] == [
        {"type": "blockquote", "content": [paragraph()]}
    ]


def test_soft_line_break_becomes_a_space_merged_into_the_surrounding_text():
    assert markdown_to_tiptap("one\ntwo\n")["content"] == [paragraph(text("one two"))]


def test_raw_html_is_kept_as_plain_text_never_as_html():
    doc = markdown_to_tiptap('<div class="x">\n<script>alert(1)</script>\n</div>\n\na <b>b</b>\n')

    assert doc["content"] == [
        paragraph(
            text('<div class="x">'),
            {"type": "hardBreak"},
            text("<script>alert(1)</script>"),
            {"type": "hardBreak"},
            text("</div>"),
        ),
        paragraph(text("a <b>b</b>")),
    ]
    assert all(node["type"] != "html" for node in walk(doc))


def test_image_becomes_its_alt_text_linked_to_its_src_inside_the_paragraph():
    doc = markdown_to_tiptap('Before ![a *diagram*](img/d.png "Title") after\n\n![](x.png)\n')

    assert doc["content"] == [
        paragraph(text("Before "), text("a diagram", link("img/d.png")), text(" after")),
        paragraph(text("x.png", link("x.png"))),  # no alt: the src stands in
    ]


def test_image_keeps_the_marks_around_it_in_schema_order():
    doc = markdown_to_tiptap("**see ![plan](p.png)** and *![](q.png)*")

    assert doc["content"] == [
        paragraph(
            text("see ", BOLD),
            text("plan", link("p.png"), BOLD),
            text(" and "),
            text("q.png", link("q.png"), ITALIC),
        )
    ]


def test_image_inside_a_link_keeps_the_outer_link_the_author_made_clickable():
    doc = markdown_to_tiptap("[![build](https://ci.test/badge.svg)](https://ci.test/run)")

    assert doc["content"] == [paragraph(text("build", link("https://ci.test/run")))]


def test_image_without_src_is_its_alt_text_unlinked_and_without_either_is_nothing():
    assert markdown_to_tiptap("![alt]() ![]()")["content"] == [paragraph(text("alt "))]


def test_image_in_a_heading_is_its_alt_text_linked_to_its_src():
    doc = markdown_to_tiptap("# Logo ![cw](logo.png)\n")

    assert doc["content"] == [
        {
            "type": "heading",
            "attrs": {"level": 1},
            "content": [text("Logo "), text("cw", link("logo.png"))],
        }
    ]


def test_unsafe_link_scheme_is_not_turned_into_a_link():
    doc = markdown_to_tiptap("[click](javascript:alert(1))")

    assert doc["content"] == [paragraph(text("[click](javascript:alert(1))"))]


def code_block(value: str, language: str | None = None) -> dict:
    return {"type": "codeBlock", "attrs": {"language": language}, "content": [text(value)]}


def test_table_becomes_a_code_block_of_its_markdown_lines_as_written():
    markdown = "Before\n\n| a | b |\n|---|:-:|\n| **1** | x \\| y  |\n\nafter\n"

    assert markdown_to_tiptap(markdown)["content"] == [
        paragraph(text("Before")),
        code_block("| a | b |\n|---|:-:|\n| **1** | x \\| y  |"),
        paragraph(text("after")),
    ]


def test_table_ends_where_markdown_it_ends_it_not_at_the_next_blank_line():
    # A table interrupts a paragraph, and a heading ends the table.
    markdown = "intro\n| a |\n| - |\n| 1 |\n# Next\n"

    assert markdown_to_tiptap(markdown)["content"] == [
        paragraph(text("intro")),
        code_block("| a |\n| - |\n| 1 |"),
        {"type": "heading", "attrs": {"level": 1}, "content": [text("Next")]},
    ]


def test_table_in_a_quote_or_a_list_keeps_its_rows_without_the_containers_markers():
    markdown = "> | q |\n> |---|\n> | 1 |\n\n- item\n\n    | l |\n    |---|\n    | 2 |\n"

    assert markdown_to_tiptap(markdown)["content"] == [
        {"type": "blockquote", "content": [code_block("| q |\n|---|\n| 1 |")]},
        {
            "type": "bulletList",
            "content": [item(paragraph(text("item")), code_block("| l |\n|---|\n| 2 |"))],
        },
    ]


def test_table_opening_a_list_item_follows_a_leading_empty_paragraph():
    assert markdown_to_tiptap("- | a |\n  |---|\n")["content"] == [
        {"type": "bulletList", "content": [item(paragraph(), code_block("| a |\n|---|"))]}
    ]


@pytest.mark.parametrize(
    "markdown",
    [
        REPRESENTATIVE,
        "",
        "**** __ ** **",
        "``` \n```",
        "- \n  \n- \n",
        "[](https://x.test) ![]()",
        "a  \n\n  \nb\\\n",
        "> \n> > \n",
        "| |\n|-|\n| |\n",
        "# \n## ![]()\n",
        "<!-- -->\n\n<br>",
        "x ![i](i.png)\n",
    ],
)
def test_no_empty_text_nodes_or_empty_content_lists_anywhere(markdown):
    assert_no_empty_text(markdown_to_tiptap(markdown))


# --- the schema: StarterKit (Tiptap v2) plus Link ---------------------------------------------

INLINE = {"text", "hardBreak"}
BLOCK = {
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "codeBlock",
    "blockquote",
    "horizontalRule",
}
#: Every node type and what its content may hold (None: a leaf).
ALLOWED_CONTENT = {
    "doc": BLOCK,
    "paragraph": INLINE,
    "heading": INLINE,
    "blockquote": BLOCK,
    "bulletList": {"listItem"},
    "orderedList": {"listItem"},
    "listItem": BLOCK,
    "codeBlock": {"text"},
    "text": None,
    "hardBreak": None,
    "horizontalRule": None,
}
ALLOWED_MARKS = {"bold", "italic", "strike", "code", "link"}
ALLOWED_ATTRS = {
    "heading": {"level"},
    "orderedList": {"start"},
    "codeBlock": {"language"},
}


def assert_fits_starter_kit_and_link(doc: dict) -> None:
    """Every node and mark is one StarterKit + Link knows, and content rules hold."""
    assert doc["type"] == "doc"
    for node in walk(doc):
        kind = node["type"]
        assert kind in ALLOWED_CONTENT, f"unknown node type {kind}"
        assert set(node.get("attrs", {})) <= ALLOWED_ATTRS.get(kind, set()), node
        content = node.get("content", [])
        allowed = ALLOWED_CONTENT[kind]
        if allowed is None:
            assert "content" not in node, node
        else:
            assert {child["type"] for child in content} <= allowed, node
        if kind in ("doc", "blockquote", "bulletList", "orderedList", "listItem"):
            assert content, f"{kind} must not be empty"
        if kind == "listItem":
            assert content[0]["type"] == "paragraph", node
        if kind == "codeBlock":
            assert all("marks" not in child for child in content), node
        if kind == "heading":
            assert 1 <= node["attrs"]["level"] <= 6
        if kind == "text":
            assert node["text"]
            mark_types = [mark["type"] for mark in node.get("marks", [])]
            assert set(mark_types) <= ALLOWED_MARKS, node
            assert len(mark_types) == len(set(mark_types)), node
            if "code" in mark_types:
                assert mark_types == ["code"], node  # code excludes every other mark
            for mark in node.get("marks", []):
                if mark["type"] == "link":
                    assert set(mark["attrs"]) <= {"href", "target", "rel", "class"}
                    assert mark["attrs"]["href"]
        elif "marks" in node:
            raise AssertionError(f"marks on a {kind} node")


KITCHEN_SINK = """\
# Title ![logo](logo.png) with **bold**

Text with ![an *image*](a.png "t"), ![](b.png), ![alt]() and [![badge](c.svg)](https://x.test).

| a | **b** | `c` |
|:--|:-:|--:|
| ![i](i.png) | [l](https://l.test) | ~~s~~ |

> | quoted | table |
> |---|---|
> | 1 | 2 |
>
> ![quoted image](q.png)

- ![first](f.png)
- | table | in item |
  |---|---|
  | x | y |
- > ![deep](d.png)
  > ```js
  > code
  > ```

1. `![not an image](x.png)`
2. **![bold image](bi.png)** ~~![](s.png)~~

<img src="raw.png"> and <table><tr><td>raw</td></tr></table>

<table>
<tr><td>html block</td></tr>
</table>

***
"""


@pytest.mark.parametrize(
    "markdown",
    [
        REPRESENTATIVE,
        KITCHEN_SINK,
        "",
        "![](x.png)",
        "![]()",
        "| |\n|-|\n| |\n",
        "| a |\n|---|\n",
        "- | a |\n  |---|\n",
        "> | a |\n> |---|\n",
        "# ![h](h.png)\n## | not | a table |\n",
        "[![a](b.png)](https://c.test) `x` ***y*** ~~**z**~~",
        "- \n- ```\n  code\n  ```\n",
        ">\n",
        "```\n```\n\n    \n",
        "line\\\nbreak  \nhard",
    ],
)
def test_every_node_and_mark_is_one_starter_kit_with_link_knows(markdown):
    assert_fits_starter_kit_and_link(markdown_to_tiptap(markdown))


def test_kitchen_sink_converts_images_and_tables_without_losing_text():
    text_of_doc = tiptap_to_text(markdown_to_tiptap(KITCHEN_SINK), block_separator="\n")

    for expected in (
        "logo",
        "an image",
        "b.png",
        "alt",
        "badge",
        "| a | **b** | `c` |\n|:--|:-:|--:|\n| ![i](i.png) | [l](https://l.test) | ~~s~~ |",
        "| quoted | table |",
        "quoted image",
        "| table | in item |\n|---|---|\n| x | y |",
        "deep",
        "![not an image](x.png)",
        "bold image",
        "s.png",
    ):
        assert expected in text_of_doc


def test_text_extraction_joins_textblocks_with_blank_lines_and_hard_breaks_as_newlines():
    assert tiptap_to_text(REPRESENTATIVE_DOC) == (
        "Plan\n\n"
        "Intro with bold, italic, code and a link.\n\n"
        "Steps\n\nfirst\n\nnested one\n\nnested two\n\nsecond\n\n"
        "Then\n\nthird\n\nfourth\n\n"
        'print("hi")\n\n'
        "Quoted:\n\na point\n\n"
        "line one\nline two"
    )


def test_text_extraction_accepts_stored_json_skips_blank_blocks_and_honours_separator():
    stored = markdown_to_tiptap_json("- \n- a\n\n![alt text](x.png)\n\n# b\n")

    assert tiptap_to_text(stored, block_separator=" | ") == "a | alt text | b"
    assert tiptap_to_text(EMPTY_DOC) == ""
    assert tiptap_to_text(None) == ""
    assert tiptap_to_text("") == ""
