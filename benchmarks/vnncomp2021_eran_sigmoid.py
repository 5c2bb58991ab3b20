"""VNN-COMP 2021 eran, the sigmoid net (ffnnSIGMOID__Point_6x200): `robustest vnnlib` on each instance.

    python benchmarks/vnncomp2021_eran_sigmoid.py [--cap 60] [--csv results.csv]

The instances are the rows of ../shared/benchmarks/vnncomp2021/instances.csv with benchmark ``eran`` and a
SIGMOID network; each runs as its own `robustest vnnlib` process at its competition timeout or ``--cap``
seconds, whichever is smaller (start-up counts). Every answer is judged against the tools' consensus
column (a ``sat`` where the consensus says ``holds``, or an ``unsat`` where it says ``violated``, is
wrong) and by onnxruntime (the counterexample must violate the property; 256 random points of an
``unsat`` box must not). Prints one line per instance and the summary: solved, wrong, timeouts, errors,
median time, and alpha-beta-CROWN's 2021 solved count on the same instances (it ran on a GPU).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from vnncomp_mnist_fc import check_sat, check_unsat

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021"


def judge(status: str, consensus: str) -> str:
    """'' or why the answer contradicts the consensus."""
    if status == "sat" and consensus == "holds":
        return "sat where the consensus is holds"
    if status == "unsat" and consensus == "violated":
        return "unsat where the consensus is violated"
    return ""


def main() -> int:
    from robustest.vnnlib import load_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=60.0, help="at most this many seconds per instance")
    ap.add_argument("--csv", default=None, help="append one row per instance here")
    ap.add_argument("--bench-dir", type=Path, default=BENCH)
    args = ap.parse_args()
    with open(args.bench_dir / "instances.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["benchmark"] == "eran" and "SIGMOID" in r["onnx"]]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rng = np.random.default_rng(0)
    counts = {"sat": 0, "unsat": 0, "timeout": 0, "error": 0, "wrong": 0}
    times, abcrown = [], 0
    out_csv = open(args.csv, "a", newline="") if args.csv else None  # noqa: SIM115 - appended row by row
    for r in rows:
        t = min(float(r["timeout"]), args.cap)
        onnx_path, spec_path = args.bench_dir / r["onnx"], args.bench_dir / r["vnnlib"]
        abcrown += r["abcrown_2021"] in ("SAT", "UNSAT") and float(r["abcrown_2021_s"]) <= t
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.txt"
            start = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, "-m", "robustest.cli", "vnnlib", str(onnx_path), str(spec_path),
                                       "--timeout", str(t), "--out", str(result)], check=False, capture_output=True, text=True,
                                      timeout=t + 10, env=env)
                lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
                detail = lines[-1] if lines else ""
                text = result.read_text() if result.exists() else ""
                status = text.split("\n", 1)[0] if text else "error"
            except subprocess.TimeoutExpired:
                status, text, detail = "timeout", "", "killed after timeout + 10 s"
            wall = time.perf_counter() - start
        spec = load_vnnlib(spec_path)
        problem = judge(status, r["consensus"])
        if not problem and status == "sat":
            problem = check_sat(onnx_path, spec, text)
        elif not problem and status == "unsat":
            problem = check_unsat(onnx_path, spec, rng)
        if status not in ("sat", "unsat", "timeout"):
            status = "error"
        elif status != "timeout" and wall > t:
            detail, status = f"{status} after the timeout ({wall:.1f}s), counted as timeout; {detail}", "timeout"
        counts[status] += 1
        counts["wrong"] += bool(problem)
        if status in ("sat", "unsat") and not problem:
            times.append(wall)
        line = [Path(r["vnnlib"]).stem, f"{t:g}", r["consensus"], status, f"{wall:.1f}",
                f"{r['abcrown_2021']} {float(r['abcrown_2021_s']):.1f}s", detail.replace("\n", " ")[:100], problem]
        print(" | ".join(line), flush=True)
        if out_csv:
            csv.writer(out_csv).writerow(line)
            out_csv.flush()
    solved = counts["sat"] + counts["unsat"] - counts["wrong"]
    med = f"{statistics.median(times):.1f}s" if times else "-"
    print(f"eran sigmoid: solved {solved} of {len(rows)} (sat {counts['sat']}, unsat {counts['unsat']}), wrong "
          f"{counts['wrong']}, timeouts {counts['timeout']}, errors {counts['error']}, median time of the solved "
          f"{med}; alpha-beta-CROWN 2021 solved {abcrown} of the same within the same time")
    return 1 if counts["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
