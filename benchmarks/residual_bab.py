"""BaB on residual graphs: how many robustness instances of small residual nets (digits, 8x8) CROWN alone,
the beta-CROWN BaB (ReLU / LeakyReLU splits through the dense chain with carries) and MILP decide.

    python benchmarks/residual_bab.py --samples 20 --eps 0.06 --cap 20

Two nets trained here on scikit-learn digits (no download): a residual MLP (64 -> 64, two residual blocks of
64 + 64 neurons with skips, 10 classes: 320 ReLU neurons) and the same with LeakyReLU(0.1). Per test
sample: CROWN on the nine margins (the baseline), then for those it leaves open BaB (``bab_mlp``, all nine
margin polytopes at once, the root's alpha-CROWN included) and MILP (``milp_verify`` on CROWN's bounds,
exact); each capped at ``--cap`` seconds, in this process, one after the other. Prints per net: solved by
each, wrong (a BaB proof MILP refutes, or a BaB counterexample MILP proves), and median / total seconds
(bounds of the exact network in float64: real arithmetic, no float guard).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


class ResMLP(nn.Module):
    def __init__(self, act: nn.Module, h: int = 64) -> None:
        super().__init__()
        self.inp = nn.Linear(64, h)
        self.a1, self.b1 = nn.Linear(h, h), nn.Linear(h, h)
        self.a2, self.b2 = nn.Linear(h, h), nn.Linear(h, h)
        self.out = nn.Linear(h, 10)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.inp(x))
        h = self.act(self.b1(self.act(self.a1(h))) + h)
        h = self.act(self.b2(self.act(self.a2(h))) + h)
        return self.out(h)


def train(act: nn.Module, X: torch.Tensor, y: torch.Tensor, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = ResMLP(act).double()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model.eval()


def main() -> None:
    from sklearn.datasets import load_digits

    from robustest.certify.bab import bab_mlp
    from robustest.certify.crown import crown
    from robustest.certify.encode import numpy_boxes
    from robustest.certify.milp import milp_verify
    from robustest.certify.mlp import dense_mlp
    from robustest.graph import read_model
    from robustest.spec import LpBall, margin_matrix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--eps", type=float, default=0.06)
    ap.add_argument("--cap", type=float, default=20.0)
    args = ap.parse_args()
    from _common import machine

    torch.set_num_threads(1)  # two threads on the shared 2-core machine were measured far slower than one

    print(machine())
    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float64)
    y = torch.tensor(digits.target)
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    for name, act in (("relu", nn.ReLU()), ("leaky0.1", nn.LeakyReLU(0.1))):
        t = time.perf_counter()
        model = train(act, Xtr, ytr)
        acc = float((model(Xte).argmax(1) == yte).double().mean())
        graph = read_model(model, Xte[:1])
        net = dense_mlp(graph)
        print(f"\n{name}: trained in {time.perf_counter() - t:.1f}s, test accuracy {acc:.3f}, dense widths "
              f"{net.widths} (carries included)")
        pixels = (torch.zeros(64, dtype=torch.float64), torch.ones(64, dtype=torch.float64))
        ball = LpBall(args.eps, "linf", pixels)
        rows = []
        for i in range(args.samples):
            x0, label = Xte[i:i + 1], int(yte[i])
            if int(model(x0).argmax()) != label:
                continue
            C = margin_matrix(torch.tensor([label]), 10).double()  # (1, 9, 10)
            t = time.perf_counter()
            res = crown(graph, x0, ball, C)
            t_crown = time.perf_counter() - t
            if bool((res.lower[0] > 0).all()):
                rows.append(("crown", t_crown, "-", 0.0, "-", 0.0))
                continue
            lo, hi = ball.box(x0)
            t = time.perf_counter()
            st = bab_mlp(net, lo[0], hi[0], C[0].unsqueeze(1), torch.zeros(9, 1, dtype=torch.float64),
                         deadline=t + args.cap, root_alpha_steps=20)
            t_bab = time.perf_counter() - t
            bab_ans = "holds" if st.proved else "violated" if st.candidate is not None else "open"
            if st.candidate is not None:  # re-checked by a forward pass
                with torch.no_grad():
                    yc = model(st.candidate.reshape(1, 64))[0]
                others = torch.cat([yc[:label], yc[label + 1:]])
                assert float((others - yc[label]).max()) >= -1e-4, "a BaB candidate the net does not confirm"
            t = time.perf_counter()
            out = milp_verify(graph, x0[0], ball, C[0].numpy(), res.lower[0].numpy(),
                              numpy_boxes(res.boxes, 0), time_limit=args.cap)
            t_milp = time.perf_counter() - t
            milp_ans = {"certified": "holds", "falsified": "violated"}.get(out.verdict or "", "open")
            rows.append(("open", t_crown, bab_ans, t_bab, milp_ans, t_milp))
            print(f"  sample {i}: CROWN open ({t_crown:.2f}s) | BaB {bab_ans} in {t_bab:.1f}s "
                  f"({st.domains} domains) | MILP {milp_ans} in {t_milp:.1f}s", flush=True)
        n = len(rows)
        by_crown = sum(r[0] == "crown" for r in rows)
        left = [r for r in rows if r[0] == "open"]
        bab_solved = sum(r[2] != "open" for r in left)
        milp_solved = sum(r[4] != "open" for r in left)
        wrong = sum(r[2] != "open" and r[4] != "open" and r[2] != r[4] for r in left)
        t_bab, t_milp = [r[3] for r in left], [r[5] for r in left]
        print(f"{name}: {n} correctly classified samples at eps {args.eps}; CROWN alone proves {by_crown}; "
              f"of the {len(left)} it leaves open BaB decides {bab_solved} ({_times(t_bab)}), MILP "
              f"{milp_solved} ({_times(t_milp)}); wrong: {wrong}; BaB/MILP total time ratio "
              f"{sum(t_bab) / max(sum(t_milp), 1e-9):.2f}")


def _times(v: list) -> str:
    return f"median {statistics.median(v) if v else float('nan'):.1f}s, total {sum(v):.1f}s"


if __name__ == "__main__":
    main()
