"""FAB, the fast adaptive boundary attack (Croce & Hein 2020), targeted, in linf, l2 and l1.

FAB looks for the adversarial input of minimal norm. Each step linearises the boundary between the label
and the target at the current point (``z_y - z_t`` and its gradient) and projects both the current point
and the clean input onto that hyperplane, within the domain, in the attack's norm; it then moves to a
convex combination of the two projections (weight ``alpha <= alpha_max`` on the clean input's, which keeps
the point close to it), overshooting by ``eta``. Once a point is adversarial it steps back towards the
clean input by ``beta``. As a robustest attack it stops a sample as soon as it finds an adversarial input
inside the ball. Without ``targets`` it attacks the ``targets`` most likely wrong classes (one batch of
copies, as in APGD-T).

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(4, 3).eval()
    >>> out = FAB(steps=10, targets=2)(model, torch.rand(5, 4), torch.zeros(5, dtype=torch.long), LpBall(0.5, "l2"))
    >>> out.adversarial.shape
    torch.Size([5, 4])
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from ..errors import invalid_argument
from ..spec import LpBall, lp_norm
from ..streams import RandomSource, repeat, subset
from .base import (
    Attack,
    Deadline,
    Found,
    best_of_copies,
    check_steps,
    compact,
    input_gradient,
    target_copies,
    top_targets,
)
from .losses import is_success

#: a stand-in for an unbounded domain's distance to its edge
FAR = 1e6


def _margin(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor]) -> torch.Tensor:
    assert t is not None
    return z.gather(1, y[:, None])[:, 0] - z.gather(1, t[:, None])[:, 0]


def min_reach(a: torch.Tensor, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Per row, the least ``t >= 0`` with ``sum_i a_i min(t, s_i) >= c`` (a, s >= 0), or ``max_i s_i`` when
    no ``t`` reaches ``c``. Exact: the sum is piecewise linear with breakpoints ``s``.

        >>> float(min_reach(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 3.0]]), torch.tensor([3.0]))[0])
        2.0
    """
    s_sorted, order = s.sort(dim=1)
    a_sorted = a.gather(1, order)
    before = (a_sorted * s_sorted).cumsum(1) - a_sorted * s_sorted  # sum over breakpoints below k
    after = a_sorted.flip(1).cumsum(1).flip(1)  # slope on [s_(k-1), s_k]
    reach = before + s_sorted * after
    ok = reach >= c[:, None]
    k = ok.to(torch.int8).argmax(1, keepdim=True)
    t = (c[:, None] - before.gather(1, k)) / after.gather(1, k).clamp_min(1e-30)
    t = torch.where(ok.any(1, keepdim=True), t, s_sorted[:, -1:])
    return t[:, 0].clamp_min(0)


def project_hyperplane(w: torch.Tensor, c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                       norm: str) -> torch.Tensor:
    """Per row, the ``d`` of least ``norm`` with ``w . d = c`` and ``lo <= d <= hi`` (lo <= 0 <= hi), or
    the closest the box allows. ``w``, ``lo``, ``hi`` are (N, D); ``c`` is (N,)."""
    sign = torch.where(c < 0, -1.0, 1.0).to(w.dtype)[:, None]
    wp = w * sign  # now w' . d >= |c| is the goal
    room = torch.where(wp > 0, hi, -lo).clamp_min(0)  # how far each coordinate may move along w'
    a, target = wp.abs(), c.abs()
    if norm == "linf":
        t = min_reach(a, room, target)
        step = torch.minimum(t[:, None], room)
    elif norm == "l2":
        s = torch.where(a > 0, room / a.clamp_min(1e-30), torch.zeros_like(a))
        t = min_reach(a * a, s, target)
        step = a * torch.minimum(t[:, None], s)
    else:  # l1: fill the coordinates with the largest |w| first (a fractional knapsack)
        a_sorted, order = a.sort(dim=1, descending=True)
        room_sorted = room.gather(1, order)
        gain = (a_sorted * room_sorted).cumsum(1)
        short = (target[:, None] - (gain - a_sorted * room_sorted)).clamp_min(0)
        take = torch.minimum(room_sorted, short / a_sorted.clamp_min(1e-30))
        take = torch.where(a_sorted > 0, take, torch.zeros_like(take))
        step = torch.zeros_like(a).scatter(1, order, take)
    return torch.where(wp >= 0, step, -step)


