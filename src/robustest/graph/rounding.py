"""The rounding error of a whole graph: each node's bound, through the layers' ``rounding`` rules.

A layer that stands for several (``parts``: a Linear with the BatchNorm the reader folded into it) is
rounded as those parts in turn, since the model computes them one after the other. See
:mod:`robustest.layers.rounding` for the rules and :mod:`robustest.certify.float_error` for their use.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.layers.rounding import Precision
    >>> g = read_model(nn.Sequential(nn.Linear(2, 2)).eval(), torch.zeros(1, 2))
    >>> x = torch.ones(1, 2, dtype=torch.float64)
    >>> errors, why = node_errors(g, [(x, x), (g(x), g(x))], Precision.of(torch.float32, torch.device("cpu")))
    >>> bool(errors[-1].max() < 1e-6), why
    (True, '')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..layers.base import Box, Layer
from ..layers.rounding import Precision
from .nodes import Graph


def layer_error(layer: Layer, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                ) -> torch.Tensor | None:
    """The layer's rounding bound (its ``parts`` in turn when it stands for several); None: no rule."""
    parts = layer.__dict__.get("parts")
    if not parts:
        return layer.rounding(boxes, errors, precision)
    box, err = boxes[0], errors[0]
    for part in parts:
        part = part.to(box[0].device, box[0].dtype)
        nxt = part.rounding([box], [err], precision)
        if nxt is None:
            return None
        box, err = part.interval(box), nxt
    return err


def node_errors(graph: Graph, boxes: Sequence[Box], precision: Precision) -> tuple[list[torch.Tensor], str]:
    """Per node, a bound on ``|computed - exact|`` (batched like ``boxes``, the exact values' bounds of
    every node), and "" or why some are infinite (a layer kind without a rounding rule, an unknown dtype)."""
    errors = [torch.zeros_like(boxes[0][0])]
    why = "" if math.isfinite(precision.unit) else "the model's dtype has no known rounding"
    for k, node in enumerate(graph.nodes[1:], start=1):
        assert node.layer is not None
        err = layer_error(node.layer, [boxes[j] for j in node.inputs], [errors[j] for j in node.inputs], precision)
        if err is None:
            why = why or (f"layer {node.name} ({node.layer.kind}) has no rounding rule, so no certificate can "
                          "account for the model's floating-point rounding")
            err = torch.full_like(boxes[k][0], math.inf)
        errors.append(torch.nan_to_num(err, nan=math.inf))
    return errors, why


__all__ = ["layer_error", "node_errors"]
