"""Attacks: the ball and domain constraints, re-checks, determinism, early stop, strength sanity."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.attacks import ATTACKS, Attack, get_attack
from robustest.attacks.base import Deadline
from robustest.attacks.sequence import build_sequence, run_sequence
from robustest.errors import InvalidArgument
from robustest.spec import LpBall

ALL = ["fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "fab"]
FAST = {"fgsm": {}, "pgd": {"steps": 10, "restarts": 2}, "apgd-ce": {"steps": 10},
        "apgd-dlr": {"steps": 10}, "apgd-t": {"steps": 10, "targets": 2}, "square": {"queries": 30},
        "fab": {"steps": 10, "targets": 2, "restarts": 2}}


def small_net(seed: int, d: int = 6, k: int = 4) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, k)).eval()
    with torch.no_grad():  # unit-variance weights: a function that varies across [0, 1]^d
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    return net


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 0.6), norm=st.sampled_from(["linf", "l2", "l1"]),
       name=st.sampled_from(ALL))
def test_adversarial_inputs_stay_in_ball_and_domain(seed, eps, norm, name):
    model = small_net(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 6, generator=g)
    y = torch.randint(0, 4, (8,), generator=g)
    ball = LpBall(eps, norm, (0.0, 1.0))
    attack = get_attack(name, **FAST[name])
    if norm not in attack.norms:  # Square has no l1 version: a clear error, and sequences skip it
        with pytest.raises(InvalidArgument, match="norm"):
            attack(model, x, y, ball, generator=g)
        return
    out = attack(model, x, y, ball, generator=g)
    assert bool(ball.contains(out.adversarial, x).all())
    assert float(out.adversarial.min()) >= 0.0 and float(out.adversarial.max()) <= 1.0
    # a success is a real misclassification, by a forward pass of our own
    pred = model(out.adversarial).argmax(1)
    assert torch.equal(out.success, pred != y)


def test_linear_binary_model_matches_the_closed_form():
    """For a linear 2-class model without a domain, FGSM (linf) is optimal: it succeeds exactly when the
    margin is below eps * ||w1 - w0||_1. PGD and APGD must agree."""
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2).eval()
    x = torch.randn(200, 5)
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    w = model.weight.detach()
    eps = 0.3
    sign = torch.where(y == 0, 1.0, -1.0)
    margin = (z[:, 0] - z[:, 1]).abs()
    breakable = margin < eps * (w[0] - w[1]).abs().sum()
    clear = (margin - eps * (w[0] - w[1]).abs().sum()).abs() > 1e-4  # not on the boundary
    ball = LpBall(eps, "linf", None)
    for name in ["fgsm", "pgd", "apgd-ce"]:
        out = get_attack(name, **FAST.get(name, {}))(model, x, y, ball, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out.success[clear], breakable[clear]), name
    del sign


def test_a_search_that_leaves_the_ball_is_not_reported():
    class Cheat(Attack):
        name = ""  # not registered

        def search(self, model, x0, y, ball, targets, generator, deadline):
            return x0 + 10 * ball.eps  # outside the ball, surely misclassified by some model

    model = small_net(1)
    x = torch.rand(10, 6) * 0.5
    y = model(x).argmax(1)
    out = Cheat()(model, x, y, LpBall(0.01, "linf", None))
    assert not bool(out.success.any())
    assert torch.equal(out.adversarial, x)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_result(name):
    model = small_net(3)
    x = torch.rand(16, 6, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(2))
    ball = LpBall(0.2, "linf")
    a = get_attack(name, **FAST[name])(model, x, y, ball, generator=torch.Generator().manual_seed(7))
    b = get_attack(name, **FAST[name])(model, x, y, ball, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.adversarial, b.adversarial) and torch.equal(a.success, b.success)


class BatchSizes(torch.nn.Module):
    """Records the batch size of every forward call."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.sizes = inner, []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        return self.inner(x)


@pytest.mark.parametrize("name", ["pgd", "apgd-ce"])
def test_broken_samples_leave_the_batch(name):
    inner = small_net(4)
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(0))
    y = inner(x).argmax(1)
    model = BatchSizes(inner).eval()
    out = get_attack(name, steps=30)(model, x, y, LpBall(0.5, "linf"), generator=torch.Generator().manual_seed(0))
    n_broken = int(out.success.sum())
    assert 0 < n_broken < 32, "the test needs some broken and some robust samples"
    sizes = model.sizes[:-1]  # the last call is the final re-check of all 32
    assert sizes[0] == 32 and min(sizes) <= 32 - n_broken
    assert sizes == sorted(sizes, reverse=True)


def test_sequence_attacks_only_unbroken_samples():
    inner = small_net(5)
    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    y = inner(x).argmax(1)
    model = BatchSizes(inner).eval()
    attacks = build_sequence(["fgsm", ("pgd", {"steps": 5})])
    out = run_sequence(model, x, y, LpBall(0.6, "linf"), attacks, generator=torch.Generator().manual_seed(0))
    fgsm_hits = sum(m == "fgsm" for m in out.method)
    assert fgsm_hits > 0
    # the first PGD forward (after FGSM's two calls and its re-check) sees only what FGSM left
    assert 40 - fgsm_hits in model.sizes


