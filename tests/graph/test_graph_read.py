"""Reading models into layer graphs: what is supported reads exactly, what is not fails clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustest
from robustest.errors import HealthCheckError, ModelError, ShapeError, UnsupportedLayer
from robustest.graph import read_model


class Norm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.3]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.2]).view(1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = Norm()
        self.conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.conv2 = nn.Conv2d(2, 2, 3, padding="same")
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(1)
        self.fc = nn.Linear(8, 3)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(self.norm(x))))
        h = self.drop(nn.functional.relu(self.conv2(h) + h))
        h = self.pool(self.avg(h) * 2.0 + 1.0)
        return self.fc(h.view(h.size(0), -1))


def _with_stats(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def test_fx_model_with_residual_normalisation_bn_pools_reads_exactly():
    model = _with_stats(Residual())
    x = torch.rand(5, 1, 8, 8)
    g = read_model(model, x)
    kinds = [n.layer.kind for n in g.nodes[1:]]
    assert "Add" in kinds and "MaxPool2d" in kinds and "AvgPool2d" in kinds and "Scale" in kinds
    assert kinds.count("Conv2d") == 2  # BatchNorm2d folded into the first convolution
    torch.testing.assert_close(g(x.double()).float(), model(x), atol=1e-5, rtol=1e-5)


def test_sequential_folds_batchnorm1d_and_drops_identities():
    model = _with_stats(nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(), nn.Identity(),
                                      nn.Sequential(nn.Linear(5, 2))))
    x = torch.rand(3, 4)
    g = read_model(model, x)
    assert [n.layer.kind for n in g.nodes[1:]] == ["Linear", "ReLU", "Linear"]
    assert [n.name for n in g.nodes[1:]] == ["0", "2", "5.0"]
    torch.testing.assert_close(g(x.double()).float(), model(x), atol=1e-5, rtol=1e-5)


def test_unsupported_layer_names_type_and_path():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ELU()), nn.Linear(3, 2)).eval()
    with pytest.raises(UnsupportedLayer, match=r"ELU at '1\.0'"):
        robustest.bounds(model, torch.rand(2, 2), eps=0.1)


def test_unsupported_function_in_fx_model_is_named():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.erf(self.fc(x))

    with pytest.raises(UnsupportedLayer, match="erf"):
        read_model(M().eval(), torch.rand(1, 2))


def test_untraceable_control_flow_says_what_to_do():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(ModelError, match="nn.Sequential"):
        read_model(Branchy().eval(), torch.rand(1, 2))


def test_train_mode_is_refused_naming_eval():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with pytest.raises(HealthCheckError, match=r"model\.eval\(\)"):
        robustest.bounds(model, torch.rand(3, 2), eps=0.1)


def test_wrong_spec_shape_and_bad_method():
    model = nn.Sequential(nn.Linear(2, 3)).eval()
    with pytest.raises(ShapeError, match="spec"):
        robustest.bounds(model, torch.rand(4, 2), eps=0.1, spec=torch.ones(4, 2, 5))
    with pytest.raises(ShapeError, match="labels"):
        robustest.bounds(model, torch.rand(4, 2), eps=0.1, labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="method"):
        robustest.bounds(model, torch.rand(4, 2), eps=0.1, method="magic")
    b = robustest.bounds(model, torch.rand(4, 2), eps=0.1, spec=torch.ones(2, 3))
    assert b.margins_lower.shape == (4, 2)


class _Branches(nn.Module):
    """Torch users' forms of the structural kinds: ZeroPad2d, torch.cat of branches, a - b of two
    activations, AdaptiveAvgPool2d whose output divides the input."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 0, 0, 1))
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 2, 3, padding=1, dilation=1)
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(4 * 3 * 3 + 2 * 3 * 3, 3)

    def forward(self, x):
        h = self.pad(x)
        a, b = torch.relu(self.a(h)), torch.relu(self.b(h))
        both = torch.cat([a, b], dim=1)
        return self.fc(torch.cat((self.pool(both).flatten(1), self.pool(a - b).flatten(1)), 1))


def test_torch_pad_cat_difference_adaptive_pool_read_exactly_and_bound_soundly():
    torch.manual_seed(0)
    net = _Branches().eval()
    x = torch.rand(2, 1, 5, 5)
    graph = read_model(net, x)  # checked against the model on x
    kinds = {n.layer.kind for n in graph.nodes[1:]}
    assert {"Pad", "Concat", "Add", "AvgPool2d"} <= kinds
    b = robustest.bounds(net, x, eps=0.05, method="crown")
    pts = (x.unsqueeze(1) + (torch.rand(2, 200, 1, 5, 5) * 2 - 1) * 0.05).clamp(0, 1)
    with torch.no_grad():
        ys = net(pts.flatten(0, 1)).view(2, 200, -1).double()
    assert bool((ys >= b.lower.unsqueeze(1) - 1e-5).all() and (ys <= b.upper.unsqueeze(1) + 1e-5).all())
