"""Fixtures for the example robustness tests: the trained digits models and 50 held-out samples.

A test hands its model and samples to ``@robust`` by asking for them: ``model`` (the MLP) is found by
its name, the samples are the argument whose value is an ``(inputs, labels)`` pair. Other names are
given to the marker: ``@robust(model="cnn", data="digit_images")``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Tuple

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import load_model, load_split  # noqa: E402

# Small models on a shared machine: one thread avoids oversubscription (and xdist workers fighting).
torch.set_num_threads(int(os.environ.get("ROBUSTEST_TEST_THREADS", "1")))

N_SAMPLES = 50
Samples = Tuple[torch.Tensor, torch.Tensor]


@pytest.fixture(scope="session")
def mlp() -> torch.nn.Module:
    """The trained 64-100-100-10 ReLU MLP, in eval mode."""
    return load_model("mlp")


@pytest.fixture(scope="session")
def model(mlp: torch.nn.Module) -> torch.nn.Module:
    """The model ``@robust`` uses by default: the MLP."""
    return mlp


@pytest.fixture(scope="session")
def cnn() -> torch.nn.Module:
    """The trained small CNN on 1x8x8 images, in eval mode."""
    return load_model("cnn")


@pytest.fixture(scope="session")
def digits() -> Samples:
    """The first 50 held-out digits, flattened to 64 pixels in [0, 1], with their labels."""
    _, (x, y) = load_split()
    return x[:N_SAMPLES], y[:N_SAMPLES]


@pytest.fixture(scope="session")
def digit_images() -> Samples:
    """The same 50 digits as 1x8x8 images (for the CNN)."""
    _, (x, y) = load_split(image=True)
    return x[:N_SAMPLES], y[:N_SAMPLES]
