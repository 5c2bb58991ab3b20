"""Batched branch and bound over ReLU (and LeakyReLU) splits with beta-CROWN bounds, on the dense chain of
:mod:`.mlp` (affine/ReLU chains and residual graphs, :mod:`.dense_read`).

Goal: prove that no input of a box reaches a polytope ``A y <= b`` (several polytopes at once, e.g. the
disjuncts of a VNN-LIB property): a domain of polytope ``p`` is *closed* when some row ``k`` has a sound
lower bound ``min (A_p y)_k > (b_p)_k`` on it. Every input lies in one of the two children of a split, so
when every domain is closed the property holds on the whole box.

Each round takes the ``batch`` open domains with the worst margins, picks one unstable neuron per domain
(filtered smart branching: the few neurons with the largest BaBSR-like intercept score are tried, both
children bounded with the parent's slopes, and the neuron whose worse child is best wins), and bounds all
children at once with :func:`robustest.certify.beta_crown.bound` (slopes and multipliers warm-started
from the parent, a few Adam steps). The box corner minimising each child's linear bound is run through the
network: one that lands inside the polytope is returned as a counterexample candidate.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.spec import LpBall
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).eval()
    >>> g = read_model(net, torch.zeros(1, 2))
    >>> stats = bab(g, torch.zeros(1, 2, dtype=torch.float64), LpBall(0.1, "linf", None),
    ...             -torch.ones(1, 1, dtype=torch.float64), torch.full((1,), -1e3, dtype=torch.float64),
    ...             deadline=float("inf"))
    >>> stats.proved      # -f(x) > -1000, i.e. f(x) < 1000 on the box
    True
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from ..graph import Graph
from ..spec import LpBall
from .beta_crown import Bounded, DomainBatch, bound
from .leaf_lp import leaf_margin
from .mlp import DenseMLP, dense_mlp, root_bounds
from .queue import DomainQueue

__all__ = ["BabStats", "bab", "bab_mlp"]

log = logging.getLogger(__name__)

#: a row is proved when its lower bound exceeds the right-hand side by this much (float64 rounding of the
#: bound computation is far below it). The rounding of the model itself, which grows with the network, is
#: not this constant's job: a prover's task puts it into ``b`` (``ProofTask.guarded``,
#: :mod:`robustest.certify.float_error`).
PROOF_TOLERANCE = 1e-7
#: a counterexample candidate must be inside its polytope by this much (the verifier re-checks in float32).
CANDIDATE_MARGIN = 1e-4


@dataclass(frozen=True)
class BabStats:
    """What a run did: ``proved``, domains bounded, the largest queue, the seconds spent, why it stopped,
    and a candidate counterexample (flat input, float64) when one was found.

    ``worst`` (P,): per polytope, a sound lower bound of its margin ``max_k (A_p y - b_p)_k`` over the box,
    the smallest over its open domains (``PROOF_TOLERANCE`` once all are closed); ``dropped`` (P,): with
    ``drop_refuted``, the polytopes given up: a box point was found to reach it, or one of its domains has
    every ReLU fixed and its exact LP bound is still not above the tolerance (a tie at 0)."""

    proved: bool
    domains: int
    max_queue: int
    seconds: float
    reason: str = ""
    candidate: torch.Tensor | None = None
    worst: torch.Tensor | None = None
    dropped: torch.Tensor | None = None


def _scores(coeffs: torch.Tensor, l: torch.Tensor, u: torch.Tensor, splits: torch.Tensor) -> torch.Tensor:
    """BaBSR-like score per (domain, neuron): the intercept a split removes from the bound
    (``-min(a, 0) * (-l u / (u - l))``), plus a small share of ``|a| (u - l)`` to break ties; -inf where the
    neuron is stable or already split."""
    unstable = (l < 0) & (u > 0) & (splits == 0)
    icpt = -l * u / (u - l).clamp_min(1e-30)
    score = (-coeffs).clamp(min=0) * icpt + 1e-3 * coeffs.abs() * (u - l)
    return torch.where(unstable, score, torch.full_like(score, -float("inf")))


class _Search:
    def __init__(self, net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, b: torch.Tensor, *,
                 iters: int, root_iters: int, candidates: int, ls: list[torch.Tensor],
                 us: list[torch.Tensor]) -> None:
        self.net, self.lo, self.hi, self.C, self.b = net, lo, hi, C, b
        self.iters, self.root_iters, self.k = iters, root_iters, candidates
        self.ls, self.us = ls, us
        self.l, self.u = torch.cat(ls), torch.cat(us)
        carries = net.carries()
        if carries is not None:  # linear carries of skip connections (slope 1): never split, count as stable
            self.l = torch.where(carries, self.l.clamp(min=0), self.l)

    def margins(self, low: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
        return (low - self.b[prop]).amax(1)

    def margin_rows(self, low: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
        """Per domain, the row closest to closing it."""
        return (low - self.b[prop]).argmax(1)

    def hits(self, points: torch.Tensor, prop: torch.Tensor) -> torch.Tensor:
        """(D, M): whether each candidate point's outputs satisfy all rows of its polytope with room to spare."""
        D, M, n = points.shape
        with torch.no_grad():
            y = self.net.forward(points.reshape(D * M, n)).reshape(D, M, -1)
        val = (torch.einsum("dmk,dqk->dmq", y, self.C[prop]) - self.b[prop].unsqueeze(1)).amax(2)  # (D, M)
        return val < -CANDIDATE_MARGIN

    def counterexample(self, points: torch.Tensor, prop: torch.Tensor) -> torch.Tensor | None:
        """A point (flat) whose outputs satisfy all rows of its polytope with room to spare, or None."""
        hit = self.hits(points, prop).nonzero()
        if hit.shape[0] == 0:
            return None
        d, m = hit[0].tolist()
        return points[d, m].clone()

    def branch(self, state: DomainBatch) -> tuple[DomainBatch, torch.Tensor]:
        """The two children of every domain (positive halves first), and their margins from the parent's
        slopes (sound lower bounds already: children that close on them need no further work)."""
        D = len(state)
        dev = state.splits.device
        info = bound(self.net, self.ls, self.us, self.lo, self.hi, self.C[state.prop], state, keep=True,
                     optimise=False)
        assert info.coeffs is not None
        row = self.margin_rows(info.lower, state.prop)
        sc = _scores(info.coeffs[torch.arange(D, device=dev), row], self.l.expand(D, -1), self.u.expand(D, -1), state.splits)
        k = min(self.k, sc.shape[1])
        top = sc.topk(k, dim=1)
        cand = top.indices  # (D, k)
        # bab_mlp sets aside parents with no unstable neuron left (in float64); should float32 rounding hide
        # one, the split below is of a fixed neuron: its children still cover the parent, only wasted work
        valid = torch.isfinite(top.values)
        # try each candidate: 2k children per domain, bounded with the parent's slopes
        rep = state.take(torch.arange(D, device=dev).repeat_interleave(2 * k))
        rows = torch.arange(rep.splits.shape[0], device=dev)
        flat = cand.repeat_interleave(2, dim=1).reshape(-1)
        signs = torch.tensor([1, -1], dtype=torch.int8, device=dev).repeat(D * k)
        rep.splits = rep.splits.clone()
        rep.splits[rows, flat] = signs
        # Warm start of the new split's multiplier: the value that gives its neuron the same coefficient on
        # z as in the parent's relaxation (so the child's bound starts no worse than the parent's).
        a = info.coeffs.repeat_interleave(2 * k, dim=0)[rows, :, flat]  # (2Dk, M) coefficient on h_j
        al = rep.alpha[rows, :, flat].to(a.dtype)
        lj, uj = self.l[flat], self.u[flat]
        su = (uj / (uj - lj).clamp_min(1e-30)).unsqueeze(1)
        parent = torch.where(a >= 0, a * al, a * su)
        beta0 = torch.where(signs.unsqueeze(1) > 0, a - parent, parent).clamp(min=0)
        rep.beta = rep.beta.clone()
        rep.beta[rows, :, flat] = beta0.float()
        trial = bound(self.net, self.ls, self.us, self.lo, self.hi, self.C[rep.prop], rep, optimise=False)
        marg = self.margins(trial.lower, rep.prop).reshape(D, k, 2)
        worse = marg.amin(2).masked_fill(~valid, -float("inf"))
        pick = worse.argmax(1)  # (D,)
        chosen = (torch.arange(D, device=dev) * 2 * k + 2 * pick).repeat_interleave(2) + torch.tensor([0, 1], device=dev).repeat(D)
        children = rep.take(chosen)
        return children, marg.reshape(D, 2 * k)[torch.arange(D, device=dev).repeat_interleave(2),
                                                  (2 * pick).repeat_interleave(2) + torch.tensor([0, 1], device=dev).repeat(D)]


