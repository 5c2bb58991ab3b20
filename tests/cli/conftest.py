"""Small files for the CLI tests: the digits MLP as a state dict, a few digits, a tiny ONNX network."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def digits_files(tmp_path_factory):
    from digits import load_model, load_split

    from robustest.io import save_data

    folder = tmp_path_factory.mktemp("digits")
    (_, _), (x, y) = load_split()
    save_data(folder / "test.npz", x[:8], y[:8])
    torch.save(load_model("mlp").state_dict(), folder / "mlp.pt")
    return folder / "mlp.pt", folder / "test.npz"
