"""The rounding guard of the certifiers (``certify/float_error.py``) next to what it guards against.

    python benchmarks/float_guard.py [--n 200]

Per example model (the digits MLP and CNN) and eps: the slack every certified margin must clear (the a-priori
bound on how far the float32 model's computed margin can be from the exact network's over the ball), its
time, the largest difference actually seen between the float32 margins and the exact ones at the samples
(the baseline: the ratio says how pessimistic the a-priori bound is), the median CROWN margin lower bound,
and how many samples CROWN certifies with and without the guard.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from digits import load_model, test_data

from robustest.graph import read_model
from robustest.layers.rounding import Precision
from robustest.provers import PROVERS, ProofTask
from robustest.spec import LpBall, margin_matrix


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    precision = Precision.of(torch.float32, torch.device("cpu"))
    for kind, epsilons in (("mlp", (0.0, 0.05, 0.08)), ("cnn", (0.0, 0.05))):
        model = load_model(kind)
        x, y = test_data(kind, args.n)
        graph = read_model(model, x[:1])
        C = margin_matrix(y, 10).double()
        with torch.no_grad():
            seen = float((C @ (model(x).double() - graph(x.double())).unsqueeze(2)).abs().max())
        for eps in epsilons:
            task = ProofTask.margins(graph, x.double(), LpBall(eps, "linf", (0.0, 1.0)), y)
            t0 = time.perf_counter()
            slack, _ = task.float_slack(precision)
            took = time.perf_counter() - t0
            plain = PROVERS["crown"].prove(task, deadline=float("inf"))
            guarded = PROVERS["crown"].prove(task.guarded(slack), deadline=float("inf"))
            margins = torch.tensor([o.figure for o in plain])
            print(f"{kind} eps={eps}: slack max {float(slack.max()):.3g} (median {float(slack.median()):.3g}, "
                  f"{took * 1000:.0f} ms for {len(x)} samples); float32 vs exact margins at the samples differ "
                  f"by up to {seen:.3g} (slack / seen = {float(slack.max()) / seen:.0f}x); median CROWN margin "
                  f"{float(margins.median()):.3g}; CROWN certifies {sum(o.status == 'proved' for o in plain)} "
                  f"unguarded, {sum(o.status == 'proved' for o in guarded)} guarded", flush=True)


if __name__ == "__main__":
    main()
