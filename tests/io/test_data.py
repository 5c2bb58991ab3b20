"""Data files: round trips, wrong keys, unsafe pickles refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from robustest.errors import InvalidArgument, ShapeError
from robustest.io import load_data, save_data


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_round_trip(tmp_path, suffix):
    x = torch.rand(5, 1, 8, 8)
    y = torch.tensor([0, 3, 9, 1, 2])
    path = tmp_path / f"d{suffix}"
    save_data(path, x, y)
    x2, y2 = load_data(path)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x2.dtype == torch.float32 and y2.dtype == torch.int64


def test_wrong_keys_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.zeros(2))
    with pytest.raises(InvalidArgument, match=r"missing \['inputs', 'labels'\].*found \['x', 'y'\]"):
        load_data(path)
    x, y = load_data(path, inputs_key="x", labels_key="y")
    assert x.shape == (2, 3) and y.dtype == torch.int64


def test_length_mismatch(tmp_path):
    path = tmp_path / "d.pt"
    torch.save({"inputs": torch.zeros(3, 2), "labels": torch.zeros(2, dtype=torch.long)}, path)
    with pytest.raises(ShapeError, match="same length"):
        load_data(path)


def test_fractional_labels_rejected(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((2, 3)), labels=np.array([0.5, 1.0]))
    with pytest.raises(InvalidArgument, match="integer class labels"):
        load_data(path)


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "d.pt"
    with open(path, "wb") as f:
        pickle.dump({"inputs": _Evil(), "labels": [0]}, f)
    with pytest.raises(InvalidArgument, match="weights_only=True"):
        load_data(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(InvalidArgument, match="existing"):
        load_data(tmp_path / "nope.npz")
    bad = tmp_path / "d.csv"
    bad.write_text("1,2")
    with pytest.raises(InvalidArgument, match=r"\.npz"):
        load_data(bad)


@pytest.mark.parametrize("key", ["inputs", "labels"])
def test_string_arrays_are_named(tmp_path, key):
    path = tmp_path / "s.npz"
    arrays = {"inputs": np.zeros((2, 3), np.float32), "labels": np.array([0, 1])}
    arrays[key] = np.array([["a", "b", "c"], ["d", "e", "f"]]) if key == "inputs" else np.array(["cat", "dog"])
    np.savez(path, **arrays)
    with pytest.raises(InvalidArgument, match=rf"data\['{key}'\].*dtype <U.*Fix:"):
        load_data(path)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16])
def test_small_integer_inputs_load_as_float32(tmp_path, dtype):
    path = tmp_path / "i.npz"
    np.savez(path, inputs=np.arange(6, dtype=dtype).reshape(2, 3), labels=np.array([0, 1]))
    x, y = load_data(path)
    assert x.dtype == torch.float32 and x.tolist() == [[0, 1, 2], [3, 4, 5]] and y.tolist() == [0, 1]
