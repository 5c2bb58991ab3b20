"""VNN-COMP 2022 mnist_fc with the competition's timeouts: `robustest vnnlib` on each of the 90 instances.

    python benchmarks/vnncomp_mnist_fc.py [--nets 256x2] [--only 256x2:prop_6_0.03] [--csv results.csv] [--scale 1.0]

Each instance runs as its own `robustest vnnlib` process (start-up counts against the timeout, as in the
competition), killed 10 s after its timeout if it overstays. Every `sat` counterexample is checked with
onnxruntime (inside the input box, output inside a disjunct of the property). Every `unsat` is
cross-checked by onnxruntime on 256 random points and the box centre (none may violate the property).
A wrong answer fails the run. The summary compares the solved count with the best tool of 2022 (84/90,
the figure given in the benchmark's README), and prints sat/unsat/timeout per network.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from _common import check_sat, check_unsat

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2022_mnist_fc"


def main() -> int:
    from _common import run_vnnlib

    from robustest.vnnlib import load_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="*", default=["256x2", "256x4", "256x6"])
    ap.add_argument("--csv", default=None, help="append one row per instance here")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the competition timeouts")
    ap.add_argument("--real-arithmetic", action="store_true",
                    help="pass --real-arithmetic (the exact network, the competition's convention; the runs "
                         "before the rounding guard had these semantics)")
    ap.add_argument("--bench-dir", type=Path, default=BENCH, help="the benchmark folder (instances.csv)")
    ap.add_argument("--only", nargs="*", default=[], metavar="NET:PROP",
                    help="run only these instances, e.g. 256x2:prop_6_0.03")
    ap.add_argument("--skip", nargs="*", default=[], metavar="NET:PROP",
                    help="instances to leave out, e.g. 256x4:prop_0_0.03 (already measured)")
    args = ap.parse_args()
    bench = args.bench_dir
    rows = [r for r in csv.reader(open(bench / "instances.csv")) if r and any(n in r[0] for n in args.nets)
            and f"{Path(r[0]).stem.replace('mnist-net_', '')}:{Path(r[1]).stem}" not in args.skip
            and (not args.only or f"{Path(r[0]).stem.replace('mnist-net_', '')}:{Path(r[1]).stem}" in args.only)]
    rng = np.random.default_rng(0)
    counts: dict = {}
    wrong = 0
    out_csv = open(args.csv, "a", newline="") if args.csv else None
    for net, prop, timeout in rows:
        t = float(timeout) * args.scale
        onnx_path, spec_path = bench / net, bench / prop
        status, text, detail, wall = run_vnnlib(onnx_path, spec_path, t,
                                                extra=["--real-arithmetic"] if args.real_arithmetic else [])
        spec = load_vnnlib(spec_path)
        problem = ""
        if status == "sat":
            problem = check_sat(onnx_path, spec, text)
        elif status == "unsat":
            problem = check_unsat(onnx_path, spec, rng)
        if wall > t and status in ("sat", "unsat"):
            detail = f"{status} after the timeout ({wall:.1f}s), counted as timeout; " + detail
            status = "timeout"
        elif status not in ("sat", "unsat") and wall > t:
            status = "timeout"
        wrong += bool(problem)
        key = Path(net).stem.replace("mnist-net_", "")
        counts.setdefault(key, {"sat": 0, "unsat": 0, "timeout": 0, "error": 0, "wrong": 0})
        counts[key][status if status in ("sat", "unsat", "timeout") else "error"] += 1
        counts[key]["wrong"] += bool(problem)
        line = [key, Path(prop).stem, f"{t:g}", status, f"{wall:.1f}", detail.replace("\n", " ")[:120], problem]
        print(" | ".join(line), flush=True)
        if out_csv:
            csv.writer(out_csv).writerow(line)
            out_csv.flush()
    solved = sum(c["sat"] + c["unsat"] - c["wrong"] for c in counts.values())
    for key, c in counts.items():
        print(f"{key}: sat {c['sat']}, unsat {c['unsat']}, timeout {c['timeout']}, error {c['error']}, "
              f"wrong {c['wrong']}")
    print(f"solved {solved} of {len(rows)}; vs the best tool of 2022 (84 of 90): ratio {solved / 84:.2f}; "
          f"wrong answers: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
