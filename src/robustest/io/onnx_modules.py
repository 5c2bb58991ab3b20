"""The two small modules the ONNX importer needs beyond torch's own layers.

Everything else an imported graph holds is a standard torch layer (``nn.Linear``, ``nn.Conv2d``,
``nn.ReLU``, ``nn.BatchNorm2d``...), so attacks and certifiers treat it as any torch model.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ConstantAffine(nn.Module):
    """``y = x * scale + shift`` with constant, broadcastable ``scale``/``shift`` buffers.

    ONNX graphs express input normalisation as ``Sub``/``Div``/``Mul``/``Add`` by constants; this is
    that, as one elementwise affine map (a certifier handles it like a diagonal linear layer).

        >>> m = ConstantAffine(scale=torch.tensor(2.0), shift=torch.tensor(-1.0))
        >>> m(torch.tensor([0.0, 1.0])).tolist()
        [-1.0, 1.0]
    """

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().clone().float())
        self.register_buffer("shift", shift.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Reshape(nn.Module):
    """Reshape every sample to ``shape`` (the batch dimension is kept).

        >>> Reshape((2, 3))(torch.zeros(4, 6)).shape
        torch.Size([4, 2, 3])
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
