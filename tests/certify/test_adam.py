"""The bound optimisers' Adam (certify/adam.py) takes torch.optim.Adam's steps, fused or not."""

from __future__ import annotations

import pytest
import torch

from robustest.certify.adam import Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fused", [True, False])
def test_steps_equal_torch_optim_adam(dtype: torch.dtype, fused: bool) -> None:
    g = torch.Generator().manual_seed(0)
    a0, b0 = torch.rand(3, 4, 5, generator=g, dtype=dtype), torch.rand(7, generator=g, dtype=dtype)
    ours = [a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)]
    ref = [a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)]
    opt = Adam([{"params": [ours[0]], "lr": 0.1}, {"params": [ours[1]], "lr": 0.05}])
    opt.fused = fused
    ref_opt = torch.optim.Adam([{"params": [ref[0]], "lr": 0.1}, {"params": [ref[1]], "lr": 0.05}])
    w = torch.randn(3, 4, 5, generator=g, dtype=dtype)
    for step in range(6):
        for params, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            ((params[0] * w).sin().sum() + (params[1] ** 2).sum() * (step + 1)).backward()
            o.step()
        for x, y in zip(ours, ref):
            torch.testing.assert_close(x, y)
    assert opt.fused == fused


def test_fused_on_cpu_floats_only() -> None:
    assert Adam([torch.zeros(2, requires_grad=True)], lr=0.1).fused
    assert not Adam([torch.zeros(2, dtype=torch.complex64, requires_grad=True)], lr=0.1).fused
