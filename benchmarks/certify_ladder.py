"""The full ladder (attacks -> IBP -> CROWN -> LP -> MILP) on the first 200 test samples of the digits
MLP (or ``--model cnn``), at eps where attacks + CROWN leave samples undecided, with a 60 s budget per sample.

    python benchmarks/certify_ladder.py [--n 200] [--eps 0.05 0.08] [--timeout 60] [--baseline 5]

Prints, per eps: what attacks + CROWN decide, what the whole ladder decides, how many samples LP/MILP
resolved, and the median time of a MILP-resolved sample (its whole ladder time: attacks, bounds and the
MILP). Baseline (same process): a plain big-M MILP with interval (IBP) bounds, every margin solved to
optimality, on the first ``--baseline`` MILP-resolved samples (capped at the same budget).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from digits import load_model, test_data

import robustest
from robustest.certify.encode import encode_network, numpy_boxes
from robustest.certify.ibp import interval_bounds
from robustest.graph import read_model
from robustest.solvers import open_solver
from robustest.spec import LpBall, margin_matrix


def plain_bigm(model, x, y, eps, budget):
    """Seconds for the plain big-M MILP (IBP bounds, all margins to optimality); None past the budget."""
    ball = LpBall(eps, "linf")
    t0 = time.perf_counter()
    g = read_model(model, x.unsqueeze(0))
    x64 = x.unsqueeze(0).double()
    boxes = numpy_boxes(interval_bounds(g, *ball.box(x64)), 0)
    lo, hi = ball.box(x64)
    enc = encode_network(g, lo[0].reshape(-1).numpy(), hi[0].reshape(-1).numpy(), boxes, exact=True)
    C = margin_matrix(y.view(1), 10)[0].double().numpy()
    solver = open_solver(enc.problem, "highs")
    for m in range(C.shape[0]):
        left = budget - (time.perf_counter() - t0)
        if left <= 0:
            return None
        res = solver.minimize({int(v): float(c) for v, c in zip(enc.outputs, C[m]) if c}, time_limit=left)
        if res.status != "optimal":
            return None
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.08])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--baseline", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--escalate", default="milp", help="the top rung of the full ladder (milp or bab)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    x, y = test_data(args.model, args.n)
    for eps in args.eps:
        t0 = time.perf_counter()
        crown = robustest.check(model, x, y, eps=eps, escalate="crown", timeout=args.timeout)
        t_crown = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = robustest.check(model, x, y, eps=eps, escalate=args.escalate, timeout=args.timeout)
        t_full = time.perf_counter() - t0
        by = {}
        for s in full.samples:
            key = f"{s.verdict}/{s.method}"
            by[key] = by.get(key, 0) + 1
        milp = [s for s in full.samples if s.method in ("lp", "milp", "bab") and s.verdict != "unknown"]
        times = [s.seconds for s in full.samples if s.method in ("milp", "bab") and s.verdict != "unknown"]
        print(f"eps={eps}: attacks+CROWN {crown.counts()} in {t_crown:.1f} s")
        print(f"eps={eps}: full ladder {full.counts()} in {t_full:.1f} s; by rung {dict(sorted(by.items()))}")
        print(f"eps={eps}: resolved by LP/MILP/BaB {len(milp)} of {crown.counts()['unknown']} left by CROWN; "
              f"MILP/BaB-resolved samples: {len(times)}, median {statistics.median(times) if times else float('nan'):.2f} s, "
              f"max {max(times) if times else float('nan'):.2f} s", flush=True)
        for s in full.samples:
            if s.verdict == "unknown":
                print(f"  unknown sample {s.index}: {s.reason}")
        ours, base = [], []
        for s in [s for s in full.samples if s.method in ("milp", "bab") and s.verdict != "unknown"][: args.baseline]:
            b = plain_bigm(model, x[s.index], y[s.index], eps, args.timeout)
            ours.append(s.seconds)
            base.append(b if b is not None else float("inf"))
            print(f"  sample {s.index}: ladder {s.seconds:.2f} s vs plain big-M/IBP "
                  f"{f'> {args.timeout:.0f} s (budget)' if b is None else f'{b:.2f} s'}", flush=True)
        if ours:
            print(f"eps={eps}: plain big-M / ladder median time ratio: "
                  f"{statistics.median(base) / statistics.median(ours):.1f}x (inf = baseline over budget)")


if __name__ == "__main__":
    main()
