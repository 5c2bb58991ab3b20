"""Branch and bound over sub-boxes of the input box, for networks with few inputs (ACAS Xu has 5).

Goal, as in :mod:`robustest.certify.bab`: no input of the box reaches a polytope ``A_p y <= b_p``. A
*domain* is a sub-box and one polytope; it is closed when some row ``k`` has a sound lower bound
``min (A_p y)_k > (b_p)_k`` over the sub-box. The two halves of a split cover the parent, so when every
domain is closed the property holds on the whole box.

With few inputs, halving the box shrinks every intermediate bound quickly, while a ReLU split (the other
BaB) fixes one of hundreds of neurons at a time. Each round takes the ``batch`` open domains with the worst
margins, halves each along the input dimension with the largest ``|a_i| (hi_i - lo_i)`` (``a`` the CROWN
coefficients of the row closest to closing: the dimension that loosens the linear bound most), and bounds all
children at once: CROWN intermediate bounds per sub-box (:func:`~robustest.certify.mlp.root_bounds`
batched), then the rows' bound through CROWN with the adaptive slopes, or, for ``alpha_steps > 0``, the best
of a few projected Adam steps on the slopes (every iterate is sound). Each child's centre and the box corners
minimising its linear bounds are run through the network: one inside its polytope is returned as a
counterexample candidate (re-checked by the caller).

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.mlp import dense_mlp
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = dense_mlp(read_model(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)).eval(),
    ...                            torch.zeros(1, 2)))
    >>> lo, hi = -torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    >>> ys = net.forward(lo + (hi - lo) * torch.rand(1000, 2, dtype=torch.float64))
    >>> C, b = torch.ones(1, 1, 1, dtype=torch.float64), (ys.min() - 0.05).reshape(1, 1)
    >>> input_split(net, lo, hi, C, b, deadline=float("inf")).proved   # f > min - 0.05 on the box
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..schedules import InputSplit
from .ascent import Best, ascend
from .bab import CANDIDATE_MARGIN, PROOF_TOLERANCE, BabStats
from .mlp import DenseMLP, backward, concretize, root_bounds

__all__ = ["DomainGuard", "input_split"]


@dataclass(frozen=True)
class DomainGuard:
    """The rounding guard of a guarded task, per sub-box. ``slack`` (P, M): what each row clears on the
    whole box (already added to ``b``); ``of(lo, hi, prop, pre)``: a sound bound (D, M) of the rows'
    rounding on the sub-boxes ``[lo, hi]`` (D, n0) of polytopes ``prop`` (D,), given CROWN's bounds ``pre``
    of each ReLU layer's pre-activation there (``(ls, us)``, each (D, n_k)); much smaller on small boxes."""

    slack: torch.Tensor
    of: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, tuple[list[torch.Tensor], list[torch.Tensor]]],
                 torch.Tensor]

    def regain(self, out: _Bounded, exact: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, prop: torch.Tensor
               ) -> torch.Tensor:
        """The domains' margins (D,), raised where the whole box's slack kept a domain open that its own
        closes: ``max_k low_k - exact_k - min(slack_k, of_k)``, ``exact`` (D, M) the right-hand sides
        without the slack (``b - slack``)."""
        near = (out.margin <= PROOF_TOLERANCE) & ((out.low - exact).amax(1) > PROOF_TOLERANCE)
        if not bool(near.any()):
            return out.margin
        idx = near.nonzero().flatten()
        pre = ([x[idx] for x in out.pre[0]], [x[idx] for x in out.pre[1]])
        own = torch.minimum(self.of(lo[idx], hi[idx], prop[idx], pre).to(exact), self.slack[prop[idx]])
        margin = out.margin.clone()
        margin[idx] = torch.maximum(margin[idx], (out.low[idx] - exact[idx] - own).amax(1))
        return margin


@dataclass(frozen=True)
class _Bounded:
    margin: torch.Tensor  # (D,) max over rows of (lower bound - b)
    coeffs: torch.Tensor  # (D, n0) the CROWN coefficients of the row closest to closing
    candidate: torch.Tensor | None
    low: torch.Tensor  # (D, M) the rows' lower bounds
    pre: tuple[list[torch.Tensor], list[torch.Tensor]]  # CROWN's bounds of every ReLU layer's input


def _bound(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, b: torch.Tensor,
           alpha_steps: int, reach: torch.Tensor | None = None) -> _Bounded:
    """Bounds of ``D`` domains (``lo``/``hi`` (D, n0), ``C`` (D, M, K), ``b`` (D, M)); a candidate must
    reach ``C y <= reach`` (default ``b``; a guarded task's exact right-hand sides)."""
    ls, us = root_bounds(net, lo, hi)
    L = len(net.weights)
    zero = C.new_zeros(C.shape[:2])
    Ax, c, _ = backward(net, L, C, zero, ls, us)
    low = concretize(Ax, c, lo, hi)
    if alpha_steps > 0 and L > 1:
        alphas = [(u > -l).to(lo.dtype).unsqueeze(1).expand(-1, C.shape[1], -1).clone() for l, u in zip(ls, us)]
        best = Best(low, track=alphas)
        ascend([(a, 0.1) for a in alphas], lambda: concretize(*backward(net, L, C, zero, ls, us, alphas)[:2], lo, hi),
               steps=alpha_steps, project=lambda: [a.clamp_(0.0, 1.0) for a in alphas], seen=best)
        with torch.no_grad():
            Ax, c, _ = backward(net, L, C, zero, ls, us, best.args)
        assert best.value is not None
        low = torch.maximum(concretize(Ax, c, lo, hi), best.value)
    gap = low - b
    row = gap.argmax(1)
    D = lo.shape[0]
    coeffs = Ax[torch.arange(D, device=Ax.device), row]
    # candidates: each row's minimising corner and the centre
    points = torch.cat([torch.where(Ax > 0, lo.unsqueeze(1), hi.unsqueeze(1)), ((lo + hi) / 2).unsqueeze(1)], 1)
    P = points.shape[1]
    ys = net.forward(points.reshape(D * P, -1)).reshape(D, P, -1)
    reach = b if reach is None else reach
    inside = ((ys @ C.transpose(1, 2)) - reach.unsqueeze(1) <= -CANDIDATE_MARGIN).all(-1)  # (D, P)
    hit = inside.nonzero()
    cand = None if hit.shape[0] == 0 else points[hit[0, 0], hit[0, 1]].clone()
    return _Bounded(gap.amax(1), coeffs, cand, low, (ls, us))


