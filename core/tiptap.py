"""Markdown to Tiptap (ProseMirror) JSON, and Tiptap JSON back to plain text.

Agents write proposals in markdown; pages and phases store Tiptap documents. The
conversion parses with markdown-it-py (CommonMark plus GFM strikethrough and tables) and
walks its syntax tree, emitting only nodes and marks of Tiptap's StarterKit schema plus
the Link extension (the editor's schema: an unknown node type fails to load), in the
shape ``editor.getJSON()`` produces:

- nodes: doc, paragraph, text, heading, bulletList, orderedList, listItem, codeBlock,
  blockquote, horizontalRule, hardBreak; marks: bold, italic, strike, code, link;
- markdown the schema has no node for is kept readable, never dropped: an image becomes
  its alt text (the src when it has none) linked to the src, a table becomes a code
  block (no language) holding the table's markdown lines as written;
- nodes without attributes carry no ``attrs`` key, empty nodes no ``content`` key;
- text nodes are never empty (ProseMirror refuses them) and adjacent text nodes with the
  same marks are merged, as ProseMirror's ``Fragment`` would;
- marks are listed in schema order (link, bold, code, italic, strike);
- content expressions hold: ``doc`` and ``blockquote`` have at least one block, a
  ``listItem`` starts with a paragraph, a ``codeBlock`` holds only unmarked text, a
  ``heading`` only inline content.

Raw HTML is never passed through as HTML: it is kept as plain text.
"""

import json
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.table import table as _parse_table
from markdown_it.tree import SyntaxTreeNode

Node = dict[str, Any]
Mark = dict[str, Any]


def _table_keeping_its_lines(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """markdown-it's GFM table rule, also recording the table's source lines in the
    ``table_open`` token's ``meta["lines"]``.

    Each line is taken as the table rule reads it, after any container prefix (a
    blockquote's ``>``, a list item's indent) and leading spaces, so a table inside a
    quote or a list keeps its rows and not its container's markers.
    """
    first = len(state.tokens)
    if not _parse_table(state, start, end, silent):
        return False
    if not silent:
        opening = next(t for t in state.tokens[first:] if t.type == "table_open")
        assert opening.map is not None  # block tokens always carry their source lines
        first_line, past_last_line = opening.map
        opening.meta["lines"] = [
            state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]]
            for line in range(first_line, past_last_line)
        ]
    return True


# CommonMark has no strikethrough or tables; GitHub-flavoured markdown, which agents
# write, has both. Tiptap's StarterKit has a strike mark but no table node, so tables
# are kept as their source (see _table).
_parser = MarkdownIt("commonmark").enable(["strikethrough", "table"])
_parser.block.ruler.at("table", _table_keeping_its_lines, {"alt": ["paragraph", "reference"]})

# ProseMirror sorts a text node's marks by their rank in the schema. Tiptap ranks Link
# first (priority 1000), then StarterKit's marks in the order it registers them.
_MARK_RANK = {"link": 0, "bold": 1, "code": 2, "italic": 3, "strike": 4}

_SIMPLE_MARKS = {"strong": "bold", "em": "italic", "s": "strike"}

_EMPTY_PARAGRAPH: Node = {"type": "paragraph"}


def markdown_to_tiptap(markdown: str) -> Node:
    """Convert markdown to a Tiptap document (a ``doc`` node as a dict).

    Always returns a document ProseMirror accepts: empty or blank input gives a doc with
    one empty paragraph.
    """
    tree = SyntaxTreeNode(_parser.parse(markdown or ""))
    return _node("doc", content=_blocks(tree.children) or [dict(_EMPTY_PARAGRAPH)])


def markdown_to_tiptap_json(markdown: str) -> str:
    """``markdown_to_tiptap`` serialized as JSON text, as pages and phases store it."""
    return json.dumps(markdown_to_tiptap(markdown), ensure_ascii=False)


