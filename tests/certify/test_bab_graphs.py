"""BaB beyond Linear/ReLU chains: the dense read of conv / normalised / pooled chains equals the network,
refusals name their reason, and on tiny conv nets and 3-input nets (input split) ``proved`` is never wrong
against MILP's exact minimum and sampling, while a planted counterexample is found."""

from __future__ import annotations

import time

import pytest
import torch
from certify_nets import exact_min
from torch import nn

from robustest.certify.bab import bab
from robustest.certify.input_split import input_split
from robustest.certify.mlp import DenseRead, dense_mlp
from robustest.errors import UnsupportedLayer
from robustest.graph import Graph, read_model
from robustest.layers import kinds
from robustest.layers.scale import ConstantAffine
from robustest.provers import PROVERS, ProofTask
from robustest.schedules import InputSplit, ProofSettings
from robustest.spec import LpBall


def _bn(c: int, seed: int) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g))
        bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
        bn.weight.copy_(torch.randn(c, generator=g))
        bn.bias.copy_(torch.randn(c, generator=g))
    return bn


def _conv_net(seed: int) -> nn.Module:
    """Normalisation, conv, BatchNorm, ReLU, average pooling, conv, ReLU, Flatten, Linear (1x6x6 inputs)."""
    torch.manual_seed(seed)
    norm = ConstantAffine(scale=torch.tensor(1 / 0.3), shift=torch.tensor(-0.1 / 0.3))
    return nn.Sequential(norm, nn.Conv2d(1, 2, 3, padding=1), _bn(2, seed), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(12, 3)).double().eval()


def _normalised_mlp(seed: int, d: int = 3) -> nn.Module:
    """(x - mean) / std, Linear, two ReLUs in a row, Linear, ending with a ReLU."""
    torch.manual_seed(seed)
    norm = ConstantAffine(scale=torch.tensor([2.0, 0.5, 1.5][:d]), shift=torch.tensor([0.1, -0.2, 0.3][:d]))
    return nn.Sequential(norm, nn.Linear(d, 6), nn.ReLU(), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(),
                         nn.Linear(5, 2), nn.ReLU()).double().eval()


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)) + x)


def _graph(model: nn.Module, shape: tuple[int, ...]) -> Graph:
    return read_model(model, torch.zeros((1,) + shape, dtype=torch.float64))


@pytest.mark.parametrize("make, shape", [(_conv_net, (1, 6, 6)), (_normalised_mlp, (3,))])
def test_dense_read_equals_the_network(make, shape):
    model = make(0)
    net = dense_mlp(_graph(model, shape))
    x = torch.rand((50,) + shape, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        want = model(x).reshape(50, -1)
    torch.testing.assert_close(net.forward(x.reshape(50, -1)), want, rtol=1e-10, atol=1e-10)


def test_refusals_name_the_reason():
    smooth = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayer, match="neither linear nor a ReLU"):
        dense_mlp(_graph(smooth.double().eval(), (3,)))
    with pytest.raises(UnsupportedLayer, match="dense 72 x 36 matrix.*limit of 100"):
        dense_mlp(_graph(_conv_net(0), (1, 6, 6)), limits=DenseRead(max_entries=100))
    assert PROVERS["bab"].refusal(_graph(_Residual().double().eval(), (3,))) == ""  # residual: read since bab-general
    assert PROVERS["bab"].refusal(_graph(_conv_net(0), (1, 6, 6))) == ""


@pytest.mark.parametrize("seed", range(2))
def test_conv_bab_proves_just_below_the_exact_minimum_and_never_above(seed):
    model = _conv_net(seed)
    graph = _graph(model, (1, 6, 6))
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)
    ball = LpBall(0.15, "linf", None)
    lo, hi = ball.box(x0)
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = exact_min(graph, lo[0], hi[0], c)
    a = c.reshape(1, 3)
    below = bab(graph, x0, ball, a, torch.tensor([true_min - 1e-3], dtype=torch.float64),
                deadline=time.perf_counter() + 20)
    assert below.proved, below.reason
    above = bab(graph, x0, ball, a, torch.tensor([true_min + 1e-3], dtype=torch.float64),
                deadline=time.perf_counter() + 20)
    assert not above.proved
    assert above.candidate is not None  # the planted counterexample region is found
    with torch.no_grad():
        assert float(model(above.candidate.reshape(1, 1, 6, 6))[0] @ c) <= true_min + 1e-3


def _mlp3(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 3)).double().eval()


