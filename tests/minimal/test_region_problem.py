"""The closed-form relaxation used to skip solver calls is exact: it equals HiGHS on the same problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.minimal.region_problem import relaxed_target, solve_target
from robustest.minimal.regions import LinearRegion

ORD = {"l2": 2, "linf": np.inf, "l1": 1}


@settings(max_examples=40)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6), norm=st.sampled_from(["l2", "linf", "l1"]))
def test_relaxation_equals_the_solver_without_region_rows(seed: int, d: int, norm: str) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, d)
    W = rng.normal(size=(2, d))
    c = rng.normal(size=2)
    region = LinearRegion(b"", torch.zeros(0, d, dtype=torch.float64), torch.zeros(0, dtype=torch.float64),
                          torch.tensor(W), torch.tensor(c))
    lo, hi = np.zeros(d), np.ones(d)
    g = W[0] - W[1]
    r = -1e-6 - float(g @ x + c[0] - c[1])
    relaxed = relaxed_target(g, r, lo - x, hi - x, norm)
    solved = solve_target(region, x, 0, 1, norm=norm, lo=lo, hi=hi, kappa=1e-6)
    if solved is None:
        assert relaxed is None
        return
    assert relaxed is not None
    # feasible: inside the box and past the boundary
    assert bool((x + relaxed >= lo - 1e-12).all() and (x + relaxed <= hi + 1e-12).all())
    assert float(g @ relaxed) <= r + 1e-9
    assert float(np.linalg.norm(relaxed, ORD[norm])) == pytest.approx(
        float(np.linalg.norm(solved, ORD[norm])), rel=1e-5, abs=1e-7)
