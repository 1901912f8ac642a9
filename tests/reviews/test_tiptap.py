"""Markdown to Tiptap JSON: the shape Tiptap's StarterKit schema accepts, nothing else."""

import json
from collections.abc import Iterator

import pytest

from reviews.tiptap import markdown_to_tiptap, markdown_to_tiptap_json, tiptap_to_text

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


def test_image_becomes_a_block_image_node_splitting_its_paragraph():
    doc = markdown_to_tiptap('Before ![a *diagram*](img/d.png "Title") after\n\n![](x.png)\n')

    assert doc["content"] == [
        paragraph(text("Before")),
        {"type": "image", "attrs": {"src": "img/d.png", "alt": "a diagram", "title": "Title"}},
        paragraph(text("after")),
        {"type": "image", "attrs": {"src": "x.png", "alt": None, "title": None}},
    ]


def test_image_in_a_heading_is_replaced_by_its_alt_text():
    doc = markdown_to_tiptap("# Logo ![cw](logo.png)\n")

    assert doc["content"] == [
        {"type": "heading", "attrs": {"level": 1}, "content": [text("Logo cw")]}
    ]


def test_unsafe_link_scheme_is_not_turned_into_a_link():
    doc = markdown_to_tiptap("[click](javascript:alert(1))")

    assert doc["content"] == [paragraph(text("[click](javascript:alert(1))"))]


def test_table_maps_to_tiptap_table_nodes_with_header_row_and_paragraph_cells():
    doc = markdown_to_tiptap("| a | b |\n|---|:-:|\n| **1** | |\n")

    cell_attrs = {"colspan": 1, "rowspan": 1, "colwidth": None}

    def cell(kind: str, *content: dict) -> dict:
        return {"type": kind, "attrs": cell_attrs, "content": [paragraph(*content)]}

    assert doc["content"] == [
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [cell("tableHeader", text("a")), cell("tableHeader", text("b"))],
                },
                {
                    "type": "tableRow",
                    "content": [cell("tableCell", text("1", BOLD)), cell("tableCell")],
                },
            ],
        }
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