def tiptap_to_text(doc: Node | str | None, *, block_separator: str = "\n\n") -> str:
    """The plain text of a Tiptap document, for search and previews.

    Each non-blank textblock (paragraph, heading, code block) gives one chunk, chunks
    are joined by ``block_separator``; a hard break is a newline.
    Accepts the document as a dict or as its stored JSON text; None gives "".
    """
    if doc is None:
        return ""
    if isinstance(doc, str):
        doc = json.loads(doc) if doc.strip() else {}
    chunks: list[str] = []
    _collect_text(doc, chunks)
    return block_separator.join(chunks)


# --- blocks -------------------------------------------------------------------------


def _node(
    type_: str, attrs: dict[str, Any] | None = None, content: list[Node] | None = None
) -> Node:
    node: Node = {"type": type_}
    if attrs is not None:
        node["attrs"] = attrs
    if content:
        node["content"] = content
    return node


def _blocks(children: list[SyntaxTreeNode]) -> list[Node]:
    blocks: list[Node] = []
    for child in children:
        blocks.extend(_block(child))
    return blocks


def _block(node: SyntaxTreeNode) -> list[Node]:
    kind = node.type
    if kind == "paragraph":
        return [_node("paragraph", content=_inline(_inline_children(node)))]
    if kind == "heading":
        level = int(node.tag[1])
        return [_node("heading", {"level": level}, _inline(_inline_children(node)))]
    if kind == "bullet_list":
        return [_node("bulletList", content=_list_items(node))]
    if kind == "ordered_list":
        start = int(node.attrs.get("start", 1))
        return [_node("orderedList", {"start": start}, _list_items(node))]
    if kind in ("fence", "code_block"):
        return [_code_block(node)]
    if kind == "blockquote":
        return [_node("blockquote", content=_blocks(node.children) or [dict(_EMPTY_PARAGRAPH)])]
    if kind == "hr":
        return [{"type": "horizontalRule"}]
    if kind == "html_block":
        return [_node("paragraph", content=_plain_lines(node.content))]
    if kind == "table":
        return [_table(node)]
    # Any other block a plugin might add: keep its text rather than lose it.
    text = node.content.strip("\n")
    return [_node("paragraph", content=_plain_lines(text))] if text else []


def _list_items(node: SyntaxTreeNode) -> list[Node]:
    items = []
    for item in node.children:
        content = _blocks(item.children)
        # Tiptap's listItem is "paragraph block*": an empty item or one opening with
        # another block (a code fence, a table) gets a leading empty paragraph.
        if not content or content[0]["type"] != "paragraph":
            content.insert(0, dict(_EMPTY_PARAGRAPH))
        items.append(_node("listItem", content=content))
    return items


def _code_block(node: SyntaxTreeNode) -> Node:
    info = unescapeAll(node.info).strip() if node.type == "fence" else ""
    language = info.split()[0] if info else None
    text = node.content.removesuffix("\n")
    content = [{"type": "text", "text": text}] if text else None
    return _node("codeBlock", {"language": language}, content)


def _table(node: SyntaxTreeNode) -> Node:
    """A table as a code block of its markdown lines: StarterKit has no table node, and
    the source keeps every cell, its alignment and its inline markup readable."""
    text = "\n".join(node.meta["lines"])
    return _node("codeBlock", {"language": None}, [{"type": "text", "text": text}])


def _plain_lines(text: str) -> list[Node]:
    """Text kept verbatim, one line per line, joined by hard breaks."""
    nodes: list[Node] = []
    for index, line in enumerate(text.strip("\n").split("\n")):
        if index:
            nodes.append({"type": "hardBreak"})
        if line:
            nodes.append({"type": "text", "text": line})
    return nodes


# --- inline -------------------------------------------------------------------------


