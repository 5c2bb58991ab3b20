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


class _CreatesFile:
    """Unpickling this creates a file: the proof that code from the archive ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _crafted_pt2(tmp_path, how):
    """A real export archive with one member replaced so that torch.export.load would run code."""
    import io as _io
    import json
    import zipfile

    path, marker = tmp_path / f"{how}.pt2", tmp_path / f"{how}.created"
    net = nn.Sequential(nn.Linear(3, 2)).eval()
    torch.export.save(torch.export.export(net, (torch.rand(2, 3),)), str(path))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = _io.BytesIO()
    torch.save(_CreatesFile(marker), buf)
    evil = buf.getvalue()
    root = next(iter(members)).split("/")[0]
    if how == "sample_inputs":          # torch retries a failed safe load with weights_only=False
        members[f"{root}/data/sample_inputs/model.pt"] = evil
    elif how in ("use_pickle", "opaque"):  # a weight marked as pickled / a constant that is an object
        kind = "weights" if how == "use_pickle" else "constants"
        name = f"{root}/data/{kind}/model_{kind}_config.json"
        config = json.loads(members[name])
        if how == "use_pickle":
            config["config"]["0.bias"]["use_pickle"] = True
            members[f"{root}/data/weights/{config['config']['0.bias']['path_name']}"] = evil
        else:
            config["config"]["obj"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False}
            members[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(_CreatesFile(marker))
        members[name] = json.dumps(config).encode()
    elif how == "legacy":               # the pre-2.8 layout, loaded with the same unsafe fallback
        members = {"version": b"8.0", "serialized_exported_program.json": b"{}",
                   "serialized_state_dict.pt": evil, "serialized_constants.pt": evil,
                   "serialized_example_inputs.pt": evil}
    elif how == "aotinductor":          # compiled libraries are loaded and run
        members[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path, marker


@pytest.mark.parametrize("how", ["sample_inputs", "use_pickle", "opaque", "legacy", "aotinductor"])
def test_crafted_export_archive_is_refused_without_running_code(tmp_path, how):
    path, marker = _crafted_pt2(tmp_path, how)
    with pytest.raises(ModelError, match="is refused: archive member") as info:
        load_model(path)
    assert "Fix:" in str(info.value)
    assert not marker.exists()


def test_export_load_holds_torch_load_to_weights_only(tmp_path, monkeypatch):
    """Even past the member check, torch's own weights_only=False fallbacks cannot unpickle code."""
    from robustest.io import export_archive

    path, marker = _crafted_pt2(tmp_path, "sample_inputs")
    monkeypatch.setattr(export_archive, "check_export_archive", lambda p: None)
    with pytest.raises(Exception):
        export_archive.safe_export_load(path)
    assert not marker.exists()
    assert torch.load.__name__ == "load" and torch.load.__module__ == "torch.serialization"


def test_unknown_model_kwargs_are_named(tmp_path):
    from digits import mlp

    path = tmp_path / "w.pt"
    torch.save(mlp((7,)).state_dict(), path)
    with pytest.raises(InvalidArgument, match=r"model_kwargs=\{'widht': 7\}.*Fix: pass --model-kwargs"):
        load_model(path, model_class="digits:mlp", model_kwargs={"widht": 7})


def test_batch_one_export_runs_on_any_batch_and_is_in_eval_mode(tmp_path):
    """The recipe without dynamic_shapes fixes the batch at 1: robustest runs it sample by sample."""
    import robustest

    net = _net()
    path = tmp_path / "b1.pt2"
    torch.export.save(torch.export.export(net, (torch.rand(1, 2, 3),)), str(path))
    loaded = load_model(path)
    _same(net, loaded)
    assert not any(m.training for m in loaded.modules())
    x = torch.rand(5, 2, 3)
    report = robustest.check(loaded, x, net(x).argmax(1), eps=0.01)  # attacks: no train-mode refusal
    assert report.counts()["misclassified"] == 0


def test_train_mode_export_is_refused(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Dropout(0.5), nn.Linear(5, 3)).train()
    path = tmp_path / "t.pt2"
    torch.export.save(torch.export.export(net, (torch.rand(2, 2, 3),)), str(path))
    with pytest.raises(ModelError, match=r"train mode.*dropout.*model\.eval\(\)"):
        load_model(path)


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_compiled_models_say_they_cannot_be_certified_and_how_to_fix_it(tmp_path, kind):
    """Not "write the model as nn.Sequential" (no help for a file): ONNX or a state dict with its class."""
    import robustest

    net = _net()
    path = tmp_path / ("m.pt" if kind == "torchscript" else "m.pt2")
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(net), str(path))
    else:
        torch.export.save(torch.export.export(net, (torch.rand(2, 2, 3),),
                                              dynamic_shapes=({0: torch.export.Dim("batch")},)), str(path))
    x = torch.rand(3, 2, 3)
    with pytest.raises(ModelError, match=r"attacked but not certified.*ONNX.*--model-class") as err:
        robustest.check(load_model(path), x, net(x).argmax(1), eps=0.01, escalate="crown")
    assert "nn.Sequential" not in str(err.value)
