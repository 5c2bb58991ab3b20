"""CROWN: backward linear bound propagation (Zhang et al. 2018), with optional optimised slopes
(alpha-CROWN, Xu et al. 2021).

To bound ``c . f(x)`` from below, a linear function of the output is carried backwards through the graph;
each layer replaces it by a linear function of its input that is no larger on the current bounds (affine
layers exactly, ReLU/MaxPool through their linear relaxations). At the input, the linear function is
minimised over the ball in closed form: over the box ``lo <= x <= hi`` (ball ∩ domain; exact for linf) and,
for l2/l1, also over the ball itself with the dual norm (``a.x0 - eps ||a||_2`` resp. ``||a||_inf``); the
larger of the two lower bounds is kept (both are sound).

Intermediate bounds: the input of every ReLU/MaxPool is bounded the same way, layer by layer, and
intersected with its interval bound. Upper bounds are lower bounds of ``-c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..graph import Graph
from ..layers.base import Box
from ..spec import LpBall, bound_rows
from .ascent import Best, ascend
from .ibp import interval_bounds

#: Largest number of elements in one batch of coefficient tensors (batches are split to stay below).
CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class CrownResult:
    """``lower``/``upper`` bound ``spec @ f(x)`` (B, M); ``boxes`` are the bounds used for every node."""

    lower: torch.Tensor
    upper: torch.Tensor
    boxes: list[Box]


def backward(graph: Graph, start: int, A: torch.Tensor, boxes: list[Box],
             alphas: dict[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients on the input and constant (B, M) with ``sum(A * node[start]) >= A_in . x + const``."""
    pending: dict[int, torch.Tensor] = {start: A}
    const = A.new_zeros(A.shape[:2])
    for k in range(start, 0, -1):
        if k not in pending:
            continue
        node = graph.nodes[k]
        assert node.layer is not None
        relax = {"alpha": alphas[k]} if alphas is not None and k in alphas else None
        ins, c = node.layer.backward(pending.pop(k), [boxes[j] for j in node.inputs], relax)
        const = const + c
        for j, a in zip(node.inputs, ins):
            pending[j] = pending[j] + a if j in pending else a
    A_in = pending.get(0, A.new_zeros(A.shape[:2] + boxes[0][0].shape[1:]))
    return A_in, const


def concretize(A_in: torch.Tensor, const: torch.Tensor, x0: torch.Tensor, ball: LpBall, box: Box) -> torch.Tensor:
    """Minimum of ``A_in . x + const`` over the ball ∩ domain (a sound lower bound, shape (B, M))."""
    a = A_in.flatten(2)
    lo, hi = box[0].flatten(1).unsqueeze(2), box[1].flatten(1).unsqueeze(2)
    best = const + (a.clamp(min=0) @ lo + a.clamp(max=0) @ hi).squeeze(2)
    if ball.norm != "linf":
        centre = (a @ x0.flatten(1).unsqueeze(2)).squeeze(2)
        dual = a.norm(dim=2) if ball.norm == "l2" else a.abs().amax(dim=2)
        best = torch.maximum(best, const + centre - ball.eps * dual)
    return best


