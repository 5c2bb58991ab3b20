"""robustest.repair end to end: exact cuts on softmax regression, the original model untouched, the
result's figures consistent with the model it returns."""

from __future__ import annotations

import pytest
import torch

import robustest
from robustest.repair.jacobian import FlatModel, violation


def _softmax_regression(seed: int = 0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(12, 4).double().eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(80, 12, generator=g, dtype=torch.float64)
    y = net(x).argmax(1)  # the model is right on "train"
    x_adv = torch.rand(6, 12, generator=g, dtype=torch.float64)
    y_adv = (net(x_adv).argmax(1) + 1) % 4  # and wrong on every adversarial point
    return net, (x, y), (x_adv, y_adv)


def test_cuts_are_exact_on_softmax_regression_one_qp_reaches_zero_violation():
    net, train, adv = _softmax_regression()
    res = robustest.repair(net, adv, train, iterations=1, steps=1, margin=1e-3)
    assert res.qp[0].status == "optimal" and res.qp[0].slack < 1e-9
    (cand,) = res.candidates
    assert cand.step == 1.0 and cand.violation == 0.0 and cand.fixed == 6
    assert res.adversarial_accuracy_before == 0.0 and res.adversarial_accuracy_after == 1.0
    # the linearised loss cut holds at the QP point: the step does not point uphill in the loss
    fm = FlatModel(net)
    _, grad = fm.loss_and_grad(fm.w0, *train)
    step = torch.cat([p.detach().reshape(-1) for p in res.model.parameters()]) - fm.w0
    assert float(grad @ step) <= 1e-9
    assert abs(res.distance - float(step.norm())) < 1e-9


def test_the_original_model_is_unchanged_and_the_result_matches_its_model():
    net, train, adv = _softmax_regression(1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = robustest.repair(net, adv, train, iterations=3, steps=4, omega=0.2)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert res.model is not net and len(res.candidates) == 12 and len(res.qp) == 3
    x_adv, y_adv = adv
    with torch.no_grad():
        z = res.model(x_adv)
        acc = float((res.model(train[0]).argmax(1) == train[1]).double().mean())
    assert res.violation_after == pytest.approx(violation(z, y_adv), abs=1e-9)
    assert res.candidate is not None and res.candidate.violation == pytest.approx(res.violation_after, abs=1e-9)
    assert res.clean_accuracy_after == pytest.approx(acc)
    assert res.qp_seconds >= 0 and res.seconds >= res.qp_seconds
    assert "repair (dual" in res.summary()


def test_omega_zero_pick_has_the_least_violation_in_the_pool():
    net, train, adv = _softmax_regression(2)
    res = robustest.repair(net, adv, train, iterations=2, steps=5, omega=0.0)
    assert res.candidate.violation == min(c.violation for c in res.candidates)
    # any candidate can be rebuilt: its violation is what the pool says
    x_adv, y_adv = adv
    for i in (0, 7, res.chosen):
        with torch.no_grad():
            z = res.candidate_model(i)(x_adv)
        assert violation(z, y_adv) == pytest.approx(res.candidates[i].violation, abs=1e-9)


def test_mlp_on_digits_fixes_pgd_points_without_hurting_clean_accuracy():
    from digits import load_model, load_split

    model = load_model("mlp")
    (x, y), (xt, yt) = load_split()
    res = robustest.repair(model, None, (x[:400], y[:400]), eps=0.05, n_adversarial=5, iterations=3,
                           evaluate=(xt, yt), margin=0.05)
    assert res.n_adversarial == 5 and res.adversarial_accuracy_before == 0.0
    assert res.adversarial_accuracy_after == 1.0
    assert res.clean_accuracy_after >= res.clean_accuracy_before - 0.02
    assert res.robust_accuracy_before is not None and res.robust_accuracy_after is not None


def test_adversarial_points_from_a_check_report():
    from digits import load_model, load_split

    model = load_model("mlp")
    (x, y), (xt, yt) = load_split()
    report = robustest.check(model, xt[:30], yt[:30], eps=0.08, seed=0)
    n_fals = report.counts()["falsified"]
    assert n_fals > 0
    res = robustest.repair(model, report, (x[:300], y[:300]), iterations=2, margin=0.05)
    assert res.n_adversarial == n_fals
    assert res.violation_after < res.violation_before


def test_block_coordinate_and_highs_backends_run_through_the_api():
    net, train, adv = _softmax_regression(3)
    exact = robustest.repair(net, adv, train, iterations=1, steps=1, margin=1e-3)
    highs = robustest.repair(net, adv, train, iterations=1, steps=1, margin=1e-3, solver="highs")
    assert highs.distance == pytest.approx(exact.distance, rel=1e-5)
    try:
        import gurobipy  # noqa: F401
    except ImportError:
        pass
    else:
        gurobi = robustest.repair(net, adv, train, iterations=1, steps=1, margin=1e-3, solver="gurobi")
        assert gurobi.distance == pytest.approx(exact.distance, rel=1e-3)
    blk = robustest.repair(net, adv, train, iterations=2, steps=2, margin=1e-3, block=0.5)
    assert blk.solver == "dual+block0.5" and blk.distance >= exact.distance - 1e-9


def test_robust_linearisation_pushes_margins_further():
    net, train, adv = _softmax_regression(4)
    plain = robustest.repair(net, adv, train, iterations=1, steps=1)
    robust = robustest.repair(net, adv, train, iterations=1, steps=1, robust_linearisation=True,
                              robust_radius=0.05)
    x_adv, y_adv = adv
    with torch.no_grad():
        def worst(m):
            z = m(x_adv)
            true = z.gather(1, y_adv[:, None]).squeeze(1)
            return (true - z.scatter(1, y_adv[:, None], -torch.inf).amax(1)).min()
        assert worst(robust.model) > worst(plain.model) + 1e-4
