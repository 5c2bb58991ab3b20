"""Property tests with Hypothesis and ``robustest.strategies``: claims about every point of a ball.

Hypothesis draws points of the ball (favouring its surface and corners) and shrinks a failure towards
the centre. This complements ``@robust``: random points are a weak attack, but they test properties
that are not about labels, and they cross-check the verdicts of robustest itself.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import robustest
from robustest.strategies import points_in_ball

EPS = 0.02


def lipschitz_linf(model: torch.nn.Sequential) -> float:
    """An upper bound on how far the logits move (linf) per unit of linf input change: the product of
    the layers' induced linf norms (max absolute row sums); ReLU is 1-Lipschitz."""
    bound = 1.0
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            bound *= float(layer.weight.detach().abs().sum(1).max())
    return bound


@settings(max_examples=50, deadline=None)
@given(data=st.data(), i=st.integers(0, 49))
def test_logits_move_at_most_lipschitz_times_eps(mlp, digits, data, i):
    x0 = digits[0][i]
    x = data.draw(points_in_ball(x0, EPS, "linf"))
    with torch.no_grad():
        moved = float((mlp(x[None]) - mlp(x0[None])).abs().max())
    assert moved <= lipschitz_linf(mlp) * float((x - x0).abs().max()) + 1e-5


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_no_random_point_breaks_what_the_attacks_could_not(mlp, digits, data):
    """Samples that survive robustest's attacks at EPS should survive random points too; a failure here
    would mean the attacks missed an easy counterexample."""
    x, y = digits
    report = _survivors(mlp, x, y)
    i = data.draw(st.sampled_from(report))
    point = data.draw(points_in_ball(x[i], EPS, "linf"))
    with torch.no_grad():
        assert int(mlp(point[None]).argmax(1)) == int(y[i])


_CACHE: dict = {}


def _survivors(model, x, y) -> list:
    if "survivors" not in _CACHE:
        report = robustest.check(model, x, y, eps=EPS, norm="linf", seed=0)
        _CACHE["survivors"] = [s.index for s in report.samples if s.verdict in ("unknown", "certified")]
    return _CACHE["survivors"]