def bab_mlp(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, b: torch.Tensor, *,
            deadline: float, batch: int = 256, iters: int = 10, root_iters: int = 30, candidates: int = 3,
            max_domains: int = 100_000, root_alpha_steps: int = 0, lr_alpha: float = 0.1, lr_beta: float = 0.05,
            bounds: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None, drop_refuted: bool = False,
            spread: bool = False, precision: torch.dtype = torch.float32) -> BabStats:
    """Prove that no ``x`` in ``[lo, hi]`` (flat, float64) has ``C[p] @ net(x) <= b[p]`` for any ``p``
    (``C`` (P, M, K), ``b`` (P, M); pad short polytopes with zero rows and ``b = inf``).

    ``bounds``: precomputed root pre-activation bounds (else :func:`root_bounds`, with
    ``root_alpha_steps`` of alpha-CROWN per intermediate layer). Stops at ``deadline`` (perf_counter), at a
    counterexample candidate, or when the queue outgrows ``max_domains``. ``drop_refuted``: a polytope
    that a point reaches is dropped (marked in ``dropped``) and the search goes on with the others (for
    bounding many independent objectives at once, :mod:`robustest.certify.refine`). ``spread``: each round
    takes every polytope's worst domain before any polytope's second worst (even progress on all
    polytopes' ``worst`` bounds), instead of the worst domains overall.

    ``precision``: the dtype the search optimises and branches in (float32: 1.5x faster than float64 on
    CPU). Nothing rests on it: every bound the search keeps (for closing a domain, ordering the queue and
    the reported ``worst``) is the best iterate's slopes and multipliers re-evaluated in the dtype of
    ``lo`` (float64), one pass per domain."""
    ls, us = bounds if bounds is not None else root_bounds(net, lo, hi, alpha_steps=root_alpha_steps,
                                                           deadline=deadline)
    return _BabRun(net, lo, hi, C, b, ls, us, iters=iters, root_iters=root_iters, candidates=candidates,
                   lr_alpha=lr_alpha, lr_beta=lr_beta, drop_refuted=drop_refuted, precision=precision
                   ).search(deadline=deadline, batch=batch, max_domains=max_domains, spread=spread)


