"""VNN-COMP 2021 verivital (MNIST conv nets with an ONNX Pad, AvgPool / MaxPool): `robustest vnnlib` per instance.

    python benchmarks/vnncomp2021_verivital.py [--nets Convnet_avgpool] [--cap 60] [--limit 10]

Each instance of ../shared/benchmarks/vnncomp2021/instances.csv for the chosen nets runs as its own
`robustest vnnlib` process (start-up counts) with the competition timeout or ``--cap`` seconds, whichever
is smaller. Every `sat` is checked with onnxruntime, every `unsat` against onnxruntime on random points
(the checks of benchmarks/vnncomp_mnist_fc.py), and each answer is compared with the 2021 tools'
consensus (`holds` = unsat, `violated` = sat): an answer that contradicts either is wrong and fails the run.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vnncomp_mnist_fc import check_sat, check_unsat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021"
EXPECT = {"holds": "unsat", "violated": "sat"}


def main() -> int:
    from _common import machine, run_vnnlib

    from robustest.vnnlib import load_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="*", default=["Convnet_avgpool", "Convnet_maxpool"])
    ap.add_argument("--cap", type=float, default=None, help="at most this many seconds per instance")
    ap.add_argument("--limit", type=int, default=None, help="the first N instances of each net only")
    args = ap.parse_args()
    with open(BENCH / "instances.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, fieldnames=["family", "onnx", "vnnlib", "timeout", "consensus",
                                                           "abcrown", "abcrown_s"]) if r["family"] == "verivital"]
    picked = []
    for net in args.nets:
        mine = [r for r in rows if Path(r["onnx"]).stem == net]
        picked += mine[:args.limit] if args.limit else mine
    rng = np.random.default_rng(0)
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    tally = {"solved": 0, "wrong": 0, "timeout": 0, "error": 0, "abcrown": 0}
    for r in picked:
        t = min(float(r["timeout"]), args.cap or float("inf"))
        onnx_path, spec_path = BENCH / r["onnx"], BENCH / r["vnnlib"]
        status, text, detail, wall = run_vnnlib(onnx_path, spec_path, t)
        spec = load_vnnlib(spec_path)
        problem = check_sat(onnx_path, spec, text) if status == "sat" else (
            check_unsat(onnx_path, spec, rng) if status == "unsat" else "")
        want = EXPECT.get(r["consensus"])
        if status in ("sat", "unsat") and want and status != want:
            problem = problem or f"consensus says {r['consensus']}"
        late = status in ("sat", "unsat") and wall > t
        key = "wrong" if problem else ("timeout" if late or status in ("timeout", "unknown") else
                                       ("solved" if status in ("sat", "unsat") else "error"))
        tally[key] += 1
        tally["abcrown"] += r["abcrown"].lower() in ("sat", "unsat")
        print(" | ".join([Path(r["onnx"]).stem, Path(r["vnnlib"]).stem, f"{t:g}", r["consensus"], status,
                          f"{wall:.1f}", r["abcrown"], detail[:100], problem]), flush=True)
    print(f"{len(picked)} instances: solved {tally['solved']}, wrong {tally['wrong']}, timeouts {tally['timeout']}, "
          f"errors {tally['error']}; alpha-beta-CROWN 2021 solved {tally['abcrown']} of them")
    return 1 if tally["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
