"""Turn one torch module into a layer of :mod:`robustest.layers` (or ``None`` for an eval-mode identity)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import UnsupportedLayer
from ..layers import AvgPool2d, Conv2d, Layer, Linear, MaxPool2d, ReLU, Reshape, Scale

IDENTITIES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
KNOWN = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d,
         nn.MaxPool2d) + IDENTITIES
SUPPORTED = ("Linear, Conv2d, ReLU, Flatten, BatchNorm1d/2d, AvgPool2d, MaxPool2d, Identity, Dropout, "
             "reshape/view/flatten, residual +, and (x - mean) / std by constants")


def pair(v: object) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))  # type: ignore[index]


def unsupported(what: str, path: str, why: str = "") -> UnsupportedLayer:
    extra = f" ({why})" if why else ""
    return UnsupportedLayer(f"layer {what} at '{path}' has no certification rule{extra}. Supported: {SUPPORTED}. "
                            f"Fix: replace it by supported layers, or certify a model without it.")


def convert_module(mod: nn.Module, path: str, in_shapes: Sequence[tuple[int, ...]]) -> Layer | None:
    """The layer for ``mod`` applied to inputs of batch-free shapes ``in_shapes``."""
    shape = tuple(in_shapes[0])
    kind = type(mod).__name__
    if isinstance(mod, IDENTITIES):
        return None
    if isinstance(mod, nn.Linear):
        if len(shape) != 1:
            raise unsupported(kind, path, f"applied to a {len(shape) + 1}-D tensor; flatten it first")
        return Linear(mod.weight, mod.bias)
    if isinstance(mod, nn.Conv2d):
        if mod.padding_mode != "zeros":
            raise unsupported(kind, path, f"padding_mode={mod.padding_mode!r}")
        padding = mod.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            else:
                total = [d * (k - 1) for d, k in zip(mod.dilation, mod.kernel_size)]
                if any(t % 2 for t in total):
                    raise unsupported(kind, path, "padding='same' with an even kernel pads asymmetrically")
                padding = (total[0] // 2, total[1] // 2)
        return Conv2d(mod.weight, mod.bias, stride=pair(mod.stride), padding=pair(padding),
                      dilation=pair(mod.dilation), groups=mod.groups)
    if isinstance(mod, nn.ReLU):
        return ReLU()
    if isinstance(mod, nn.Flatten):
        full = torch.Size((1,) + shape)
        end = mod.end_dim % len(full)
        if mod.start_dim % len(full) == 0:
            raise unsupported(kind, path, "start_dim=0 flattens the batch")
        start = mod.start_dim % len(full)
        new = full[:start] + (int(torch.tensor(full[start:end + 1]).prod()),) + full[end + 1:]
        return Reshape(tuple(new[1:]))
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if mod.running_mean is None or mod.running_var is None:
            raise unsupported(kind, path, "track_running_stats=False uses batch statistics even in eval mode")
        scale = 1.0 / torch.sqrt(mod.running_var + mod.eps)
        if mod.weight is not None:
            scale = scale * mod.weight
        shift = -mod.running_mean * scale
        if mod.bias is not None:
            shift = shift + mod.bias
        extra = len(shape) - 1
        view = (-1,) + (1,) * extra
        return Scale(scale.detach().reshape(view), shift.detach().reshape(view), source="batchnorm")
    if isinstance(mod, nn.AvgPool2d):
        if mod.divisor_override is not None:
            raise unsupported(kind, path, "divisor_override")
        return AvgPool2d(pair(mod.kernel_size), pair(mod.stride if mod.stride is not None else mod.kernel_size),
                         pair(mod.padding), ceil_mode=mod.ceil_mode, count_include_pad=mod.count_include_pad)
    if isinstance(mod, nn.MaxPool2d):
        if pair(mod.dilation) != (1, 1) or mod.ceil_mode or mod.return_indices:
            raise unsupported(kind, path, "dilation, ceil_mode and return_indices are not supported")
        return MaxPool2d(pair(mod.kernel_size), pair(mod.stride if mod.stride is not None else mod.kernel_size),
                         pair(mod.padding))
    raise unsupported(kind, path)
