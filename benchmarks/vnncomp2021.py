"""VNN-COMP 2021 acasxu / oval21 / verivital / eran: `robustest vnnlib` on each instance, against the
tools' consensus and alpha-beta-CROWN's 2021 answers (../shared/benchmarks/vnncomp2021/instances.csv).

    python benchmarks/vnncomp2021.py [--family acasxu oval21 verivital eran] [--cap 30] [--every 4]
                                     [--limit 5] [--first 20] [--onnx SIGMOID] [--real-arithmetic]
                                     [--csv rows.csv]

Each instance runs as its own `robustest vnnlib` process (start-up counts against the timeout, as in the
competition) with the competition's timeout, or ``--cap`` seconds when that is smaller; it is killed 10 s
after its timeout if it overstays. ``--every K`` takes every K-th instance of a family (in the CSV's
order, from the first), ``--limit N`` N of those spread evenly over the family (positions ``i * len // N``).

An answer is **wrong** when it contradicts the consensus of the 2021 tools (``sat`` where they agreed the
property holds, ``unsat`` where they agreed it is violated), or when this script's own re-check refutes it:
every ``sat`` counterexample is re-run **with onnxruntime** (not robustest's forward pass) and must be in
the input box with its outputs in a disjunct of the property; every ``unsat`` is cross-checked with
onnxruntime on the box centre and 256 random points of each region (none may violate the property). An
answer given after the timeout counts as a timeout. **Solved** is sat + unsat - wrong.

Per family it prints solved, wrong, timeouts, errors (no answer: an import error, a crash, a kill), the
median wall time, the largest overrun of the wall time over the timeout, and alpha-beta-CROWN's 2021
solved count on the same instances (SAT/UNSAT at the competition timeout, on a GPU; and, with ``--cap``,
those it answered within the cap).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import numpy as np
from _common import check_sat, check_unsat, machine, run_vnnlib, table

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "benchmarks" / "vnncomp2021"
FAMILIES = ("acasxu", "oval21", "verivital", "eran")
#: the consensus words of instances.csv and the answer each one contradicts
CONTRADICTS = {"holds": "sat", "violated": "unsat"}


def select(rows: list, family: str, every: int, limit: int | None, first: int | None = None) -> list:
    """The family's rows, every ``every``-th from the first (only the ``first`` of them when given); of
    those, ``limit`` spread evenly (the first, then every ``len / limit``-th position, rounded down), so a
    subset covers all of a family's networks."""
    mine = [r for r in rows if r["benchmark"] == family][::every][:first]
    if limit is None or limit >= len(mine):
        return mine
    return [mine[i * len(mine) // limit] for i in range(limit)]


def judge(bench: Path, row: dict, status: str, text: str, wall: float, timeout: float,
          rng: np.random.Generator) -> tuple:
    """(the counted outcome: sat / unsat / timeout / error, why it is wrong or '')."""
    from robustest.vnnlib import load_vnnlib

    onnx_path, spec_path = bench / row["onnx"], bench / row["vnnlib"]
    if status not in ("sat", "unsat"):
        return ("timeout" if status in ("timeout", "unknown") else "error"), ""
    if wall > timeout:
        return "timeout", ""
    problem = ""
    if CONTRADICTS.get(row["consensus"]) == status:
        problem = f"{status} contradicts the consensus '{row['consensus']}'"
    spec = load_vnnlib(spec_path)
    check = check_sat(onnx_path, spec, text) if status == "sat" else check_unsat(onnx_path, spec, rng)
    problem = "; ".join(p for p in (problem, check) if p)
    return status, problem


def summary(family: str, done: list, cap: float | None) -> list:
    outcome = [d["outcome"] for d in done]
    wrong = sum(bool(d["problem"]) for d in done)
    solved = sum(o in ("sat", "unsat") for o in outcome) - wrong
    abc = sum(d["row"]["abcrown_2021"] in ("SAT", "UNSAT") for d in done)
    abc_cap = sum(d["row"]["abcrown_2021"] in ("SAT", "UNSAT")
                  and float(d["row"]["abcrown_2021_s"]) <= d["timeout"] for d in done)
    over = max(d["wall"] - d["timeout"] for d in done)
    walls = [d["wall"] for d in done]
    return [family, len(done), solved, wrong, outcome.count("timeout"), outcome.count("error"),
            f"{statistics.median(walls):.1f}", f"{over:+.1f}",
            f"{max(d['wall'] / d['timeout'] for d in done):.2f}",
            abc, abc_cap if cap is not None else "-"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", nargs="*", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--cap", type=float, default=None, help="at most this many seconds per instance")
    ap.add_argument("--every", type=int, default=1, help="every K-th instance of each family")
    ap.add_argument("--limit", type=int, default=None, help="N instances per family, spread evenly")
    ap.add_argument("--csv", default=None, help="write one row per instance here")
    ap.add_argument("--bench-dir", type=Path, default=BENCH, help="the benchmark folder (instances.csv)")
    ap.add_argument("--real-arithmetic", action="store_true",
                    help="pass --real-arithmetic: unsat about the exact network, the competition's convention")
    ap.add_argument("--onnx", default="", help="only the instances whose onnx path contains this")
    ap.add_argument("--first", type=int, default=None, help="only the first N instances of each family")
    args = ap.parse_args()
    if args.every < 1 or (args.limit is not None and args.limit < 1) or \
            (args.cap is not None and not args.cap > 0):
        ap.error("--every and --limit must be >= 1 and --cap > 0")
    bench = args.bench_dir
    with open(bench / "instances.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    print(machine(), flush=True)
    rng = np.random.default_rng(0)
    lines, records = [], []
    for family in args.family:
        done = []
        for row in select([r for r in rows if args.onnx in r["onnx"]], family, args.every, args.limit, args.first):
            t = float(row["timeout"]) if args.cap is None else min(float(row["timeout"]), args.cap)
            status, text, detail, wall = run_vnnlib(bench / row["onnx"], bench / row["vnnlib"], t,
                                                    extra=["--real-arithmetic"] if args.real_arithmetic else [])
            outcome, problem = judge(bench, row, status, text, wall, t, rng)
            done.append({"row": row, "timeout": t, "wall": wall, "outcome": outcome, "problem": problem})
            record = [family, Path(row["onnx"]).stem, Path(row["vnnlib"]).stem, f"{t:g}", row["consensus"],
                      row["abcrown_2021"], status, outcome, f"{wall:.1f}", detail.replace("\n", " ")[:140],
                      problem]
            records.append(record)
            print(" | ".join(record), flush=True)
        if done:
            lines.append(summary(family, done, args.cap))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            csv.writer(fh).writerows(records)
    print(table(["family", "instances", "solved", "wrong", "timeouts", "errors", "median s", "max over T s",
                 "max wall / T", "abcrown solved", "abcrown within cap"], lines))
    wrong = sum(int(line[3]) for line in lines)
    print(f"wrong answers: {wrong}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
