"""Proof steps for VNN-LIB regions, on top of the certifiers in :mod:`robustest.certify`.

A region (input box, output polytopes ``A_p y <= b_p``) is proved (``unsat``) when, for every polytope,
some row has a sound lower bound ``min (A_p y)_k > (b_p)_k`` over the box: no output can satisfy all
of that polytope's rows. Each prover takes ``(model, region, shape, deadline)`` and returns a
:class:`~robustest.vnnlib.verify.Proof` (the method that proved the whole region, or a candidate
counterexample to re-check), or ``None``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from ..spec import LpBall
from .parser import Region
from .verify import Proof


def region_ball(region: Region, shape: Tuple[int, ...], device: torch.device
                ) -> Tuple[torch.Tensor, LpBall]:
    """``(x0, ball)`` whose ``ball.box(x0)`` is the region's box (float64, batch of one).

    A coordinate fixed by the property (lower == upper) gets a box 1e-12 wide: a superset of the
    region, so bounds stay sound.
    """
    lo = region.lower.to(device, torch.float64)
    hi = torch.maximum(region.upper.to(device, torch.float64), lo + 1e-12)
    x0 = ((lo + hi) / 2).reshape((1,) + shape)
    eps = float((hi - lo).max()) / 2 * (1 + 1e-9) + 1e-15
    return x0, LpBall(eps=eps, norm="linf", domain=(lo.reshape(shape), hi.reshape(shape)))


def spec_rows(region: Region, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
    """All polytope rows stacked: ``C`` (1, M, K), ``b`` (M,), and which polytope each row belongs to."""
    rows = [a for a, _ in region.polytopes]
    owner = [p for p, (a, _) in enumerate(region.polytopes) for _ in range(a.shape[0])]
    C = torch.cat(rows).to(device, torch.float64).unsqueeze(0)
    b = torch.cat([b for _, b in region.polytopes]).to(device, torch.float64)
    return C, b, owner


def polytopes_refuted(lower: torch.Tensor, b: torch.Tensor, owner: List[int], n_poly: int) -> torch.Tensor:
    """Per polytope: whether some row's lower bound exceeds its right-hand side."""
    out = torch.zeros(n_poly, dtype=torch.bool)
    for k, p in enumerate(owner):
        out[p] |= bool(lower[k] > b[k])
    return out


def _graph(model: nn.Module, shape: Tuple[int, ...], device: torch.device):  # type: ignore[no-untyped-def]
    from ..graph import read_model

    return read_model(model, torch.zeros((1,) + shape, device=device))


def crown_prover(alpha_steps: int = 0):  # type: ignore[no-untyped-def]
    """CROWN (``alpha_steps=0``) or alpha-CROWN over the whole box, all polytope rows in one pass."""
    name = "crown" if alpha_steps == 0 else "alpha-crown"

    def prove(model: nn.Module, region: Region, shape: Tuple[int, ...], deadline: float) -> Optional[Proof]:
        from ..certify.crown import crown

        if any(a.shape[0] == 0 for a, _ in region.polytopes):
            return None  # an unconstrained output polytope cannot be refuted
        device = region_device(model)
        graph = _graph(model, shape, device)
        x0, ball = region_ball(region, shape, device)
        C, b, owner = spec_rows(region, device)
        res = crown(graph, x0, ball, C, alpha_steps=alpha_steps)
        done = polytopes_refuted(res.lower[0].cpu(), b.cpu(), owner, len(region.polytopes))
        return Proof(name) if bool(done.all()) else None

    prove.__name__ = name.replace("-", "_")
    prove.cheap = True  # type: ignore[attr-defined]  # run before the short attack
    return prove


def region_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


PROVERS = [crown_prover(0)]


def milp_prover(model: nn.Module, region: Region, shape: Tuple[int, ...], deadline: float) -> Optional[Proof]:
    """alpha-CROWN, then exact MILP (the certification rung's big-M encoding, HiGHS) on its bounds.

    alpha-CROWN alone proves the region when every polytope has a row with a positive lower bound. MILP
    then decides properties whose polytopes are single rows ``a y <= 0`` (robustness properties such as
    VNN-COMP's mnist_fc): each unproved row's minimum ``a y`` is solved until one is <= 0 (a candidate
    counterexample) or all are proved > 0. MILP leaves a tenth of the time to the attacks that follow.
    """
    import time

    from ..certify.crown import crown
    from ..certify.encode import numpy_boxes
    from ..certify.milp import milp_verify

    if any(a.shape[0] == 0 for a, _ in region.polytopes):
        return None
    device = region_device(model)
    graph = _graph(model, shape, device)
    x0, ball = region_ball(region, shape, device)
    C, b, owner = spec_rows(region, device)
    res = crown(graph, x0, ball, C, alpha_steps=20)
    if bool(polytopes_refuted(res.lower[0].cpu(), b.cpu(), owner, len(region.polytopes)).all()):
        return Proof("alpha-crown")
    if any(a.shape[0] != 1 for a, _ in region.polytopes) or bool((b != 0).any()):
        return None
    left = 0.9 * (deadline - time.perf_counter())
    if left <= 0:
        return None
    out = milp_verify(graph, x0[0], ball, C[0].cpu().numpy(), res.lower[0].cpu().numpy(),
                      numpy_boxes(res.boxes, 0), time_limit=left)
    if out.verdict == "certified":
        return Proof("milp")
    if out.verdict == "falsified" and out.counterexample is not None:
        return Proof("milp", candidate=out.counterexample.reshape(-1))
    return None


