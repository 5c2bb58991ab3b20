"""Does the relaxing walk (seeds/000) find counterexamples that PGD/APGD miss? Measured here, not shipped.

The relaxing walk samples starting points from the LP relaxation of the network's MILP and then does a
local search over linear regions. seeds/000 reports that the sampling step degenerates (LP optima at
trivial points) and that the walk reduces to its local search; the LP relaxation point also needs the
full network LP per sample. We measure that local search, started from the clean input, from the best
PGD point and from random points of the ball: on the linear region of the current point the margin
``logit_t - logit_y`` is affine, so its maximum over region ∩ ball ∩ domain is an LP (HiGHS). If the
maximum is positive the point is a counterexample (re-checked by a forward pass); otherwise the walk
steps just past the region's active face toward the LP optimum and repeats (``--steps`` regions).

For a fixed eps (linf) on the digits MLPs, samples not broken by robustest.attack(method="auto":
FGSM, APGD-CE, APGD-DLR, APGD-T) and by PGD are attacked by the walk; the script prints how many the walk
breaks that the attacks did not, and the time. Run: ``python benchmarks/minimal_walk.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Optional

import highspy
import numpy as np
import torch
from minimal_nets import test_set, train_mlp

from robustest import attack
from robustest.errors import SolverError
from robustest.minimal.exact import exact_minimum
from robustest.minimal.lr_qp import LrQpSettings, lr_qp
from robustest.minimal.regions import PiecewiseAffine


def region_lp(region, x: np.ndarray, eps: float, label: int, target: int) -> Optional[np.ndarray]:
    """argmax of (W_t - W_y) z + c_t - c_y over region ∩ linf ball ∩ [0, 1]^d."""
    A, b = region.A.numpy(), region.b.numpy()
    W = region.W.numpy()
    d = x.size
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)  # HiGHS' scheduler is process-wide: every instance must agree
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = d, A.shape[0]
    lp.col_cost_ = -(W[target] - W[label])
    lp.col_lower_ = np.maximum(x - eps, 0.0)
    lp.col_upper_ = np.minimum(x + eps, 1.0)
    lp.row_lower_ = np.full(A.shape[0], -highspy.kHighsInf)
    lp.row_upper_ = b
    nz = A != 0
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(nz.sum(1))]).astype(np.int32)
    lp.a_matrix_.index_ = np.nonzero(nz)[1].astype(np.int32)
    lp.a_matrix_.value_ = A[nz]
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().col_value)


def walk(model, pw: PiecewiseAffine, x: torch.Tensor, label: int, eps: float, start: torch.Tensor,
         steps: int) -> Optional[torch.Tensor]:
    xn = x.double().numpy()
    z = start.double()
    for _ in range(steps):
        region = pw.regions(z[None])[0]
        logits = (region.W @ z + region.c).numpy()
        order = [t for t in np.argsort(-logits) if t != label][:3]
        best, best_val = None, -np.inf
        for t in order:
            sol = region_lp(region, xn, eps, label, int(t))
            if sol is None:
                continue
            val = float((region.W[t] - region.W[label]).numpy() @ sol + region.c[t] - region.c[label])
            if val > best_val:
                best, best_val = sol, val
        if best is None:
            return None
        cand = torch.tensor(best, dtype=x.dtype)
        with torch.no_grad():
            if int(model(cand[None]).argmax(1)[0]) != label:
                return cand
        nxt = torch.tensor(best) + 1e-3 * (torch.tensor(best) - z)  # just past the active face
        box_lo, box_hi = torch.tensor(np.maximum(xn - eps, 0)), torch.tensor(np.minimum(xn + eps, 1))
        nxt = torch.minimum(torch.maximum(nxt, box_lo), box_hi)
        if torch.allclose(nxt, z, atol=1e-9):
            return None
        z = nxt
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--at-exact", type=float, default=None,
                    help="instead of --eps, attack each sample at this factor times its exact linf radius")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--hidden", default="50")
    args = ap.parse_args()
    torch.set_num_threads(1)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    model = train_mlp(hidden)
    x, y = test_set(args.n)
    keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    n = len(y)
    if args.at_exact is None:
        eps = [args.eps] * n
        label = f"eps={args.eps}"
    else:  # every sample is breakable at eps_i > its exact radius: the attacks' job is only to find it
        found = lr_qp(model, x, y, norm="linf", settings=LrQpSettings(n1=4, n2=5, n3=2, n4=2))
        eps = [args.at_exact * exact_minimum(model, x[i:i + 1], y[i:i + 1], norm="linf",
                                             upper=float(found.distance[i]), time_limit=120.0).value
               for i in range(n)]
        label = f"eps = {args.at_exact} x exact linf radius per sample"
    t0 = time.perf_counter()
    broken, pgd_adv = torch.zeros(n, dtype=torch.bool), x.clone()
    for i in range(n):
        xi, yi = x[i:i + 1], y[i:i + 1]
        auto = attack(model, xi, yi, eps=eps[i], norm="linf", method="auto", seed=0)
        pgd = attack(model, xi, yi, eps=eps[i], norm="linf", method="pgd", seed=0, steps=100, restarts=5)
        broken[i] = bool(auto.success[0] | pgd.success[0])
        pgd_adv[i] = pgd.adversarial[0]
    t_att = time.perf_counter() - t0
    todo = (~broken).nonzero()[:, 0].tolist()
    pw = PiecewiseAffine(model, input_shape=(x.shape[1],))
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    extra, walk_broken_of_broken = 0, 0
    for i in range(n):
        starts = [x[i], pgd_adv[i]] + [
            torch.clamp(x[i] + eps[i] * (2 * torch.rand(x.shape[1], generator=g) - 1), 0, 1)
            for _ in range(args.starts)]
        hit = None
        for s in starts:
            hit = walk(model, pw, x[i], int(y[i]), eps[i], s, args.steps)
            if hit is not None:
                break
        if hit is not None:
            assert float((hit - x[i]).abs().max()) <= eps[i] + 1e-6
            if i in todo:
                extra += 1
            else:
                walk_broken_of_broken += 1
    t_walk = time.perf_counter() - t0
    print(f"hidden={hidden} linf {label}: {n} correctly classified of the first {args.n}")
    print(f"attacks (auto + PGD 100x5) broke {int(broken.sum())} in {t_att:.1f} s")
    print(f"walk broke {walk_broken_of_broken} of those and {extra} of the {len(todo)} the attacks missed, "
          f"in {t_walk:.1f} s ({t_walk / n:.2f} s/sample)")
    if args.at_exact is not None:
        return
    t0 = time.perf_counter()
    breakable, robust, failed = 0, 0, []
    for i in todo:  # ground truth for the samples the attacks missed: the exact linf minimum vs eps
        try:
            res = exact_minimum(model, x[i:i + 1], y[i:i + 1], norm="linf", upper=eps[i], time_limit=120.0)
        except SolverError as exc:
            failed.append((i, str(exc)))
            continue
        breakable += int(res.status == "optimal" and res.value <= eps[i])
        robust += int(res.status == "infeasible" or (res.status == "optimal" and res.value > eps[i]))
    t_exact = time.perf_counter() - t0
    print(f"exact MILP on the {len(todo)} missed samples: {breakable} have a counterexample within eps, "
          f"{robust} are proven robust, {len(todo) - breakable - robust} undecided ({t_exact:.1f} s)")
    for i, msg in failed:
        print(f"  sample {i}: solver failure: {msg}")


if __name__ == "__main__":
    main()
    print(f"machine: {os.cpu_count()} cores shared with other jobs; load average (1, 5, 15 min) "
          f"{tuple(round(v, 1) for v in os.getloadavg())}")
