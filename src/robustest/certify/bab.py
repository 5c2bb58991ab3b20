"""Branch and bound over ReLU splits on top of CROWN, to prove what one CROWN pass cannot.

A *domain* is the input box plus a sign for some ReLU inputs (``z >= 0`` or ``z <= 0``). On a domain the
CROWN bounds of every ReLU input are recomputed layer by layer (their rules in :mod:`robustest.certify.crown`)
and clamped by the signs: a split neuron's relaxation is then exact, and later layers get tighter. A domain
is closed when some row of the property has a positive lower bound on it, or when its bounds are
contradictory (``lower > upper``: no input of the box has those signs). Every input lies in one of the two
children of a split, so when every domain is closed the property holds on the whole box. Sound throughout:
clamping only removes values the domain's inputs cannot take, and concretisation is over the whole box.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.spec import LpBall
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).eval()
    >>> g = read_model(net, torch.zeros(1, 2))
    >>> ok = prove_rows(g, torch.zeros(1, 2, dtype=torch.float64), LpBall(0.1, "linf", None),
    ...                 -torch.ones(1, 1, dtype=torch.float64), torch.full((1,), -1e3, dtype=torch.float64),
    ...                 deadline=float("inf"))
    >>> ok      # -f(x) > -1000, i.e. f(x) < 1000 on the box
    True

Branching picks, per domain, the unstable neuron whose triangle relaxation is widest, weighted by how much
the property's backward coefficients load it (a cheap form of the BaBSR score, Bunel et al. 2020).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from ..graph import Graph
from ..layers.base import Box
from ..layers.relu import ReLU
from ..spec import LpBall
from .crown import _identity_spec, _lower, intermediate_bounds
from .ibp import interval_bounds

__all__ = ["BabStats", "prove_rows", "bab"]


@dataclass(frozen=True)
class BabStats:
    """What a run did: ``proved``, domains bounded, the largest queue, and the seconds spent."""

    proved: bool
    domains: int
    max_queue: int
    seconds: float
    reason: str = ""


def _relu_inputs(graph: Graph) -> List[int]:
    return sorted({n.inputs[0] for n in graph.nodes[1:] if isinstance(n.layer, ReLU)})


class _Problem:
    """The fixed parts: graph, box, property rows, root bounds, and where each ReLU input's neurons sit
    in the flat split vector."""

    def __init__(self, graph: Graph, x0: torch.Tensor, ball: LpBall, A: torch.Tensor, b: torch.Tensor) -> None:
        self.graph, self.x0, self.ball, self.b = graph, x0, ball, b
        self.C = A.unsqueeze(0)  # (1, M, K)
        self.root = intermediate_bounds(graph, x0, ball)
        self.layers = _relu_inputs(graph)
        self.offsets, total = {}, 0
        for k in self.layers:
            n = self.root[k][0][0].numel()
            self.offsets[k] = (total, total + n)
            total += n
        self.width = total

    def bound(self, splits: torch.Tensor) -> Tuple[torch.Tensor, List[Box], torch.Tensor]:
        """Lower bounds (D, M) of the rows on each domain, its boxes, and which domains are empty."""
        D = splits.shape[0]
        x0 = self.x0.expand((D,) + tuple(self.x0.shape[1:]))
        lo, hi = self.ball.box(x0)
        tighter: List[Optional[Box]] = [None] * len(self.graph.nodes)
        empty = torch.zeros(D, dtype=torch.bool, device=x0.device)
        boxes = interval_bounds(self.graph, lo, hi)
        for i, k in enumerate(self.layers):
            shape = self.graph.nodes[k].shape
            rl, ru = self.root[k]
            if i == 0:  # the first ReLU layer's bounds depend on no split: reuse the root's
                l, u = rl.expand_as(boxes[k][0]), ru.expand_as(boxes[k][1])
            else:
                n = rl[0].numel()
                low = _lower(self.graph, k, _identity_spec(shape, D, x0), boxes, x0, self.ball)
                l = torch.maximum(low[:, :n].reshape(boxes[k][0].shape), rl)
                u = torch.minimum(-low[:, n:].reshape(boxes[k][0].shape), ru)
            a, z = self.offsets[k]
            s = splits[:, a:z].reshape(l.shape)
            l = torch.where(s > 0, l.clamp(min=0), l)
            u = torch.where(s < 0, u.clamp(max=0), u)
            empty |= (l > u).flatten(1).any(1)
            tighter[k] = (l, torch.maximum(u, l))
            boxes = interval_bounds(self.graph, lo, hi, tighter=tighter)
        A = self.C.expand((D,) + tuple(self.C.shape[1:]))
        out_shape = self.graph.nodes[self.graph.output].shape
        low = _lower(self.graph, self.graph.output, A.reshape((D, A.shape[1]) + tuple(out_shape)), boxes, x0,
                     self.ball)
        return low, boxes, empty

    def scores(self, splits: torch.Tensor, boxes: List[Box], low: torch.Tensor) -> torch.Tensor:
        """Branching score per (domain, neuron); -inf where the neuron is stable or already split."""
        D = splits.shape[0]
        worst = (low - self.b).argmax(1)  # the row closest to closing the domain
        A = self.C[0][worst]  # (D, K)
        out_shape = self.graph.nodes[self.graph.output].shape
        coeffs = _backward_coefficients(self.graph, A.reshape((D, 1) + tuple(out_shape)), boxes, self.layers)
        out = torch.full((D, self.width), -float("inf"), dtype=low.dtype, device=low.device)
        for k in self.layers:
            a, z = self.offsets[k]
            l, u = boxes[k][0].flatten(1), boxes[k][1].flatten(1)
            unstable = (l < 0) & (u > 0) & (splits[:, a:z] == 0)
            gap = (-l * u / (u - l).clamp_min(1e-12))
            weight = coeffs[k].flatten(1).abs() if k in coeffs else torch.ones_like(gap)
            out[:, a:z] = torch.where(unstable, gap * (weight + 1e-6), out[:, a:z])
        return out


def _backward_coefficients(graph: Graph, A: torch.Tensor, boxes: List[Box], stops: List[int]) -> dict:
    """The backward coefficients CROWN puts on each ReLU input (node in ``stops``), for the scores."""
    pending = {graph.output: A}
    found = {}
    for k in range(graph.output, 0, -1):
        if k not in pending:
            continue
        node = graph.nodes[k]
        a = pending.pop(k)
        if k in stops:
            found[k] = a[:, 0]
        ins, _ = node.layer.backward(a, [boxes[j] for j in node.inputs], None)  # type: ignore[union-attr]
        for j, aj in zip(node.inputs, ins):
            pending[j] = pending[j] + aj if j in pending else aj
    return found


def bab(graph: Graph, x0: torch.Tensor, ball: LpBall, A: torch.Tensor, b: torch.Tensor, *, deadline: float,
        batch: int = 64, max_domains: int = 200_000) -> BabStats:
    """Prove ``min over the box of (A y)_k > b_k`` for some row ``k`` on every domain (i.e. ``A y <= b``
    is unreachable), by ReLU-split branch and bound. ``x0``/``ball`` define the box (batch of one)."""
    start = time.perf_counter()
    prob = _Problem(graph, x0, ball, A, b)
    queue = torch.zeros((1, prob.width), dtype=torch.int8, device=x0.device)
    done = 0
    biggest = 1
    while queue.shape[0]:
        if time.perf_counter() >= deadline:
            return BabStats(False, done, biggest, time.perf_counter() - start, "time is up")
        take, queue = queue[:batch], queue[batch:]
        low, boxes, empty = prob.bound(take)
        done += take.shape[0]
        closed = empty | (low > prob.b).any(1)
        open_ = ~closed
        if not bool(open_.any()):
            continue
        take, low = take[open_], low[open_]
        boxes = [(l[open_], u[open_]) for l, u in boxes]
        score = prob.scores(take, boxes, low)
        best = score.argmax(1)
        if bool(torch.isinf(score.gather(1, best[:, None])).any()):
            return BabStats(False, done, biggest, time.perf_counter() - start,
                            "a domain with every ReLU fixed is still open")
        pos, neg = take.clone(), take.clone()
        rows = torch.arange(take.shape[0], device=take.device)
        pos[rows, best] = 1
        neg[rows, best] = -1
        queue = torch.cat([pos, neg, queue])  # depth first: children before older domains
        biggest = max(biggest, queue.shape[0])
        if queue.shape[0] > max_domains:
            return BabStats(False, done, biggest, time.perf_counter() - start, "too many open domains")
    return BabStats(True, done, biggest, time.perf_counter() - start)


def prove_rows(graph: Graph, x0: torch.Tensor, ball: LpBall, A: torch.Tensor, b: torch.Tensor, *,
               deadline: float, batch: int = 64) -> bool:
    """Whether :func:`bab` proves that no input of the box reaches ``A y <= b``."""
    return bab(graph, x0, ball, A, b, deadline=deadline, batch=batch).proved
