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


def timed(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall seconds of ``repeats`` calls (after one warm-up call)."""
    fn()
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    return (f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"1-min load average {load:.2f} at start")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
