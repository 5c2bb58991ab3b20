"""The branch and bound on VNN-COMP 2021 families it newly reaches (acasxu: input split; eran
mnist_relu_9_200: normalised MLP; oval21: CIFAR conv nets): ``robustest vnnlib`` in a fresh process per
instance, ``--timeout`` = min(competition timeout, ``--cap``), answers against the 2021 consensus and
alpha-beta-CROWN's 2021 answer.

    python benchmarks/vnncomp2021_bab.py --cap 60 acasxu:20 eran/nets/mnist_relu_9_200:10 oval21:5

Each ``FAMILY[/ONNX-PREFIX]:N`` takes the first ``N`` rows of ``instances.csv`` of that family (whose onnx
path starts with the prefix). Prints one markdown table row per instance, then a summary per selection;
``wrong`` is an answer that contradicts the consensus (sat on ``holds``, unsat on ``violated``).
``OMP_NUM_THREADS=1`` is set for the child processes (two torch threads on a loaded 2-core machine were
measured 20x slower than one)."""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, machine, table

DATA = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021"
ANSWER = {"holds": "unsat", "violated": "sat"}


def run(row: dict, cap: float) -> tuple[str, float, str]:
    timeout = min(float(row["timeout"]), cap)
    cmd = [str(Path(sys.executable).parent / "robustest"), "vnnlib", str(DATA / row["onnx"]), str(DATA / row["vnnlib"]),
           "--timeout", str(timeout)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout * 3 + 30, env=env)
        text = (out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["error"])[-1]
    except subprocess.TimeoutExpired:
        text = "killed"
    wall = time.perf_counter() - start
    word = text.split()[0] if text.split() else "error"
    return (word if word in ("sat", "unsat", "timeout", "unknown") else "error"), wall, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("select", nargs="+", help="FAMILY[/ONNX-PREFIX]:N")
    ap.add_argument("--cap", type=float, default=60.0, help="largest --timeout per instance (seconds)")
    args = ap.parse_args()
    with open(DATA / "instances.csv") as f:
        rows = list(csv.DictReader(f))
    print(f"machine: {machine()}; cap {args.cap:g} s\n")
    header = ["instance", "timeout", "ours", "wall s", "consensus", "abcrown 2021", "abcrown s", "note"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    summary = []
    for sel in args.select:
        name, n = sel.rsplit(":", 1)
        fam = name.split("/")[0]
        picked = [r for r in rows if r["benchmark"] == fam and r["onnx"].startswith(name)][:int(n)]
        lines, walls = [], []
        solved = wrong = ab = 0
        for r in picked:
            ours, wall, text = run(r, args.cap)
            walls.append(wall)
            truth = ANSWER.get(r["consensus"])
            solved += ours in ("sat", "unsat")
            bad = ours in ("sat", "unsat") and truth is not None and ours != truth
            wrong += bad
            ab += r["abcrown_2021"].lower() in ("sat", "unsat")
            inst = f"{Path(r['onnx']).stem} {Path(r['vnnlib']).stem}"
            lines.append([inst, f"{min(float(r['timeout']), args.cap):g}", ours + (" **WRONG**" if bad else ""),
                          f"{wall:.1f}", r["consensus"], r["abcrown_2021"], f"{float(r['abcrown_2021_s']):.1f}",
                          text[:90].replace("|", "/")])
            print("| " + " | ".join(lines[-1]) + " |", flush=True)
        summary.append([sel, len(picked), solved, wrong, f"{statistics.median(walls):.1f}" if walls else "-", ab])
    print()
    print(table(["selection", "instances", "solved", "wrong", "median wall s", "abcrown 2021 solved"], summary))


if __name__ == "__main__":
    main()
