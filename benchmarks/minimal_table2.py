"""seeds/003 Table 2 shape on a larger digits MLP (3 hidden layers of 256): DeepFool vs rLR-QP in l2.

For the first N test samples: the ratio ||d_DeepFool|| / ||d_rLR-QP|| (mean, min, max) and the share of
samples where rLR-QP is strictly smaller (improvement rate, IR), for DeepFool as published and with the
seed's boundary binary search. rLR-QP is warm-started from DeepFool + search. Every distance is of an
input re-checked by a forward pass. Run: ``python benchmarks/minimal_table2.py [--n 50]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from minimal_nets import test_set, train_mlp

from robustest.minimal.deepfool import deepfool
from robustest.minimal.lr_qp import LrQpSettings, lr_qp
from robustest.spec import lp_norm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--targets", default="all")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = train_mlp((256, 256, 256))
    x, y = test_set(args.n)
    keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    t0 = time.perf_counter()
    df_raw, ok_raw = deepfool(model, x, y, norm="l2", search_steps=0)
    df, ok = deepfool(model, x, y, norm="l2")
    t_df = (time.perf_counter() - t0) / 2 / len(y)
    t0 = time.perf_counter()
    out = lr_qp(model, x, y, norm="l2", warm_start=df,
                settings=LrQpSettings(timeout=args.timeout, targets=args.targets))
    t_lr = (time.perf_counter() - t0) / len(y)
    with torch.no_grad():
        assert bool((model(out.adversarial).argmax(1) != y)[out.success].all())
    d_lr = lp_norm(out.adversarial - x, "l2").double()
    print(f"3x256 digits MLP, l2, {len(y)} correctly classified of the first {args.n} test samples; "
          f"rLR-QP found an adversarial input for {int(out.success.sum())}")
    print(f"{'method':<28}{'mean':>8}{'min':>8}{'max':>8}{'IR %':>8}  (ratio to rLR-QP; failures)")
    for name, adv, good in [("DeepFool", df_raw, ok_raw), ("DeepFool + binary search", df, ok)]:
        both = good & out.success
        r = lp_norm(adv - x, "l2").double()[both] / d_lr[both]
        ir = float((r > 1 + 1e-9).double().mean()) * 100
        print(f"{name:<28}{float(r.mean()):>8.3f}{float(r.min()):>8.3f}{float(r.max()):>8.3f}{ir:>8.1f}"
              f"  ({int((~good).sum())} failures)")
    print(f"time per sample: DeepFool {t_df:.3f} s, rLR-QP {t_lr:.2f} s (timeout {args.timeout:g} s); "
          f"regions checked per sample: mean {sum(out.regions) / len(y):.0f}, QP solves mean "
          f"{sum(out.solves) / len(y):.0f}")


if __name__ == "__main__":
    main()
    print(f"machine: {os.cpu_count()} cores shared with other jobs; load average (1, 5, 15 min) "
          f"{tuple(round(v, 1) for v in os.getloadavg())}")
