"""beta-CROWN bounds of many ReLU-split sub-domains at once (Wang et al. 2021), on a :class:`DenseMLP`.

A *domain* fixes the sign of some ReLU pre-activations (``s z >= 0`` with ``s`` in {-1, +1}). Its
pre-activation bounds are those of the whole box (computed once, :func:`~robustest.certify.mlp.root_bounds`)
clamped at its split neurons (``l = max(l, 0)`` for ``s = +1``, ``u = min(u, 0)`` for ``s = -1``): sound,
since a domain's inputs are a subset of the box's. A split neuron is then stable and exact in the backward
pass. The split constraints themselves enter through Lagrangian terms ``- beta s z`` with ``beta >= 0``:
on the domain ``s z >= 0``, so subtracting them never raises the objective there, and the lower bound of the
result over the whole box is a lower bound over the domain. The lower slopes ``alpha`` of the unstable
neurons (any value in [0, 1] is sound) and ``beta`` are optimised jointly by projected Adam steps; every
iterate is a sound bound and the best one per domain is kept.

Shapes: ``D`` domains, ``M`` rows per property, ``N`` ReLU neurons in all (layers concatenated).

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.mlp import dense_mlp, root_bounds
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = dense_mlp(read_model(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)).eval(),
    ...                            torch.zeros(1, 2)))
    >>> lo, hi = -torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    >>> ls, us = root_bounds(net, lo, hi)
    >>> C = torch.ones(1, 1, 1, dtype=torch.float64)
    >>> st = DomainBatch.root(ls, us, C.shape[1], 1)
    >>> out = bound(net, ls, us, lo, hi, C, st, iters=5)
    >>> out.lower.shape
    torch.Size([1, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .ascent import Best, ascend
from .mlp import DenseMLP, backward, concretize


@dataclass
class DomainBatch:
    """The state of ``D`` domains: split signs (D, N) int8, slopes and multipliers (D, M, N) float32
    (kept between rounds to warm-start the children), and which property each domain belongs to."""

    splits: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    prop: torch.Tensor

    @staticmethod
    def root(ls: list[torch.Tensor], us: list[torch.Tensor], M: int, P: int) -> DomainBatch:
        """One unsplit domain per property, slopes at CROWN's adaptive choice, multipliers at 0."""
        l, u = torch.cat(ls), torch.cat(us)
        N = l.numel()
        alpha = (u > -l).float().expand(P, M, N).clone()
        dev = l.device
        return DomainBatch(torch.zeros(P, N, dtype=torch.int8, device=dev), alpha,
                           torch.zeros(P, M, N, device=dev), torch.arange(P, device=dev))

    def __len__(self) -> int:
        return int(self.splits.shape[0])

    def take(self, idx: torch.Tensor) -> DomainBatch:
        return DomainBatch(self.splits[idx], self.alpha[idx], self.beta[idx], self.prop[idx])

    @staticmethod
    def cat(parts: list[DomainBatch]) -> DomainBatch:
        return DomainBatch(torch.cat([p.splits for p in parts]), torch.cat([p.alpha for p in parts]),
                           torch.cat([p.beta for p in parts]), torch.cat([p.prop for p in parts]))


@dataclass(frozen=True)
class Bounded:
    """``lower`` (D, M) sound lower bounds; ``coeffs`` the backward coefficients on each ReLU layer's output
    (D, M, N) (branching scores, multiplier warm starts); ``points`` the box corners minimising each row's linear
    bound (D, M, n0), candidate counterexamples; ``alpha``/``beta`` (D, M, N) the slopes and multipliers that
    gave ``lower`` (to re-evaluate it, e.g. in float64)."""

    lower: torch.Tensor
    coeffs: torch.Tensor | None
    points: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor


