"""Square attack (Andriushchenko et al. 2020): score-based random search, forward passes only.

It never asks for a gradient, so a model whose gradients are masked (rounding, a saturated layer, a
non-differentiable preprocessing) cannot hide from it. Each iteration proposes, for every unbroken
sample, a new perturbation on one random window and keeps it when the margin (true logit minus the best
other; targeted: best non-target minus target) drops. The window's share ``p`` of the input starts at
``p_init`` and halves on the paper's schedule (rescaled to the query budget).

- linf: windows of side ``round(sqrt(p * H * W))`` on images (N, C, H, W), one random ``+-eps`` per
  channel over the window, starting from random vertical stripes; on flat inputs a random subset of
  ``round(p * D)`` features with a random sign each.
- l2: the paper's update: a second window's mass moves onto the first, whose perturbation becomes its
  old direction plus a fresh pseudo-Gaussian pattern (random sign per channel), and the whole
  perturbation is rescaled onto the sphere of radius ``eps``. The start is random signs of norm eps
  (the paper starts from a grid of pseudo-Gaussians).

``queries`` is a per-sample budget of forward passes (the start counts as one); a sample leaves the batch
as soon as it is broken. With ``probe``, the search stops after ``probe`` queries unless it has broken
some sample by then: on a model whose gradients work, what strong gradient attacks left is seldom broken
by random search, so the default sequence spends the full budget only where the probe found masking.
With ``max_queries``, a search that breaks samples after its first ``probe`` queries (any, without a
probe) is productive: another round of ``queries`` starts from a fresh random start on the samples left,
and so on while each round keeps breaking samples so, up to ``max_queries`` per sample (a fresh start
finds what a stuck search misses: on the benchmark's masked model a sample that 5000 queries of one
search left broke within 800 queries from 8 of 8 other starts). Like the probe, this is decided on the
batch (is Square productive on this model?), not per sample.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(4, 3).eval()
    >>> out = Square(queries=50)(model, torch.rand(5, 4), torch.zeros(5, dtype=torch.long), LpBall(0.1))
    >>> out.adversarial.shape
    torch.Size([5, 4])
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import torch

from ..errors import invalid_argument
from ..spec import LpBall
from ..streams import RandomSource, randint, subset
from .base import Attack, Deadline, Found, check_steps, compact
from .losses import is_success, margin_loss, target_margin

#: the paper's schedule: at these shares of 10,000 iterations the window share p halves
HALVING_POINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(p_init: float, it: int, iterations: int) -> float:
    """The share ``p`` of the input that iteration ``it`` of ``iterations`` perturbs."""
    scaled = int(it / max(iterations, 1) * 10000)
    return p_init / 2 ** sum(scaled > point for point in HALVING_POINTS)


def _loss(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor]) -> torch.Tensor:
    """What the search lowers: < 0 means broken (untargeted) or the target on top (targeted)."""
    return -margin_loss(z, y) if t is None else -target_margin(z, t)


class Square(Attack):
    """Square attack with a per-sample budget of ``queries`` forward passes (norm linf or l2); with
    ``max_queries``, further rounds of ``queries`` from fresh random starts while the last one broke
    samples after its first ``probe`` queries, up to ``max_queries`` per sample in all."""

    name = "square"
    norms = ("linf", "l2")
    gradient_free = True

    def __init__(self, *, queries: int = 1000, p_init: float = 0.8, probe: Optional[int] = None,
                 max_queries: Optional[int] = None) -> None:
        self.queries = check_steps("queries", queries, minimum=2)
        if not 0 < p_init <= 1:
            raise invalid_argument("p_init", p_init, "a share in (0, 1]", "pass p_init=0.8")
        if probe is not None:
            check_steps("probe", probe, minimum=1)
        if max_queries is not None and check_steps("max_queries", max_queries, minimum=2) < queries:
            raise invalid_argument("max_queries", max_queries, f"at least queries={queries}",
                                   f"pass max_queries={5 * queries} or leave it out")
        self.p_init, self.probe, self.max_queries = p_init, probe, max_queries

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        found = Found(x0)
        if ball.eps == 0:
            return found.best
        budget, used, probe = self.max_queries or self.queries, 0, self.probe
        while not deadline.passed():
            idx = found.remaining()
            queries = min(self.queries, budget - used)
            if idx.numel() == 0 or queries < 2:
                break
            late = self._round(model, x0, y, ball, targets, generator, deadline, found, idx, queries, probe)
            used, probe = used + queries, None  # only the first round is a probe
            if not late:
                break
        return found.best

    def _round(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource], deadline: Deadline,
               found: Found, idx: torch.Tensor, queries: int, probe: Optional[int]) -> bool:
        """One search of ``queries`` forward passes per sample of ``idx`` from a fresh random start (cut
        short after ``probe`` when it breaks nothing by then); whether it broke a sample after its first
        ``self.probe`` queries (any query without a probe): random search still finding counterexamples
        past the probe is productive on this model."""
        xs0, ys, ts = compact(idx, x0, y, targets)
        assert xs0 is not None and ys is not None
        linf = ball.norm == "linf"
        # linf keeps the current point and sets a window's features to the box's bounds (the projection of
        # x0 +- eps); l2 keeps the perturbation and projects each proposal
        box = ball.box(xs0) if linf else None
        x = self._start(xs0, ball, subset(generator, idx), box)
        with torch.no_grad():
            z = model(x)
        cur = x if linf else x - xs0
        loss = _loss(z, ys, ts)
        success = is_success(z, ys, ts)
        keep, broke = found.record(idx, x, success), bool(success.any())
        iterations, late = queries - 1, False
        shape = (-1,) + (1,) * (cur.dim() - 1)
        for it in range(iterations):
            if deadline.passed() or (it + 1 == probe and not broke):
                break
            if not bool(keep.all()):
                if not bool(keep.any()):
                    break
                idx, xs0, ys, ts, cur, loss = compact(keep, idx, xs0, ys, ts, cur, loss)  # type: ignore[assignment]
                box = ball.box(xs0) if linf else None  # type: ignore[arg-type]
            assert xs0 is not None and cur is not None and loss is not None and ys is not None
            p = window_share(self.p_init, it, iterations)
            x_new = self._propose(cur, xs0, box, p, ball, subset(generator, idx))
            with torch.no_grad():
                z = model(x_new)
            new_loss = _loss(z, ys, ts)
            better = new_loss < loss
            cur = torch.where(better.view(shape), x_new if linf else x_new - xs0, cur)
            loss = torch.where(better, new_loss, loss)
            success = is_success(z, ys, ts)
            keep = found.record(idx, x_new, success)
            if bool(success.any()):
                broke, late = True, late or it + 2 > (self.probe or 0)
        return late

    # ------------------------------------------------------------------ proposals
    def _start(self, x0: torch.Tensor, ball: LpBall, generator: Optional[RandomSource],
               box: Optional[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """A point at random vertical stripes (images) or random signs (flat inputs) of norm eps."""
        n = x0.shape[0]
        shape = (n, x0.shape[1], 1, x0.shape[3]) if x0.dim() == 4 else x0.shape
        bits = _bits(shape, x0, generator)
        if box is not None:  # linf: x0 + eps * sign projected is the box's bound on that side
            return torch.lerp(box[0], box[1], bits)  # exact at weights 0 and 1
        return ball.project(x0 + _scaled((2 * bits - 1).expand_as(x0), ball), x0)

    def _propose(self, cur: torch.Tensor, x0: torch.Tensor, box: Optional[Tuple[torch.Tensor, torch.Tensor]],
                 p: float, ball: LpBall, generator: Optional[RandomSource]) -> torch.Tensor:
        """The next candidate point: ``cur`` is the current point (linf, with ``box``) or perturbation.
        Masks and signs are 0/1 floats mixed by ``lerp`` (exact at 0 and 1): on CPU boolean ``where``
        on a full tensor costs many times an arithmetic op."""
        window, pattern = _window(cur, p, generator, pattern=box is None)
        # one sign per channel over the square window (images), one per feature (flat inputs)
        bits = _bits((cur.shape[0], cur.shape[1], 1, 1) if cur.dim() == 4 else cur.shape, cur, generator)
        if box is not None:
            return torch.lerp(cur, torch.lerp(box[0], box[1], bits), window)
        signs = (2 * bits - 1).expand_as(cur)
        return ball.project(x0 + self._l2_move(cur, window, pattern, signs, p, ball, generator), x0)

    def _l2_move(self, delta: torch.Tensor, window: torch.Tensor, pattern: torch.Tensor, signs: torch.Tensor,
                 p: float, ball: LpBall, generator: Optional[RandomSource]) -> torch.Tensor:
        """The l2 proposal's perturbation (the paper's update): the mass of a second window moves onto the
        first, whose perturbation becomes its old direction plus a fresh pseudo-Gaussian pattern, taking
        also the unused budget."""
        second, _ = _window(delta, p, generator)
        both = torch.maximum(window, second)
        unused = (ball.eps ** 2 - _norm(delta) ** 2).clamp_min(0)
        size = (unused + _norm(delta * both) ** 2).sqrt()
        old = delta * window
        fresh = signs * pattern
        new = fresh / _norm(fresh).clamp_min(1e-12).view(_col(delta)) + old / _norm(old).clamp_min(
            1e-12).view(_col(delta))
        new = new * (size / _norm(new).clamp_min(1e-12)).view(_col(delta))
        moved = torch.where(window.bool(), new, torch.where(second.bool(), torch.zeros_like(delta), delta))
        return _scaled(moved, ball)


def _col(t: torch.Tensor) -> tuple:
    return (-1,) + (1,) * (t.dim() - 1)


def _norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def _bump(rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """The paper's pseudo-Gaussian on a rows x cols rectangle: nested squares around the centre, the k-th
    adding 1/k^2."""
    r = torch.arange(rows, device=like.device).view(-1, 1) - rows // 2
    c = torch.arange(cols, device=like.device).view(1, -1) - cols // 2
    ring = torch.maximum(r.abs(), c.abs())
    levels = torch.arange(1, max(rows, cols) + 1, device=like.device, dtype=like.dtype)
    weight = (1.0 / levels ** 2).flip(0).cumsum(0).flip(0)  # ring k is inside squares k+1, k+2, ...
    return weight[ring.clamp_max(len(levels) - 1)].to(like.dtype)


def _eta(side: int, like: torch.Tensor) -> torch.Tensor:
    """The paper's window pattern: a bump on the top half minus one on the bottom half."""
    top = _bump(side // 2, side, like) if side >= 2 else like.new_zeros(0, side)
    bottom = _bump(side - side // 2, side, like)
    eta = torch.cat([top / top.norm().clamp_min(1e-12), -bottom / bottom.norm().clamp_min(1e-12)], 0)
    return eta


def _bits(shape: Any, like: torch.Tensor, generator: Optional[RandomSource]) -> torch.Tensor:
    """Random 0/1 in ``like``'s dtype (a sign: 1 for +, 0 for -)."""
    return randint(generator, 2, tuple(shape), device=like.device).to(like.dtype)


def _scaled(delta: torch.Tensor, ball: LpBall) -> torch.Tensor:
    """``delta`` scaled to norm eps (linf: values +-eps where nonzero)."""
    if ball.norm == "linf":
        return ball.eps * delta.sign()
    norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (ball.eps / norm).view((-1,) + (1,) * (delta.dim() - 1))


def _window(delta: torch.Tensor, p: float, generator: Optional[RandomSource], *, pattern: bool = True
            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """A 0/1 mask per sample (in ``delta``'s dtype), a random square of share ``p`` (images) or
    ``round(p * D)`` features, and (when ``pattern``; else the mask again) the l2 pattern on it (images:
    :func:`_eta` placed on the square, transposed for half the samples; flat inputs: ones)."""
    n, dev = delta.shape[0], delta.device
    if delta.dim() == 4:
        h, w = delta.shape[2], delta.shape[3]
        side = max(1, min(h, w, round(math.sqrt(p * h * w))))
        top = randint(generator, h - side + 1, (n, 1, 1, 1), device=dev)
        left = randint(generator, w - side + 1, (n, 1, 1, 1), device=dev)
        rows = torch.arange(h, device=dev).view(1, 1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, 1, w)
        inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        mask = inside.to(delta.dtype)
        if not pattern:
            return mask, mask
        eta = _eta(side, delta)
        flip = randint(generator, 2, (n, 1, 1, 1), device=dev).bool()
        rr, cc = (rows - top).clamp(0, side - 1), (cols - left).clamp(0, side - 1)
        placed = torch.where(flip, eta[cc, rr], eta[rr, cc]) * mask
        return mask, placed.to(delta.dtype)
    flat = delta.flatten(1)
    k = max(1, round(p * flat.shape[1]))  # drawn with replacement: a repeat only shrinks the window
    chosen = randint(generator, flat.shape[1], (n, k), device=dev)
    mask = torch.zeros_like(flat).scatter_(1, chosen, 1.0).view_as(delta)
    return mask, mask
