"""Algorithm 2 (block-coordinate QP): Proposition 1 and the free-set draw."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.repair.block import block_solve, draw_free_set
from robustest.repair.qp import get_solver


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 8))
def test_a_step_over_coordinates_disjoint_from_the_previous_free_set_changes_nothing(seed, p):
    g = torch.Generator().manual_seed(seed)
    n = 40
    A = torch.randn(p, n, generator=g, dtype=torch.float64)
    r = torch.randn(p, generator=g, dtype=torch.float64).numpy()
    perm = torch.randperm(n, generator=g)
    J1, J2 = perm[:25], perm[25:]  # J1 alone (25 >= p columns) can meet every cut
    one = block_solve(A, r, free_sets=[J1])
    two = block_solve(A, r, free_sets=[J1, J2])
    assert one.status == "optimal"
    assert torch.allclose(one.d, two.d, atol=1e-9)
    assert torch.all(one.d[J2] == 0)


def test_block_solution_is_feasible_and_no_better_than_the_exact_qp():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 50, generator=g, dtype=torch.float64)
    r = torch.rand(6, generator=g, dtype=torch.float64).numpy()
    free = [torch.randperm(50, generator=g)[:20] for _ in range(3)]
    blk = block_solve(A, r, free_sets=free)
    exact = get_solver("dual")(A, r)
    assert blk.slack < 1e-8
    assert np.all((A @ blk.d).numpy() >= r - 1e-8)
    assert blk.objective >= exact.objective - 1e-9


def test_free_set_keeps_every_bias_and_the_requested_share_of_weights():
    layout = [("w1", slice(0, 100), False), ("b1", slice(100, 110), True), ("w2", slice(110, 160), False)]
    J = draw_free_set(layout, fix=0.8, generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert set(range(100, 110)) <= set(J.tolist())
    assert sum(1 for j in J.tolist() if j < 100) == 20
    assert sum(1 for j in J.tolist() if 110 <= j < 160) == 10
    assert len(set(J.tolist())) == len(J)