@pytest.mark.parametrize("name", ["pgd", "apgd-t", "square", "fab"])
def test_targeted_success_means_reaching_the_target(name):
    model = small_net(6)
    x = torch.rand(30, 6, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    t = (y + 1) % 4
    out = get_attack(name, **FAST[name])(model, x, y, LpBall(1.0, "linf"), targets=t,
                                         generator=torch.Generator().manual_seed(0))
    assert bool(out.success.any())
    assert torch.equal(out.predicted[out.success], t[out.success])


def test_iterative_attacks_beat_fgsm_and_success_grows_with_eps(digits_mlp):
    model, x, y = digits_mlp
    rates = []
    for eps in [0.02, 0.05, 0.1]:
        ball = LpBall(eps, "linf")
        g = torch.Generator().manual_seed(0)
        fgsm = get_attack("fgsm")(model, x, y, ball).success
        apgd = get_attack("apgd-ce", steps=50)(model, x, y, ball, generator=g).success
        assert int(apgd.sum()) >= int(fgsm.sum())
        rates.append(int(apgd.sum()))
    assert rates == sorted(rates) and rates[-1] > rates[0]


def test_unbounded_eps_breaks_everything(digits_mlp):
    model, x, y = digits_mlp
    out = run_sequence(model, x[:40], y[:40], LpBall(1.0, "linf", (0.0, 1.0)), build_sequence("auto"),
                       generator=torch.Generator().manual_seed(0))
    assert bool(out.success.all())


def test_deadline_stops_an_attack():
    import time

    model = small_net(7)
    x = torch.rand(8, 6)
    y = model(x).argmax(1)
    attack = get_attack("pgd", steps=10_000)
    start = time.perf_counter()
    attack.search(model, x, y, LpBall(1e-4, "linf"), None, None, Deadline(time.perf_counter() + 0.2))
    assert time.perf_counter() - start < 5.0  # far below 10,000 steps' worth


@pytest.mark.parametrize("bad", [{"steps": 0}, {"steps": 1.5}, {"loss": "hinge"}, {"restarts": -1},
                                 {"nonsense": 1}])
def test_bad_attack_options_are_named(bad):
    with pytest.raises(InvalidArgument) as exc:
        get_attack("pgd", **bad)
    assert list(bad)[0] in str(exc.value) or "options" in str(exc.value)


def test_unknown_attack_lists_the_known_ones():
    with pytest.raises(InvalidArgument, match="apgd"):
        get_attack("cw")
    assert {"fgsm", "pgd", "apgd", "apgd-t"} <= set(ATTACKS)


@pytest.mark.parametrize("method", ["pgd", "apgd", "apgd-t", "square", "fab", "auto"])
def test_a_target_equal_to_the_label_is_never_a_success(method):
    """Targeted success is "predicted as the target and not as the label": with targets=y nothing moved,
    so nothing may be reported broken (it used to report every sample still predicted as its label)."""
    import robustest

    model = small_net(8)
    x = torch.rand(12, 6, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    out = robustest.attack(model, x, y, eps=0.05, method=method, targets=y)
    assert not bool(out.success.any())
    assert torch.equal(out.adversarial, x)


@pytest.mark.parametrize("targeted", [False, True])
def test_dlr_loss_has_the_value_and_gradient_of_the_papers_sorted_form(targeted):
    """The loss gathers its top logits by indices found without autograd; the paper's formula sorts
    differentiably. Both must agree in value (ties included: integer logits) and, where no logits tie (a tie
    makes the choice of subgradient arbitrary), in input gradient."""
    from robustest.attacks.losses import dlr_loss

    g = torch.Generator().manual_seed(3)
    z = torch.cat([torch.randn(40, 6, generator=g), torch.randint(0, 3, (20, 6), generator=g).float()])
    z.requires_grad_(True)
    y = torch.randint(0, 6, (60,), generator=g)
    t = (y + 1 + torch.randint(0, 5, (60,), generator=g)) % 6 if targeted else None
    zs, _ = z.sort(dim=1, descending=True)
    true = z.gather(1, y[:, None])[:, 0]
    if targeted:
        ref = -(true - z.gather(1, t[:, None])[:, 0]) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12)
    else:
        other = z.scatter(1, y[:, None], float("-inf")).amax(1)
        ref = -(true - other) / (zs[:, 0] - zs[:, 2] + 1e-12)
    out = dlr_loss(z, y, t)
    assert torch.allclose(out, ref, rtol=1e-6, atol=1e-6)
    (g_out,) = torch.autograd.grad(out.sum(), z)
    (g_ref,) = torch.autograd.grad(ref.sum(), z)
    distinct = (zs[:, :-1] != zs[:, 1:]).all(1)
    assert int(distinct.sum()) >= 40
    assert torch.allclose(g_out[distinct], g_ref[distinct], rtol=1e-5, atol=1e-5)
