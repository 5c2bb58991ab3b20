"""What keeps a guided repair from fitting the test's samples (robustest.repair.guard): the validation
guard's line search, one-layer repair, the adversarial polish, points in the failing samples' balls and
the adversarial loss cut. The gap problem (conftest.py) has a known fix."""

from __future__ import annotations

import pytest
import torch

import robustest
from robustest.errors import InvalidArgument
from robustest.repair import guard as gd
from robustest.repair import holdout as ho
from robustest.repair.guided_settings import FIXED, GuidedSettings
from robustest.repair.guided_types import RepairTest
from robustest.repair.jacobian import FlatModel
from robustest.repair.robust_loss import adversarial_loss, max_loss_points
from robustest.spec import LpBall


def gate(gap) -> RepairTest:
    return RepairTest(gap.x, gap.y, check={"eps": 0.08, "seed": 0})


def test_max_loss_points_stay_in_the_ball_and_raise_the_loss(gap):
    model, ball = gap.model(), LpBall(0.08, "linf", (0.0, 1.0))
    x, y = gap.data(50, 1)
    adv = max_loss_points(model, x, y, ball, steps=5, seed=0)
    assert bool(ball.contains(adv, x).all())
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert float(ce(model(adv), y)) > float(ce(model(x), y))


def test_the_adversarial_loss_cut_is_one_more_row_and_holds_to_first_order(gap):
    x, y = gap.data(100, 0)
    x_adv, y_adv = torch.tensor([[0.58, 0.5], [0.59, 0.2]]), torch.tensor([1, 1])
    plain = robustest.repair(gap.model(), (x_adv, y_adv), (x, y), iterations=2, margin=0.05)
    cut = robustest.repair(gap.model(), (x_adv, y_adv), (x, y), iterations=2, margin=0.05, loss_eps=0.08)
    assert [q.rows for q in cut.qp] == [q.rows + k for k, q in enumerate(plain.qp, 1)]  # one row per cut point
    fm = FlatModel(gap.model())
    _, grad = adversarial_loss(fm, fm.w0, x, y, ball=LpBall(0.08, "linf", (0.0, 1.0)), seed=0)
    assert float(grad @ cut.directions[0].to(grad)) <= 1e-6  # the first step does not point uphill
    assert cut.adversarial_accuracy_after == 1.0


def test_the_guard_shrinks_a_step_that_costs_validation_robustness_or_undoes_it(gap):
    # validation points of class 1 at x0 = 0.7: robust at eps 0.08 while the boundary is below 0.62
    val = (torch.tensor([[0.7, 0.2], [0.7, 0.8], [0.2, 0.5]]), torch.tensor([1, 1, 0]))
    test = gate(gap)
    start = FlatModel(gap.model(0.6)).w0
    guard = gd.Guard(gap.model(0.6), val, test, tolerance=0.01, limit=10)
    assert guard.base.robust == 1.0
    moved = gap.model(0.65)  # boundary at 0.65: the 0.7 points break at 0.62; a quarter of the step (0.6125) is safe
    assert guard.shrink(moved, start, (1.0, 0.5, 0.25)) == 0.25
    assert guard.last.robust == 1.0
    assert float(moved[0].bias[1].detach() / moved[0].weight[1, 0].detach()) == pytest.approx(-0.6125)
    moved = gap.model(0.65)
    assert guard.shrink(moved, start, (1.0, 0.5)) is None
    assert torch.equal(FlatModel(moved).w0, start)  # undone
    moved = gap.model(0.65)  # past the round's deadline no share is judged (0.25 would pass): undone
    assert guard.shrink(moved, start, (0.25,), deadline=0.0) is None and torch.equal(FlatModel(moved).w0, start)
    assert guard.seconds > 0


def test_one_layer_is_freed_and_the_flags_come_back():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert gd.layers(net) == [("0", ["0.weight", "0.bias"]), ("2", ["2.weight", "2.bias"])]
    with gd.only(net, gd.layer_names(net, "2")):
        assert FlatModel(net).n == 3 * 2 + 2
    assert all(p.requires_grad for p in net.parameters())
    assert gd.layer_names(net, "all") is None
    with pytest.raises(InvalidArgument, match="GuidedSettings.layer.*'0', '2'"):
        gd.layer_names(net, "1")


def test_points_in_the_balls_are_inside_them(gap):
    test = gate(gap)
    x, y = gap.x[:3], gap.y[:3]
    pts, labels = gd.ball_points(gap.model(), x, y, test, count=4, seed=0)
    assert pts.shape == (12, 2) and torch.equal(labels, y.repeat(4))
    assert bool(LpBall(0.08, "linf", (0.0, 1.0)).contains(pts, x.repeat(4, 1)).all())


