"""robustest.strategies: every drawn point is in ball ∩ domain, and the surface is reached."""

from __future__ import annotations

import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from robustest.strategies import perturbations, points_in_ball


@settings(max_examples=30)
@given(data=st.data(), norm=st.sampled_from(["linf", "l2", "l1"]), eps=st.floats(0.0, 0.5))
def test_points_are_in_ball_and_domain(data, norm, eps):
    center = torch.tensor([0.0, 0.3, 0.99, 1.0])
    x = data.draw(points_in_ball(center, eps, norm))
    p = {"linf": float("inf"), "l2": 2, "l1": 1}[norm]
    assert float((x - center).norm(p=p)) <= eps + 1e-6
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert x.shape == center.shape and x.dtype == center.dtype


def test_the_surface_is_reached():
    center = torch.full((3,), 0.5)
    far = find(perturbations(center, 0.2, "linf"), lambda d: float(d.abs().max()) >= 0.2 - 1e-6)
    assert float(far.abs().max()) >= 0.2 - 1e-6