class _BabRun:
    """One branch and bound run: the queue of open domains and what is known per polytope.

    ``exact`` bounds in ``lo``'s dtype (float64); ``search`` optimises in ``precision`` (the same object
    when the dtypes agree). ``worst`` and ``dropped`` are per polytope; ``done`` counts the domains
    bounded, ``biggest`` the largest queue."""

    def __init__(self, net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, b: torch.Tensor,
                 ls: list[torch.Tensor], us: list[torch.Tensor], *, iters: int, root_iters: int, candidates: int,
                 lr_alpha: float, lr_beta: float, drop_refuted: bool, precision: torch.dtype) -> None:
        self.start = time.perf_counter()
        self.net, self.lo, self.hi, self.C, self.b, self.ls, self.us = net, lo, hi, C, b, ls, us
        self.iters, self.root_iters, self.lr_alpha, self.lr_beta = iters, root_iters, lr_alpha, lr_beta
        self.drop_refuted = drop_refuted
        self.P, self.M = C.shape[:2]
        self.exact = _Search(net, lo, hi, C, b, iters=iters, root_iters=root_iters, candidates=candidates,
                             ls=ls, us=us)
        self.fast = self.exact
        if precision != lo.dtype:
            self.fast = _Search(net.to(precision), lo.to(precision), hi.to(precision), C.to(precision),
                                b.to(precision), iters=iters, root_iters=root_iters, candidates=candidates,
                                ls=[t.to(precision) for t in ls], us=[t.to(precision) for t in us])
        self.worst = torch.full((self.P,), PROOF_TOLERANCE, dtype=lo.dtype, device=lo.device)
        self.dropped = torch.zeros(self.P, dtype=torch.bool, device=lo.device)
        self.queue = DomainQueue(lo.device)
        self.done, self.biggest = self.P, 0
        self.deadline = float("inf")

    def run(self, domains: DomainBatch, **kw: object) -> Bounded:
        s = self.fast
        return bound(s.net, s.ls, s.us, s.lo, s.hi, s.C[domains.prop], domains, deadline=self.deadline,
                     lr_alpha=self.lr_alpha, lr_beta=self.lr_beta, **kw)  # type: ignore[arg-type]

    def checked(self, domains: DomainBatch) -> torch.Tensor:
        """(D, M) lower bounds of the domains from their own slopes and multipliers, in ``lo``'s dtype."""
        parts = [bound(self.net, self.ls, self.us, self.lo, self.hi, self.C[d.prop], d, optimise=False).lower
                 for d in (domains.take(torch.arange(i, min(i + 2048, len(domains)), device=self.lo.device))
                           for i in range(0, len(domains), 2048))]
        return torch.cat(parts) if parts else self.lo.new_zeros(0, self.M)

    def stats(self, proved: bool, reason: str = "", candidate: torch.Tensor | None = None) -> BabStats:
        w = self.worst.clone()
        if len(self.queue):
            w.scatter_reduce_(0, self.queue.props(), self.queue.margins(), "amin")
        return BabStats(proved, self.done, self.biggest, time.perf_counter() - self.start, reason, candidate, w,
                        self.dropped)

    def drop(self, polytopes: torch.Tensor, margins: torch.Tensor, props: torch.Tensor) -> None:
        """Give up the ``polytopes`` (indices, repeats allowed), recording the bound they had (over
        ``margins`` of domains of ``props`` not in the queue, and their queued domains)."""
        gone = torch.zeros(self.P, dtype=torch.bool, device=self.lo.device)
        gone[polytopes] = True
        gone &= ~self.dropped
        self.dropped[gone] = True
        for p in gone.nonzero().flatten().tolist():
            self.worst[p] = torch.cat([margins[props == p], self.queue.margins()[self.queue.props() == p]]).min()

    def admit(self, children: DomainBatch, out: Bounded, parent: torch.Tensor | None) -> torch.Tensor | None:
        """Queue the children still open (``out`` from the search; ``parent`` their parents' checked bounds,
        which hold on them too: their inputs are a subset); returns a counterexample when one stops the
        search."""
        search, exact = self.fast, self.exact
        hit = search.hits(out.points, children.prop).any(1)
        low = out.lower if search is exact else self.checked(DomainBatch(children.splits, out.alpha, out.beta,
                                                                         children.prop))
        if parent is not None:
            low = torch.maximum(low, parent)
        m = exact.margins(low, children.prop)
        if bool(hit.any()):
            if not self.drop_refuted:
                d = int(hit.nonzero()[0, 0])
                cx = search.counterexample(out.points[d:d + 1], children.prop[d:d + 1])
                return None if cx is None else torch.where(cx == search.lo, self.lo, self.hi)  # same corner, exact
            self.drop(children.prop[hit], m, children.prop)
        live = ~self.dropped[children.prop] & (m <= PROOF_TOLERANCE)
        idx = live.nonzero().flatten()
        self.queue.discard(self.dropped)
        self.queue.add(children.take(idx), m[idx], low[idx])
        self.biggest = max(self.biggest, len(self.queue))
        return None

    def search(self, *, deadline: float, batch: int, max_domains: int, spread: bool) -> BabStats:
        queue, exact, lo, hi, C, b, P = self.queue, self.exact, self.lo, self.hi, self.C, self.b, self.P
        self.deadline = deadline  # the bound optimisation's steps stop there too
        state = DomainBatch.root(self.ls, self.us, self.M, P)
        out = self.run(state, iters=self.root_iters)
        cex = self.admit(state, out, None)
        if cex is not None:
            return self.stats(False, "counterexample", cex)
        rounds = 0
        while len(queue):
            rounds += 1
            if rounds % 20 == 1 and log.isEnabledFor(logging.INFO):  # progress for a long search
                log.info("bab: %.1fs, %d domains, queue %d, worst margin %.4g, per property %s",
                         time.perf_counter() - self.start, self.done, len(queue), float(queue.margins().min()),
                         torch.bincount(queue.props(), minlength=P).tolist())
            if time.perf_counter() >= deadline:
                return self.stats(False, "time is up")
            slots = queue.live()
            order = queue.margins().argsort()  # positions in `slots`
            if spread:  # rank of each domain within its polytope, then by rank
                prop = queue.props()[order]
                grouped = prop.argsort(stable=True)
                counts = torch.bincount(prop, minlength=P)
                rank = torch.empty_like(grouped)
                rank[grouped] = torch.arange(len(order), device=lo.device) - (counts.cumsum(0) - counts)[prop[grouped]]
                order = order[rank.argsort(stable=True)]
            parents, parent_low = queue.pop(slots[order[:batch]])
            free = ((exact.l < 0) & (exact.u > 0) & (parents.splits == 0)).any(1)
            if not bool(free.all()):  # every ReLU fixed: the domain's exact bound is an LP
                stuck = parents.take((~free).nonzero().flatten())
                signs = torch.where(stuck.splits != 0, stuck.splits.to(lo.dtype),
                                    torch.where(exact.l >= 0, 1.0, -1.0))
                m = torch.tensor([leaf_margin(self.net, lo, hi, signs[d], C[stuck.prop[d]], b[stuck.prop[d]])
                                  for d in range(len(stuck))], dtype=lo.dtype, device=lo.device)
                if bool((m <= PROOF_TOLERANCE).any()):
                    if not self.drop_refuted:
                        queue.add(parents, exact.margins(parent_low, parents.prop), parent_low)
                        return self.stats(False, "a domain with every ReLU fixed is still open")
                    self.drop(stuck.prop[m <= PROOF_TOLERANCE],
                              torch.cat([m, exact.margins(parent_low, parents.prop)]),
                              torch.cat([stuck.prop, parents.prop]))
                idx = free.nonzero().flatten()
                parents, parent_low = parents.take(idx), parent_low[idx]
                self.done += int((~free).sum())
                if not len(parents):
                    continue
            children, first_m = self.fast.branch(parents)
            keep = first_m.to(lo.dtype) <= PROOF_TOLERANCE
            if self.fast is not exact and not bool(keep.all()):  # closed on the parent's slopes: check in float64
                cl = (~keep).nonzero().flatten()
                keep[cl] = exact.margins(self.checked(children.take(cl)), children.prop[cl]) <= PROOF_TOLERANCE
            kept = keep.nonzero().flatten()
            children = children.take(kept)
            self.done += int(keep.numel())
            if not len(children):
                continue
            out = self.run(children, iters=self.iters)
            cex = self.admit(children, out, parent_low.repeat_interleave(2, dim=0)[kept])
            if cex is not None:
                return self.stats(False, "counterexample", cex)
            if len(queue) > max_domains:
                return self.stats(False, "too many open domains")
        return self.stats(not bool(self.dropped.any()))


def bab(graph: Graph, x0: torch.Tensor, ball: LpBall, A: torch.Tensor, b: torch.Tensor, *, deadline: float,
        batch: int = 256, max_domains: int = 100_000, **options: object) -> BabStats:
    """Prove ``min over the box of (A y)_k > b_k`` for some row ``k`` (i.e. ``A y <= b`` is unreachable) by
    :func:`bab_mlp` over the box of the ball around ``x0`` (batch of one; for l2/l1 its outer box, sound).
    Raises :class:`~robustest.errors.UnsupportedLayer` unless the dense read (:mod:`.dense_read`) takes the
    graph. Runs on CPU copies whatever the graph's device (the search is tuned and tested there)."""
    net = dense_mlp(graph).to("cpu")
    lo, hi = ball.box(x0)
    lo, hi = lo[0].reshape(-1).double().cpu(), hi[0].reshape(-1).double().cpu()
    return bab_mlp(net, lo, hi, A.double().cpu().unsqueeze(0), b.double().cpu().unsqueeze(0), deadline=deadline,
                   batch=batch, max_domains=max_domains, **options)  # type: ignore[arg-type]
