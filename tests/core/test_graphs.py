"""The dependency pictures (``core.graphs``): layered layout and server-side SVG."""

import random
import xml.etree.ElementTree as ET

from core.graphs import GraphNode, layout, render_svg, truncate
from core.models import PhaseStatus, TaskStatus

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is XML


def _nodes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


def _edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]


def test_layers_are_the_longest_dependency_path():
    # d depends on a directly and on c (which depends on b, on a): its layer is 3.
    edges = [("b", "a"), ("c", "b"), ("d", "c"), ("d", "a")]
    placed = layout(["a", "b", "c", "d"], edges)
    assert placed.layers == {"a": 0, "b": 1, "c": 2, "d": 3}
    ys = [placed.positions[n][1] for n in "abcd"]
    assert ys == sorted(ys) and len(set(ys)) == 4


def test_a_node_sits_below_everything_it_depends_on():
    random.seed(7)
    names = [f"n{i}" for i in range(60)]
    edges = [
        (names[j], names[i]) for i, j in (sorted(random.sample(range(60), 2)) for _ in range(120))
    ]
    placed = layout(names, edges)
    for node, depends_on in edges:
        assert placed.positions[node][1] > placed.positions[depends_on][1]


def test_a_barycentre_pass_uncrosses_two_edges():
    # x depends on b and y on a; listed x first, they would cross.
    placed = layout(["a", "b", "x", "y"], [("x", "b"), ("y", "a")])
    x_of = {node: position[0] for node, position in placed.positions.items()}
    assert (x_of["a"] < x_of["b"]) == (x_of["y"] < x_of["x"])


def test_a_wide_layer_wraps_onto_several_rows():
    names = [f"n{i}" for i in range(20)]
    placed = layout(names, [], per_row=7)
    rows = {y for _x, y in placed.positions.values()}
    assert len(rows) == 3
    assert placed.width < 7 * 200 + 100


def test_a_cycle_does_not_stop_the_picture():
    placed = layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert set(placed.positions) == {"a", "b", "c"}


def test_edges_to_unknown_nodes_and_self_edges_are_left_out():
    svg = render_svg(
        [GraphNode("a", "A", "pending"), GraphNode("b", "B", "completed")],
        [("b", "a"), ("b", "elsewhere"), ("a", "a"), ("b", "a")],
        title="t",
        statuses=TaskStatus.choices,
    )
    assert len(_edges(_parse(svg))) == 1


def test_the_svg_is_xml_with_one_node_per_record_and_one_edge_per_dependency():
    nodes = [
        GraphNode("p1", "Design", "completed", "/admin/core/phase/p1/change/"),
        GraphNode("p2", "Build", "in_progress", "/admin/core/phase/p2/change/"),
        GraphNode("p3", "Ship", "pending", "/admin/core/phase/p3/change/"),
    ]
    svg = render_svg(
        nodes,
        [("p2", "p1"), ("p3", "p2"), ("p3", "p1")],
        title="Plan",
        statuses=PhaseStatus.choices,
    )
    root = _parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert [g.get("data-id") for g in _nodes(root)] == ["p1", "p2", "p3"]
    assert {(p.get("data-from"), p.get("data-to")) for p in _edges(root)} == {
        ("p1", "p2"),
        ("p2", "p3"),
        ("p1", "p3"),
    }
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == [node.href for node in nodes]
    assert all(p.get("marker-end") == "url(#cw-arrow)" for p in _edges(root))


def test_the_legend_names_every_status_with_its_colour():
    svg = render_svg([], [], title="Empty", statuses=PhaseStatus.choices)
    legend = next(g for g in _parse(svg).iter(f"{SVG}g") if g.get("class") == "legend")
    words = [t.text for t in legend.iter(f"{SVG}text")]
    assert words == [label for _value, label in PhaseStatus.choices]
    assert "Nothing to draw yet." in svg


def _label(node: ET.Element) -> list[str]:
    return [span.text or "" for span in node.iter(f"{SVG}tspan")]


def test_names_are_escaped_and_cut_only_past_two_lines_with_the_full_name_in_the_title():
    name = 'A very long name with <script>alert("x")</script> & more words after it'
    svg = render_svg(
        [GraphNode("a&b", name, "blocked", "/x?a=1&b=2")], [], title="<t>", statuses=[]
    )
    root = _parse(svg)
    node = _nodes(root)[0]
    assert node.find(f"{SVG}title").text == f"{name} (blocked)"
    lines = _label(node)
    assert len(lines) == 2 and lines[1].endswith("…")
    assert " ".join(lines) == truncate(name)
    assert lines[0] == "A very long name with"
    assert next(root.iter(f"{SVG}a")).get("href") == "/x?a=1&b=2"
    assert "<script>" not in svg


def test_a_name_that_fits_is_shown_whole_in_a_box_sized_to_it():
    name = "Write the login form's server checks"  # 36 characters
    root = _parse(render_svg([GraphNode("a", name, "pending")], [], title="t", statuses=[]))
    node = _nodes(root)[0]
    assert " ".join(_label(node)) == name
    assert "…" not in " ".join(_label(node))
    box = node.find(f"{SVG}rect")
    assert int(box.get("width")) > 160  # grown past the narrowest box


def test_short_names_keep_the_narrow_boxes_on_one_line():
    root = _parse(render_svg([GraphNode("a", "Design", "pending")], [], title="t", statuses=[]))
    node = _nodes(root)[0]
    assert _label(node) == ["Design"]
    assert node.find(f"{SVG}rect").get("width") == "160"


def test_a_name_too_long_for_one_line_wraps_onto_two_without_a_cut():
    name = "Migrate the payment provider webhooks to the new queue"  # 55 characters
    root = _parse(render_svg([GraphNode("a", name, "pending")], [], title="t", statuses=[]))
    lines = _label(_nodes(root)[0])
    assert len(lines) == 2 and " ".join(lines) == name


def test_two_hundred_tasks_and_four_hundred_edges_are_all_drawn():
    """Its speed is measured by the benchmark (``python -m bench --only graphs``), as a
    ratio in one run: a timed assertion here would flake on a busy machine."""
    random.seed(12)
    nodes = [
        GraphNode(
            f"t{i}", f"Task {i}: a name of a realistic length", random.choice(TaskStatus.values)
        )
        for i in range(200)
    ]
    edges: set[tuple[str, str]] = set()
    while len(edges) < 400:
        low, high = sorted(random.sample(range(200), 2))
        edges.add((f"t{high}", f"t{low}"))
    svg = render_svg(nodes, sorted(edges), title="Big", statuses=TaskStatus.choices)
    root = _parse(svg)
    assert len(_nodes(root)) == 200 and len(_edges(root)) == 400
    # It grows downwards rather than sideways: still a readable width.
    assert int(root.get("width")) < 1400