def input_split(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, b: torch.Tensor, *,
                deadline: float, settings: InputSplit | None = None, guard: DomainGuard | None = None
                ) -> BabStats:
    """Prove that no ``x`` in ``[lo, hi]`` (flat, float64) has ``C[p] @ net(x) <= b[p]`` for any ``p``
    (``C`` (P, M, K), ``b`` (P, M); short polytopes padded with zero rows and ``b = inf``). Stops at
    ``deadline`` (perf_counter, checked every round; a round takes at most ``settings.round_seconds`` at
    the rate measured in the last one, and no more than the time left), at a counterexample candidate, or
    when the queue outgrows ``settings.max_domains`` (default :class:`~robustest.schedules.InputSplit`).
    ``guard``: ``b`` includes a rounding slack for the whole box, and each child that only that keeps open
    is judged on its own sub-box's slack (:class:`DomainGuard`)."""
    settings = settings or InputSplit()
    start = time.perf_counter()
    P = C.shape[0]
    qlo, qhi = lo.expand(P, -1).clone(), hi.expand(P, -1).clone()
    qprop = torch.arange(P, device=lo.device)
    reach = None if guard is None else b - guard.slack  # a candidate must violate the exact rows
    out = _bound(net, qlo, qhi, C, b, settings.root_alpha_steps, reach)
    done, biggest = P, P
    per_box = 1e-4  # seconds per child bounded: a first guess, then measured every round

    def stats(proved: bool, reason: str = "", candidate: torch.Tensor | None = None) -> BabStats:
        worst = torch.full((P,), PROOF_TOLERANCE, dtype=lo.dtype, device=lo.device)
        worst.scatter_reduce_(0, qprop, qmarg, "amin")
        return BabStats(proved, done, biggest, time.perf_counter() - start, reason, candidate, worst)

    qmarg, qcoef = out.margin, out.coeffs
    if out.candidate is not None:
        return stats(False, "counterexample", out.candidate)
    while True:
        open_ = qmarg <= PROOF_TOLERANCE
        qlo, qhi, qprop, qmarg, qcoef = qlo[open_], qhi[open_], qprop[open_], qmarg[open_], qcoef[open_]
        if qmarg.numel() == 0:
            return stats(True)
        if time.perf_counter() >= deadline:
            return stats(False, "time is up")
        if qmarg.numel() > settings.max_domains:
            return stats(False, "too many open domains")
        # as many domains as fit in one round of `round_seconds` (and in the time left), at the measured rate
        left = deadline - time.perf_counter()
        batch = max(1, min(settings.batch, int(min(settings.round_seconds, left) / (2 * per_box))))
        order = qmarg.argsort()
        take, rest = order[:batch], order[batch:]
        plo, phi, pprop, pcoef = qlo[take], qhi[take], qprop[take], qcoef[take]
        width = phi - plo
        dim = (pcoef.abs() * width).argmax(1)
        # a dimension with zero score everywhere (e.g. a bound that ignores the input): the widest one
        flat = (pcoef.abs() * width).amax(1) <= 0
        dim = torch.where(flat, width.argmax(1), dim)
        D = take.numel()
        rows = torch.arange(D, device=lo.device)
        mid = (plo[rows, dim] + phi[rows, dim]) / 2
        clo, chi = plo.repeat(2, 1), phi.repeat(2, 1)
        chi[rows, dim] = mid  # lower halves first
        clo[rows + D, dim] = mid
        cprop = pprop.repeat(2)
        t0 = time.perf_counter()
        exact = None if reach is None else reach[cprop]
        out = _bound(net, clo, chi, C[cprop], b[cprop], settings.alpha_steps, exact)
        if out.candidate is not None:
            return stats(False, "counterexample", out.candidate)
        margin = out.margin if guard is None or exact is None else guard.regain(out, exact, clo, chi, cprop)
        per_box = max((time.perf_counter() - t0) / (2 * D), 1e-6)
        done += 2 * D
        qlo, qhi = torch.cat([qlo[rest], clo]), torch.cat([qhi[rest], chi])
        qprop, qmarg, qcoef = torch.cat([qprop[rest], cprop]), torch.cat([qmarg[rest], margin]), \
            torch.cat([qcoef[rest], out.coeffs])
        biggest = max(biggest, int(qmarg.numel()))
