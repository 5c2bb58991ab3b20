"""The linear region of a ReLU network at a point: its polytope and the affine map on it.

A network built from affine layers (Linear, Conv, Flatten, AvgPool, BatchNorm in eval mode...) and
ReLUs is piecewise affine. Fixing the ReLU activation pattern of a point ``y`` makes it affine, and the
set of inputs that share the pattern is the polytope ``Q(y) = {z : A z <= b}`` (seeds/003, section 2).
On ``Q(y)`` the logits are ``W z + c``.

The affine maps are read off the pattern-fixed network itself: feeding ``0`` and the unit vectors
``e_1..e_d`` through the network with every ReLU replaced by "multiply by the mask of y" gives every
pre-activation's offset and Jacobian in one batched forward pass. This works unchanged for fully
connected and convolutional networks, and runs in float64 on the inputs' device.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> pw = PiecewiseAffine(net, input_shape=(2,))
    >>> region = pw.regions(torch.tensor([[0.2, 0.4]]))[0]
    >>> bool(torch.allclose(region.W @ torch.tensor([0.2, 0.4]).double() + region.c,
    ...                     net(torch.tensor([[0.2, 0.4]])).double()[0], atol=1e-6))
    True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ModelError, UnsupportedLayer
from ..layers import ReLU, kinds

#: Affine (in eval mode) leaf modules that no layer kind stands for yet (they have no bound rules, but keep
#: the network piecewise affine); the others come from the layer registry.
_AFFINE_WITHOUT_KIND = (nn.Conv1d, nn.Conv3d, nn.Unflatten, nn.AvgPool1d, nn.AdaptiveAvgPool2d, nn.ZeroPad2d,
                        nn.ConstantPad2d)


def affine_modules() -> tuple[type[nn.Module], ...]:
    """Leaf modules that are affine in eval mode: those of every linear layer kind (``not nonlinear``) and
    :data:`_AFFINE_WITHOUT_KIND`. With the ReLU kind's modules they keep a network piecewise affine."""
    return tuple(m for k in kinds() if not k.nonlinear for m in k.modules) + _AFFINE_WITHOUT_KIND


@dataclass(frozen=True)
class LinearRegion:
    """One linear region: inputs ``z`` (flattened) with ``A z <= b`` share ``y``'s ReLU pattern, and
    on them the logits are ``W z + c``. All tensors are float64. ``key`` identifies the pattern."""

    key: bytes
    A: torch.Tensor
    b: torch.Tensor
    W: torch.Tensor
    c: torch.Tensor

    def contains(self, z: torch.Tensor, tol: float = 1e-9) -> bool:
        """Whether the flattened point ``z`` satisfies the region's inequalities (up to ``tol``)."""
        z = z.reshape(-1).to(self.A)
        return bool(((self.A @ z) <= self.b + tol).all())


class _MaskedReLU(nn.Module):
    """ReLU that either records its input's pattern or multiplies by a fixed pattern."""

    def __init__(self) -> None:
        super().__init__()
        self.record = True
        self.pre: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.record:
            self.pre = x.detach()
            return torch.relu(x)
        assert self.mask is not None
        self.pre = x.detach()
        return x * self.mask.to(x.dtype).view((1,) + tuple(x.shape[1:]))