def layer_bounds(ls: list[torch.Tensor], us: list[torch.Tensor], splits: torch.Tensor
                 ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer, the root bounds clamped at each domain's splits (D, n_i)."""
    out_l, out_u = [], []
    a = 0
    for l, u in zip(ls, us):
        s = splits[:, a:a + l.numel()]
        a += l.numel()
        out_l.append(torch.where(s > 0, l.clamp(min=0), l))
        out_u.append(torch.where(s < 0, u.clamp(max=0), u))
    return out_l, out_u


def _split(t: torch.Tensor, widths: list[int]) -> list[torch.Tensor]:
    return list(torch.split(t, widths, dim=-1))


def _evaluate(net: DenseMLP, C: torch.Tensor, dl: list[torch.Tensor], du: list[torch.Tensor],
              alpha: torch.Tensor, beta_s: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, keep: bool
              ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    widths = net.widths
    L = len(net.weights)
    A = C @ net.weights[-1]  # on h_{L-1}
    const = C @ net.biases[-1]
    # the output layer's bias and weight are applied here; `backward` starts at the last ReLU layer
    Ax, c, kept = _backward_from_h(net, L - 1, A, const, dl, du, _split(alpha, widths), _split(beta_s, widths),
                                   keep)
    return concretize(Ax, c, lo, hi), Ax, kept


def _backward_from_h(net: DenseMLP, k: int, A: torch.Tensor, const: torch.Tensor, dl: list[torch.Tensor],
                     du: list[torch.Tensor], alphas: list[torch.Tensor], betas: list[torch.Tensor], keep: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """``A`` on ``h_k``: relax ReLU ``k``, add its Lagrangian term, then continue with :func:`backward`."""
    from .mlp import relax

    kept = [A] if keep else []
    A, c = relax(A, dl[k - 1], du[k - 1], alphas[k - 1], net.slope(k - 1))
    A = A - betas[k - 1]
    Ax, const, more = backward(net, k, A, const + c, dl, du, alphas, betas, keep)
    return Ax, const, kept + more


def bound(net: DenseMLP, ls: list[torch.Tensor], us: list[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor,
          C: torch.Tensor, state: DomainBatch, *, iters: int = 10, lr_alpha: float = 0.1, lr_beta: float = 0.05,
          keep: bool = False, optimise: bool = True, carry: str = "last", deadline: float = float("inf"),
          ascent_dtype: torch.dtype | None = torch.float32) -> Bounded:
    """Lower bounds of ``C[d] @ f(x)`` (C (D, M, K)) over each domain of ``state``; with ``optimise``,
    ``iters`` projected Adam steps on alpha and beta, whose best values are written back into ``state``.
    ``keep`` also returns the branching coefficients. ``carry``: which iterate's slopes and multipliers
    are written back ("last": the optimisation goes on in the children from where it stopped, measured
    to close more domains than "best" on mnist_fc; the returned bound is the better of the last and the
    best iterate anyway). The steps stop at ``deadline`` (every iterate's bound is sound, so fewer steps
    only loosen it).

    ``ascent_dtype``: the dtype of the Adam steps (None: the bounds' own). The steps only choose alpha and
    beta (any alpha in [0, 1] and beta >= 0 gives a sound bound); the bounds returned are evaluated in the
    dtype of ``lo`` from the chosen values (the last iterate and the best one, which the steps rank in
    ``ascent_dtype``). float32 steps: 1.75x faster than float64 ones on mnist_fc 256x6 (one CPU core,
    ``benchmarks/bab_step.py``)."""
    dtype = lo.dtype
    dl, du = layer_bounds(ls, us, state.splits)
    sign = state.splits.to(dtype).unsqueeze(1)  # (D, 1, N)
    alpha = state.alpha.to(dtype)
    beta = state.beta.to(dtype) * (sign != 0)
    D, M = C.shape[:2]
    candidates = []  # (alpha, beta) whose bounds are evaluated in `dtype` below, the last iterate's first
    if optimise and iters > 0:
        step = dtype if ascent_dtype is None else ascent_dtype
        alpha, beta = alpha.to(step).clone(), beta.to(step).clone()
        sign_s = sign.to(step)
        seen = Best(torch.full((D, M), -float("inf"), dtype=step, device=C.device), track=(alpha, beta))
        net_s, C_s, lo_s, hi_s = net.cast(step), C.to(step), lo.to(step), hi.to(step)
        dl_s, du_s = [t.to(step) for t in dl], [t.to(step) for t in du]

        def project() -> None:
            alpha.clamp_(0.0, 1.0)
            beta.clamp_(min=0.0)
            beta.mul_(sign_s != 0)

        ascend([(alpha, lr_alpha), (beta, lr_beta)],
               lambda: _evaluate(net_s, C_s, dl_s, du_s, alpha, beta * sign_s, lo_s, hi_s, False)[0],
               steps=iters, project=project, seen=seen, deadline=deadline)
        best_a, best_b = seen.args
        alpha, beta = alpha.detach(), beta.detach()
        if carry == "best":
            alpha, beta = best_a, best_b
        state.alpha, state.beta = alpha.float(), beta.float()
        if not (torch.equal(best_a, alpha) and torch.equal(best_b, beta)):
            candidates.append((best_a.to(dtype), best_b.to(dtype)))
        alpha, beta = alpha.to(dtype), beta.to(dtype)
    with torch.no_grad():
        low, Ax, kept = _evaluate(net, C, dl, du, alpha, beta * sign, lo, hi, keep)
        best, arg_a, arg_b = low, alpha, beta
        for a, b_ in candidates:
            other = _evaluate(net, C, dl, du, a, b_ * sign, lo, hi, False)[0]
            m = (other > best).unsqueeze(2)
            best = torch.maximum(best, other)
            arg_a, arg_b = torch.where(m, a, arg_a), torch.where(m, b_, arg_b)
        points = torch.where(Ax > 0, lo, hi)
        coeffs = None
        if keep:
            coeffs = torch.cat(list(reversed(kept)), dim=2)  # (D, M, N), first layer first
    return Bounded(best, coeffs, points, arg_a.float(), arg_b.float())
