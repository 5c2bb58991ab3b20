"""Square (query budget, probe, gradient-free), FAB (exact projections, minimal norm on linear models),
APGD-T over target copies, and the strength profiles of the default sequence."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import robustest
from robustest.attacks import get_attack
from robustest.attacks.fab import project_hyperplane
from robustest.attacks.sequence import STRENGTHS, build_sequence
from robustest.errors import InvalidArgument
from robustest.results import STRENGTH_NAMES
from robustest.spec import LpBall

from .test_attacks import BatchSizes, small_net


def test_square_keeps_its_per_sample_query_budget():
    inner = small_net(2)
    x = torch.rand(10, 6, generator=torch.Generator().manual_seed(0))
    y = inner(x).argmax(1)
    model = BatchSizes(inner).eval()
    get_attack("square", queries=25)(model, x, y, LpBall(1e-3, "linf"), generator=torch.Generator().manual_seed(0))
    search = model.sizes[:-1]  # the last call is the re-check
    assert len(search) <= 25 and sum(search) <= 25 * 10


def test_square_with_a_probe_stops_early_when_nothing_breaks():
    inner = small_net(2)
    x = torch.rand(10, 6, generator=torch.Generator().manual_seed(0))
    y = inner(x).argmax(1)
    model = BatchSizes(inner).eval()
    out = get_attack("square", queries=500, probe=10)(model, x, y, LpBall(1e-4, "linf"),
                                                      generator=torch.Generator().manual_seed(0))
    assert not bool(out.success.any()) and len(model.sizes) <= 11


class BreaksLate(torch.nn.Module):
    """Sample ``i`` (its id is 8 x feature 0 of its clean input, rounded: the radius is far below 1/16) is
    predicted class 0 until the model has seen it ``first + every * i`` times, then class 1: a model on
    which random search keeps breaking one more sample every ``every`` queries. Counts its queries per
    sample."""

    def __init__(self, n: int, first: int, every: int) -> None:
        super().__init__()
        self.first, self.every, self.seen = first, every, torch.zeros(n, dtype=torch.long)

    def forward(self, x):
        ids = (8 * x[:, 0]).round().long()
        self.seen[ids] += 1
        broken = self.seen[ids] >= self.first + self.every * ids
        return torch.stack([(~broken).float(), broken.float()], 1)


def _square(model, **options):
    x = torch.cat([torch.arange(8, dtype=torch.float32)[:, None] / 8, torch.rand(8, 3)], 1)
    return get_attack("square", queries=50, probe=10, **options)(
        model, x, torch.zeros(8, dtype=torch.long), LpBall(0.01, "linf"),
        generator=torch.Generator().manual_seed(0))


def test_square_extends_its_budget_while_it_keeps_breaking_samples_past_the_probe():
    # sample i breaks at its query 5 + 30 i: the probe (10) sees sample 0, every round of 50 a later one
    assert _square(BreaksLate(8, 5, 30).eval()).success.tolist() == [True] * 2 + [False] * 6  # one round
    model = BreaksLate(8, 5, 30).eval()
    out = _square(model, max_queries=200)
    assert out.success.tolist() == [True] * 7 + [False]  # rounds up to 200 queries: 5, 35, ..., 185
    assert int(model.seen[7]) <= 200 + 1  # the per-sample budget (+ the re-check)


def test_square_gets_no_more_rounds_when_it_breaks_only_within_the_probe_or_nothing():
    model = BreaksLate(8, 5, 10_000).eval()  # only sample 0 breaks, at query 5 (inside the probe)
    out = _square(model, max_queries=500)
    assert out.success.tolist() == [True] + [False] * 7 and int(model.seen.max()) <= 50 + 1  # one round
    model = BreaksLate(8, 10_000, 0).eval()  # nothing breaks: cut short at the probe, no further round
    out = _square(model, max_queries=500)
    assert not bool(out.success.any()) and int(model.seen.max()) <= 10 + 1


def test_square_refuses_a_total_budget_below_one_round():
    with pytest.raises(InvalidArgument, match="max_queries"):
        get_attack("square", queries=100, max_queries=50)


class NoGradient(torch.nn.Module):
    """Refuses backward: a gradient-free attack must not need it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        with torch.no_grad():
            return self.inner(x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_square_needs_only_forward_passes_and_breaks_images(norm):
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 8 * 8, 3)).eval()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = conv(x).argmax(1)
    ball = LpBall(0.3 if norm == "linf" else 2.0, norm)
    out = get_attack("square", queries=200)(NoGradient(conv).eval(), x, y, ball,
                                            generator=torch.Generator().manual_seed(0))
    assert bool(out.success.any()) and bool(ball.contains(out.adversarial, x).all())
    assert torch.equal(conv(out.adversarial).argmax(1) != y, out.success)


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), norm=st.sampled_from(["linf", "l2", "l1"]))
def test_fab_projection_meets_the_hyperplane_inside_the_box_with_least_norm(seed, norm):
    g = torch.Generator().manual_seed(seed)
    w, c = torch.randn(6, 5, generator=g), torch.randn(6, generator=g) * 0.2
    lo, hi = -torch.rand(6, 5, generator=g), torch.rand(6, 5, generator=g)
    d = project_hyperplane(w, c, lo, hi, norm)
    assert bool(((d >= lo - 1e-6) & (d <= hi + 1e-6)).all())
    reachable = (w.clamp_min(0) * hi + w.clamp_max(0) * lo).sum(1) >= c
    reachable &= (w.clamp_min(0) * lo + w.clamp_max(0) * hi).sum(1) <= c
    assert torch.allclose((w * d).sum(1)[reachable], c[reachable], atol=1e-5)
    # no feasible point on the hyperplane (random ones, moved onto it along d) has a smaller norm
    p = {"linf": float("inf"), "l2": 2, "l1": 1}[norm]
    for _ in range(20):
        r = lo + (hi - lo) * torch.rand(6, 5, generator=g)
        for t in torch.linspace(0, 1, 11):
            q = t * r + (1 - t) * d
            on = ((w * q).sum(1) - c).abs() < 1e-3
            assert bool((q.norm(p=p, dim=1)[on & reachable] >= d.norm(p=p, dim=1)[on & reachable] - 1e-4).all())


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fab_finds_the_minimal_perturbation_of_a_linear_model(norm):
    """Two classes, no domain: the least distance to the boundary is margin / ||w1 - w0||_dual; FAB must
    break every sample with 1.1x that radius (and the re-check keeps it sound)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2).eval()
    x = torch.randn(40, 5)
    y = model(x).argmax(1)
    t = model(x).scatter(1, y[:, None], float("-inf")).argmax(1)
    w, b = model.weight.detach(), model.bias.detach()
    diff = w[y] - w[t]
    margin = (diff * x).sum(1) + b[y] - b[t]
    dual = {"linf": 1, "l2": 2, "l1": float("inf")}[norm]
    exact = margin / diff.norm(p=dual, dim=1)
    hits = []
    for i in range(len(y)):
        ball = LpBall(float(exact[i]) * 1.1, norm, None)
        out = get_attack("fab", steps=30)(model, x[i:i + 1], y[i:i + 1], ball, targets=t[i:i + 1])
        hits.append(bool(out.success[0]))
    assert all(hits)


def test_apgd_t_over_target_copies_stops_a_broken_samples_copies():
    inner = small_net(4)
    x = torch.rand(24, 6, generator=torch.Generator().manual_seed(0))
    y = inner(x).argmax(1)
    model = BatchSizes(inner).eval()
    out = get_attack("apgd-t", steps=20, targets=3)(model, x, y, LpBall(0.4, "linf"),
                                                    generator=torch.Generator().manual_seed(0))
    broken = int(out.success.sum())
    assert 0 < broken < 24
    sizes = model.sizes[1:-1]  # after the clean ranking pass, before the re-check
    assert sizes[0] == 72 and min(sizes) <= 3 * (24 - broken)
    loop = get_attack("apgd-t", steps=20, targets=3, batch_targets=False)(
        inner, x, y, LpBall(0.4, "linf"), generator=torch.Generator().manual_seed(0))
    assert bool(loop.success.any())


def test_strength_profiles_are_frozen_and_named_once():
    assert set(STRENGTHS) == set(STRENGTH_NAMES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        STRENGTHS["standard"].ce_steps = 1  # type: ignore[misc]
    names = [a.describe() for a in build_sequence("auto", strength="thorough")]
    assert names[-1] == "square" and "apgd-t" in names
    with pytest.raises(InvalidArgument, match="strength"):
        build_sequence("auto", strength="max")


def test_check_takes_strength_and_refuses_a_bad_one(digits_mlp):
    model, x, y = digits_mlp
    fast = robustest.check(model, x[:20], y[:20], eps=0.1, strength="fast")
    assert fast.counts()["falsified"] > 0
    with pytest.raises(InvalidArgument, match="strength"):
        robustest.check(model, x[:5], y[:5], eps=0.1, strength="max")


def test_square_is_skipped_by_a_sequence_in_l1():
    model = small_net(3)
    x = torch.rand(8, 6)
    y = model(x).argmax(1)
    out = robustest.attack(model, x, y, eps=2.0, norm="l1", method=["fgsm", "square"])
    assert "square" not in out.method
