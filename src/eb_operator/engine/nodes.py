"""The nodes the engine may place on, indexed so that a request can skip most of them cheaply.

Real clusters have thousands of nodes but only a handful of node *shapes* (instance types):
nodes with the same free cpu, memory, ephemeral storage and GPUs. :class:`NodeTable` groups the
nodes by shape, so the static test "can this node ever hold the request?" runs once per shape,
not once per node, and a label selector is answered from a per-(key, value) index that is built
the first time that pair is asked for and kept for the table's lifetime.

Build cost ``O(n log n)`` for ``n`` nodes; per request ``O(shapes)`` for the static test plus
``O(1)`` per node actually visited (a set lookup per selector label).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from eb_operator.engine.types import NodeCapacity


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """Nodes with identical free capacity, in name order."""

    cpu_millis: int
    memory_bytes: int
    ephemeral_bytes: int
    gpus: tuple[tuple[str, int], ...]
    nodes: tuple[NodeCapacity, ...]

    def gpu(self, name: str) -> int:
        for n, count in self.gpus:
            if n == name:
                return count
        return 0


class NodeTable(Sequence[NodeCapacity]):
    """An immutable, indexed sequence of :class:`NodeCapacity` (sorted by name)."""

    __slots__ = ("_by_name", "_label_index", "_nodes", "_shapes")

    def __init__(self, nodes: Iterable[NodeCapacity] = ()) -> None:
        by_name: dict[str, NodeCapacity] = {}
        for node in nodes:
            if node.name in by_name:
                raise ValueError(f"node {node.name!r} is listed twice")
            by_name[node.name] = node
        self._nodes: tuple[NodeCapacity, ...] = tuple(by_name[name] for name in sorted(by_name))
        self._by_name = by_name
        groups: dict[tuple[int, int, int, tuple[tuple[str, int], ...]], list[NodeCapacity]] = {}
        for node in self._nodes:
            free = node.free
            key = (
                free.cpu_millis,
                free.memory_bytes,
                free.ephemeral_bytes,
                tuple(sorted((k, v) for k, v in free.gpus.items() if v > 0)),
            )
            groups.setdefault(key, []).append(node)
        # Smallest shapes first (best fit at shape level), shapes with GPUs after those without,
        # so that requests without GPUs leave GPU nodes for the requests that need them.
        self._shapes: tuple[Shape, ...] = tuple(
            Shape(cpu, mem, eph, gpus, tuple(members))
            for (cpu, mem, eph, gpus), members in sorted(
                groups.items(), key=lambda kv: (bool(kv[0][3]), kv[0][0], kv[0][1], kv[0][2], kv[0][3])
            )
        )
        self._label_index: dict[tuple[str, str], frozenset[str]] = {}

    @classmethod
    def of(cls, nodes: Sequence[NodeCapacity]) -> NodeTable:
        """``nodes`` itself when it is already a table, else a new table (``O(n log n)``)."""
        return nodes if isinstance(nodes, NodeTable) else cls(nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    @overload
    def __getitem__(self, index: int) -> NodeCapacity: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[NodeCapacity]: ...

    def __getitem__(self, index: int | slice) -> NodeCapacity | Sequence[NodeCapacity]:
        return self._nodes[index]

    def __iter__(self) -> Iterator[NodeCapacity]:
        return iter(self._nodes)

    def __repr__(self) -> str:
        return f"NodeTable({len(self._nodes)} nodes, {len(self._shapes)} shapes)"

    def get(self, name: str) -> NodeCapacity | None:
        return self._by_name.get(name)

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return self._shapes

    def with_label(self, key: str, value: str) -> frozenset[str]:
        """Names of the nodes whose label ``key`` equals ``value`` (cached per table)."""
        found = self._label_index.get((key, value))
        if found is None:
            found = frozenset(n.name for n in self._nodes if n.labels.get(key) == value)
            self._label_index[(key, value)] = found
        return found

    def selected(self, selector: Mapping[str, str]) -> frozenset[str] | None:
        """Names of the nodes carrying every label of ``selector``; None for "no selector"."""
        if not selector:
            return None
        sets = sorted((self.with_label(k, v) for k, v in selector.items()), key=len)
        result = sets[0]
        for other in sets[1:]:
            result = result & other
        return result
