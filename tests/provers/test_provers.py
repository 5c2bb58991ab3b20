"""The prover registry and the orchestrator: order, soundness of every prover, the BaB rung from check()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import robustest
from robustest.graph import read_model
from robustest.ladder import rungs
from robustest.provers import PROVERS, ProofSettings, ProofTask, prover_rungs
from robustest.results import RUNGS
from robustest.spec import LpBall


def test_the_ladder_is_the_registry_order():
    assert prover_rungs() == RUNGS[1:]
    assert [r.name for r in rungs("bab")] == list(RUNGS)
    assert [r.name for r in rungs("crown")] == ["attack", "ibp", "crown"]


def _net(seed: int, width: int, d: int = 2, k: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                               torch.nn.ReLU(), torch.nn.Linear(width, k)).double().eval()


def _grid_rows(net: torch.nn.Module, x0: torch.Tensor, eps: float, C: torch.Tensor, n: int = 41) -> np.ndarray:
    """Per row of ``C``, the smallest ``C f(x)`` over a dense grid of the linf box (the vertices included)."""
    axes = [torch.linspace(float(v) - eps, float(v) + eps, n, dtype=torch.float64) for v in x0]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    with torch.no_grad():
        return (net(pts) @ C.T).min(0).values.numpy()


@pytest.mark.parametrize("name", list(PROVERS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.01, 0.4))
def test_a_proved_sample_has_no_counterexample_on_a_dense_grid(name, seed, eps):
    """Soundness of each prover on tiny networks (2 inputs): proved implies the grid's margin is > 0, and a
    counterexample candidate is a point of the box."""
    net = _net(seed, 6)
    x0 = torch.rand(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        label = int(net(x0).argmax(1))
    task = ProofTask.margins(read_model(net, x0), x0, LpBall(eps, "linf", None), torch.tensor([label]),
                             settings=ProofSettings(alpha_crown=True))
    (out,) = PROVERS[name].prove(task, deadline=float("inf"))
    rows = _grid_rows(net, x0[0], eps, task.C[0])
    if out.status == "proved":
        assert rows.min() > 0, (name, out)
        assert out.figure is None or out.figure <= rows.min() + 1e-9
    if out.lower is not None:  # the row bounds it learnt hold at every grid point
        assert np.all(out.lower <= rows + 1e-9), (name, out.lower, rows)
    if out.status == "counterexample":
        assert out.counterexample is not None
        assert float((out.counterexample - x0[0]).abs().max()) <= eps * (1 + 1e-6) + 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.02, 1.0))
@example(seed=0, eps=1.0)  # CROWN's own bound on a row is below IBP's here
def test_row_bounds_and_proofs_nest_ibp_crown_lp_milp(seed, eps):
    """IBP ⊇ CROWN ⊇ LP ⊇ MILP: run in ladder order on one task sharing its known bounds, no prover reports
    a row bound below one known before it (CROWN is not always tighter than IBP on its own), a sample
    proved stays proved, the per-node bounds CROWN keeps lie inside IBP's, and every bound holds on a grid."""
    from dataclasses import replace

    from robustest.certify.ibp import interval_bounds
    from robustest.provers import Known

    net = _net(seed, 6)
    x0 = torch.rand(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        label = int(net(x0).argmax(1))
    ball = LpBall(eps, "linf", None)
    task = ProofTask.margins(read_model(net, x0), x0, ball, torch.tensor([label]))
    known = Known(np.full(task.d.shape[1], -np.inf))
    task = replace(task, known=(known,))
    rows = _grid_rows(net, x0[0], eps, task.C[0])
    proved = False
    for name in ("ibp", "crown", "lp", "milp"):
        before = known.lower.copy()
        (out,) = PROVERS[name].prove(task, deadline=float("inf"))
        if out.lower is not None:
            assert np.all(out.lower >= before), (name, out.lower, before)
            assert np.all(out.lower <= rows + 1e-9), (name, out.lower, rows)
        assert out.status != "counterexample" or not proved
        if proved:
            assert out.status == "proved", (name, out)
        proved = proved or out.status == "proved"
        if out.boxes is not None:
            ibp = interval_bounds(task.graph, *ball.box(x0))
            for (lo, hi), (ilo, ihi) in zip(out.boxes, ibp):
                assert np.all(lo >= ilo[0].reshape(-1).numpy() - 1e-12)
                assert np.all(hi <= ihi[0].reshape(-1).numpy() + 1e-12)
        known.learn(out.lower, out.boxes)


def test_escalate_bab_decides_what_crown_leaves_unknown(digits_mlp):
    """On the examples' MLP at eps=0.07 attacks + CROWN leave samples unknown; the BaB rung decides them
    within the budget (MILP given no time, so the decisions are BaB's own)."""
    model, x, y = digits_mlp
    x, y = x[:30], y[:30]
    crown = robustest.check(model, x, y, eps=0.07, escalate="crown", timeout=10)
    left = [s.index for s in crown.samples if s.verdict == "unknown"]
    assert left, "the case needs samples CROWN cannot decide"
    bab = robustest.check(model, x, y, eps=0.07, escalate="bab", timeout=10,
                          provers=ProofSettings(milp_share=0.0))
    for i in left:
        s = bab.samples[i]
        assert s.verdict in ("certified", "falsified"), s
        assert s.method == "bab" or s.verdict == "falsified"
        assert s.seconds <= 10 * 1.1 + 1
    for a, b in zip(crown.samples, bab.samples):  # what CROWN decided stays decided the same way
        if a.verdict != "unknown":
            assert a.verdict == b.verdict


def test_bab_on_a_network_it_does_not_support_says_why():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 2), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 2 * 2, 3)).eval()
    x = torch.rand(4, 1, 3, 3)
    y = net(x).argmax(1)
    rep = robustest.check(net, x, y, eps=0.3, escalate="bab", timeout=3, provers=ProofSettings(milp_share=0.0))
    for s in rep.samples:
        if s.verdict == "unknown":
            assert "bab" in s.method
            assert "Linear/ReLU" in s.reason or "fully connected" in s.reason or "budget" in s.reason