class FAB(Attack):
    """Targeted FAB with ``steps`` iterations and ``restarts`` starts (the first at the clean input)."""

    name = "fab"

    def __init__(self, *, steps: int = 100, restarts: int = 1, targets: int = 3, eta: float = 1.05,
                 beta: float = 0.9, alpha_max: float = 0.1) -> None:
        self.steps = check_steps("steps", steps)
        self.restarts = check_steps("restarts", restarts)
        self.n_targets = check_steps("targets", targets)
        for name, value, ok in (("eta", eta, eta >= 1), ("beta", beta, 0 < beta < 1),
                                ("alpha_max", alpha_max, 0 <= alpha_max < 1)):
            if not ok:
                raise invalid_argument(name, value, "the paper's range (eta >= 1, 0 < beta < 1, "
                                       "0 <= alpha_max < 1)", "leave it at its default")
        self.eta, self.beta, self.alpha_max = eta, beta, alpha_max

    def describe(self) -> str:
        return "fab-t"

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        if targets is not None:
            found = Found(x0)
            self._restarts(model, x0, y, targets, ball, generator, deadline, found)
            return found.best
        ranked = top_targets(model, x0, y, self.n_targets)
        xr, yr, tr, found = target_copies(x0, y, ranked)
        self._restarts(model, xr, yr, tr, ball, repeat(generator, ranked.shape[1]), deadline, found)
        return best_of_copies(found, x0, ranked.shape[1])

    def _restarts(self, model: Any, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, ball: LpBall,
                  generator: Optional[RandomSource], deadline: Deadline, found: Found) -> None:
        for restart, idx in found.rounds(self.restarts, deadline):
            xs0, ys, ts = compact(idx, x0, y, t)
            assert xs0 is not None and ys is not None and ts is not None
            start = xs0.clone() if restart == 0 else ball.random_start(xs0, subset(generator, idx))
            self._run(model, xs0, ys, ts, start, ball, deadline, found, idx)

    def _run(self, model: Any, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, x: torch.Tensor,
             ball: LpBall, deadline: Deadline, found: Found, idx: torch.Tensor) -> None:
        for it in range(self.steps + 1):
            z, df, g = input_gradient(model, x, _margin, y, t)
            adv = is_success(z, y, t)
            inside = ball.contains(x, x0)
            keep = found.record(idx, x, adv & inside)
            if it == self.steps or deadline.passed() or not bool(keep.any()):
                return
            if not bool(keep.all()):
                idx, x0, y, t, x, z, df, g, adv = compact(keep, idx, x0, y, t, x, z, df, g, adv)  # type: ignore[assignment]
            assert x is not None and x0 is not None and g is not None and df is not None and adv is not None
            if bool(adv.any()):  # adversarial but too far: step back towards the clean input
                shape = (-1,) + (1,) * (x.dim() - 1)
                x = torch.where(adv.view(shape), x0 + self.beta * (x - x0), x)
            x = self._step(x, x0, df, g, ball)

    def _step(self, x: torch.Tensor, x0: torch.Tensor, df: torch.Tensor, g: torch.Tensor,
              ball: LpBall) -> torch.Tensor:
        w = g.flatten(1)
        xf, x0f = x.flatten(1), x0.flatten(1)
        lo, hi = _domain(ball, xf)
        # the hyperplane {p : df + w . (p - x) = 0}, reached from x and from x0
        c_x = -df
        c_0 = -df - (w * (x0f - xf)).sum(1)
        d1 = project_hyperplane(w, c_x, lo - xf, hi - xf, ball.norm)
        d2 = project_hyperplane(w, c_0, lo - x0f, hi - x0f, ball.norm)
        n1, n2 = lp_norm(d1, ball.norm), lp_norm(d2, ball.norm)
        alpha = (n1 / (n1 + n2).clamp_min(1e-12)).clamp(0, self.alpha_max)[:, None]
        new = (xf + self.eta * d1) * (1 - alpha) + (x0f + self.eta * d2) * alpha
        return ball.clip_domain(new.view_as(x))


def _domain(ball: LpBall, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    if ball.domain is None:
        return torch.full_like(x, -FAR), torch.full_like(x, FAR)
    lo, hi = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in ball.domain)
    return torch.broadcast_to(lo.flatten() if lo.dim() else lo, x.shape), torch.broadcast_to(
        hi.flatten() if hi.dim() else hi, x.shape)
