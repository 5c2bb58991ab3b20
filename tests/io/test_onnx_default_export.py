"""torch.onnx.export with torch's default exporter (torch 2.13: dynamo, which needs onnxscript, part of
the ``onnx`` extra) writes a file robustest reads back to the same outputs."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from robustest.io import load_model  # noqa: E402


def test_the_default_exporter_round_trips(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, 4),), str(path))  # no dynamo=False: the default path
    x = torch.rand(5, 4)
    torch.testing.assert_close(load_model(path)(x), net(x), rtol=1e-4, atol=1e-5)
