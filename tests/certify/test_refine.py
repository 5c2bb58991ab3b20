"""Intermediate bounds refined by BaB on each layer's prefix: sound on sampled, corner and attacked points,
never wider than the root's, and, given the time, exact in which neurons are stable (checked against MILP
minima and maxima of every pre-activation). The per-polytope bounds of ``bab_mlp(..., drop_refuted=True)``
that the refinement reads are checked the same way."""

from __future__ import annotations

import time

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.certify.bab import bab_mlp
from robustest.certify.mlp import DenseMLP, dense_mlp, root_bounds
from robustest.certify.refine import refine_bounds
from robustest.graph import read_model

from .test_bab import _box, _mlp, _points


def _pre_activations(dn: DenseMLP, x: torch.Tensor) -> list[torch.Tensor]:
    out, h = [], x
    for w, b in zip(dn.weights[:-1], dn.biases[:-1]):
        h = h @ w.T + b
        out.append(h)
        h = torch.relu(h)
    return out


def _exact_range(model, lo: torch.Tensor, hi: torch.Tensor, k: int, j: int) -> tuple[float, float]:
    """MILP minimum and maximum of neuron ``j`` of ReLU layer ``k`` (1-based) over the box."""
    from robustest.certify.crown import crown
    from robustest.certify.encode import numpy_boxes
    from robustest.certify.milp import milp_minimum
    from robustest.spec import LpBall

    prefix = torch.nn.Sequential(*list(model)[:2 * k - 1]).eval()
    graph = read_model(prefix, torch.zeros(1, lo.numel(), dtype=torch.float64))
    x0 = ((lo + hi) / 2)[None]
    ball = LpBall(float((hi - lo).max()) / 2, "linf", (lo, hi))
    n = prefix[-1].out_features
    c = np.zeros(n)
    c[j] = 1.0
    boxes = numpy_boxes(crown(graph, x0, ball, torch.eye(n, dtype=torch.float64)[None]).boxes, 0)
    low, _ = milp_minimum(graph, x0[0], ball, c, boxes)
    high, _ = milp_minimum(graph, x0[0], ball, -c, boxes)
    assert low.status == "optimal" and high.status == "optimal"
    return float(low.objective), -float(high.objective)


nets = st.tuples(st.integers(0, 10_000), st.lists(st.integers(2, 8), min_size=2, max_size=3),
                 st.floats(0.05, 1.0))


def _case(net):  # type: ignore[no-untyped-def]
    """The drawn network (torch and dense), its box and a generator for the rest."""
    seed, widths, width = net
    model = _mlp(seed, widths)
    dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
    lo, hi = _box(seed, 3, width)
    return seed, model, dn, lo, hi, torch.Generator().manual_seed(seed)


@settings(max_examples=25, deadline=None)
@given(net=nets, budget=st.sampled_from([0.0, 0.05, 2.0]))
def test_refined_bounds_are_sound_and_no_wider(net, budget):
    seed, model, dn, lo, hi, _ = _case(net)
    ls, us = root_bounds(dn, lo, hi)
    rl, ru = refine_bounds(dn, lo, hi, ls, us, deadline=time.perf_counter() + budget)
    C = torch.eye(3, dtype=torch.float64)[None]
    pts = _points(model, lo, hi, C, seed)
    with torch.no_grad():
        pre = _pre_activations(dn, pts)
    for z, l, u, l0, u0 in zip(pre, rl, ru, ls, us):
        assert bool((l >= l0).all() and (u <= u0).all() and (l <= u).all())
        assert bool((z >= l - 1e-9).all() and (z <= u + 1e-9).all())


@settings(max_examples=20, deadline=None)
@given(net=nets)
def test_dropped_and_open_polytopes_keep_sound_bounds(net):
    seed, model, dn, lo, hi, g = _case(net)
    C = torch.randn(6, 1, 3, generator=g, dtype=torch.float64)
    b = torch.zeros(6, 1, dtype=torch.float64)
    st_ = bab_mlp(dn, lo, hi, C, b, deadline=time.perf_counter() + 0.5, batch=16, drop_refuted=True, spread=True)
    assert st_.worst is not None and st_.dropped is not None
    pts = _points(model, lo, hi, C, seed)
    with torch.no_grad():
        vals = model(pts) @ C[:, 0].T  # (n, P)
    assert bool((vals >= st_.worst - 1e-9).all())  # a lower bound of every polytope's margin
    assert st_.proved == bool((st_.worst > 0).all()) and not (st_.proved and bool(st_.dropped.any()))


def test_given_the_time_the_stable_neurons_are_exactly_those_of_milp():
    made_stable = 0
    for seed in range(3):
        model = _mlp(seed, [12, 12, 12])
        dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
        lo, hi = _box(seed, 3, 1.0)
        ls, us = root_bounds(dn, lo, hi)
        rl, ru = refine_bounds(dn, lo, hi, ls, us, deadline=time.perf_counter() + 30)
        for k in (2, 3):
            for j in range(12):
                m, M = _exact_range(model, lo, hi, k, j)
                l, u = float(rl[k - 1][j]), float(ru[k - 1][j])
                assert l <= m + 1e-7 and u >= M - 1e-7
                if m > 1e-6 or M < -1e-6:  # stable in truth: the refinement proves it
                    assert l >= 0 or u <= 0, (seed, k, j, m, M, l, u)
                made_stable += bool(ls[k - 1][j] < 0 < us[k - 1][j] and (l >= 0 or u <= 0))
    assert made_stable > 0  # CROWN alone leaves some of them unstable: the refinement is what decides them


@settings(max_examples=30, deadline=None)
@given(net=nets)
def test_leaf_lp_is_the_exact_minimum_on_its_sign_pattern(net):
    from robustest.certify.leaf_lp import leaf_margin

    seed, model, dn, lo, hi, g = _case(net)
    c = torch.randn(1, 3, generator=g, dtype=torch.float64)
    x = lo + (hi - lo) * torch.rand(20000, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        signs = torch.cat([torch.where(z > 0, 1.0, -1.0) for z in _pre_activations(dn, x)], 1)
        vals = (model(x) @ c.T)[:, 0]
    pattern = signs[0]  # the pattern of a real point, so the leaf is not empty
    same = (signs == pattern).all(1)
    v = leaf_margin(dn, lo, hi, pattern, c, torch.zeros(1, dtype=torch.float64))
    assert float(vals[same].min()) >= v - 1e-9  # sound on every sampled point of the leaf
    assert v <= float(vals[0]) + 1e-9
    # exact: a linear function over the leaf's polytope, so the optimum is at most the sampled minimum and
    # above the optimum of any relaxation such as CROWN's over the whole box
    assert v >= float(crown_lower(dn, lo, hi, c)) - 1e-5 * (1 + abs(v))  # safe() lowers optima by 1e-6 rel.


def crown_lower(dn: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    from robustest.certify.beta_crown import DomainBatch, bound

    ls, us = root_bounds(dn, lo, hi)
    return bound(dn, ls, us, lo, hi, c[None], DomainBatch.root(ls, us, 1, 1), optimise=False).lower[0, 0]
