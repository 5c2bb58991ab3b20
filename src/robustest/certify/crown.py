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

import time
from dataclasses import dataclass

import torch

from ..graph import Graph
from ..layers.base import Box
from ..spec import LpBall, bound_rows
from .ascent import Best, ascend
from .ibp import interval_bounds

#: Largest number of elements in one batch of coefficient tensors (batches are split to stay below).
CHUNK_ELEMENTS = 1 << 24
#: Largest number of coefficients of one chunk of intermediate-bound rows: small enough that a chunk takes
#: a fraction of a second (the deadline is checked between chunks), large enough to amortise its overhead.
ROW_CHUNK_ELEMENTS = 1 << 21


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


def intermediate_bounds(graph: Graph, x0: torch.Tensor, ball: LpBall, *,
                        deadline: float = float("inf")) -> list[Box]:
    """Bounds of every node: CROWN on each input of a ReLU/MaxPool (intersected with IBP), IBP elsewhere.

    The rows bounded at once are chunked (:data:`ROW_CHUNK_ELEMENTS` coefficients at most: a conv layer of
    23k neurons would need 46k x 23k of them) and ``deadline`` (``time.perf_counter()``) is checked before
    each chunk: no chunk starts that the last one's duration says would end past it (the output pass still
    has to follow). The neurons not reached keep their interval bounds (sound, looser).

    Work saved without losing tightness: a node whose interval bound is exact keeps it (for linf balls: one
    affine layer applied to the input, and a monotone elementwise layer, :attr:`Layer.monotone`, of an
    exact node: a conv's ReLU); when every consumer of a node says which of its bounds
    its rule depends on (``Layer.bounded_inputs``: a ReLU, only its unstable neurons), CROWN bounds only those.
    """

    lo, hi = ball.box(x0)
    boxes = interval_bounds(graph, lo, hi)
    users: dict[int, list[int]] = {}
    for k, nd in enumerate(graph.nodes):
        for j in nd.inputs:
            users.setdefault(j, []).append(k)
    needs = sorted({j for n in graph.nodes[1:] if n.layer is not None and n.layer.nonlinear for j in n.inputs})
    tighter: list[Box | None] = [None] * len(graph.nodes)
    last = 0.0  # seconds the last chunk took
    exact = _exact_nodes(graph, ball)
    for k in needs:
        if time.perf_counter() + last >= deadline:
            break
        node = graph.nodes[k]
        if k in exact:
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
        l, u = l0.clone(), u0.clone()
        widest = max(_numel(nd.shape) for nd in graph.nodes[:k + 1])
        per = max(1, ROW_CHUNK_ELEMENTS // (2 * x0.shape[0] * widest))
        for s in range(0, idx.numel(), per):
            t0 = time.perf_counter()
            if t0 + last >= deadline:
                break
            part = idx[s:s + per]
            r = part.numel()
            rows = bound_rows(n, part, like=x0).reshape((2 * r,) + tuple(node.shape))
            spec = rows.unsqueeze(0).expand((x0.shape[0],) + tuple(rows.shape))
            low = _lower(graph, k, spec, boxes, x0, ball)
            l[:, part] = torch.maximum(l[:, part], low[:, :r])
            u[:, part] = torch.minimum(u[:, part], -low[:, r:])
            last = time.perf_counter() - t0
        tighter[k] = (l.reshape(boxes[k][0].shape), u.reshape(boxes[k][1].shape))
        boxes = interval_bounds(graph, lo, hi, tighter=tighter)
    return boxes


def _exact_nodes(graph: Graph, ball: LpBall) -> set[int]:
    """The nodes whose interval bounds are exact (every end reached by some input of the ball)."""
    from ..layers.base import AffineLayer

    exact = {0}
    if ball.norm != "linf":
        return exact
    for k, node in enumerate(graph.nodes[1:], start=1):
        affine_of_input = isinstance(node.layer, AffineLayer) and node.inputs == (0,)
        monotone_of_exact = node.layer is not None and node.layer.monotone and len(node.inputs) == 1 \
            and node.inputs[0] in exact
        if affine_of_input or monotone_of_exact:
            exact.add(k)
    return exact


def crown(graph: Graph, x0: torch.Tensor, ball: LpBall, spec: torch.Tensor, *, alpha_steps: int = 0,
          boxes: list[Box] | None = None, deadline: float = float("inf")) -> CrownResult:
    """Bounds on ``spec @ f(x)`` for ``x`` in the ball around each row of ``x0``; ``spec`` is (B, M, K).

    ``alpha_steps > 0`` optimises the lower ReLU slopes of the last backward pass with Adam (alpha-CROWN;
    intermediate bounds stay those of plain CROWN). Every iterate is sound; the best one is kept.
    Work is split into batches of samples so memory stays bounded. ``deadline`` (``time.perf_counter()``)
    cuts the intermediate bounds short (:func:`intermediate_bounds`) and the alpha steps; the result stays
    sound, only looser.
    """
    B = x0.shape[0]
    widest = max(max(n.shape and _numel(n.shape) or 1 for n in graph.nodes), spec.shape[1])
    step = max(1, CHUNK_ELEMENTS // (2 * widest * widest))
    if B > step:
        parts = [crown(graph, x0[i:i + step], ball, spec[i:i + step], alpha_steps=alpha_steps,
                       boxes=None if boxes is None else [(l[i:i + step], u[i:i + step]) for l, u in boxes],
                       deadline=deadline)
                 for i in range(0, B, step)]
        merged = [(torch.cat([p.boxes[k][0] for p in parts]), torch.cat([p.boxes[k][1] for p in parts]))
                  for k in range(len(graph.nodes))]
        return CrownResult(torch.cat([p.lower for p in parts]), torch.cat([p.upper for p in parts]), merged)
    if boxes is None:
        boxes = intermediate_bounds(graph, x0, ball, deadline=deadline)
    out = graph.output
    out_shape = graph.nodes[out].shape
    full = torch.cat([spec, -spec], dim=1).reshape((B, 2 * spec.shape[1]) + tuple(out_shape))
    low = _lower(graph, out, full, boxes, x0, ball)
    if alpha_steps > 0:
        low = _optimise(graph, out, full, boxes, x0, ball, alpha_steps, deadline, plain=low)
    M = spec.shape[1]
    return CrownResult(low[:, :M], -low[:, M:], boxes)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _optimise(graph: Graph, out: int, A: torch.Tensor, boxes: list[Box], x0: torch.Tensor, ball: LpBall,
              steps: int, deadline: float, *, plain: torch.Tensor) -> torch.Tensor:
    """alpha-CROWN: gradient ascent on the optimisable relaxation parameters of every layer that has some
    (``Layer.relax_init``: a ReLU's per-(sample, spec row, neuron) lower slopes), from the ``plain`` CROWN
    bound; no step starts after ``deadline``."""
    alphas: dict[int, torch.Tensor] = {}
    for k, node in enumerate(graph.nodes):
        init = None if node.layer is None else node.layer.relax_init(boxes[node.inputs[0]], A.shape[1])
        if init is not None:
            alphas[k] = init
    if not alphas or time.perf_counter() >= deadline:
        return plain
    best = Best(plain)

    def project() -> None:
        for a in alphas.values():
            a.clamp_(0.0, 1.0)

    ascend([(a, 0.1) for a in alphas.values()], lambda: _lower(graph, out, A, boxes, x0, ball, alphas),
           steps=steps, project=project, seen=best, deadline=deadline)
    with torch.no_grad():
        best(_lower(graph, out, A, boxes, x0, ball, alphas))
    assert best.value is not None
    return best.value
