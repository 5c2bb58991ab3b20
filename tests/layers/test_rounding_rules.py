"""Every registered layer kind bounds its own floating-point rounding, soundly (:mod:`robustest.layers.rounding`).

For each kind's ``example()`` with its weights rounded to float32 (the model), random exact inputs in
random boxes and computed inputs within a given error of them: the float32 forward on the computed inputs
stays within the kind's ``rounding`` bound of the exact (float64) forward on the exact inputs. A kind
without a rule fails here: without one, no certificate can account for the model's rounding.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustest.layers import kinds
from robustest.layers.rounding import BF16, TF32, Precision
from robustest.layers.scale import Scale

KINDS = {k.kind: k for k in kinds()}
F32 = Precision.of(torch.float32, torch.device("cpu"))
CPU = torch.device("cpu")


def _inputs(shapes, g, shaken, B=3, P=32):
    """Per input: the exact values' box, exact points in it (P*B, ...), the computed points and their
    error bound (0 unless ``shaken``: then the computed points are off by up to about 1e-3)."""
    out = []
    for s in shapes:
        mid = (2 * torch.rand((B,) + s, generator=g, dtype=torch.float64) - 1) * 4
        rad = torch.rand((B,) + s, generator=g, dtype=torch.float64) * torch.tensor(
            [0.0, 0.3, 2.0], dtype=torch.float64).view((B,) + (1,) * len(s))
        lo, hi = mid - rad, mid + rad
        u = torch.rand((P, B) + s, generator=g, dtype=torch.float64)
        x = (lo + u * (hi - lo)).float().double()  # points of the model's dtype
        lo, hi = torch.minimum(lo, x.amin(0)), torch.maximum(hi, x.amax(0))
        if shaken:
            size = torch.maximum(lo.abs(), hi.abs())
            err = 1e-3 * torch.rand((B,) + s, generator=g, dtype=torch.float64) + 2.0 ** -20 * (size + 1)
            shake = (2 * torch.rand((P, B) + s, generator=g, dtype=torch.float64) - 1) * err / 2
            xf = (x + shake).float()  # within err/2 + one float32 rounding (< err/2) of x
        else:
            err, xf = torch.zeros_like(lo), x.float()
        out.append(((lo, hi), x.reshape((P * B,) + s), xf.reshape((P * B,) + s), err))
    return out


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shaken", [False, True])
def test_rounding_rule_bounds_the_float32_forward(name: str, seed: int, shaken: bool):
    g = torch.Generator().manual_seed(seed)
    layer, shapes = KINDS[name].example(g)
    model = layer.to(CPU, torch.float32)       # what the user runs
    exact = model.to(CPU, torch.float64)       # the same weights, in (nearly) exact arithmetic
    ins = _inputs(shapes, g, shaken)
    P = ins[0][1].shape[0] // 3
    bound = exact.rounding([b for b, *_ in ins], [e for *_, e in ins], F32)
    assert bound is not None, f"layer kind {name} has no rounding rule (Layer.rounding, layers/rounding.py)"
    with torch.no_grad():
        got = model.forward(*[xf for _, _, xf, _ in ins]).double()
        want = exact.forward(*[x for _, x, _, _ in ins])
    gap = (got - want).abs().reshape((P, 3) + tuple(bound.shape[1:]))
    assert bool(torch.isfinite(bound).all())
    assert bool((gap <= bound.unsqueeze(0)).all()), float((gap - bound).max())


@pytest.mark.parametrize("dim", [1, 2])
def test_batchnorm_rule_bounds_torch_batchnorm_with_cancelling_statistics(dim: int):
    """torch's BatchNorm (not the graph's x * scale + shift) on inputs near a large running mean, tiny variance."""
    g = torch.Generator().manual_seed(dim)
    bn = (nn.BatchNorm1d(4) if dim == 1 else nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1e4, -3e3, 0.5, 2.0**24]))
        bn.running_var.copy_(torch.tensor([1e-3, 4.0, 1e-5, 1.0]))
        bn.weight.copy_(torch.tensor([2.0, -0.5, 1.0, 3.0]))
        bn.bias.copy_(torch.tensor([0.1, 7.0, -1.0, 0.0]))
    shape = (4,) if dim == 1 else (4, 2, 2)
    layer = Scale.from_module(bn, "bn", shape).to(CPU, torch.float64)
    view = (1, 4) + (1,) * (len(shape) - 1)
    mean = bn.running_mean.double().view(view)
    x = (mean + (2 * torch.rand((256,) + shape, generator=g, dtype=torch.float64) - 1) * 3).float().double()
    box = (x.amin(0, keepdim=True), x.amax(0, keepdim=True))
    bound = layer.rounding([box], [torch.zeros_like(box[0])], F32)
    with torch.no_grad():
        gap = (bn(x.float()).double() - layer.forward(x)).abs()
    assert bool((gap <= bound).all()), float((gap - bound).max())
    assert bool((gap > 0).any())  # the case rounds


def test_precision_reads_torch_reduced_precision_flags(monkeypatch):
    """float32 on CUDA with cuDNN's TF32 on rounds convolution operands to 10 bits; 'medium' allows bfloat16."""
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert Precision.of(torch.float32, cuda).conv == TF32
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        assert Precision.of(torch.float32, CPU).matmul == BF16
    finally:
        torch.set_float32_matmul_precision(old)
    assert Precision.of(torch.float32, CPU).matmul == 0.0
    assert Precision.of(torch.float16, CPU).unit > 2.0 ** -12
    assert Precision.of(torch.float64, CPU).gamma(10) < 1e-14
    assert Precision.of(torch.float32, CPU).gamma(2 ** 24) == float("inf")
