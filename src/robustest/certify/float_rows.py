"""A row-wise bound on the model's rounding: each layer's own rounding, weighed by how it reaches a row.

:func:`robustest.certify.float_error.output_error` bounds every node's error a priori: a layer's bound is
its own rounding plus its inputs' bounds through ``|W|``. Through a deep network that product of ``|W|``
grows by the row sums of ``|W|`` per layer (about 25 per layer on ACAS Xu's 6 x 50, 1e5 overall), far
faster than the error itself, because it forgets that errors of opposite signs cancel along a path.

This module bounds the error of the rows ``C y`` directly. Write the computed value of node ``k`` as the
exact one plus ``d_k``. Each layer gives ``d_out = J d_in + eta``: ``eta`` its own rounding on the computed
inputs (bounded by its :meth:`~robustest.layers.base.Layer.rounding` rule with no input error, on the box
widened by the inputs' error bounds), ``J`` linear (an affine layer's ``L``) or a diagonal of slopes known
to lie in an interval (a ReLU: 1 where the exact and computed inputs are both positive, 0 where both are
negative, [0, 1] otherwise; a smooth activation: its derivative's range, by the mean value theorem). So
``C d_out`` is a sum over the layers of coefficients times each layer's ``eta``, and the coefficients lie
in intervals that a backward pass, like CROWN's, computes (:meth:`~robustest.layers.base.Layer.difference`):
along stable neurons the coefficients are exact products (``|C W_3 D W_2 ...|``, with the cancellations),
and only unstable ones widen them. The row's bound is ``sum_k (|centre_k| + radius_k) . |eta_k|``.

The per-node bounds that decide stability and the sizes of the sums are themselves improved in a forward
sweep: for every input of a nonlinear layer small enough (:class:`RowRead`), the same backward pass from
that node's neurons (an identity of rows) gives each neuron's bound, and the a-priori rule applies
elsewhere; every bound used is the smaller of the sound ones at hand.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.ibp import interval_bounds
    >>> from robustest.layers.rounding import Precision
    >>> torch.manual_seed(0) and None
    >>> net = nn.Sequential(nn.Linear(4, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 3)).eval()
    >>> g = read_model(net, torch.zeros(1, 4))
    >>> x = torch.zeros(1, 4, dtype=torch.float64)
    >>> boxes = interval_bounds(g, x - 0.01, x + 0.01)
    >>> C = torch.eye(3, dtype=torch.float64).unsqueeze(0)
    >>> rows = row_errors(g, boxes, C, Precision.of(torch.float32, torch.device("cpu")))
    >>> bool((rows > 0).all() and (rows < 1e-5).all())
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..graph import Graph
from ..graph.rounding import layer_error, node_errors
from ..layers.base import Box, Coef, Layer
from ..layers.rounding import Precision

#: The coefficients' own float64 rounding, and the relative pad every bound of this module gets for it.
RELATIVE_PAD = 1e-6


@dataclass(frozen=True)
class RowRead:
    """How much of the improvement is bought: per-neuron bounds for a node are computed by a backward
    pass of as many rows as it has neurons, so only for nodes whose rows times the widest node up to them
    stay within ``max_entries`` coefficients (per sample)."""

    max_entries: int = 1 << 22


def row_errors(graph: Graph, boxes: Sequence[Box], C: torch.Tensor, precision: Precision, *,
               errors: Sequence[torch.Tensor] | None = None, limits: RowRead = RowRead(),
               deadline: float = math.inf) -> torch.Tensor | None:
    """A bound (N, R) on ``|C (computed y - exact y)|`` over the boxes (the exact values' bounds of every
    node, batched N), or None when some layer has no :meth:`~robustest.layers.base.Layer.difference`
    rule (then only the a-priori bound applies). ``errors``: the a-priori per-node bounds, when already
    computed (:func:`~robustest.graph.rounding.node_errors`). Infinite where no rounding bound exists.
    None too when ``deadline`` (``time.perf_counter()``) passes first: it is checked before every pass."""
    if any(n.layer is not None and type(n.layer).difference is Layer.difference for n in graph.nodes[1:]):
        return None
    why = ""
    if errors is None:
        errors, why = node_errors(graph, boxes, precision)
    errors = list(errors)
    if why:
        return torch.full(C.shape[:2], math.inf, dtype=C.dtype, device=C.device)
    local: list[torch.Tensor] = [torch.zeros_like(boxes[0][0])]
    needed = {j for n in graph.nodes[1:] if n.layer is not None and n.layer.nonlinear for j in n.inputs}
    widest = 0
    for k, node in enumerate(graph.nodes[1:], start=1):
        assert node.layer is not None
        ins = [boxes[j] for j in node.inputs]
        errs = [errors[j] for j in node.inputs]
        wide = [(lo - e, hi + e) for (lo, hi), e in zip(ins, errs)]
        local.append(_finite(layer_error(node.layer, wide, [torch.zeros_like(e) for e in errs], precision)))
        prior = layer_error(node.layer, ins, errs, precision)
        errors[k] = errors[k] if prior is None else torch.minimum(errors[k], _finite(prior))
        widest = max(widest, math.prod(node.shape))
        n = math.prod(node.shape)
        if time.perf_counter() >= deadline:
            return None
        if k in needed and n * widest <= limits.max_entries:
            eye = torch.eye(n, dtype=C.dtype, device=C.device).reshape((1, n) + tuple(node.shape))
            rows = _backward(graph, k, eye.expand((C.shape[0],) + tuple(eye.shape[1:])), boxes, errors, local)
            errors[k] = torch.minimum(errors[k], rows.reshape(errors[k].shape))
    if time.perf_counter() >= deadline:
        return None
    out = graph.nodes[-1].shape
    return _backward(graph, len(graph.nodes) - 1, C.reshape(C.shape[:2] + tuple(out)), boxes, errors, local)


def _backward(graph: Graph, start: int, rows: torch.Tensor, boxes: Sequence[Box], errors: Sequence[torch.Tensor],
              local: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k (|centre_k| + radius_k) . local_k`` over the nodes up to ``start``, from the rows
    (N, R, *shape of ``start``) on its difference, padded by :data:`RELATIVE_PAD`."""
    coefs: dict[int, Coef] = {start: (rows, torch.zeros_like(rows))}
    total = rows.new_zeros(rows.shape[:2])
    for k in range(start, 0, -1):
        if k not in coefs:
            continue
        centre, radius = coefs.pop(k)
        weight = centre.abs() + radius
        term = torch.where(weight > 0, weight * local[k].unsqueeze(1), torch.zeros_like(weight))
        total = total + term.flatten(2).sum(-1)
        node = graph.nodes[k]
        assert node.layer is not None
        ins = node.layer.difference((centre, radius), [boxes[j] for j in node.inputs],
                                    [errors[j] for j in node.inputs])
        assert ins is not None
        for j, (c, r) in zip(node.inputs, ins):
            if j == 0:
                continue  # the inputs are numbers of the model's dtype: no error
            if j in coefs:
                c0, r0 = coefs[j]
                c, r = c0 + c, r0 + r
            coefs[j] = (c, r)
    return total * (1 + RELATIVE_PAD)


def _finite(err: torch.Tensor | None) -> torch.Tensor:
    assert err is not None  # node_errors returned no reason, so every layer has a rounding rule
    return torch.nan_to_num(err, nan=math.inf)


__all__ = ["RELATIVE_PAD", "RowRead", "row_errors"]
