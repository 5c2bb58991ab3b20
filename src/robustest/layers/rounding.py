"""How a model's layers round, and the a-priori error bounds the kinds' ``rounding`` rules are built from.

The certifiers reason about the *exact* network (the model's weights, in real arithmetic; the graph holds
them in float64). The model as the user runs it computes every layer in its dtype, on its device, and
each operation rounds. A kind's ``Layer.rounding(boxes, errors, precision)`` bounds, elementwise, how far
the layer's computed output can be from the exact layer applied to the exact inputs, given the boxes of
the exact inputs and bounds ``errors`` of how far the computed inputs already are from them. The bounds
are the classical ones (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1): a sum
of ``n`` products computed in any order, with or without fused multiply-adds, is within
``gamma_n (|W| |x| + |b|)`` of the exact one, ``gamma_n = n u / (1 - n u)``, ``u`` the unit roundoff.

:class:`Precision` says which ``u`` applies where: the dtype's for elementwise operations and
accumulation, and a coarser one for the operands of matrix products and convolutions when torch is
allowed to round them to TF32 or bfloat16 (``torch.backends.cudnn.allow_tf32`` is on by default on
CUDA, so a float32 convolution there rounds its operands to 10 bits). Each operation may also underflow:
an absolute ``tiny`` (the dtype's smallest normal number, which covers flushing subnormals to zero) per
operation. A magnitude past the dtype's largest number (overflow) makes the bound infinite.

Assumed: matrix products and convolutions compute sums of products (direct, im2col/GEMM, split-K); the
FFT and Winograd convolution algorithms that cuDNN may choose have normwise, not elementwise, error
bounds and are not covered.

    >>> p = Precision.of(torch.float32, torch.device("cpu"))
    >>> p.unit == 2.0 ** -24 + F64_ALLOWANCE
    True
    >>> 0 < p.dot(10, "matmul") < 11 * 2.0 ** -24
    True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

#: Added to every unit roundoff: the graph's constants are float64 roundings of the model's (a folded
#: BatchNorm, ``1 / std``), and the bound computations round in float64 too.
F64_ALLOWANCE = 2.0 ** -52

#: The unit roundoff of each floating dtype, and of the reduced operand formats.
UNITS = {torch.float64: 2.0 ** -53, torch.float32: 2.0 ** -24, torch.float16: 2.0 ** -11,
         torch.bfloat16: 2.0 ** -8}
TF32, BF16 = 2.0 ** -11, 2.0 ** -8


@dataclass(frozen=True)
class Precision:
    """The rounding of a model in ``dtype`` on ``device``: ``unit`` for elementwise operations and
    accumulation; ``matmul`` and ``conv`` for the operands of matrix products and convolutions (0 when
    they are not rounded below the dtype); ``tiny`` the absolute error one operation may add (underflow);
    ``largest`` the dtype's largest finite number. Use :meth:`of`."""

    unit: float
    matmul: float = 0.0
    conv: float = 0.0
    tiny: float = 0.0
    largest: float = math.inf

    @staticmethod
    def of(dtype: torch.dtype, device: torch.device) -> Precision:
        """The precision a model of ``dtype`` on ``device`` computes in under torch's current settings."""
        if dtype not in UNITS:
            return Precision(math.inf)
        fi = torch.finfo(dtype)
        unit = UNITS[dtype] + F64_ALLOWANCE
        matmul = conv = 0.0
        if dtype == torch.float32:
            matmul, conv = _reduced_operands(device)
        return Precision(unit, matmul, conv, float(fi.tiny), float(fi.max))

    @staticmethod
    def of_model(model: object, inputs: torch.Tensor) -> Precision:
        """The coarser precision of ``model``'s floating parameters and of ``inputs``, on their device."""
        params = model.parameters() if isinstance(model, torch.nn.Module) else ()
        dtypes = {inputs.dtype} | {p.dtype for p in params if p.is_floating_point()}
        return max((Precision.of(d, inputs.device) for d in dtypes), key=lambda p: p.unit)

    def gamma(self, n: int) -> float:
        """``gamma_n = n u / (1 - n u)`` (infinite when ``n u >= 1``)."""
        nu = n * self.unit
        return nu / (1.0 - nu) if nu < 1.0 else math.inf

    def dot(self, n: int, op: str) -> float:
        """The relative error factor of a sum of ``n`` terms (products and a bias) computed by ``op``
        ("matmul", "conv" or "elementwise"): operands rounded to the op's format (twice, relative), then
        accumulated in the dtype."""
        operand = {"matmul": self.matmul, "conv": self.conv}.get(op, 0.0)
        return (1.0 + operand) ** 2 * (1.0 + self.gamma(n)) - 1.0

    def absolute(self, ops: int) -> float:
        """The absolute error ``ops`` operations may add by underflow."""
        return ops * self.tiny


def _reduced_operands(device: torch.device) -> tuple[float, float]:
    """The operand rounding of float32 matrix products and convolutions allowed by torch's flags on
    ``device`` (TF32 or bfloat16), 0 for none; unknown flags are read as "not reduced"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy allow_tf32 flags warn in newer torch
        medium = torch.get_float32_matmul_precision()
        backends = torch.backends
        if device.type == "cuda":
            mm = [getattr(backends.cuda.matmul, "fp32_precision", "none"),
                  "tf32" if getattr(backends.cuda.matmul, "allow_tf32", False) else "ieee"]
            cv = [getattr(getattr(backends.cudnn, "conv", None), "fp32_precision", "none"),
                  "tf32" if getattr(backends.cudnn, "allow_tf32", False) else "ieee"]
        else:
            mm = [getattr(getattr(backends.mkldnn, "matmul", None), "fp32_precision", "none")]
            cv = [getattr(getattr(backends.mkldnn, "conv", None), "fp32_precision", "none")]
    base = {"medium": BF16, "high": TF32}.get(medium, 0.0)

    def unit(flags: list[str]) -> float:
        return max([base] + [{"bf16": BF16, "tf32": TF32}.get(str(f), 0.0) for f in flags])

    return unit(mm), unit(cv)


def magnitude(box: tuple[torch.Tensor, torch.Tensor], err: torch.Tensor) -> torch.Tensor:
    """The largest ``|x|`` of a computed value within ``err`` of an exact one in ``box``."""
    return torch.maximum(box[0].abs(), box[1].abs()) + err


def in_range(bound: torch.Tensor, size: torch.Tensor, precision: Precision) -> torch.Tensor:
    """``bound``, infinite where the computed values' magnitude ``size`` reaches the dtype's largest
    number (the computation may overflow there)."""
    return torch.where(size < precision.largest, bound, torch.full_like(bound, math.inf))


__all__ = ["F64_ALLOWANCE", "UNITS", "Precision", "in_range", "magnitude"]
