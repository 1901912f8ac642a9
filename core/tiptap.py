"""Markdown to Tiptap (ProseMirror) JSON, and Tiptap JSON back to markdown, HTML and
plain text.

People read and write pages and phases as markdown (``tiptap_to_markdown`` writes the
canonical markdown ``markdown_to_tiptap`` reads back as the same document) and read them
as HTML (``tiptap_to_html``, generated from the nodes with every text escaped and links
limited to safe schemes); search and previews use their plain text (``tiptap_to_text``).

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

import html
import json
import re
import string
import unicodedata
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


# --- Tiptap to markdown -------------------------------------------------------------


def tiptap_to_markdown(doc: Node | str | None) -> str:
    """A Tiptap document as markdown a person edits, which ``markdown_to_tiptap`` reads
    back as the same document.

    Writes one canonical form: blocks separated by a blank line, ATX headings, ``-``
    bullets (``*`` for a list right after another) and ``1.`` numbers (``1)`` likewise),
    lists tight unless an item holds more than a paragraph and a sublist, fenced code
    blocks with their language, ``---`` rules, ``\\`` hard breaks, ``**bold**``,
    ``*italic*``, ``~~strike~~``, code spans, ``[text](href)`` links (``<href>`` when the
    text is the address). Text is escaped where markdown would read it as syntax, and
    whitespace markdown would drop (at a line's start, a paragraph's end) is written as
    a character reference (``&#32;``).

    What markdown cannot say is written as near as it can: an empty paragraph between
    blocks is dropped, a hard break in a heading or at a paragraph's end becomes a space
    or is dropped, whitespace at a mark's edge moves outside the mark, a newline in a
    code span becomes a space. Unknown nodes keep their text. Accepts the document as a
    dict or as its stored JSON text; None or blank text gives "".
    """
    if doc is None:
        return ""
    if isinstance(doc, str):
        doc = json.loads(doc) if doc.strip() else {}
    if not isinstance(doc, dict):
        return ""
    return _md_blocks(_children(doc), tight=False)


def _children(node: Any) -> list[Node]:
    content = node.get("content") if isinstance(node, dict) else None
    return (
        [child for child in content if isinstance(child, dict)] if isinstance(content, list) else []
    )


_INLINE_TYPES = {"text", "hardBreak"}


def _md_blocks(nodes: list[Node], *, tight: bool) -> str:
    parts: list[str] = []
    previous: tuple[str, str] | None = None  # the last list written: (type, marker)
    index = 0
    while index < len(nodes):
        node = nodes[index]
        if node.get("type") in _INLINE_TYPES:
            # Inline nodes where a block belongs (not Tiptap's shape): one paragraph.
            run = []
            while index < len(nodes) and nodes[index].get("type") in _INLINE_TYPES:
                run.append(nodes[index])
                index += 1
            node = {"type": "paragraph", "content": run}
        else:
            index += 1
        kind = node.get("type")
        if kind in ("bulletList", "orderedList"):
            # Two lists in a row are one list to markdown unless their markers differ.
            plain = "-" if kind == "bulletList" else "."
            other = "*" if kind == "bulletList" else ")"
            marker = other if previous == (kind, plain) else plain
            parts.append(_md_list(node, marker))
            previous = (kind, marker)
            continue
        written = _md_block(node)
        if written is not None:
            parts.append(written)
            previous = None
    return ("\n" if tight else "\n\n").join(parts)


def _md_block(node: Node) -> str | None:
    kind = node.get("type")
    content = _children(node)
    if kind == "paragraph":
        return _md_inline(content) or None
    if kind == "heading":
        level = _heading_level(node)
        text = _md_inline(content, in_heading=True)
        return "#" * level + (" " + text if text else "")
    if kind == "codeBlock":
        return _md_code_block(node)
    if kind == "blockquote":
        inner = _md_blocks(content, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind == "horizontalRule":
        return "---"
    # An unknown node: its inline content as a paragraph, its blocks as blocks.
    if any(child.get("type") in _INLINE_TYPES for child in content):
        return _md_inline(content) or None
    if isinstance(node.get("text"), str):
        return _md_inline([{"type": "text", "text": node["text"]}]) or None
    return _md_blocks(content, tight=False) or None


def _heading_level(node: Node) -> int:
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    level = attrs.get("level") if attrs else None
    return level if isinstance(level, int) and 1 <= level <= 6 else 1


def _md_code_block(node: Node) -> str:
    text = "".join(
        child.get("text", "") for child in _children(node) if isinstance(child.get("text"), str)
    )
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    language = attrs.get("language") if attrs else None
    language = language.split()[0] if isinstance(language, str) and language.split() else ""
    fence_char = "~" if "`" in language else "`"
    longest = max((len(run) for run in re.findall(f"{re.escape(fence_char)}+", text)), default=0)
    fence = fence_char * max(3, longest + 1)
    info = re.sub(r"([\\&])", r"\\\1", language)
    body = f"{text}\n" if text else ""
    return f"{fence}{info}\n{body}{fence}"


def _md_list(node: Node, marker: str) -> str:
    ordered = node.get("type") == "orderedList"
    start = _list_start(node)
    items = _children(node)
    tight = all(_item_is_tight(item) for item in items)
    written = []
    for index, item in enumerate(items):
        bullet = f"{start + index}{marker}" if ordered else marker
        indent = " " * (len(bullet) + 1)
        lines = _md_item(item, tight=tight).split("\n")
        first = f"{bullet} {lines[0]}" if lines[0] else bullet
        rest = [indent + line if line else "" for line in lines[1:]]
        written.append("\n".join([first, *rest]))
    return ("\n" if tight else "\n\n").join(written)


def _item_is_tight(item: Node) -> bool:
    """Whether an item is a paragraph and lists that may follow it without a blank line."""
    content = _children(item)
    return (
        bool(content)
        and content[0].get("type") == "paragraph"
        and all(_interrupts_a_paragraph(child) for child in content[1:])
    )


def _interrupts_a_paragraph(node: Node) -> bool:
    """A list may start right under a paragraph's line when its first item is not
    empty and, if numbered, it counts from 1 (CommonMark's rule)."""
    kind = node.get("type")
    if kind not in ("bulletList", "orderedList"):
        return False
    if kind == "orderedList" and _list_start(node) != 1:
        return False
    items = _children(node)
    return bool(items) and _md_item(items[0], tight=True).split("\n")[0] != ""


def _list_start(node: Node) -> int:
    attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
    start = attrs.get("start", 1) if attrs else 1
    return start if isinstance(start, int) and 0 <= start < 10**8 else 1


def _md_item(item: Node, *, tight: bool) -> str:
    content = _children(item)
    if (
        len(content) > 1
        and content[0].get("type") == "paragraph"
        and not _children(content[0])
        and content[1].get("type") != "paragraph"
    ):
        # An item opening with another block (a code block, a quote) holds an empty
        # paragraph first (Tiptap's "paragraph block*"): the marker alone on its line.
        return "\n" + _md_blocks(content[1:], tight=False)
    return _md_blocks(content, tight=tight)


# Inline: marks as delimiters, text escaped.

_DELIMITERS = {"bold": "**", "italic": "*", "strike": "~~"}
_LINE_START = re.compile(r"(?P<digits>\d{1,9})(?=[.)])|(?P<punct>[#>+\-=|:])")
_REFERENCE = re.compile(r"#|[A-Za-z0-9]+;")
_AUTOLINK = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>\\&%`]*")


def _mark_key(mark: Mark) -> tuple[str, str]:
    attrs = mark.get("attrs") if isinstance(mark.get("attrs"), dict) else {}
    href = attrs.get("href") if attrs else None
    return (str(mark.get("type")), str(href) if mark.get("type") == "link" else "")


def _marks_of(node: Node) -> list[Mark]:
    """The marks a writer delimits (known ones, code apart), one of each type."""
    marks = _marks_list(node)
    by_type: dict[str, Mark] = {}
    for mark in marks:
        if isinstance(mark, dict) and mark.get("type") in ("link", *_DELIMITERS):
            by_type[mark["type"]] = mark
    return sorted(by_type.values(), key=lambda mark: _MARK_RANK[mark["type"]])


def _marks_list(node: Node) -> list[Any]:
    marks = node.get("marks")
    return marks if isinstance(marks, list) else []


def _is_code(node: Node) -> bool:
    marks = _marks_list(node)
    return any(isinstance(mark, dict) and mark.get("type") == "code" for mark in marks)


_BREAK: Node = {"type": "hardBreak"}


def _md_inline(nodes: list[Node], *, in_heading: bool = False) -> str:
    run: list[Node] = []
    for node in nodes:
        if node.get("type") == "hardBreak":
            run.append({"type": "text", "text": " "} if in_heading else _BREAK)
        elif node.get("type") == "text" and isinstance(node.get("text"), str) and node["text"]:
            run.append(node)
        elif node.get("type") != "text":
            text = tiptap_to_text({"type": "doc", "content": [node]}, block_separator=" ")
            if text:
                run.append({"type": "text", "text": text.replace("\n", " ")})
    # A hard break at a paragraph's end is not one in markdown: trailing ones are dropped.
    while run and run[-1] is _BREAK:
        run.pop()
    # Escaped text holds no newline (a newline in text is written "&#10;"): each line of
    # what is written is one of the paragraph's lines.
    lines = [_line_start_escaped(_entities_at_start(line)) for line in _md_run(run).split("\n")]
    lines[-1] = _entities_at_end(lines[-1])
    if in_heading and lines[0].endswith("#"):
        # A heading's trailing #s would be read as its closing sequence (unless the
        # first of them is escaped already: an odd run of backslashes before it).
        stripped = lines[0].rstrip("#")
        backslashes = len(stripped) - len(stripped.rstrip("\\"))
        if backslashes % 2 == 0:
            lines[0] = stripped + "\\" + lines[0][len(stripped) :]
    return "\n".join(lines)


def _next_text(nodes: list[Node], index: int) -> Node | None:
    return next((node for node in nodes[index + 1 :] if node is not _BREAK), None)


def _md_run(nodes: list[Node]) -> str:
    """Text nodes and hard breaks as markdown: marks as delimiters (kept open across a
    hard break when they go on after it), text escaped."""
    out: list[str] = []
    stack: list[tuple[Mark, str]] = []  # open marks and the delimiter each was opened with
    for index, node in enumerate(nodes):
        following = _next_text(nodes, index)
        following_keys = {_mark_key(mark) for mark in _marks_of(following or {})}
        if node is _BREAK:
            keep = 0
            while keep < len(stack) and _mark_key(stack[keep][0]) in following_keys:
                keep += 1
            out.append(_close(stack[keep:]))
            del stack[keep:]
            out.append("\\\n")
            continue
        marks = _marks_of(node)
        keys = [_mark_key(mark) for mark in marks]
        text: str = node["text"]
        # Close what does not go on (and, to keep nesting, whatever was opened inside it).
        keep = 0
        while keep < len(stack) and _mark_key(stack[keep][0]) in keys:
            keep += 1
        opening = [mark for mark in marks if _mark_key(mark) not in _stack_keys(stack[:keep])]
        closed = ""
        if keep < len(stack):
            closed = _close(stack[keep:])
            out.append(closed)
            del stack[keep:]
        # Whitespace at a mark's edge would stop its delimiter from counting: written as
        # character references when the delimiter then still counts (next to whitespace
        # or punctuation outside), else moved outside the mark.
        lead_refs = trail_refs = ""
        if opening and not _is_code(node):
            lead = len(text) - len(text.lstrip())
            if _flanks_safely("".join(out)[-1:]):
                lead_refs = _references(text[:lead])
            else:
                out.append(_escape_text(text[:lead]))
            text = text[lead:]
        ending = any(_mark_key(mark) not in following_keys for mark in marks)
        trail = ""
        if ending and not _is_code(node):
            stripped = text.rstrip()
            text, trail = stripped, text[len(stripped) :]
            if trail and text and _flanks_safely(_first_outside(following, keys)):
                trail_refs, trail = _references(trail), ""
        if not text:
            out.append(_escape_text(trail))
            continue
        autolink = (
            len(marks) == 1
            and marks[0]["type"] == "link"
            and _mark_key(marks[0]) not in following_keys
            and not _is_code(node)
            and _autolinkable(text, _mark_key(marks[0])[1])
        )
        if autolink:
            out.append(f"<{text}>")
            out.append(_escape_text(trail))
            continue
        # Marks that go on longest open first, so they close last.
        opening.sort(key=lambda mark: -_run_length(nodes, index, _mark_key(mark)))
        for mark in opening:
            delimiter = "[" if mark["type"] == "link" else _DELIMITERS[mark["type"]]
            if delimiter == "*" and closed.endswith("*") and out[-1] in ("", closed):
                delimiter = "_"  # "*" would merge with the closing run just before it
            out.append(delimiter)
            stack.append((mark, delimiter))
        written = _code_span(text) if _is_code(node) else _escape_text(text)
        out.append(lead_refs + written + trail_refs)
        if trail:
            out.append(_close(stack))
            stack.clear()
            out.append(_escape_text(trail))
    out.append(_close(stack))
    return "".join(out)


def _references(whitespace: str) -> str:
    return "".join(f"&#{ord(char)};" for char in whitespace)


def _flanks_safely(char: str) -> bool:
    """Whether a delimiter next to ``char`` (outside its mark) still counts: nothing,
    whitespace or punctuation there (CommonMark's flanking rules)."""
    return not char or char.isspace() or _is_punctuation(char)


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char)[0] in "PS"


def _first_outside(following: Node | None, keys: list[tuple[str, str]]) -> str:
    """The first character written after the marks closing here: the next node's first
    text when it opens no mark of its own and is not code, else a delimiter ("")."""
    if following is None or following is _BREAK or _is_code(following):
        return ""
    if any(_mark_key(mark) not in keys for mark in _marks_of(following)):
        return ""
    return str(following.get("text", ""))[:1]


def _stack_keys(stack: list[tuple[Mark, str]]) -> set[tuple[str, str]]:
    return {_mark_key(mark) for mark, _ in stack}


def _run_length(nodes: list[Node], start: int, key: tuple[str, str]) -> int:
    length = 0
    for node in nodes[start:]:
        if node is _BREAK:
            continue
        if key not in {_mark_key(mark) for mark in _marks_of(node)}:
            break
        length += 1
    return length


def _close(stack: list[tuple[Mark, str]]) -> str:
    closing = []
    for mark, delimiter in reversed(stack):
        if mark["type"] == "link":
            closing.append(f"]({_destination(_mark_key(mark)[1])})")
        else:
            closing.append(delimiter)
    return "".join(closing)


def _destination(href: str) -> str:
    if not href or re.search(r"[\s<>]", href) or href.count("(") != href.count(")"):
        return "<" + re.sub(r"([\\<>&])", r"\\\1", href).replace("\n", " ") + ">"
    return re.sub(r"([\\()&])", r"\\\1", href)


def _autolinkable(text: str, href: str) -> bool:
    return text == href and bool(_AUTOLINK.fullmatch(href)) and _parser.validateLink(href)


def _code_span(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = text.startswith("`") or text.endswith("`")
    padded = padded or (text[0] == " " and text[-1] == " " and text.strip(" ") != "")
    return f"{fence} {text} {fence}" if padded else f"{fence}{text}{fence}"


def _escape_text(text: str) -> str:
    out = []
    for index, char in enumerate(text):
        before = text[index - 1] if index else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        if char in "\\`*[]":
            out.append("\\" + char)
        elif char == "_":
            out.append("_" if before.isalnum() and after.isalnum() else "\\_")
        elif char == "~":
            out.append("\\~" if "" in (before, after) or "~" in (before, after) else "~")
        elif char == "<":
            out.append("<" if after in (" ", "\t") else "\\<")
        elif char == "&":
            # Only what reads as a character reference ("&amp;", "&#38;") needs it.
            out.append("\\&" if _REFERENCE.match(text, index + 1) else "&")
        elif char == "!":
            out.append("\\!" if not after else "!")
        elif char == "\n":
            out.append("&#10;")
        elif char == "\r":
            out.append("&#13;")
        else:
            out.append(char)
    return "".join(out)


def _entities_at_start(line: str) -> str:
    lead = len(line) - len(line.lstrip(" \t"))
    return "".join(f"&#{ord(char)};" for char in line[:lead]) + line[lead:]


def _entities_at_end(line: str) -> str:
    kept = line.rstrip(" \t")
    return kept + "".join(f"&#{ord(char)};" for char in line[len(kept) :])


def _line_start_escaped(line: str) -> str:
    """A line's first character escaped when markdown would read it as a block's start
    (a heading, quote, list item, rule, setext underline or table row)."""
    found = _LINE_START.match(line)
    if found is None:
        return line
    if found.group("digits"):
        end = found.end()
        return line[:end] + "\\" + line[end:]
    return "\\" + line


# --- Tiptap to HTML -----------------------------------------------------------------

#: The link schemes a rendered link may have (with relative addresses): never
#: ``javascript:``, ``data:``, ``vbscript:`` or any other a browser would run or load.
SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto"})

_HTML_BLOCKS = {"paragraph": "p", "blockquote": "blockquote", "listItem": "li", "bulletList": "ul"}
_HTML_MARKS = {"bold": "strong", "italic": "em", "strike": "s", "code": "code"}
_LANGUAGE = re.compile(r"[\w+#.\-]{1,40}")
# What a browser ignores in an address (controls, whitespace) before it reads the scheme.
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]+")


def tiptap_to_html(doc: Node | str | None) -> str:
    """A Tiptap document as HTML for a page, safe to insert as it is.

    The HTML is generated from the nodes, never passed through: every text and
    attribute is escaped, only the schema's elements are written (unknown nodes keep
    their text), and a link becomes an ``<a>`` only when its address is relative or
    ``http``, ``https`` or ``mailto`` (``safe_link``); otherwise its text stays, unlinked.
    Accepts the document as a dict or as its stored JSON text; None or blank text gives "".
    """
    if doc is None:
        return ""
    if isinstance(doc, str):
        doc = json.loads(doc) if doc.strip() else {}
    if not isinstance(doc, dict):
        return ""
    return "".join(_html_node(child) for child in _children(doc))


def safe_link(href: Any) -> str | None:
    """``href`` when a page may link to it (relative, or a safe scheme), else None."""
    if not isinstance(href, str):
        return None
    seen = _URL_IGNORED.sub("", href)
    scheme = re.match(r"([^/?#]*):", seen)
    if scheme is not None and scheme.group(1).lower() not in SAFE_LINK_SCHEMES:
        return None
    return href.strip()


def _html_node(node: Node) -> str:
    kind = node.get("type")
    inner = "".join(_html_node(child) for child in _children(node))
    if kind == "text":
        return _html_text(node)
    if kind == "hardBreak":
        return "<br>"
    if kind == "horizontalRule":
        return "<hr>"
    if kind == "heading":
        level = _heading_level(node)
        return f"<h{level}>{inner}</h{level}>"
    if kind == "orderedList":
        start = _list_start(node)
        return f'<ol start="{start}">{inner}</ol>' if start != 1 else f"<ol>{inner}</ol>"
    if kind == "codeBlock":
        attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
        language = attrs.get("language") if attrs else None
        css = (
            f' class="language-{language}"'
            if isinstance(language, str) and _LANGUAGE.fullmatch(language)
            else ""
        )
        code = "".join(
            html.escape(str(child.get("text", "")), quote=True) for child in _children(node)
        )
        return f"<pre><code{css}>{code}</code></pre>"
    tag = _HTML_BLOCKS.get(str(kind))
    if tag is not None:
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(node.get("text"), str):
        return html.escape(node["text"], quote=True)
    return inner


def _html_text(node: Node) -> str:
    text = node.get("text")
    written = html.escape(text if isinstance(text, str) else "", quote=True)
    by_type = {mark.get("type"): mark for mark in _marks_list(node) if isinstance(mark, dict)}
    for kind in ("strike", "italic", "code", "bold"):  # innermost first
        if kind in by_type:
            tag = _HTML_MARKS[kind]
            written = f"<{tag}>{written}</{tag}>"
    link = by_type.get("link")
    if link is not None:
        attrs = link.get("attrs")
        href = safe_link(attrs.get("href") if isinstance(attrs, dict) else None)
        if href is not None:
            written = (
                f'<a href="{html.escape(href, quote=True)}" rel="nofollow noopener noreferrer">'
                f"{written}</a>"
            )
    return written
