"""Interval bound propagation: push an input box through every layer's interval rule.

Cheap (one pass, two forward passes' worth of work) and loose. The box of an l2/l1 ball is its outer
box ``LpBall.box`` (sound, not tight).

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.ibp import interval_bounds
    >>> g = read_model(nn.Sequential(nn.Linear(1, 1)).eval(), torch.zeros(1, 1))
    >>> lo, hi = interval_bounds(g, torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))[-1]
    >>> bool((lo <= hi).all())
    True
"""

from __future__ import annotations

import torch

from ..graph import Graph
from ..layers.base import Box


def interval_bounds(graph: Graph, lo: torch.Tensor, hi: torch.Tensor, *,
                    tighter: list[Box | None] | None = None) -> list[Box]:
    """Bounds of every node for inputs in ``[lo, hi]`` (batched, batch-free shapes as in the graph).

    ``tighter[k]``, when given, are other sound bounds of node ``k`` (e.g. from CROWN) to intersect with.
    """
    boxes: list[Box] = [(lo, hi)]
    for k, node in enumerate(graph.nodes[1:], start=1):
        assert node.layer is not None
        l, u = node.layer.interval(*[boxes[j] for j in node.inputs])
        if tighter is not None and tighter[k] is not None:
            tl, tu = tighter[k]  # type: ignore[misc]
            l, u = torch.maximum(l, tl), torch.minimum(u, tu)
        boxes.append((l, u))
    return boxes
