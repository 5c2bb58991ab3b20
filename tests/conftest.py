"""Shared test set-up: the examples' digits helpers on sys.path, a fixed thread count, Hypothesis profile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
SHARED = ROOT.parent / "shared"

pytest_plugins = ["pytester"]

try:
    import torch

    # Two cores, often two xdist workers: one thread each avoids oversubscription.
    torch.set_num_threads(int(os.environ.get("ROBUSTEST_TEST_THREADS", "1")))
except ImportError:  # pragma: no cover
    pass

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the clone (seeds, notes, benchmarks); tests that need it skip without it."""
    if not SHARED.exists():
        pytest.skip("../shared is not beside the clone")
    return SHARED


@pytest.fixture(scope="session")
def digits_mlp():
    """The examples' trained digits MLP and 100 correctly classified test samples."""
    from digits import load_model, test_data

    model = load_model("mlp")
    x, y = test_data("mlp", 120)
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    return model, x[ok][:100], y[ok][:100]
