"""Hypothesis strategies for inputs in an Lp ball around a point (inside the input domain).

Use them for property tests of your own: "no point of the ball changes the label", "the output moves
by at most L * eps", ... Hypothesis shrinks a failure towards the centre, so the reported point is a
small perturbation. The strategies favour the ball's surface and the box corners, where failures hide.
Hypothesis is an optional extra (``pip install 'robustest[hypothesis]'``); nothing else imports it.

    >>> import torch
    >>> from hypothesis import given, settings
    >>> x0 = torch.full((4,), 0.5)
    >>> @settings(max_examples=20)
    ... @given(points_in_ball(x0, eps=0.1, norm="l2"))
    ... def test_inside(x):
    ...     assert float((x - x0).norm()) <= 0.1 + 1e-6
    >>> test_inside()
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised without the extra
    raise ImportError("robustest.strategies needs Hypothesis, which is not installed. "
                      "Fix: pip install 'robustest[hypothesis]'") from None

from .spec import Bound, LpBall


def points_in_ball(center: torch.Tensor, eps: float, norm: str = "linf",
                   domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0)) -> st.SearchStrategy[torch.Tensor]:
    """Points ``x`` with ``||x - center||_norm <= eps`` and ``lo <= x <= hi``, shaped like ``center``.

    ``center`` is one input (no batch dimension). For linf each coordinate is drawn from its interval
    (corners included); for l2/l1 a direction and a radius in [0, eps] are drawn, then the point is
    clipped to the domain (which keeps it inside the ball).
    """
    ball = LpBall(eps=eps, norm=norm, domain=domain)
    c = center.detach().to(torch.float64)
    n = c.numel()
    coord = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
    directions = st.lists(st.one_of(st.sampled_from([-1.0, 0.0, 1.0]), coord), min_size=n, max_size=n)
    radii = st.one_of(st.just(1.0), st.floats(0.0, 1.0))

    def build(args: Tuple[list, float]) -> torch.Tensor:
        d, r = torch.tensor(args[0], dtype=torch.float64), args[1]
        if ball.norm == "linf":
            delta = d * eps
        else:
            p = 2 if ball.norm == "l2" else 1
            size = float(d.norm(p=p))
            delta = d / size * eps * r if size > 0 else torch.zeros_like(d)
        x = ball.project((c.flatten() + delta).view_as(c)[None], c[None])[0]
        return x.to(center.dtype)

    return st.tuples(directions, radii).map(build)


def perturbations(center: torch.Tensor, eps: float, norm: str = "linf",
                  domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0)) -> st.SearchStrategy[torch.Tensor]:
    """The perturbations ``x - center`` of :func:`points_in_ball`."""
    return points_in_ball(center, eps, norm, domain).map(lambda x: x - center)