def _inline_children(node: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    return node.children[0].children if node.children else []


def _inline(children: list[SyntaxTreeNode]) -> list[Node]:
    out: list[Node] = []
    _walk_inline(children, [], out)
    return _merge_text(out)


def _walk_inline(children: list[SyntaxTreeNode], marks: list[Mark], out: list[Node]) -> None:
    for child in children:
        kind = child.type
        if kind in ("text", "html_inline"):
            # Raw inline HTML is shown as the characters that were written.
            _emit_text(child.content, marks, out)
        elif kind == "softbreak":
            # A soft line break renders as a space in HTML and so in Tiptap.
            _emit_text(" ", marks, out)
        elif kind == "hardbreak":
            out.append({"type": "hardBreak"})
        elif kind == "code_inline":
            _emit_text(child.content, [*marks, {"type": "code"}], out)
        elif kind in _SIMPLE_MARKS:
            _walk_inline(child.children, [*marks, {"type": _SIMPLE_MARKS[kind]}], out)
        elif kind == "link":
            _walk_inline(child.children, [*marks, _link(child.attrs.get("href"))], out)
        elif kind == "image":
            _emit_image(child, marks, out)
        else:
            _emit_text(child.content, marks, out)


def _link(href: Any) -> Mark:
    return {"type": "link", "attrs": {"href": href, "target": None}}


def _emit_image(image: SyntaxTreeNode, marks: list[Mark], out: list[Node]) -> None:
    """An image as its alt text (its src when the alt is blank), linked to its src.

    StarterKit has no image node. Inside a link (a badge: ``[![ci](ci.svg)](https://ci)``)
    the outer link is kept, since that is where the author meant the click to go.
    """
    src = str(image.attrs.get("src") or "")
    alt = _plain_inline_text(image.children)
    label = alt if alt.strip() else src
    if src and not any(mark["type"] == "link" for mark in marks):
        marks = [*marks, _link(src)]
    _emit_text(label, marks, out)


def _emit_text(text: str, marks: list[Mark], out: list[Node]) -> None:
    if not text:
        return
    node: Node = {"type": "text", "text": text}
    normalized = _normalize_marks(marks)
    if normalized:
        node["marks"] = normalized
    out.append(node)


def _normalize_marks(marks: list[Mark]) -> list[Mark]:
    """Marks as ProseMirror would store them: unique per type, in schema order.

    Tiptap's code mark excludes every other mark (``excludes: "_"``), so code text
    carries the code mark alone, as the editor itself would keep it. An inner mark of a
    type replaces an outer one (a link inside a link keeps the inner href).
    """
    by_type: dict[str, Mark] = {}
    for mark in marks:
        by_type[mark["type"]] = mark
    if "code" in by_type:
        return [{"type": "code"}]
    return sorted(by_type.values(), key=lambda mark: _MARK_RANK[mark["type"]])


def _merge_text(nodes: list[Node]) -> list[Node]:
    merged: list[Node] = []
    for node in nodes:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and node["type"] == "text"
            and previous["type"] == "text"
            and previous.get("marks") == node.get("marks")
        ):
            merged[-1] = {**previous, "text": previous["text"] + node["text"]}
        else:
            merged.append(node)
    return merged


def _plain_inline_text(children: list[SyntaxTreeNode]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        else:
            parts.append(_plain_inline_text(child.children))
    return "".join(parts)


# --- text extraction ----------------------------------------------------------------

_TEXTBLOCKS = {"paragraph", "heading", "codeBlock"}


def _collect_text(node: Node, chunks: list[str]) -> None:
    kind = node.get("type")
    if kind in _TEXTBLOCKS:
        text = "".join(_inline_text(child) for child in node.get("content", []))
        if text.strip():
            chunks.append(text)
    else:
        for child in node.get("content", []):
            _collect_text(child, chunks)


def _inline_text(node: Node) -> str:
    kind = node.get("type")
    if kind == "text":
        return node.get("text", "")
    if kind == "hardBreak":
        return "\n"
    return "".join(_inline_text(child) for child in node.get("content", []))
