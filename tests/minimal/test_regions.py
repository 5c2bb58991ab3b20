"""The linear region read off a ReLU network is right: its affine map equals the network on the region."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.errors import ModelError, UnsupportedLayer
from robustest.minimal.regions import PiecewiseAffine


def _mlp(seed: int, widths: list[int]) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(widths[-2], widths[-1]))
    return torch.nn.Sequential(*layers).eval()


def _conv(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 2 * 2, 3)).eval()


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6), h=st.integers(1, 8), depth=st.integers(1, 3))
def test_affine_map_matches_network_inside_the_region(seed: int, d: int, h: int, depth: int) -> None:
    net = _mlp(seed, [d] + [h] * depth + [3])
    pw = PiecewiseAffine(net, input_shape=(d,))
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(1, d, generator=g)
    region = pw.regions(y)[0]
    assert region.contains(y[0], tol=1e-7)
    # sampled points: those inside the polytope get the same logits from the affine map
    pts = y + 0.05 * torch.randn(200, d, generator=g)
    logits = net(pts).double()
    inside = [i for i in range(200) if region.contains(pts[i], tol=-1e-7)]
    for i in inside:
        assert torch.allclose(region.W @ pts[i].double() + region.c, logits[i], atol=1e-5)
    # and points outside the polytope have a different activation pattern
    masks, _ = pw.patterns(pts)
    for i in range(200):
        same = pw.key(masks, i) == region.key
        if region.contains(pts[i], tol=-1e-7):
            assert same
        elif not region.contains(pts[i], tol=1e-7):
            assert not same


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000))
def test_convolutional_region_matches_network(seed: int) -> None:
    net = _conv(seed)
    pw = PiecewiseAffine(net, input_shape=(1, 5, 5))
    y = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(seed))
    for i, region in enumerate(pw.regions(y)):
        assert torch.allclose(region.W @ y[i].reshape(-1).double() + region.c, net(y[i:i + 1])[0].double(),
                              atol=1e-5)
        assert region.contains(y[i], tol=1e-7)


def test_non_affine_layers_are_refused() -> None:
    with pytest.raises(UnsupportedLayer, match="Tanh"):
        PiecewiseAffine(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()), input_shape=(2,))

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.lin(x))

    with pytest.raises(UnsupportedLayer, match="not piecewise affine"):
        PiecewiseAffine(Hidden(), input_shape=(2,)).regions(torch.rand(1, 2))
    with pytest.raises(ModelError):
        PiecewiseAffine(lambda x: x, input_shape=(2,))  # type: ignore[arg-type]
