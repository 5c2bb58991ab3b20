"""Random small networks (MLP and conv, with/without BatchNorm, residual, pooling, normalisation) and
points of a ball that push each bound (random, corners, PGD on each spec row) for the soundness tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

from robustest.spec import LpBall


class Normalize(nn.Module):
    """(x - mean) / std with constant buffers: traced by fx into sub/div."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ResidualMLP(nn.Module):
    def __init__(self, d: int, h: int, k: int, bn: bool) -> None:
        super().__init__()
        self.inp = nn.Linear(d, h)
        self.bn = nn.BatchNorm1d(h) if bn else nn.Identity()
        self.block = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h))
        self.out = nn.Linear(h, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.inp(x)))
        h = torch.relu(self.block(h) + h)
        return self.out(h)


class ResidualCNN(nn.Module):
    def __init__(self, c: int, k: int, bn: bool, pool: str) -> None:
        super().__init__()
        self.norm = Normalize(torch.full((1, c, 1, 1), 0.4), torch.full((1, c, 1, 1), 0.7))
        self.conv = nn.Conv2d(c, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "none": nn.Identity()}[pool]
        side = 2 if pool != "none" else 4
        self.fc = nn.Linear(3 * side * side, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(self.norm(x))))
        h = torch.relu(self.conv2(h) + h)
        return self.fc(torch.flatten(self.pool(h), 1))


def randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)


def build(kind: str, bn: bool, residual: bool, pool: str, seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """A random eval-mode float64 network and its batch-free input shape."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    k = 3
    if kind == "mlp":
        d, h = 4, 6
        if residual:
            model: nn.Module = ResidualMLP(d, h, k, bn)
        else:
            layers = [nn.Linear(d, h)] + ([nn.BatchNorm1d(h)] if bn else []) + [nn.ReLU(), nn.Dropout(0.5),
                                                                                nn.Linear(h, h), nn.ReLU(),
                                                                                nn.Linear(h, k)]
            model = nn.Sequential(*layers)
        shape: tuple[int, ...] = (d,)
    else:
        c = 1
        if residual:
            model = ResidualCNN(c, k, bn, pool)
        else:
            pools = {"max": [nn.MaxPool2d(2)], "avg": [nn.AvgPool2d(2)], "none": []}[pool]
            side = 2 if pool != "none" else 4
            model = nn.Sequential(nn.Conv2d(c, 3, 3, padding=1), *([nn.BatchNorm2d(3)] if bn else []), nn.ReLU(),
                                  *pools, nn.Conv2d(3, 4, 2, stride=1, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * (side + 1) ** 2, k))
        shape = (c, 4, 4)
    randomise_bn(model, gen)
    return model.double().eval(), shape


nets = st.builds(build, kind=st.sampled_from(["mlp", "conv"]), bn=st.booleans(), residual=st.booleans(),
                 pool=st.sampled_from(["max", "avg", "none"]), seed=st.integers(0, 2**16))


def extreme_points(model: nn.Module, x0: torch.Tensor, ball: LpBall, C: torch.Tensor, *, steps: int = 15,
                   samples: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of the ball around each x0 row, and ``C @ model(point)`` at them: random points, and PGD
    minimising and maximising every row of ``C`` (N, M, K). Returns (N, P, ...) points and (N, P, M) values."""
    gen = torch.Generator().manual_seed(seed)
    N, _M = C.shape[:2]
    pts = [torch.stack([ball.random_start(x0, gen) for _ in range(samples)], 1)]
    rows = torch.cat([C, -C], 1)  # (N, 2M, K)
    R = rows.shape[1]
    x0r = x0.unsqueeze(1).expand((N, R) + x0.shape[1:]).reshape((N * R,) + x0.shape[1:])
    x = ball.random_start(x0r, gen)
    step = 2.5 * ball.eps / steps
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        val = (model(x).reshape(N, R, -1) * rows).sum(-1).sum()
        (g,) = torch.autograd.grad(val, x)
        x = ball.project(x - step * ball.steepest_direction(g), x0r)
    pts.append(x.detach().reshape((N, R) + x0.shape[1:]))
    P = torch.cat(pts, 1)
    with torch.no_grad():
        out = model(P.reshape((-1,) + x0.shape[1:])).reshape(N, P.shape[1], -1)
    return P, out @ C.transpose(1, 2)


def exact_min(graph, lo: torch.Tensor, hi: torch.Tensor, c: torch.Tensor) -> float:  # type: ignore[no-untyped-def]
    """The exact minimum of ``c . f(x)`` over the box ``[lo, hi]`` (batch-free shape), by MILP."""
    from robustest.certify.crown import crown
    from robustest.certify.encode import numpy_boxes
    from robustest.certify.milp import milp_minimum

    x0 = ((lo + hi) / 2)[None]
    ball = LpBall(float((hi - lo).max()) / 2, "linf", (lo, hi))
    boxes = numpy_boxes(crown(graph, x0, ball, c.reshape(1, 1, -1)).boxes, 0)
    res, _ = milp_minimum(graph, x0[0], ball, c.numpy(), boxes)
    assert res.status == "optimal"
    return float(res.objective)
