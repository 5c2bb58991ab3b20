"""A kind that declares itself ``monotone`` (CROWN then keeps the interval bounds of its outputs when its
input's are exact) is elementwise and non-decreasing on its example: ``x <= x'`` gives ``f(x) <= f(x')``,
and changing one input entry changes only the output entry at the same place."""

from __future__ import annotations

import pytest
import torch

from robustest.layers import kinds

MONOTONE = {k.kind: k for k in kinds() if k.monotone}


def test_relu_is_declared_monotone():
    assert "ReLU" in MONOTONE


@pytest.mark.parametrize("name", MONOTONE)
def test_a_monotone_kind_is_elementwise_and_non_decreasing(name: str):
    gen = torch.Generator().manual_seed(0)
    layer, (shape,) = MONOTONE[name].example(gen)
    x = torch.randn((64, *shape), generator=gen, dtype=torch.float64) * 3
    bigger = x + torch.rand(x.shape, generator=gen, dtype=torch.float64)
    assert bool((layer.forward(x) <= layer.forward(bigger)).all())
    one = x.clone()
    one.reshape(64, -1)[:, 0] += 1.0
    changed = (layer.forward(one) != layer.forward(x)).reshape(64, -1)
    assert not bool(changed[:, 1:].any()) and layer.forward(x).shape == x.shape
