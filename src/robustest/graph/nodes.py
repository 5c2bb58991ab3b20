"""The small immutable graph the certifiers walk: nodes in topological order, node 0 is the input."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..layers.base import Layer


@dataclass(frozen=True)
class Node:
    """One layer application. ``name`` is the module path (or fx node name) for messages; ``inputs`` are
    indices of earlier nodes; ``shape`` is the batch-free output shape. The input node has ``layer=None``."""

    name: str
    layer: Layer | None
    inputs: tuple[int, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Graph:
    """A feed-forward DAG of layers; the last node is the output."""

    nodes: tuple[Node, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.nodes[0].shape

    @property
    def output(self) -> int:
        return len(self.nodes) - 1

    def forward(self, x: torch.Tensor, *, upto: int | None = None) -> list[torch.Tensor]:
        """Every node's value on the batch ``x`` (up to node ``upto``)."""
        vals: list[torch.Tensor] = [x]
        last = self.output if upto is None else upto
        for node in self.nodes[1:last + 1]:
            assert node.layer is not None
            vals.append(node.layer.forward(*[vals[j] for j in node.inputs]))
        return vals

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[-1]

    def to(self, device: torch.device, dtype: torch.dtype) -> Graph:
        return Graph(tuple(Node(n.name, None if n.layer is None else n.layer.to(device, dtype), n.inputs, n.shape)
                           for n in self.nodes))

    def consumers(self, index: int) -> list[int]:
        return [k for k, n in enumerate(self.nodes) if index in n.inputs]

    def describe(self) -> str:
        return " -> ".join(f"{n.name}:{n.layer!r}" for n in self.nodes[1:])