class PiecewiseAffine:
    """A float64 copy of a ReLU network whose linear regions can be read off at any point.

    Raises :class:`~robustest.errors.UnsupportedLayer` for a leaf module that is not affine or ReLU
    (e.g. MaxPool, Tanh), since the region description would be wrong for it.
    """

    def __init__(self, model: nn.Module, *, input_shape: Sequence[int]) -> None:
        if not isinstance(model, nn.Module):
            raise ModelError(f"model={type(model).__name__} is not valid: expected a torch.nn.Module "
                             "built from Linear/Conv/ReLU layers. Fix: pass the network itself")
        if isinstance(model, torch.jit.ScriptModule):
            raise UnsupportedLayer("a TorchScript model's ReLUs cannot be swapped, so its linear regions "
                                   "cannot be read. Fix: load it as a state dict with its module class "
                                   "(or from ONNX), or use method='deepfool'/'pgd'")
        net = copy.deepcopy(model).eval().double()
        self.relus: List[_MaskedReLU] = []
        self._swap_relus(net)
        self.net = net
        self.device = next(iter(net.parameters()), torch.zeros(0)).device
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dim = int(np.prod(self.input_shape))

    def _swap_relus(self, module: nn.Module) -> None:
        affine = affine_modules()
        for name, child in module.named_children():
            if isinstance(child, ReLU.modules):
                masked = _MaskedReLU()
                setattr(module, name, masked)
                self.relus.append(masked)
            elif isinstance(child, affine):
                continue
            elif any(True for _ in child.children()):
                self._swap_relus(child)  # a container or custom block: its leaves are checked
            else:
                raise UnsupportedLayer(
                    f"layer {name}={type(child).__name__} is not supported by the linear-region "
                    "methods: they need a piecewise affine network of Linear/Conv/AvgPool/BatchNorm "
                    "and ReLU layers. Fix: use method='deepfool' or a gradient attack for this model")

    @torch.no_grad()
    def patterns(self, y: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """The ReLU masks (one (B, n_l) bool tensor per ReLU) and the float64 logits at points ``y``."""
        for r in self.relus:
            r.record = True
        out = self.net(y.reshape((-1,) + self.input_shape).double())
        return [r.pre.flatten(1) > 0 for r in self.relus], out  # type: ignore[union-attr]

    @staticmethod
    def key(masks: Sequence[torch.Tensor], i: int) -> bytes:
        """A hashable key of point ``i``'s activation pattern."""
        if not masks:
            return b""
        bits = torch.cat([m[i] for m in masks]).cpu().numpy()
        return np.packbits(bits).tobytes()

    @torch.no_grad()
    def regions(self, y: torch.Tensor) -> List[LinearRegion]:
        """The linear region of every point of the batch ``y`` (shape (B, *input_shape) or (B, d))."""
        masks, logits = self.patterns(y)
        return [self.region_of(masks, i, y=y[i], logits=logits[i]) for i in range(y.shape[0])]

    @torch.no_grad()
    def region_of(self, masks: Sequence[torch.Tensor], i: int, *, y: Optional[torch.Tensor] = None,
                  logits: Optional[torch.Tensor] = None) -> LinearRegion:
        """The region of the ``i``-th pattern of ``masks`` (as returned by :meth:`patterns`).

        Given the point ``y`` and its float64 ``logits``, checks that the affine map reproduces them:
        a mismatch means a non-linearity the copy cannot see (e.g. ``F.relu`` or ``torch.tanh`` called in
        ``forward``), reported as :class:`~robustest.errors.UnsupportedLayer`.
        """
        device = masks[0].device if masks else self.device
        basis = torch.cat([torch.zeros(1, self.dim, dtype=torch.float64, device=device),
                           torch.eye(self.dim, dtype=torch.float64, device=device)])
        for r, m in zip(self.relus, masks, strict=True):
            r.record, r.mask = False, m[i]
        try:
            out = self.net(basis.view((-1,) + self.input_shape)).flatten(1)
        finally:
            for r in self.relus:
                r.record, r.mask = True, None
        pre = torch.cat([out[:, :0]] + [r.pre.flatten(1) for r in self.relus], dim=1)  # type: ignore[union-attr]
        a, V = pre[0], (pre[1:] - pre[0]).T  # (N,), (N, d)
        sign = torch.cat([out.new_zeros(0)] + [m[i].double() for m in masks]) * 2 - 1
        A, b = -sign[:, None] * V, sign * a
        keep = A.abs().amax(1) > 1e-12  # neurons constant on the whole space give no constraint
        c, W = out[0], (out[1:] - out[0]).T
        if y is not None and logits is not None:
            z = y.reshape(-1).to(W)
            err = float((W @ z + c - logits.reshape(-1)).abs().max())
            if err > 1e-6 * (1.0 + float(logits.abs().max())):
                raise UnsupportedLayer(
                    f"the model is not piecewise affine in its nn.ReLU modules (the region's affine map "
                    f"is off by {err:.3g} at the point): its forward calls a non-linearity that is not an "
                    "nn.ReLU module. Fix: use nn.ReLU modules, or method='deepfool'/'pgd'")
        return LinearRegion(self.key(masks, i), A[keep], b[keep], W, c)


__all__ = ["LinearRegion", "PiecewiseAffine"]
