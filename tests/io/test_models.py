"""Model files: TorchScript, torch.export, state dicts with a named class; clear errors otherwise."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from robustest.errors import InvalidArgument, ModelError
from robustest.io import load_model


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def _same(a: nn.Module, b: nn.Module) -> None:
    x = torch.rand(4, 2, 3)
    assert torch.allclose(a(x), b(x), atol=1e-6)


def test_torchscript(tmp_path):
    net = _net()
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    loaded = load_model(path)
    _same(net, loaded)
    assert not loaded.training


def test_torch_export(tmp_path):
    net = _net()
    path = tmp_path / "m.pt2"
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.rand(2, 2, 3),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    _same(net, load_model(path))


def test_state_dict_with_named_class(tmp_path):
    from digits import mlp

    net = mlp((7,)).eval()
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    loaded = load_model(path, model_class="digits:mlp", model_kwargs={"hidden": (7,)})
    x = torch.rand(3, 64)
    assert torch.allclose(net(x), loaded(x))


def test_state_dict_needs_class(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(InvalidArgument, match="--model-class"):
        load_model(path)


def test_state_dict_wrong_class(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(ModelError, match="does not fit"):
        load_model(path, model_class="digits:SmallCNN")
    with pytest.raises(InvalidArgument, match="package.module:Name"):
        load_model(path, model_class="digits.SmallCNN")
    with pytest.raises(InvalidArgument, match="defined in module"):
        load_model(path, model_class="digits:NoSuchNet")
    with pytest.raises(ModelError, match="nn.Module"):
        load_model(path, model_class="digits:load_split")


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_model_is_refused(tmp_path, capsys):
    path = tmp_path / "w.pt"
    with open(path, "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(InvalidArgument, match="weights_only"):
        load_model(path, model_class="digits:SmallCNN")
    assert "pickled code ran" not in capsys.readouterr().out


def test_not_an_export_archive(tmp_path):
    path = tmp_path / "m.pt2"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="torch.export"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidArgument, match="existing model file"):
        load_model(tmp_path / "none.onnx")
