"""Algorithm 2: an approximate master QP that frees only a share of each layer's weights per round.

Each round draws a free set J (every bias, plus a random ``1 - fix`` share of each weight tensor's
entries), keeps the other coordinates of the current step ``d`` fixed, and solves

    minimise ||d_J||^2   subject to   A[:, J] d_J >= r - A[:, not J] d_not_J

with the given backend. Only a feasible point with a small step is needed. Successive free sets must
overlap (Proposition 1: a round over coordinates disjoint from the previous free set returns the same
point), which the always-free biases guarantee.

    >>> import torch, numpy as np
    >>> A = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    >>> free = [torch.tensor([0]), torch.tensor([2])]
    >>> block_solve(A, np.array([1.0]), free_sets=free).d.tolist()
    [1.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import invalid_argument
from .qp import QPSolution, Solver, finish, get_solver


def draw_free_set(layout: Sequence[Tuple[str, slice, bool]], *, fix: float,
                  generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Indices into w: all bias coordinates plus a uniform ``1 - fix`` share of each weight tensor."""
    if not 0.0 <= fix < 1.0:
        raise invalid_argument("block", fix, "the share of weights to fix, in [0, 1)",
                               "use block=0.8 (the paper's ResNet8 setting) or block=None for the exact QP")
    parts = []
    for _, sl, is_bias in layout:
        size = sl.stop - sl.start
        if is_bias:
            parts.append(torch.arange(sl.start, sl.stop))
            continue
        k = max(1, int(round((1.0 - fix) * size)))
        parts.append(sl.start + torch.randperm(size, generator=generator)[:k].sort().values)
    return torch.cat(parts).to(device)


def block_solve(A: torch.Tensor, r: np.ndarray, *, free_sets: Sequence[torch.Tensor],
                penalty: float = 1e6, solver: str = "dual",
                start: Optional[torch.Tensor] = None) -> QPSolution:
    """Run one round per free set (Algorithm 2) from ``start`` (default: d = 0, i.e. w = w0)."""
    solve: Solver = get_solver(solver)
    d = torch.zeros(A.shape[1], dtype=A.dtype, device=A.device) if start is None else start.clone()
    r64 = np.asarray(r, dtype=np.float64)
    mu = np.zeros(A.shape[0])
    status, iterations = "optimal", 0
    for J in free_sets:
        J = J.to(A.device)
        mask = torch.ones(A.shape[1], dtype=torch.bool, device=A.device)
        mask[J] = False
        A_J = A[:, J]
        rhs = r64 - (A[:, mask] @ d[mask]).double().cpu().numpy()
        sol = solve(A_J, rhs, penalty=penalty)
        d[J] = sol.d
        mu, status, iterations = sol.mu, sol.status, iterations + sol.iterations
    return finish(A, r64, d, mu, status=status, iterations=iterations)


__all__: List[str] = ["draw_free_set", "block_solve"]
