"""A repair problem whose right answer is known: a hand-set linear classifier on [0, 1]^2 with its
boundary at x0 = 0.6, while the classes are x0 <= 0.45 (class 0) and x0 >= 0.65 (class 1). At eps = 0.08
the gate's class-1 samples at 0.65 and 0.66 are falsified (0.65 - 0.08 < 0.6), and moving the boundary
into the gap fixes them without costing accuracy, so a correct repair passes the gate, keeps clean
accuracy and raises held-out robustness."""

from __future__ import annotations

import types

import pytest
import torch

GAPNET = '''
import torch

class GapNet(torch.nn.Sequential):
    """The gap problem's architecture, for --model-class gapnet:GapNet."""

    def __init__(self):
        super().__init__(torch.nn.Linear(2, 2))
'''


def _model(boundary: float = 0.6, k: float = 10.0) -> torch.nn.Module:
    m = torch.nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[-k, 0.0], [k, 0.0]]))
        m.bias.copy_(torch.tensor([boundary * k, -boundary * k]))
    return torch.nn.Sequential(m).eval()


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x0 = torch.where(y == 0, 0.45 * torch.rand(n, generator=g), 0.65 + 0.35 * torch.rand(n, generator=g))
    return torch.stack([x0, torch.rand(n, generator=g)], 1), y


@pytest.fixture
def gap():
    """model(boundary), data(n, seed), the gate's x and y (2 of 8 falsified at eps 0.08)."""
    x = torch.tensor([[0.2, 0.5], [0.65, 0.3], [0.3, 0.1], [0.66, 0.8], [0.4, 0.4], [0.7, 0.5], [0.45, 0.9],
                      [0.9, 0.2]])
    return types.SimpleNamespace(model=_model, data=_data, x=x, y=torch.tensor([0, 1, 0, 1, 0, 1, 0, 1]))


@pytest.fixture
def gapnet_files(tmp_path, monkeypatch, gap):
    """gapnet.py (importable), the model's weights, the gate and training data as files."""
    (tmp_path / "gapnet.py").write_text(GAPNET)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save(gap.model().state_dict(), tmp_path / "gap.pt")
    torch.save({"inputs": gap.x, "labels": gap.y}, tmp_path / "gate.pt")
    x, y = gap.data(200, 0)
    torch.save({"inputs": x, "labels": y}, tmp_path / "train.pt")
    return tmp_path
