"""scikit-learn's digits (real 8x8 scans, shipped inside scikit-learn) and the example models.

Everything here is deterministic: the split, the models, and ``train.py`` that produced the weights in
``examples/weights/``. Pixels are scaled to [0, 1], so the input domain is (0.0, 1.0).

    >>> from digits import load_split, load_model
    >>> (x_train, y_train), (x_test, y_test) = load_split()
    >>> model = load_model("mlp")
    >>> float((model(x_test).argmax(1) == y_test).float().mean()) > 0.9
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Tuple

import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().parent / "weights"
Split = Tuple[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def load_split(image: bool = False, test_fraction: float = 0.25) -> Split:
    """Digits scaled to [0, 1], split with a fixed permutation. ``image=True`` gives (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    if image:
        x = x.view(-1, 1, 8, 8)
    n_test = int(len(y) * test_fraction)
    return (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])


def mlp(hidden: Tuple[int, ...] = (100, 100)) -> nn.Sequential:
    """A ReLU MLP on the flattened 64 pixels."""
    layers: list[nn.Module] = []
    width = 64
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Two convolutions (the second with stride 2), then two linear layers, on 1x8x8 images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: name -> (constructor, takes images)
MODELS: Dict[str, Tuple[Callable[[], nn.Module], bool]] = {
    "mlp": (lambda: mlp((100, 100)), False),
    "cnn": (SmallCNN, True),
}


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, *, epochs: int,
        seed: int = 0, batch: int = 64, after_epoch: Callable[[], object] = lambda: None) -> nn.Module:
    """Plain cross-entropy training in shuffled mini-batches (deterministic for a seed); returns the model
    in eval mode. ``after_epoch`` runs after each epoch (e.g. a learning-rate scheduler's ``step``)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch):
            b = perm[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
        after_epoch()
    return model.eval()


def load_model(name: str = "mlp") -> nn.Module:
    """The trained example model ``name`` in eval mode (weights from ``examples/weights``)."""
    make, _ = MODELS[name]
    model = make()
    state = torch.load(WEIGHTS / f"{name}.pt", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def test_data(name: str = "mlp", n: int = 100) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test samples in the shape model ``name`` takes."""
    _, (x, y) = load_split(image=MODELS[name][1])
    return x[:n], y[:n]
