"""One beta-CROWN bound step of the BaB (``certify.beta_crown.bound``, 10 Adam steps on a batch of split
domains) on mnist_fc 256x6 prop_1_0.03, three ways timed in turn in one process: the default (Adam steps in
float32, fused Adam, bounds evaluated in float64), the steps in float64 with fused Adam, and the baseline:
the steps in float64 with torch's single-tensor Adam loop (the code before both changes).

    python benchmarks/bab_step.py [--domains 256] [--net 256x6] [--prop prop_1_0.03]

The domains: each of the property's 9 disjuncts with random splits of 8 of the root's unstable neurons
(CROWN root bounds, float64, one torch thread). Prints the median seconds per step and the ratio; the bound
values are compared (every iterate is sound, so they differ only by the steps' rounding: the mean
difference says whether float32 steps lose bound quality).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import interleaved, machine

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2022_mnist_fc"


def main() -> None:
    from robustest.certify import adam
    from robustest.certify.beta_crown import DomainBatch, bound
    from robustest.certify.mlp import dense_mlp, root_bounds
    from robustest.graph import read_model
    from robustest.io import load_model
    from robustest.vnnlib import load_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=256)
    ap.add_argument("--net", default="256x6")
    ap.add_argument("--prop", default="prop_1_0.03")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(str(BENCH / "onnx" / f"mnist-net_{args.net}.onnx"))
    net = dense_mlp(read_model(model, torch.zeros(1, 1, 1, 28, 28)))
    region = load_vnnlib(BENCH / "vnnlib" / f"{args.prop}.vnnlib").regions[0]
    lo, hi = region.lower.double().reshape(-1), region.upper.double().reshape(-1)
    C = torch.stack([a for a, _ in region.polytopes]).double()  # (P, 1, K): one row per disjunct
    ls, us = root_bounds(net, lo, hi)
    root = DomainBatch.root(ls, us, C.shape[1], C.shape[0])
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, C.shape[0], (args.domains,), generator=g)
    state = root.take(idx)
    unstable = ((torch.cat(ls) < 0) & (torch.cat(us) > 0)).nonzero().flatten()
    for d in range(args.domains):
        pick = unstable[torch.randperm(unstable.numel(), generator=g)[:8]]
        state.splits[d, pick] = (torch.randint(0, 2, (pick.numel(),), generator=g) * 2 - 1).to(torch.int8)
    results = {}

    def step(name: str, fused: bool, steps: "torch.dtype | None"):  # type: ignore[no-untyped-def]
        def run() -> None:
            saved = adam.FUSED_DEVICES
            adam.FUSED_DEVICES = ("cpu", "cuda") if fused else ()
            try:
                fresh = state.take(torch.arange(len(state)))
                results[name] = bound(net, ls, us, lo, hi, C[fresh.prop], fresh, iters=10,
                                      ascent_dtype=steps).lower
            finally:
                adam.FUSED_DEVICES = saved
        return run

    runs = {"float32 steps, fused Adam (default)": step("f32", True, torch.float32),
            "float64 steps, fused Adam": step("f64", True, None),
            "float64 steps, Adam loop (baseline)": step("base", False, None)}
    times = interleaved(runs, rounds=5)
    base = times["float64 steps, Adam loop (baseline)"]
    print(f"{machine()}; {args.net} {args.prop}, {args.domains} domains x {C.shape[1]} row, "
          f"{unstable.numel()} unstable of {torch.cat(ls).numel()} neurons")
    print("| bound step (10 Adam steps) | seconds | vs baseline |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {t:.3f} | {t / base:.2f}x |")
    diff = results["f32"] - results["base"]
    print(f"bounds, float32 steps minus baseline: mean {float(diff.mean()):+.2e}, "
          f"min {float(diff.min()):+.2e}, max {float(diff.max()):+.2e} (bound values around {float(results['base'].abs().mean()):.2f})")


if __name__ == "__main__":
    main()