def test_guided_repair_with_every_generalisation_aid_fixes_the_gap(gap):
    model = gap.model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    settings = GuidedSettings(robust_guard=True, layer="auto", polish_steps=3, ball_points=2,
                              adversarial_loss_cut=True, least_step=True)
    res = robustest.repair(model, train=gap.data(200, 0), test=gate(gap), guided=settings)
    assert res.status == FIXED and res.accepted, res.summary()
    assert gate(gap).passes(gate(gap).run(res.model))  # an independent re-check
    assert any("set aside to validate" in n for n in res.notes)
    assert any("repairing layer '0'" in n for n in res.notes) and any(n.startswith("polish:") for n in res.notes)
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in res.model.parameters())


@pytest.mark.parametrize("field, value", [("guard_scales", ()), ("guard_scales", (0.0,)), ("layer", ""),
                                          ("ball_points", -1), ("polish_steps", True), ("validation_share", 1.0),
                                          ("adversarial_loss_decrease", 1.0), ("protect", -2)])
def test_bad_generalisation_settings_name_the_field(field, value):
    with pytest.raises(InvalidArgument, match=f"GuidedSettings.{field}"):
        GuidedSettings(**{field: value})


def test_one_layer_is_refused_for_adversarial_finetuning(gap):
    with pytest.raises(InvalidArgument, match="GuidedSettings.layer"):
        robustest.repair(gap.model(), train=gap.data(50, 0), test=gate(gap), method="adversarial-finetune",
                         guided=GuidedSettings(layer="0"))


def test_the_least_step_that_passes_is_kept(gap):
    # the fix is a boundary in (0.53, 0.57); from 0.6 towards 0.55, a quarter step (0.5875) or half (0.575)
    # still fails the gate, three quarters (0.5625) passes
    start, test = FlatModel(gap.model(0.6)).w0, gate(gap)
    moved = gap.model(0.55)
    share, report = gd.smallest_passing(moved, start, test, (1.0, 0.75, 0.5, 0.25), None)
    assert share == 0.75 and test.passes(report) and test.passes(test.run(moved))
    assert float(moved[0].bias[1].detach() / moved[0].weight[1, 0].detach()) == pytest.approx(-0.5625)
    unfixable = gap.model(0.59)
    assert gd.smallest_passing(unfixable, start, test, (1.0, 0.5), None) is None
    assert torch.equal(FlatModel(unfixable).w0, FlatModel(gap.model(0.59)).w0)  # left at the full step
    moved = gap.model(0.55)  # past the deadline no smaller share is tried: the full step stays
    assert gd.smallest_passing(moved, start, test, (1.0, 0.75), None, deadline=0.0) is None
    assert torch.equal(FlatModel(moved).w0, FlatModel(gap.model(0.55)).w0)


def test_protected_points_keep_their_margin_and_the_nearest_others_are_of_other_classes(gap):
    x, y = gap.data(100, 0)
    x_adv, y_adv = torch.tensor([[0.58, 0.5], [0.59, 0.2]]), torch.tensor([1, 1])
    x_pr = torch.tensor([[0.535, 0.1], [0.54, 0.9], [0.5, 0.5]])
    y_pr = torch.tensor([0, 0, 0])
    res = robustest.repair(gap.model(), (x_adv, y_adv), (x, y), iterations=2, margin=0.05, protect=(x_pr, y_pr))
    plain = robustest.repair(gap.model(), (x_adv, y_adv), (x, y), iterations=2, margin=0.05)
    assert [q.rows for q in res.qp] == [q.rows + 3 * k for k, q in enumerate(plain.qp, 1)]  # one row per point
    assert res.adversarial_accuracy_after == 1.0
    with torch.no_grad():
        def margins(m):
            z = m(x_pr)
            return z[:, 0] - z[:, 1]
        floor = margins(gap.model()).clamp_max(0.05)
        assert bool((margins(res.model) >= floor - 1e-5).all())  # a linear model: the cuts are exact
    near = ho.nearest_other((x, y), x_adv, y_adv, 3)
    assert len(near) > 0 and bool((y[near] == 0).all())


def test_a_spent_time_budget_stops_before_a_round_with_the_original_model(gap):
    res = robustest.repair(gap.model(), train=gap.data(50, 0), test=gate(gap), guided=GuidedSettings(time_budget=1e-4))
    assert res.stop_reason.startswith("time budget") and res.rounds == () and not res.passed
    assert torch.equal(FlatModel(res.model).w0, FlatModel(gap.model()).w0)
