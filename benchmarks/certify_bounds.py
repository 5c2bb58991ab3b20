"""Certified fraction and time of robustest IBP, CROWN and alpha-CROWN on the digits MLP and CNN.

    python benchmarks/certify_bounds.py [--n 200] [--threads 1]

Each method bounds the margins of the first ``n`` test samples (the misclassified ones count as not
certified) for several eps; time is wall-clock for the whole batch. auto_LiRPA is compared when it imports
(see benchmarks/certification.md for why it does not on this environment).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from digits import load_model, test_data

import robustest

EPS = {"mlp": [0.01, 0.02, 0.03, 0.05], "cnn": [0.01, 0.02, 0.03, 0.05]}


def auto_lirpa(model, x, y, eps):
    """Certified mask and seconds of auto_LiRPA CROWN, or None when it is not importable."""
    try:
        from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
    except Exception:  # noqa: BLE001 - any import failure means "not available here"
        return None
    t0 = time.perf_counter()
    bm = BoundedModule(model, torch.zeros_like(x[:1]))
    ptb = PerturbationLpNorm(norm=float("inf"), eps=eps, x_L=(x - eps).clamp(0, 1), x_U=(x + eps).clamp(0, 1))
    C = robustest.spec.margin_matrix(y, 10)
    lb, _ = bm.compute_bounds(x=(BoundedTensor(x, ptb),), method="CROWN", C=C)
    return (lb.min(1).values > 0), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':5} {'eps':>5} {'method':12} {'certified':>9} {'seconds':>8}  ratio vs IBP time")
    for name in ("mlp", "cnn"):
        model = load_model(name)
        x, y = test_data(name, args.n)
        correct = model(x).argmax(1) == y
        for eps in EPS[name]:
            base = None
            for method in ("ibp", "crown", "alpha-crown"):
                t0 = time.perf_counter()
                b = robustest.bounds(model, x, eps=eps, labels=y, method=method)
                sec = time.perf_counter() - t0
                cert = (b.margins_lower.min(1).values > 0) & correct
                base = sec if base is None else base
                print(f"{name:5} {eps:5.3f} {method:12} {float(cert.float().mean()):9.3f} {sec:8.2f}  {sec / base:6.1f}x",
                      flush=True)
            lirpa = auto_lirpa(model, x, y, eps)
            if lirpa is not None:
                mask, sec = lirpa
                print(f"{name:5} {eps:5.3f} {'auto_LiRPA':12} {float((mask & correct).float().mean()):9.3f} "
                      f"{sec:8.2f}", flush=True)


if __name__ == "__main__":
    main()
