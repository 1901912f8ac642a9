"""Dependency pictures: a plan's phases or one phase's tasks as an SVG drawn on the server.

Two pure functions, no database and no admin: ``layout`` places the nodes of a
dependency graph, ``render_svg`` draws them. Edges are given as the repositories give
them, ``(node, depends_on)``, and are drawn from the dependency to its dependent, so
arrows follow the order work happens in.

The layout is the classic layered one: a node's layer is the length of the longest
dependency path that leads to it (from ``graphlib``'s topological order), so every
arrow points down; within a layer nodes are ordered by the barycentre of their
neighbours in the layers around them (a few sweeps down and up), which removes most
crossings; a layer wider than ``per_row`` nodes wraps onto further rows, so a plan of
200 tasks grows downwards (and scrolls) instead of becoming too wide to read.

Boxes are sized to their labels: all of one picture's boxes are as wide as its longest
name needs (between ``NODE_WIDTH`` and ``MAX_NODE_WIDTH``); a name longer than that
wraps onto a second line, and only a name too long for two lines is cut, its full name
in the box's ``<title>`` (a tooltip). Wider boxes mean fewer of them side by side, so a
picture stays within ``MAX_DRAWING_WIDTH``.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from django.utils.html import escape

from core.text import shorten

#: Node box and spacing, in SVG user units (pixels at scale 1). ``NODE_WIDTH`` is the
#: narrowest box; a picture's boxes grow to its longest name, up to ``MAX_NODE_WIDTH``.
NODE_WIDTH = 160
MAX_NODE_WIDTH = 260
NODE_HEIGHT = 34
#: The extra height of a box whose label takes two lines, and the gap between them.
LINE_HEIGHT = 15
#: About how wide a character of a label is at the drawing's font size (12), and the
#: room kept free on each side of a label inside its box.
CHARACTER_WIDTH = 7
LABEL_PADDING = 10
#: How wide a picture may grow before its layers wrap onto more rows.
MAX_DRAWING_WIDTH = 1360
COLUMN_GAP = 22
ROW_GAP = 46
#: Extra space between two layers, beyond a row gap, so wrapped rows read as one layer.
LAYER_GAP = 18
MARGIN = 16
LEGEND_HEIGHT = 30
#: How many nodes sit side by side before a layer wraps onto another row.
PER_ROW = 6
#: Lines of a name shown in a node; what does not fit is cut, the full name is in its
#: ``<title>``.
LABEL_LINES = 2
#: Barycentre sweeps (each one down and one up).
SWEEPS = 4

#: Fill colours by status, for phases and tasks alike (text stays dark on every one).
STATUS_COLOURS: Mapping[str, str] = {
    "pending": "#e5e7eb",
    "approved": "#bfdbfe",
    "in_progress": "#fde68a",
    "pending_review": "#ddd6fe",
    "completed": "#bbf7d0",
    "blocked": "#fecaca",
}
UNKNOWN_COLOUR = "#f5f5f4"


@dataclass(frozen=True)
class GraphNode:
    """One record in the picture: what it is called, its status, where it links to."""

    id: str
    name: str
    status: str
    href: str | None = None


@dataclass(frozen=True)
class Layout:
    """Where each node's box goes (its top-left corner), and the drawing's size."""

    positions: dict[str, tuple[int, int]]
    layers: dict[str, int]
    #: The top and bottom of each layer's rows, in layer order.
    bands: list[tuple[int, int]]
    width: int
    height: int
    #: The size of every node's box.
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _acyclic_dependencies(
    nodes: Sequence[str], edges: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """Each node's dependencies among ``nodes``, without self-edges or duplicates; should
    the edges close a cycle (the repositories refuse them), one edge of each cycle is left
    out so a picture can still be drawn."""
    known = set(nodes)
    dependencies: dict[str, list[str]] = {node: [] for node in nodes}
    for node, depends_on in edges:
        if (
            node in known
            and depends_on in known
            and node != depends_on
            and depends_on not in dependencies[node]
        ):
            dependencies[node].append(depends_on)
    while True:
        try:
            TopologicalSorter(dependencies).prepare()
            return dependencies
        except CycleError as error:
            # [a, b, ..., a], each one a dependency of the next: b no longer waits for a.
            cycle = error.args[1]
            dependencies[cycle[1]].remove(cycle[0])


def _layers(nodes: Sequence[str], dependencies: Mapping[str, list[str]]) -> dict[str, int]:
    """Longest-path layering: 0 for a node without dependencies, else one more than the
    deepest of its dependencies."""
    layer: dict[str, int] = {}
    for node in TopologicalSorter(dependencies).static_order():
        layer[node] = 1 + max((layer[d] for d in dependencies[node]), default=-1)
    return layer


def _barycentre_order(
    rows: list[list[str]],
    dependencies: Mapping[str, list[str]],
    dependents: Mapping[str, list[str]],
) -> None:
    """Reorder each layer (in place) by the mean position of its neighbours in the
    layers already placed: downwards by dependencies, then upwards by dependents."""

    def position_map() -> dict[str, float]:
        # Positions are centred so layers of different widths line up by their middle.
        return {node: index - (len(row) - 1) / 2 for row in rows for index, node in enumerate(row)}

    def sweep(order: Iterable[int], neighbours: Mapping[str, list[str]]) -> None:
        for index in order:
            row = rows[index]
            where = position_map()
            keys: dict[str, tuple[float, float]] = {}
            for node in row:
                found = [where[n] for n in neighbours[node]]
                # A node without neighbours there keeps its place.
                keys[node] = (sum(found) / len(found) if found else where[node], where[node])
            row.sort(key=keys.__getitem__)

    for _ in range(SWEEPS):
        sweep(range(1, len(rows)), dependencies)
        sweep(range(len(rows) - 2, -1, -1), dependents)


def layout(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    *,
    per_row: int = PER_ROW,
    min_width: int = 0,
    node_width: int = NODE_WIDTH,
    node_height: int = NODE_HEIGHT,
) -> Layout:
    """Place ``nodes`` (boxes of ``node_width`` by ``node_height``) in layers by
    dependency depth (``edges`` are ``(node, depends_on)``; edges to unknown nodes are
    ignored), ordered to reduce crossings, wrapping a layer wider than ``per_row`` (or
    than ``MAX_DRAWING_WIDTH`` holds), centred in at least ``min_width``. Deterministic:
    the same graph always gets the same picture."""
    dependencies = _acyclic_dependencies(nodes, edges)
    dependents: dict[str, list[str]] = {node: [] for node in nodes}
    for node, depends_on in dependencies.items():
        for target in depends_on:
            dependents[target].append(node)
    layer_of = _layers(nodes, dependencies)
    depth = 1 + max(layer_of.values(), default=-1)
    rows: list[list[str]] = [[] for _ in range(depth)]
    for node in nodes:  # input order is the starting order within a layer
        rows[layer_of[node]].append(node)
    _barycentre_order(rows, dependencies, dependents)

    fitting = (MAX_DRAWING_WIDTH - 2 * MARGIN + COLUMN_GAP) // (node_width + COLUMN_GAP)
    per_row = max(1, min(per_row, fitting))
    columns = max(1, min(per_row, max((len(row) for row in rows), default=1)))
    width = max(2 * MARGIN + columns * node_width + (columns - 1) * COLUMN_GAP, min_width)
    positions: dict[str, tuple[int, int]] = {}
    bands: list[tuple[int, int]] = []
    y = MARGIN + LEGEND_HEIGHT
    for row in rows:
        top = y
        for start in range(0, len(row), per_row):
            chunk = row[start : start + per_row]
            used = len(chunk) * node_width + (len(chunk) - 1) * COLUMN_GAP
            x = (width - used) // 2
            for node in chunk:
                positions[node] = (x, y)
                x += node_width + COLUMN_GAP
            y += node_height + ROW_GAP
        bands.append((top, y - ROW_GAP + node_height // 2))
        y += LAYER_GAP
    height = max(y - ROW_GAP - LAYER_GAP + MARGIN, 2 * MARGIN + LEGEND_HEIGHT + 24)
    return Layout(
        positions=positions,
        layers=layer_of,
        bands=bands,
        width=width,
        height=height,
        node_width=node_width,
        node_height=node_height,
    )


def _characters_in(width: int) -> int:
    """How many characters of a label fit on one line of a box ``width`` wide."""
    return (width - 2 * LABEL_PADDING) // CHARACTER_WIDTH


def node_width_for(names: Iterable[str]) -> int:
    """The width of a picture's boxes: what its longest name needs on one line, at
    least ``NODE_WIDTH`` and at most ``MAX_NODE_WIDTH`` (longer names wrap)."""
    longest = max((len(" ".join(name.split())) for name in names), default=0)
    needed = longest * CHARACTER_WIDTH + 2 * LABEL_PADDING
    return max(NODE_WIDTH, min(MAX_NODE_WIDTH, needed))


def label_lines(text: str, per_line: int, lines: int = LABEL_LINES) -> list[str]:
    """``text`` wrapped at spaces onto at most ``lines`` lines of ``per_line``
    characters (a word longer than a line is split); cut, ending in an ellipsis
    (``core.text.shorten``), only when it does not fit in them."""
    words = " ".join(text.split()).split(" ")
    wrapped: list[str] = []
    current = ""
    for word in words:
        while len(word) > per_line:  # a word longer than a line fills lines of its own
            if current:
                wrapped.append(current)
                current = ""
            wrapped.append(word[:per_line])
            word = word[per_line:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= per_line:
            current = f"{current} {word}"
        else:
            wrapped.append(current)
            current = word
    if current or not wrapped:
        wrapped.append(current)
    if len(wrapped) <= lines:
        return wrapped
    # What is left is longer than a line (each line broke where the next word did not
    # fit): the last line shows as much of it as fits.
    rest = " ".join(wrapped[lines - 1 :])
    return [*wrapped[: lines - 1], shorten(rest, per_line)]


def truncate(text: str, width: int = MAX_NODE_WIDTH) -> str:
    """``text`` as a box ``width`` wide shows it, its lines joined by a space."""
    return " ".join(label_lines(text, _characters_in(width)))


def _legend_step(label: str) -> int:
    """The room one legend entry takes: its swatch, its words (about 7 units a
    character at this font size) and a gap."""
    return 16 + 7 * len(label) + 18


def _edge_path(source: tuple[int, int], target: tuple[int, int], size: tuple[int, int]) -> str:
    """A curve from the bottom of ``source``'s box to the top of ``target``'s (boxes of
    ``size``, width and height)."""
    width, height = size
    x1, y1 = source[0] + width // 2, source[1] + height
    x2, y2 = target[0] + width // 2, target[1] - 2
    bend = max((y2 - y1) // 2, 12)
    return f"M{x1},{y1} C{x1},{y1 + bend} {x2},{y2 - bend} {x2},{y2}"


def render_svg(
    nodes: Sequence[GraphNode],
    edges: Iterable[tuple[str, str]],
    *,
    title: str,
    statuses: Sequence[tuple[str, str]],
    per_row: int = PER_ROW,
) -> str:
    """The graph as a standalone SVG document (also valid inline in HTML).

    One ``<g class="node">`` per node (inside an ``<a href>`` when it has one), one
    ``<path class="edge">`` per edge between two of ``nodes``, a legend of ``statuses``
    (``(value, label)`` pairs) with their colours, and a ``viewBox`` so it scales. Every
    text is escaped.
    """
    edges = list(edges)
    legend_width = sum(_legend_step(label) for _value, label in statuses) + 2 * MARGIN
    node_width = node_width_for(node.name for node in nodes)
    per_line = _characters_in(node_width)
    labels = {node.id: label_lines(node.name, per_line) for node in nodes}
    most_lines = max((len(lines) for lines in labels.values()), default=1)
    node_height = NODE_HEIGHT + (most_lines - 1) * LINE_HEIGHT
    placed = layout(
        [node.id for node in nodes],
        edges,
        per_row=per_row,
        min_width=legend_width,
        node_width=node_width,
        node_height=node_height,
    )
    size = (node_width, node_height)
    at = placed.positions
    width, height = placed.width, placed.height
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cw-graph" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="cw-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#64748b"/></marker></defs>',
        "<style>.edge{stroke-opacity:.55}.node:hover rect{stroke-width:2.5}"
        "a:hover .node text{text-decoration:underline}</style>",
        f'<rect class="background" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    # Every other layer on a faint band, so wrapped rows read as one layer.
    for index, (top, bottom) in enumerate(placed.bands):
        if index % 2:
            out.append(
                f'<rect class="layer" x="0" y="{top - node_height // 2}" width="{width}" '
                f'height="{bottom - top + node_height // 2}" fill="#f1f5f9"/>'
            )
    out.append('<g class="legend">')
    x = MARGIN
    for value, label in statuses:
        colour = STATUS_COLOURS.get(value, UNKNOWN_COLOUR)
        out.append(
            f'<rect x="{x}" y="{MARGIN}" width="12" height="12" rx="2" fill="{colour}" '
            f'stroke="#475569"/><text x="{x + 16}" y="{MARGIN + 10}" fill="#1f2937">'
            f"{escape(label)}</text>"
        )
        x += _legend_step(label)
    out.append("</g>")

    out.append('<g class="edges" fill="none" stroke="#64748b" stroke-width="1.3">')
    seen: set[tuple[str, str]] = set()
    for dependent, depends_on in edges:
        if dependent not in at or depends_on not in at or dependent == depends_on:
            continue
        if (dependent, depends_on) in seen:
            continue
        seen.add((dependent, depends_on))
        out.append(
            f'<path class="edge" data-from="{escape(depends_on)}" data-to="{escape(dependent)}" '
            f'd="{_edge_path(at[depends_on], at[dependent], size)}" '
            'marker-end="url(#cw-arrow)"/>'
        )
    out.append("</g>")

    out.append('<g class="nodes">')
    for node in nodes:
        x, y = at[node.id]
        colour = STATUS_COLOURS.get(node.status, UNKNOWN_COLOUR)
        status_words = node.status.replace("_", " ")
        lines = labels[node.id]
        centre = x + node_width // 2
        # The lines centred in the box: the first one half a line up per line after it.
        first = y + node_height // 2 + 4 - (len(lines) - 1) * LINE_HEIGHT // 2
        text = "".join(
            f'<tspan x="{centre}" y="{first + index * LINE_HEIGHT}">{escape(line)}</tspan>'
            for index, line in enumerate(lines)
        )
        box = (
            f'<g class="node" data-id="{escape(node.id)}" data-status="{escape(node.status)}">'
            f"<title>{escape(node.name)} ({escape(status_words)})</title>"
            f'<rect x="{x}" y="{y}" width="{node_width}" height="{node_height}" rx="6" '
            f'fill="{colour}" stroke="#475569"/>'
            f'<text x="{centre}" y="{first}" text-anchor="middle" fill="#111827">{text}</text>'
            "</g>"
        )
        if node.href:
            box = f'<a href="{escape(node.href)}">{box}</a>'
        out.append(box)
    out.append("</g>")
    if not nodes:
        out.append(
            f'<text x="{MARGIN}" y="{MARGIN + LEGEND_HEIGHT + 12}" fill="#6b7280">'
            "Nothing to draw yet.</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
