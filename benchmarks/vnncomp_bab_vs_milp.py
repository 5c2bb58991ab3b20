"""Which proof step closes what one CROWN pass leaves open on mnist_fc: ReLU-split BaB or MILP?

    python benchmarks/vnncomp_bab_vs_milp.py --net 256x2 --props prop_4_0.03 prop_8_0.03 --cap 30

For each property, in this process: alpha-CROWN on all rows (the baseline), then for the rows it leaves
open, the batched beta-CROWN BaB (robustest.certify.bab, capped at --cap seconds per row; its root
alpha-CROWN on the intermediate layers included in its time) and MILP (robustest.certify.milp on
alpha-CROWN's bounds, same cap: the pipeline's old proof step). Prints per row the outcome and seconds of
each, and the ratio of times.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2022_mnist_fc"


def main() -> None:
    from robustest.certify.bab import bab
    from robustest.certify.crown import crown
    from robustest.certify.encode import numpy_boxes
    from robustest.certify.milp import milp_verify
    from robustest.io import load_model
    from robustest.vnnlib import load_vnnlib
    from robustest.graph import read_model
    from robustest.vnnlib.prove import region_ball

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="256x2")
    ap.add_argument("--props", nargs="+", default=["prop_4_0.03", "prop_8_0.03"])
    ap.add_argument("--cap", type=float, default=30.0)
    ap.add_argument("--bench-dir", type=Path, default=BENCH)
    args = ap.parse_args()
    model = load_model(args.bench_dir / f"onnx/mnist-net_{args.net}.onnx")
    cpu = torch.device("cpu")
    for prop in args.props:
        region = load_vnnlib(args.bench_dir / f"vnnlib/{prop}.vnnlib").regions[0]
        graph = read_model(model, torch.zeros(1, 784, 1))
        x0, ball = region_ball(region, (784, 1), cpu)
        C = torch.cat([a for a, _ in region.polytopes]).double().unsqueeze(0)
        t = time.perf_counter()
        res = crown(graph, x0, ball, C, alpha_steps=20)
        base = time.perf_counter() - t
        open_rows = [k for k in range(C.shape[1]) if not float(res.lower[0, k]) > 0]
        print(f"{args.net} {prop}: alpha-CROWN {base:.1f}s leaves rows {open_rows} open")
        for k in open_rows:
            row = C[0, k:k + 1]
            t = time.perf_counter()
            st = bab(graph, x0, ball, row, torch.zeros(1, dtype=torch.float64), deadline=t + args.cap,
                     root_alpha_steps=30)
            t_bab = time.perf_counter() - t
            t = time.perf_counter()
            out = milp_verify(graph, x0[0], ball, row.numpy(), res.lower[0, k:k + 1].numpy(),
                              numpy_boxes(res.boxes, 0), time_limit=args.cap)
            t_milp = time.perf_counter() - t
            bab_txt = (f"proved ({st.domains} domains)" if st.proved else
                       f"open ({st.reason}, {st.domains} domains)")
            print(f"  row {k}: BaB {bab_txt} in {t_bab:.1f}s | MILP {out.verdict or out.reason} in {t_milp:.1f}s"
                  f" | time ratio BaB/MILP {t_bab / max(t_milp, 1e-9):.1f}", flush=True)


if __name__ == "__main__":
    main()
