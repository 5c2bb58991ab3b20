"""Shared helpers for the benchmark scripts: examples on sys.path, timing, machine load, markdown."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def interleaved(fns: "dict[str, Callable[[], object]]", rounds: int = 7) -> "dict[str, float]":
    """Median wall seconds per function, timing them in turn round after round, so that a load change
    on a shared machine hits all of them alike (one warm-up call each first)."""
    for fn in fns.values():
        fn()
    times: "dict[str, List[float]]" = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    return (f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"1-min load average {load:.2f} at start")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
