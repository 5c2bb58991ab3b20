"""The reusable LP/MILP encoder of a whole network for one sample (stable API: other modules build on it).

``encode_network(graph, input_lo, input_hi, pre_bounds, exact=True)`` adds one variable per input
coordinate (bounded by ``input_lo``/``input_hi``), one per node value, and each layer's rows (big-M ReLU
and MaxPool when ``exact``, triangle/convex relaxation otherwise; the smooth activations always get
their linear relaxation, which ``Encoding.relaxed`` records). Callers add their own rows and objective
on top (e.g. an exact minimum-distance MILP adds ``|x - x0|`` variables and minimises them), then load
``encoding.problem`` with :func:`robustest.solvers.open_solver`.

    >>> import numpy as np, torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.ibp import interval_bounds
    >>> from robustest.certify.encode import encode_network, numpy_boxes
    >>> from robustest.solvers import open_solver
    >>> g = read_model(nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).eval(), torch.zeros(1, 1))
    >>> lo, hi = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    >>> enc = encode_network(g, np.zeros(1), np.ones(1), numpy_boxes(interval_bounds(g, lo, hi), 0))
    >>> res = open_solver(enc.problem).minimize({int(enc.outputs[0]): 1.0})
    >>> res.status
    'optimal'
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ShapeError
from ..graph import Graph
from ..layers.base import AffineLayer, Box, NpBox, widen
from ..solvers.base import Problem
from ..spec import LpBall


class OutOfTime(Exception):
    """The encoding would not be built by its deadline (raised before the layer that would overrun it)."""


@dataclass(frozen=True)
class Encoding:
    """``problem`` plus the variable indices of the flattened input, of the flattened output (logits), and
    of every node (``nodes[k]``; ``nodes[0] is inputs``). ``relaxed`` names the layers whose rows are only
    a relaxation although an exact encoding was asked for (the smooth activations, :func:`relaxed_layers`):
    when it is not empty, the MILP's optimum is a lower bound of the network's, not its value, and a point
    it finds is only a candidate."""

    problem: Problem
    inputs: np.ndarray
    outputs: np.ndarray
    nodes: tuple[np.ndarray, ...]
    relaxed: tuple[str, ...] = ()


def relaxed_layers(graph: Graph) -> tuple[str, ...]:
    """``kind at 'name'`` of every layer without an exact MILP encoding (``Layer.exact_milp`` False)."""
    return tuple(f"{n.layer.kind} at '{n.name}'" for n in graph.nodes[1:]
                 if n.layer is not None and not n.layer.exact_milp)


def encode_ball(graph: Graph, x0: torch.Tensor, ball: LpBall, pre_bounds: Sequence[NpBox], *,
                exact: bool = True, deadline: float = float("inf")) -> Encoding:
    """:func:`encode_network` over the ball around ``x0`` (one input, batch-free): its box ``ball.box``
    (ball ∩ domain, exact for linf) and, for l1, the exact constraint ``sum |x - x0| <= eps`` (linear,
    through auxiliary variables). For l2 only the outer box is encoded (no conic constraint in HiGHS):
    bounds stay sound, but an optimum may lie outside the ball."""
    lo, hi = ball.box(x0.unsqueeze(0))
    enc = encode_network(graph, lo[0].reshape(-1).double().cpu().numpy(), hi[0].reshape(-1).double().cpu().numpy(),
                         pre_bounds, exact=exact, deadline=deadline)
    if ball.norm == "l1":
        p, x = enc.problem, enc.inputs
        c = x0.reshape(-1).double().cpu().numpy()
        n = x.size
        t = p.add_vars(np.zeros(n), np.full(n, ball.eps))
        r = np.arange(n)
        # t >= x - c and t >= c - x
        p.add_rows(np.r_[r, r], np.r_[t, x], np.r_[np.ones(n), -np.ones(n)], lo=-c, hi=np.full(n, np.inf))
        p.add_rows(np.r_[r, r], np.r_[t, x], np.r_[np.ones(n), np.ones(n)], lo=c, hi=np.full(n, np.inf))
        p.add_rows(np.zeros(n, dtype=np.int64), t, np.ones(n), lo=[-np.inf], hi=[ball.eps])
    return enc


def numpy_boxes(boxes: Sequence[Box], i: int) -> list[NpBox]:
    """Sample ``i`` of batched per-node bounds, as flat float64 numpy arrays (what the encoder takes)."""
    return [(lo[i].detach().reshape(-1).double().cpu().numpy(), hi[i].detach().reshape(-1).double().cpu().numpy())
            for lo, hi in boxes]


def encode_network(graph: Graph, input_lo: np.ndarray, input_hi: np.ndarray, pre_bounds: Sequence[NpBox], *,
                   exact: bool = True, problem: Problem | None = None, deadline: float = float("inf")
                   ) -> Encoding:
    """Encode ``graph`` on the box ``input_lo <= x <= input_hi`` (flat, one sample).

    ``pre_bounds[k]`` are sound bounds (flat lo, hi) of node ``k``'s value over that box (IBP, CROWN...);
    the tighter they are, the smaller the big-M constants and the faster the MILP. ``exact=False`` gives
    the LP relaxation. A ``problem`` can be passed to add the network to an existing one.

    Raises :class:`OutOfTime` before a layer when ``deadline`` (``time.perf_counter()``) has passed or the
    layer would end past it: an affine layer builds a dense ``inputs x outputs`` matrix (a conv of 5k
    inputs and 8k outputs, 10 s on a loaded core), whose time is predicted from the affine layers before it.
    """
    if len(pre_bounds) != len(graph.nodes):
        raise ShapeError(f"pre_bounds has {len(pre_bounds)} entries: expected one (lo, hi) per graph node "
                         f"({len(graph.nodes)}). Fix: pass the list from intermediate_bounds/interval_bounds")
    p = problem if problem is not None else Problem()
    lo, hi = np.asarray(input_lo, dtype=np.float64).ravel(), np.asarray(input_hi, dtype=np.float64).ravel()
    x = p.add_vars(lo, hi)
    vars_: list[np.ndarray] = [x]
    rate = 0.0  # seconds per dense matrix entry, the most seen on an affine layer so far
    for k, node in enumerate(graph.nodes[1:], start=1):
        assert node.layer is not None
        ins = [vars_[j] for j in node.inputs]
        entries = math.prod(graph.nodes[node.inputs[0]].shape) * math.prod(node.shape)
        t0 = time.perf_counter()
        if t0 + rate * entries >= deadline:
            raise OutOfTime(f"encoding stopped before node {k} ({node.layer.kind}): time is up")
        out = node.layer.encode(p, ins, [pre_bounds[j] for j in node.inputs], pre_bounds[k],
                                in_shapes=[graph.nodes[j].shape for j in node.inputs], exact=exact)
        if isinstance(node.layer, AffineLayer):
            rate = max(rate, (time.perf_counter() - t0) / max(1, entries))
        # a layer may reuse its input's variables (reshape, active ReLU): make every node's own bounds hold,
        # so the rules of the next layers (big-M constants) are consistent with the variables' ranges
        p.tighten(out, *widen(*pre_bounds[k]))
        vars_.append(out)
    return Encoding(p, x, vars_[-1], tuple(vars_), relaxed_layers(graph) if exact else ())