@pytest.mark.parametrize("seed", range(3))
def test_input_split_proves_just_below_the_exact_minimum_and_finds_what_is_above(seed):
    model = _mlp3(seed)
    graph = _graph(model, (3,))
    net = dense_mlp(graph)
    g = torch.Generator().manual_seed(seed)
    mid = torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1
    lo, hi = mid - 0.7, mid + 0.7
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = exact_min(graph, lo, hi, c)
    C = c.reshape(1, 1, 3)
    below = input_split(net, lo, hi, C, torch.tensor([[true_min - 1e-3]], dtype=torch.float64),
                        deadline=time.perf_counter() + 20)
    assert below.proved, below.reason
    above = input_split(net, lo, hi, C, torch.tensor([[true_min + 1e-3]], dtype=torch.float64),
                        deadline=time.perf_counter() + 20)
    assert not above.proved
    assert above.candidate is not None, above.reason
    x = above.candidate
    assert bool(((x >= lo) & (x <= hi)).all())
    with torch.no_grad():
        assert float(model(x[None])[0] @ c) <= true_min + 1e-3


@pytest.mark.parametrize("seed", range(6))
def test_input_split_proofs_of_disjunctions_survive_sampling(seed):
    """Two polytopes (one of two rows, one of one row padded with an inf row) near the sampled minima."""
    model = _normalised_mlp(seed)
    net = dense_mlp(_graph(model, (3,)))
    g = torch.Generator().manual_seed(seed + 10)
    lo = torch.rand(3, generator=g, dtype=torch.float64) - 1
    hi = lo + 0.8
    C = torch.randn(2, 2, 2, generator=g, dtype=torch.float64)
    pts = lo + (hi - lo) * torch.rand(20_000, 3, generator=g, dtype=torch.float64)
    corners = torch.cartesian_prod(*[torch.stack([lo[i], hi[i]]) for i in range(3)])
    pts = torch.cat([pts, corners])
    with torch.no_grad():
        ys = model(pts)
    rows = torch.einsum("nk,pmk->npm", ys, C)
    b = rows.amin(0) + (0.05 if seed % 2 else -0.05)  # reachable for odd seeds, not for even (if sampled)
    b[1, 1] = float("inf")
    out = input_split(net, lo, hi, C, b, deadline=time.perf_counter() + 10,
                      settings=InputSplit(batch=64, root_alpha_steps=5))
    reached = (rows <= b).all(2).any(1)
    if out.proved:
        assert not bool(reached.any())
    if bool(reached.any()):
        assert not out.proved
    if out.candidate is not None:
        with torch.no_grad():
            y = model(out.candidate[None])[0]
        assert bool((C @ y <= b).all(1).any())


def test_input_split_checks_its_deadline():
    net = dense_mlp(_graph(_mlp3(0), (3,)))
    lo, hi = -torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    t0 = time.perf_counter()
    out = input_split(net, lo, hi, torch.tensor([[[1.0, -1.0, 0.0]]], dtype=torch.float64),
                      torch.tensor([[-0.5]], dtype=torch.float64), deadline=t0)
    assert out.proved or out.candidate is not None or out.reason == "time is up"
    assert out.domains <= 1 or out.proved or out.candidate is not None  # no round after the deadline
    assert time.perf_counter() - t0 < 5


def test_prover_splits_the_input_of_small_networks_and_relus_of_large_ones():
    """Through the prover: a 3-input net goes to the input split (its reason says so when open), the same
    net with ``max_dim=0`` to the ReLU split; both agree with sampling."""
    model = _mlp3(1)
    graph = _graph(model, (3,))
    x0 = torch.zeros(1, 3, dtype=torch.float64)
    ball = LpBall(1.0, "linf", None)
    with torch.no_grad():
        ys = model(torch.rand(20_000, 3, dtype=torch.float64) * 2 - 1)
    label = int(ys.mean(0).argmax())
    flips = bool((ys.argmax(1) != label).any())
    for max_dim in (16, 0):
        task = ProofTask.margins(graph, x0, ball, torch.tensor([label]),
                                 settings=ProofSettings(input_split=InputSplit(max_dim=max_dim)))
        (out,) = PROVERS["bab"].prove(task, deadline=time.perf_counter() + 10)
        if flips:
            assert out.status != "proved"
        if out.status == "counterexample":
            with torch.no_grad():
                assert int(model(out.counterexample)[0].argmax()) != label
        if out.status == "open":
            assert ("input split" in out.reason) == (max_dim == 16)


DENSE_KINDS = [k for k in kinds() if k.dense_role in ("affine", "reshape")]


@pytest.mark.parametrize("kind", DENSE_KINDS, ids=lambda k: k.kind)
def test_every_linear_kind_is_its_dense_linear_part_plus_a_constant(kind):
    """What the dense read rests on, for every kind of the registry that declares a linear role:
    ``forward(x) = dense_linear(x) + forward(0)``, with no constant for "reshape" kinds."""
    layer, shapes = kind.example(torch.Generator().manual_seed(0))
    if len(shapes) != 1:
        pytest.skip("the dense read takes single-input layers only")
    x = torch.randn((4,) + tuple(shapes[0]), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    zero = layer.forward(torch.zeros((1,) + tuple(shapes[0]), dtype=torch.float64))
    torch.testing.assert_close(layer.forward(x), layer.dense_linear(x) + zero, rtol=1e-10, atol=1e-10)
    if kind.dense_role == "reshape":
        assert float(zero.abs().max()) == 0.0
