"""Dependency graphs shared by phases and tasks: edges, cycle refusal, ordering."""

from collections.abc import Iterable, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any, ClassVar, TypeVar

from django.db import models, transaction

from core.errors import Conflict, DependencyCycle, InvalidInput
from core.repositories.base import Repository, record_store

N = TypeVar("N", bound=models.Model)


def find_cycle(edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """A cycle among ``node -> depends_on`` edges as a closed path, or None when acyclic."""
    graph: dict[str, set[str]] = {}
    for node, depends_on in edges:
        graph.setdefault(node, set()).add(depends_on)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        # graphlib reports the cycle as a closed path [a, b, ..., a] along the edges.
        return list(error.args[1])
    return None


def topological_order(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """``nodes`` ordered so each comes after everything it depends on (stable by input order)."""
    position = {node: index for index, node in enumerate(nodes)}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in position:
        sorter.add(node)
    for node, depends_on in edges:
        if node in position and depends_on in position:
            sorter.add(node, depends_on)
    sorter.prepare()
    ordered: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        ordered.extend(ready)
        sorter.done(*ready)
    return ordered


class DependencyRepository(Repository[N]):
    """Shared dependency-edge logic for phases and tasks.

    An edge ``node -> depends_on`` is refused when it is a self-edge, a duplicate, crosses
    initiatives, or would close a cycle (found with ``graphlib`` over the initiative's
    edges). Edge creation locks the initiative row first (on PostgreSQL; SQLite's
    immediate transactions already serialize writers), so two concurrent edges cannot
    together close a cycle that neither closes alone.
    """

    edge_model: ClassVar[type[models.Model]]
    edge_from: ClassVar[str]  # e.g. "phase"
    edge_to: ClassVar[str]  # e.g. "depends_on_phase"
    name_field: ClassVar[str] = "name"

    def _edges_in_scope(self, initiative_id: str | None) -> list[tuple[str, str]]:
        """Every edge among records of one initiative (or among records of none)."""
        key = f"{self.edge_from}__initiative_id"
        scope: dict[str, object] = (
            {key: initiative_id} if initiative_id is not None else {f"{key}__isnull": True}
        )
        return list(
            self.edge_model._default_manager.filter(**scope).values_list(
                f"{self.edge_from}_id", f"{self.edge_to}_id"
            )
        )

    def initiative_id_of(self, node_id: str) -> str | None:
        """The id of the initiative the record belongs to (``<slug>_not_found`` if none)."""
        raise NotImplementedError

    def dependency_edges(self, initiative_id: str | None) -> list[tuple[str, str]]:
        """Every ``(node, depends_on)`` edge among one initiative's records, in one query."""
        return self._edges_in_scope(initiative_id)

    def create_dependency(self, node_id: str, depends_on_id: str) -> models.Model:
        """Record that ``node_id`` cannot start before ``depends_on_id`` is completed."""
        from core.repositories.initiatives import InitiativeRepository

        label = self.label.lower()
        if not (isinstance(node_id, str) and isinstance(depends_on_id, str)):
            raise InvalidInput(
                f"A {label} dependency is given as two ids.",
                code="invalid_id",
                details={"id": str(node_id), "depends_on_id": str(depends_on_id)},
            )
        if node_id == depends_on_id:
            raise InvalidInput(
                f"A {label} cannot depend on itself.",
                code="dependency_self_edge",
                details={"id": node_id},
            )
        with transaction.atomic():
            nodes = {n.pk: n for n in self.queryset().filter(pk__in=[node_id, depends_on_id])}
            for missing in (node_id, depends_on_id):
                if missing not in nodes:
                    raise self.not_found(missing)
            node, target = nodes[node_id], nodes[depends_on_id]
            initiative_id = node.initiative_id  # type: ignore[attr-defined]
            if initiative_id != target.initiative_id:  # type: ignore[attr-defined]
                raise InvalidInput(
                    f"{self.label} '{node}' and '{target}' belong to different initiatives.",
                    code="dependency_other_initiative",
                    details={"id": node_id, "depends_on_id": depends_on_id},
                )
            if initiative_id is not None:
                InitiativeRepository().lock_many([initiative_id])
            edges = self._edges_in_scope(initiative_id)
            if (node_id, depends_on_id) in edges:
                raise Conflict(
                    f"{self.label} '{node}' already depends on '{target}'.",
                    code="dependency_taken",
                    details={"id": node_id, "depends_on_id": depends_on_id},
                )
            cycle = find_cycle([*edges, (node_id, depends_on_id)])
            if cycle:
                names = dict(
                    self.queryset().filter(pk__in=cycle).values_list("pk", self.name_field)
                )
                path = " -> ".join(f"'{names.get(pk, pk)}'" for pk in cycle)
                raise DependencyCycle(
                    f"This dependency would close a cycle: {path}.",
                    details={"cycle": cycle},
                )
            edge = self.edge_model(
                **{f"{self.edge_from}_id": node_id, f"{self.edge_to}_id": depends_on_id}
            )
            self._save(edge, force_insert=True)  # type: ignore[arg-type]
            self._dependencies_changed([node_id])
            return edge

    def restore_dependencies(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert dependency edges as an export recorded them (see ``restore``), refusing
        a self-edge, an edge across initiatives, and edges that close a cycle together
        with those already stored. Returns the count."""
        src, dst = f"{self.edge_from}_id", f"{self.edge_to}_id"
        pairs = [(row.get(src), row.get(dst)) for row in rows]
        label = self.label.lower()
        for index, (node_id, depends_on_id) in enumerate(pairs):
            if node_id == depends_on_id:
                raise InvalidInput(
                    f"A {label} cannot depend on itself.",
                    code="dependency_self_edge",
                    details={"id": node_id, "index": index},
                )
        scope = dict(
            self.queryset()
            .filter(pk__in={node for pair in pairs for node in pair})
            .values_list("pk", "initiative_id")
        )
        for index, (node_id, depends_on_id) in enumerate(pairs):
            if (
                node_id in scope
                and depends_on_id in scope
                and scope[node_id] != scope[depends_on_id]
            ):
                raise InvalidInput(
                    f"{self.label}s '{node_id}' and '{depends_on_id}' belong to different "
                    "initiatives.",
                    code="dependency_other_initiative",
                    details={"id": node_id, "depends_on_id": depends_on_id, "index": index},
                )
        edges = [
            edge
            for initiative_id in set(scope.values())
            for edge in self._edges_in_scope(initiative_id)
        ]
        cycle = find_cycle([*edges, *pairs])  # type: ignore[list-item]
        if cycle:
            raise DependencyCycle(
                f"These {label} dependencies close a cycle: {' -> '.join(cycle)}.",
                details={"cycle": cycle},
            )
        with transaction.atomic():
            count = self._edges.restore(rows)
            self._dependencies_changed({node for node, _ in pairs})
        return count

    @property
    def _edges(self) -> Repository[models.Model]:
        return self._edge_store()

    @classmethod
    def _edge_store(cls) -> Repository[models.Model]:
        """The edge table's store (``record_store``: one per table, cached)."""
        name = cls.edge_model._meta.db_table
        return record_store(
            cls.edge_model, name.removesuffix("ies") + "y", f"{cls.label} dependency"
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The store exists as soon as its repository does, so the error catalogue's
        # tests find its codes whatever else was imported.
        super().__init_subclass__(**kwargs)
        if "edge_model" in vars(cls):
            cls._edge_store()

    def remove_dependency(self, node_id: str, depends_on_id: str) -> bool:
        with transaction.atomic():
            deleted, _ = self.edge_model._default_manager.filter(
                **{f"{self.edge_from}_id": node_id, f"{self.edge_to}_id": depends_on_id}
            ).delete()
            if deleted:
                self._dependencies_changed([node_id])
        return deleted > 0

    def _dependencies_changed(self, node_ids: Iterable[str]) -> None:
        """Called inside the write's transaction once edges from ``node_ids`` were added
        or removed (the ready queue's repositories refresh what the edges decide)."""

    def get_dependencies(self, node_id: str) -> list[N]:
        """The records ``node_id`` depends on (direct edges only)."""
        edges = self.edge_model._default_manager.filter(**{f"{self.edge_from}_id": node_id})
        return list(self.queryset().filter(pk__in=edges.values(f"{self.edge_to}_id")))

    def get_dependents(self, node_id: str) -> list[N]:
        """The records that depend on ``node_id`` (direct edges only)."""
        edges = self.edge_model._default_manager.filter(**{f"{self.edge_to}_id": node_id})
        return list(self.queryset().filter(pk__in=edges.values(f"{self.edge_from}_id")))

    def get_dependency_ids(self, node_ids: Iterable[str]) -> dict[str, list[str]]:
        """Direct dependency ids of several records, in one query."""
        result: dict[str, list[str]] = {pk: [] for pk in node_ids}
        rows = self.edge_model._default_manager.filter(**{f"{self.edge_from}_id__in": list(result)})
        for node_id, depends_on_id in rows.values_list(
            f"{self.edge_from}_id", f"{self.edge_to}_id"
        ):
            result[node_id].append(depends_on_id)
        return result