def _lower(graph: Graph, start: int, A: torch.Tensor, boxes: list[Box], x0: torch.Tensor, ball: LpBall,
           alphas: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    A_in, const = backward(graph, start, A, boxes, alphas)
    return concretize(A_in, const, x0, ball, boxes[0])


def intermediate_bounds(graph: Graph, x0: torch.Tensor, ball: LpBall) -> list[Box]:
    """Bounds of every node: CROWN on each input of a ReLU/MaxPool (intersected with IBP), IBP elsewhere.

    Work saved without losing tightness: a node that is one affine layer applied to the input keeps its
    interval bound for linf balls (exact there); when every consumer of a node says which of its bounds
    its rule depends on (``Layer.bounded_inputs``: a ReLU, only its unstable neurons), CROWN bounds only those.
    """
    from ..layers.base import AffineLayer

    lo, hi = ball.box(x0)
    boxes = interval_bounds(graph, lo, hi)
    users: dict[int, list[int]] = {}
    for k, nd in enumerate(graph.nodes):
        for j in nd.inputs:
            users.setdefault(j, []).append(k)
    needs = sorted({j for n in graph.nodes[1:] if n.layer is not None and n.layer.nonlinear for j in n.inputs})
    tighter: list[Box | None] = [None] * len(graph.nodes)
    for k in needs:
        node = graph.nodes[k]
        if k == 0 or (ball.norm == "linf" and isinstance(node.layer, AffineLayer) and node.inputs == (0,)):
            continue
        l0, u0 = boxes[k][0].flatten(1), boxes[k][1].flatten(1)
        n = l0.shape[1]
        needed: torch.Tensor | None = torch.zeros_like(l0, dtype=torch.bool)
        for user in users.get(k, []):
            layer = graph.nodes[user].layer
            mask = None if layer is None else layer.bounded_inputs(boxes[k])
            if mask is None or needed is None:
                needed = None
                break
            needed = needed | mask.flatten(1)
        idx = torch.arange(n, device=l0.device) if needed is None else torch.nonzero(needed.any(0)).flatten()
        if idx.numel() == 0:
            continue
        rows = bound_rows(n, idx, like=x0).reshape((2 * idx.numel(),) + tuple(node.shape))
        spec = rows.unsqueeze(0).expand((x0.shape[0],) + tuple(rows.shape))
        low = _lower(graph, k, spec, boxes, x0, ball)
        l, u = l0.clone(), u0.clone()
        r = idx.numel()
        l[:, idx] = torch.maximum(l[:, idx], low[:, :r])
        u[:, idx] = torch.minimum(u[:, idx], -low[:, r:])
        tighter[k] = (l.reshape(boxes[k][0].shape), u.reshape(boxes[k][1].shape))
        boxes = interval_bounds(graph, lo, hi, tighter=tighter)
    return boxes


def crown(graph: Graph, x0: torch.Tensor, ball: LpBall, spec: torch.Tensor, *, alpha_steps: int = 0,
          boxes: list[Box] | None = None) -> CrownResult:
    """Bounds on ``spec @ f(x)`` for ``x`` in the ball around each row of ``x0``; ``spec`` is (B, M, K).

    ``alpha_steps > 0`` optimises the lower ReLU slopes of the last backward pass with Adam (alpha-CROWN;
    intermediate bounds stay those of plain CROWN). Every iterate is sound; the best one is kept.
    Work is split into batches of samples so memory stays bounded.
    """
    B = x0.shape[0]
    widest = max(max(n.shape and _numel(n.shape) or 1 for n in graph.nodes), spec.shape[1])
    step = max(1, CHUNK_ELEMENTS // (2 * widest * widest))
    if B > step:
        parts = [crown(graph, x0[i:i + step], ball, spec[i:i + step], alpha_steps=alpha_steps,
                       boxes=None if boxes is None else [(l[i:i + step], u[i:i + step]) for l, u in boxes])
                 for i in range(0, B, step)]
        merged = [(torch.cat([p.boxes[k][0] for p in parts]), torch.cat([p.boxes[k][1] for p in parts]))
                  for k in range(len(graph.nodes))]
        return CrownResult(torch.cat([p.lower for p in parts]), torch.cat([p.upper for p in parts]), merged)
    if boxes is None:
        boxes = intermediate_bounds(graph, x0, ball)
    out = graph.output
    out_shape = graph.nodes[out].shape
    full = torch.cat([spec, -spec], dim=1).reshape((B, 2 * spec.shape[1]) + tuple(out_shape))
    low = _lower(graph, out, full, boxes, x0, ball)
    if alpha_steps > 0:
        low = torch.maximum(low, _optimise(graph, out, full, boxes, x0, ball, alpha_steps))
    M = spec.shape[1]
    return CrownResult(low[:, :M], -low[:, M:], boxes)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _optimise(graph: Graph, out: int, A: torch.Tensor, boxes: list[Box], x0: torch.Tensor, ball: LpBall,
              steps: int) -> torch.Tensor:
    """alpha-CROWN: gradient ascent on the optimisable relaxation parameters of every layer that has some
    (``Layer.relax_init``: a ReLU's per-(sample, spec row, neuron) lower slopes)."""
    alphas: dict[int, torch.Tensor] = {}
    for k, node in enumerate(graph.nodes):
        init = None if node.layer is None else node.layer.relax_init(boxes[node.inputs[0]], A.shape[1])
        if init is not None:
            alphas[k] = init
    if not alphas:
        return _lower(graph, out, A, boxes, x0, ball)
    best = Best()

    def project() -> None:
        for a in alphas.values():
            a.clamp_(0.0, 1.0)

    ascend([(a, 0.1) for a in alphas.values()], lambda: _lower(graph, out, A, boxes, x0, ball, alphas),
           steps=steps, project=project, seen=best)
    with torch.no_grad():
        best(_lower(graph, out, A, boxes, x0, ball, alphas))
    assert best.value is not None
    return best.value
