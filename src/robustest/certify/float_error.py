"""How far the model as it runs (in its dtype) can be from the exact network the certifiers bound.

Every bound of :mod:`robustest.certify` is about the exact network: the model's weights in real arithmetic
(float64 in the graph). The model the user runs rounds every operation in its dtype, so its outputs can
differ from the exact ones by a few ulps of the sums it computes, and a margin certified for the exact
network can be negative for the float32 model. :func:`output_error` bounds that difference over a whole
input region: each node's error bound, propagated through the layers' ``rounding`` rules
(:mod:`robustest.layers.rounding`, :func:`robustest.graph.rounding.node_errors`) with interval bounds of
the exact values. :func:`row_slack` turns the bound into the
amount every certified row ``C y + d > 0`` must clear (:meth:`robustest.provers.ProofTask.guarded`).

The inputs themselves carry no error: the points the model is run on are numbers of its dtype, and a
region's points of that dtype are real points of the region.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.layers.rounding import Precision
    >>> from robustest.spec import LpBall
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    >>> g = read_model(net, torch.zeros(1, 2))
    >>> err, why = output_error(g, torch.zeros(1, 2, dtype=torch.float64), LpBall(0.1, "linf", None),
    ...                         Precision.of(torch.float32, torch.device("cpu")))
    >>> bool((err > 0).all() and (err < 1e-5).all()), why
    (True, '')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..graph import Graph
from ..graph.rounding import node_errors
from ..layers.base import Box
from ..layers.rounding import Precision
from ..spec import LpBall
from .float_rows import row_errors
from .ibp import interval_bounds


def output_error(graph: Graph, x0: torch.Tensor, ball: LpBall, precision: Precision, *,
                 tighter: Sequence[Sequence[tuple[np.ndarray, np.ndarray]] | None] | None = None
                 ) -> tuple[torch.Tensor, str]:
    """A bound (N, K) on how far the model's computed outputs can be from the exact network's, over the
    ball around each ``x0`` (batched, float64): interval bounds of every node, intersected with the
    per-node bounds ``tighter[n]`` of sample ``n`` when known (e.g. CROWN's). Returns it and "" or why it
    is infinite (:func:`node_errors`)."""
    errors, why = node_errors(graph, region_boxes(graph, x0, ball, tighter), precision)
    return errors[-1].flatten(1), why


def rows_error(graph: Graph, x0: torch.Tensor, ball: LpBall, C: torch.Tensor, precision: Precision, *,
               tighter: Sequence[Sequence[tuple[np.ndarray, np.ndarray]] | None] | None = None,
               rows: bool = False, deadline: float = math.inf) -> tuple[torch.Tensor, str]:
    """A bound (N, R) on how far each row ``C y`` of the computed outputs can be from the exact one over
    the ball (``tighter`` as for :func:`output_error`): :func:`row_slack` of the a-priori bound, and with
    ``rows`` the smaller of it and the row-wise bound of :mod:`robustest.certify.float_rows` (when that
    finishes by ``deadline``, ``time.perf_counter()``); and "" or why it is infinite."""
    return boxes_rows_error(graph, region_boxes(graph, x0, ball, tighter), C, precision, rows=rows,
                            deadline=deadline)


def boxes_rows_error(graph: Graph, boxes: Sequence[Box], C: torch.Tensor, precision: Precision, *,
                     rows: bool = False, deadline: float = math.inf) -> tuple[torch.Tensor, str]:
    """:func:`rows_error` on given bounds of every node (batched N, e.g. sub-boxes of a region)."""
    errors, why = node_errors(graph, boxes, precision)
    slack = row_slack(C, errors[-1].flatten(1))
    better = None if why or not rows else row_errors(graph, boxes, C, precision, errors=errors, deadline=deadline)
    return (slack if better is None else torch.minimum(slack, better)), why


def region_boxes(graph: Graph, x0: torch.Tensor, ball: LpBall,
                 tighter: Sequence[Sequence[tuple[np.ndarray, np.ndarray]] | None] | None = None) -> list[Box]:
    """Interval bounds of every node over the ball, intersected with the per-sample ``tighter`` ones."""
    boxes = interval_bounds(graph, *ball.box(x0))
    if tighter is not None and any(t is not None for t in tighter):
        boxes = [_intersect(box, [None if t is None else t[k] for t in tighter]) for k, box in enumerate(boxes)]
    return boxes


def _intersect(box: Box, known: list[tuple[np.ndarray, np.ndarray] | None]) -> Box:
    lo, hi = box[0].clone(), box[1].clone()
    for n, k in enumerate(known):
        if k is not None:
            lo[n] = torch.maximum(lo[n], torch.as_tensor(k[0], dtype=lo.dtype, device=lo.device).reshape(lo[n].shape))
            hi[n] = torch.minimum(hi[n], torch.as_tensor(k[1], dtype=hi.dtype, device=hi.device).reshape(hi[n].shape))
    return lo, hi


def row_slack(C: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """``|C| @ error`` (N, R): how far each row ``C y`` of the computed outputs can be from the exact one
    (the rows are evaluated exactly on the computed outputs). Infinite for a row that reads an output
    with an infinite error bound, 0 for one that reads none."""
    absC = C.abs().to(error.dtype)
    inf = torch.isinf(error)
    finite = torch.where(inf, torch.zeros_like(error), error)
    slack = (absC @ finite.unsqueeze(2)).squeeze(2)
    hits = (absC @ inf.to(error.dtype).unsqueeze(2)).squeeze(2) > 0
    return torch.where(hits, torch.full_like(slack, math.inf), slack)


__all__ = ["boxes_rows_error", "output_error", "region_boxes", "row_slack", "rows_error"]
