"""Bad inputs that raised raw errors from deep inside now fail at the door, naming the argument."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

import robustest
from robustest.errors import InvalidArgument, ModelError, ShapeError
from robustest.io import load_model


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


def _xy(net, n=4):
    x = torch.rand(n, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return x, net(x).argmax(1)


def test_wrong_input_width_names_inputs():
    net = _net()
    x, y = _xy(net)
    with pytest.raises(ShapeError, match=r"inputs='tensor of shape \(4, 5\).*forward pass raised.*Fix:"):
        robustest.check(net, torch.rand(4, 5), y, eps=0.01)
    with pytest.raises(ShapeError, match=r"inputs="):
        robustest.attack(net, torch.rand(4, 5), y, eps=0.01)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_dtypes_are_cast_to_the_model_dtype(dtype, caplog):
    net = _net()
    x, y = _xy(net)
    with caplog.at_level(logging.INFO, logger="robustest"):
        report = robustest.check(net, x.to(dtype), y, eps=0.01)
    assert len(report.verdicts) == 4 and "cast" in caplog.text
    assert len(robustest.attack(net, np.asarray(x, dtype=np.float64), y, eps=0.01).success) == 4


def test_float64_model_with_float32_inputs():
    x, y = _xy(_net())
    net = _net().double()
    assert len(robustest.check(net, x, y, eps=0.01, escalate="crown").verdicts) == 4


def test_out_of_range_targets_are_named():
    net = _net()
    x, y = _xy(net)
    with pytest.raises(InvalidArgument, match=r"targets=\[7\].*class indices in \[0, 2\]"):
        robustest.attack(net, x, y, eps=0.01, targets=torch.tensor([0, 1, 7, 0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weight_names_the_parameter(bad):
    net = _net()
    with torch.no_grad():
        net[2].bias[1] = bad
    x, y = _xy(_net())
    with pytest.raises(ModelError, match=r"parameter '2.bias'.*NaN/Inf.*Fix:"):
        robustest.check(net, x, y, eps=0.01)


def test_empty_and_truncated_model_files(tmp_path):
    empty = tmp_path / "m.pt"
    empty.write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"empty file.*Fix: save the model again"):
        load_model(empty)
    full = tmp_path / "ts.pt"
    torch.jit.save(torch.jit.script(_net()), str(full))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InvalidArgument, match=r"truncated or corrupt.*Fix: save or copy"):
        load_model(cut)
    assert "model-class" not in str(pytest.raises(InvalidArgument, load_model, cut).value)
