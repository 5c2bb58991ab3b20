"""``robustest vnnlib --timeout T`` answers within T, start-up included, on a net whose full CROWN pass
takes far longer (VNN-COMP 2021 verivital's max-pool conv net: 23k ReLUs before the pool)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_deadlines import within

BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks" / "vnncomp2021" / "verivital"
NET, SPEC = BENCH / "Convnet_maxpool.onnx", BENCH / "specs" / "maxpool_specs" / "prop_0_0.004.vnnlib"


def _wall(args: list) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


@pytest.mark.skipif(not NET.exists(), reason="needs ../shared/benchmarks/vnncomp2021")
def test_the_answer_is_written_within_the_timeout(tmp_path):
    out = tmp_path / "result.txt"
    T = 6.0
    wall = _wall(["-m", "robustest.cli", "vnnlib", str(NET), str(SPEC), "--timeout", f"{T:g}",
                  "--out", str(out)])
    assert out.read_text().split("\n")[0] in ("sat", "unsat", "timeout")
    # on a loaded machine loading alone (imports, the ONNX import and its onnxruntime check) may take
    # longer than T: then the answer is "timeout" as soon as it is loaded
    code = ("import robustest.cli.vnnlib, robustest.vnnlib.verify\nfrom robustest.io.models import load_model\n"
            f"load_model({str(NET)!r}, runtime_fallback=True)")
    load = _wall(["-c", code])
    assert within(wall, max(T, load)), (wall, load)