def region_rows(region: Region, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """The polytopes as ``C`` (P, M, K) and ``b`` (P, M), float64; short polytopes padded with zero rows
    whose right-hand side is ``inf`` (always satisfied, never refutable)."""
    M = max(a.shape[0] for a, _ in region.polytopes)
    K = region.polytopes[0][0].shape[1]
    C = torch.zeros(len(region.polytopes), M, K, dtype=torch.float64, device=device)
    b = torch.full((len(region.polytopes), M), float("inf"), dtype=torch.float64, device=device)
    for p, (a, bb) in enumerate(region.polytopes):
        C[p, :a.shape[0]] = a.to(device, torch.float64)
        b[p, :a.shape[0]] = bb.to(device, torch.float64)
    return C, b


def bab_prover(share: float = 0.95, root_alpha_steps: int = 30, quick: float = 0.05,  # type: ignore[no-untyped-def]
               first: float = 0.05, refine: float = 0.45):
    """Batched beta-CROWN branch and bound (:mod:`robustest.certify.bab`) on all polytopes of the region at
    once, for ``share`` of the remaining time (the rest goes to the provers after it). Fully connected ReLU
    networks only (others raise UnsupportedLayer, and the verifier drops this prover). A box corner that
    the bounds point to and that lands in a polytope is returned as a counterexample candidate.

    The schedule, in shares of that time:

    1. a quick search (``quick``) on the root's alpha-CROWN bounds: most properties close here in seconds;
    2. a short round: tighten the intermediate bounds by BaB on each layer's prefix
       (:mod:`robustest.certify.refine`) for ``first``, then search on them for ``first``: properties that
       need only a little refinement close here;
    3. one long refinement (``refine``), starting from the bounds of step 2, then the search on its bounds
       with all that is left.

    Why one long refinement rather than rounds of doubling length: each refinement call starts its
    per-neuron searches afresh, so rounds spend most of their time redoing the last round's work. Measured on
    mnist_fc 256x4 prop_12_0.05 (``benchmarks/vnncomp.md``): 150 s in one call leave 78 of the last layer's
    neurons unstable and the search reaches a worst margin of -0.05 in 80 s; three doubling rounds in about
    the same total time left 123 unstable and -0.55."""

    def bab(model: nn.Module, region: Region, shape: Tuple[int, ...], deadline: float) -> Optional[Proof]:
        import time

        from ..certify.bab import bab_mlp
        from ..certify.mlp import dense_mlp, root_bounds
        from ..certify.refine import refine_bounds

        if any(a.shape[0] == 0 for a, _ in region.polytopes):
            return None
        # the search runs on CPU copies whatever the model's device: it is tuned and tested there
        cpu = torch.device("cpu")
        net = dense_mlp(_graph(model, shape, region_device(model))).to(cpu)
        x0, ball = region_ball(region, shape, cpu)
        lo, hi = ball.box(x0)
        lo, hi = lo[0].reshape(-1), hi[0].reshape(-1)
        C, b = region_rows(region, cpu)
        now = time.perf_counter()
        end = now + share * (deadline - now)
        span = end - now
        bounds = root_bounds(net, lo, hi, alpha_steps=root_alpha_steps, deadline=end)
        stats = bab_mlp(net, lo, hi, C, b, deadline=now + quick * span, bounds=bounds)
        for tighten, search in ((first, first), (refine, None)):
            if stats.proved or stats.candidate is not None or len(net.weights) <= 2 or time.perf_counter() >= end:
                break
            bounds = refine_bounds(net, lo, hi, *bounds, deadline=min(end, time.perf_counter() + tighten * span))
            stop = end if search is None else min(end, time.perf_counter() + search * span)
            stats = bab_mlp(net, lo, hi, C, b, deadline=stop, bounds=bounds)
        if stats.proved:
            return Proof("bab")
        if stats.candidate is not None:
            return Proof("bab", candidate=stats.candidate)
        return None

    return bab


PROVERS.append(bab_prover())
PROVERS.append(milp_prover)
