"""Deterministic digits MLPs for the minimal-perturbation benchmarks (seeds/003 Tables 1 and 2 shapes).

Trained in-process (a few seconds on a CPU): scikit-learn digits in [0, 1], fixed seed, one thread, so
every run gets the same weights. ``python benchmarks/minimal_nets.py`` prints their test accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from digits import fit, load_split, mlp  # noqa: E402


def train_mlp(hidden: Tuple[int, ...], *, epochs: int = 40, seed: int = 0) -> torch.nn.Sequential:
    """A ReLU MLP 64-hidden-10 trained with Adam on the digits training split (deterministic)."""
    torch.manual_seed(seed)
    (x, y), _ = load_split()
    model = mlp(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, x, y, opt, epochs=epochs, seed=seed)


def test_set(n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    _, (x, y) = load_split()
    return x[:n], y[:n]


if __name__ == "__main__":
    torch.set_num_threads(1)
    x, y = test_set(10_000)
    for hidden in [(50,), (50, 15), (256, 256, 256)]:
        m = train_mlp(hidden)
        acc = float((m(x).argmax(1) == y).float().mean())
        print(f"hidden={hidden}: test accuracy {acc:.3f}")
