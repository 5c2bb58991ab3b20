"""Train the example models on scikit-learn's digits and save their weights (a few seconds on a CPU).

    python examples/train.py          # writes examples/weights/{mlp,cnn}.pt

Plain cross-entropy training, fixed seeds: the models are ordinary (not adversarially trained), so at
eps=0.05 linf some samples are certified and some falsified, which is what the examples show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import MODELS, WEIGHTS, fit, load_split  # noqa: E402


def train(name: str, epochs: int = 60, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    make, image = MODELS[name]
    model = make()
    (x, y), (xt, yt) = load_split(image=image)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    fit(model, x, y, opt, epochs=epochs, seed=seed)
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"{name}: test accuracy {acc:.3f}")
    return model


if __name__ == "__main__":
    WEIGHTS.mkdir(exist_ok=True)
    for name in sys.argv[1:] or list(MODELS):
        torch.save(train(name).state_dict(), WEIGHTS / f"{name}.pt")
