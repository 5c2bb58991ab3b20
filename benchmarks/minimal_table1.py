"""seeds/003 Table 1 shape: how close DeepFool, PGD bisection and rLR-QP get to the exact minimum.

Digits MLPs with one hidden layer of 50 (N1) and hidden layers of 50 and 15 (N2), trained in-process
(deterministic). For the first N test samples that are classified correctly: mean and max of
||d_attack|| / ||d_exact|| and the time per sample. ``d_exact`` is the proven minimum from
:func:`robustest.minimal.exact.exact_minimum` (MILP with HiGHS for linf/l1, MIQP with Gurobi for l2).
Every attack distance is of an input re-checked by a forward pass.

Run: ``python benchmarks/minimal_table1.py --norm l2 [--n 50]``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List

import torch
from minimal_nets import test_set, train_mlp

from robustest.errors import SolverUnavailable
from robustest.minimal.deepfool import deepfool
from robustest.minimal.lr_qp import LrQpSettings, lr_qp
from robustest.minimal.pgd_search import pgd_search
from robustest.spec import lp_norm


def run(hidden: tuple, norm: str, n: int, timeout: float) -> None:
    from robustest.minimal.exact import exact_minimum

    model = train_mlp(hidden)
    x, y = test_set(n)
    keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    dist: Dict[str, torch.Tensor] = {}
    secs: Dict[str, float] = {}
    t0 = time.perf_counter()
    none = torch.full((len(y),), float("inf"), dtype=x.dtype)
    if norm == "l1":  # DeepFool is for l2 and linf here
        df, ok = x.clone(), torch.zeros(len(y), dtype=torch.bool)
    else:
        df, ok = deepfool(model, x, y, norm=norm)
    secs["DeepFool + search"] = time.perf_counter() - t0
    dist["DeepFool + search"] = torch.where(ok, lp_norm(df - x, norm), none)
    t0 = time.perf_counter()
    hi = torch.where(ok, dist["DeepFool + search"], torch.ones(len(y)))
    pg, okp = pgd_search(model, x, y, norm=norm, hi=hi, steps=10, method="pgd")
    secs["PGD bisection"] = time.perf_counter() - t0
    dist["PGD bisection"] = torch.where(okp, lp_norm(pg - x, norm), none)
    t0 = time.perf_counter()
    out = lr_qp(model, x, y, norm=norm, warm_start=df if norm != "l1" else None,
                settings=LrQpSettings(timeout=timeout))
    secs["rLR-QP"] = time.perf_counter() - t0
    dist["rLR-QP"] = out.distance.to(x.dtype)
    for name, adv in [("PGD bisection", pg), ("rLR-QP", out.adversarial)]:
        with torch.no_grad():
            flips = model(adv).argmax(1) != y
        assert bool(flips[torch.isfinite(dist[name])].all()), name
    t0 = time.perf_counter()
    ex: List[float] = []
    statuses: List[str] = []
    for i in range(len(y)):
        try:
            res = exact_minimum(model, x[i:i + 1], y[i:i + 1], norm=norm, upper=float(dist["rLR-QP"][i]),
                                time_limit=300.0)
        except SolverUnavailable:  # the l2 MIQP is beyond the Gurobi pip licence for this sample
            ex.append(float("nan"))
            statuses.append("unavailable")
            continue
        ex.append(res.value)
        statuses.append(res.status)
    secs["exact (MILP/MIQP)"] = time.perf_counter() - t0
    exact = torch.tensor(ex, dtype=torch.float64)
    solved = torch.tensor([s == "optimal" for s in statuses])
    print(f"\nhidden={hidden} norm={norm}: {len(y)} correctly classified of the first {n} test samples, "
          f"{int(solved.sum())} exact minima proven, {statuses.count('unavailable')} beyond the solver "
          f"licence, {statuses.count('time_limit')} timed out")
    print(f"{'method':<22}{'mean':>9}{'max':>9}{'found':>7}{'s/sample':>10}")
    for name in dist:
        d = dist[name].double()
        good = solved & torch.isfinite(d)
        r = d[good] / exact[good]
        print(f"{name:<22}{float(r.mean()):>9.4f}{float(r.max()):>9.4f}{int(good.sum()):>7}"
              f"{secs[name] / len(y):>10.3f}")
    per = secs["exact (MILP/MIQP)"] / len(y)
    print(f"{'exact (MILP/MIQP)':<22}{'':>9}{'':>9}{int(solved.sum()):>7}{per:>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--norm", default="l2")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--nets", default="50;50,15")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for spec in args.nets.split(";"):
        run(tuple(int(h) for h in spec.split(",")), args.norm, args.n, args.timeout)


if __name__ == "__main__":
    main()
    print(f"machine: {os.cpu_count()} cores shared with other jobs; load average (1, 5, 15 min) "
          f"{tuple(round(v, 1) for v in os.getloadavg())}")
