"""The dependency pictures of the admin: ``core.graphs.render_svg`` at 20, 200 and 400
tasks with two dependencies each (random edges between earlier and later tasks, the
same seed every run).

Targets (issue 12: "large graphs (200 tasks) stay readable and render in a fraction of a
second"): the picture holds one node per task and one edge per dependency (a ``rule``,
checked by ``--quick`` too); the time at 200 and at 400 tasks, divided by the time at
20, may be at most 1.5 times the ratio of the sizes (close to linear: the layering and
the crossing passes must not go quadratic). The time at 200 tasks is shown for context.
"""

import random
from xml.etree import ElementTree

from bench.harness import Result, median_time

EDGES_PER_TASK = 2
STATUSES = (("pending", "Pending"), ("in_progress", "In progress"), ("completed", "Completed"))
SVG = "{http://www.w3.org/2000/svg}"


def picture(size: int) -> tuple[list, list[tuple[str, str]]]:
    from core.graphs import GraphNode

    chance = random.Random(size)
    nodes = [
        GraphNode(
            f"t{i}",
            f"Task {i}: a name of a realistic length",
            chance.choice(STATUSES)[0],
            f"/admin/core/task/t{i}/change/",
        )
        for i in range(size)
    ]
    edges: set[tuple[str, str]] = set()
    while len(edges) < EDGES_PER_TASK * size:
        low, high = sorted(chance.sample(range(size), 2))
        edges.add((f"t{high}", f"t{low}"))
    return nodes, sorted(edges)


def run(quick: bool) -> Result:
    from core.graphs import render_svg

    result = Result("graphs")
    sizes = (20, 200) if quick else (20, 200, 400)
    seconds: dict[int, float] = {}
    for size in sizes:
        nodes, edges = picture(size)

        def draw(nodes=nodes, edges=edges) -> str:
            return render_svg(nodes, edges, title="Bench", statuses=STATUSES)

        root = ElementTree.fromstring(draw())  # noqa: S314 - our own SVG, not untrusted input
        drawn_nodes = len(root.findall(f".//{SVG}g[@class='node']"))
        drawn_edges = len(root.findall(f".//{SVG}path[@class='edge']"))
        result.check(
            f"render_svg: nodes and edges drawn at {size} tasks",
            drawn_nodes + drawn_edges,
            unit="elements",
            target="one node per task, one edge per dependency",
            held=(drawn_nodes, drawn_edges) == (size, len(edges)),
            baseline=size + len(edges),
            baseline_label="in the graph",
            kind="rule",
        )
        seconds[size] = median_time(draw, repeat=3 if quick else 7)
    smallest = sizes[0]
    result.info("render_svg: 200 tasks, 400 edges", seconds[200] * 1000, unit="ms")
    for size in sizes[1:]:
        allowed = 1.5 * size / smallest
        ratio = seconds[size] / seconds[smallest]
        result.check(
            f"render_svg: time at {size} tasks / at {smallest}",
            seconds[size] * 1000,
            unit="ms",
            target=f"<= {allowed:g}x (close to linear)",
            held=ratio <= allowed,
            baseline=seconds[smallest] * 1000,
            baseline_label=f"{smallest} tasks",
            ratio=ratio,
        )
    return result
