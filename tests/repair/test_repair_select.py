"""Candidate selection: the Pareto filter and the omega-weighted pick."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustest.errors import InvalidArgument
from robustest.repair.select import pareto, select

values = st.floats(0, 100, allow_nan=False)
pools = st.lists(st.tuples(values, values), min_size=1, max_size=30)


def _dominated(i, V, L):
    return any(V[j] <= V[i] and L[j] <= L[i] and (V[j] < V[i] or L[j] < L[i]) for j in range(len(V)))


@given(pool=pools, omega=st.floats(0, 1))
def test_selection_never_returns_a_dominated_candidate(pool, omega):
    V, L = [p[0] for p in pool], [p[1] for p in pool]
    i = select(V, L, omega=omega)
    assert i is not None and not _dominated(i, V, L)
    assert set(pareto(V, L)) == {k for k in range(len(V)) if not _dominated(k, V, L)}


@given(pool=pools)
def test_omega_zero_picks_least_violation_and_one_least_loss(pool):
    V, L = [p[0] for p in pool], [p[1] for p in pool]
    assert V[select(V, L, omega=0.0)] == min(V)
    assert L[select(V, L, omega=1.0)] == min(L)


def test_ties_in_violation_go_to_the_lower_loss():
    assert select([0.0, 0.0, 1.0], [0.5, 0.2, 0.1], omega=0.0) == 1


def test_empty_pool_and_bad_omega():
    assert select([], [], omega=0.2) is None
    with pytest.raises(InvalidArgument, match="omega=1.5"):
        select([1.0], [1.0], omega=1.5)
