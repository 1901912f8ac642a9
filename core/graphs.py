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
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from django.utils.html import escape

from core.text import shorten

#: Node box and spacing, in SVG user units (pixels at scale 1).
NODE_WIDTH = 160
NODE_HEIGHT = 34
COLUMN_GAP = 22
ROW_GAP = 46
#: Extra space between two layers, beyond a row gap, so wrapped rows read as one layer.
LAYER_GAP = 18
MARGIN = 16
LEGEND_HEIGHT = 30
#: How many nodes sit side by side before a layer wraps onto another row.
PER_ROW = 6
#: Characters of a name shown in a node; the full name is in its ``<title>``.
LABEL_CHARACTERS = 22
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
) -> Layout:
    """Place ``nodes`` in layers by dependency depth (``edges`` are ``(node, depends_on)``;
    edges to unknown nodes are ignored), ordered to reduce crossings, wrapping a layer
    wider than ``per_row``, centred in at least ``min_width``. Deterministic: the same
    graph always gets the same picture."""
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

    columns = max(1, min(per_row, max((len(row) for row in rows), default=1)))
    width = max(2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP, min_width)
    positions: dict[str, tuple[int, int]] = {}
    bands: list[tuple[int, int]] = []
    y = MARGIN + LEGEND_HEIGHT
    for row in rows:
        top = y
        for start in range(0, len(row), per_row):
            chunk = row[start : start + per_row]
            used = len(chunk) * NODE_WIDTH + (len(chunk) - 1) * COLUMN_GAP
            x = (width - used) // 2
            for node in chunk:
                positions[node] = (x, y)
                x += NODE_WIDTH + COLUMN_GAP
            y += NODE_HEIGHT + ROW_GAP
        bands.append((top, y - ROW_GAP + NODE_HEIGHT // 2))
        y += LAYER_GAP
    height = max(y - ROW_GAP - LAYER_GAP + MARGIN, 2 * MARGIN + LEGEND_HEIGHT + 24)
    return Layout(positions=positions, layers=layer_of, bands=bands, width=width, height=height)


def truncate(text: str, limit: int = LABEL_CHARACTERS) -> str:
    """``text`` cut to a label's ``limit`` characters (``core.text.shorten``)."""
    return shorten(text, limit)


def _legend_step(label: str) -> int:
    """The room one legend entry takes: its swatch, its words (about 7 units a
    character at this font size) and a gap."""
    return 16 + 7 * len(label) + 18


def _edge_path(source: tuple[int, int], target: tuple[int, int]) -> str:
    """A curve from the bottom of ``source``'s box to the top of ``target``'s."""
    x1, y1 = source[0] + NODE_WIDTH // 2, source[1] + NODE_HEIGHT
    x2, y2 = target[0] + NODE_WIDTH // 2, target[1] - 2
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
    placed = layout([node.id for node in nodes], edges, per_row=per_row, min_width=legend_width)
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
                f'<rect class="layer" x="0" y="{top - NODE_HEIGHT // 2}" width="{width}" '
                f'height="{bottom - top + NODE_HEIGHT // 2}" fill="#f1f5f9"/>'
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
            f'd="{_edge_path(at[depends_on], at[dependent])}" marker-end="url(#cw-arrow)"/>'
        )
    out.append("</g>")

    out.append('<g class="nodes">')
    for node in nodes:
        x, y = at[node.id]
        colour = STATUS_COLOURS.get(node.status, UNKNOWN_COLOUR)
        status_words = node.status.replace("_", " ")
        box = (
            f'<g class="node" data-id="{escape(node.id)}" data-status="{escape(node.status)}">'
            f"<title>{escape(node.name)} ({escape(status_words)})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="{colour}" stroke="#475569"/>'
            f'<text x="{x + NODE_WIDTH // 2}" y="{y + NODE_HEIGHT // 2 + 4}" '
            f'text-anchor="middle" fill="#111827">{escape(truncate(node.name))}</text></g>'
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
