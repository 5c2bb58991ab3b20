"""robustest's default falsification vs torchattacks AutoAttack (standard) and PGD-100 x 5, in one process.

    OMP_NUM_THREADS=1 python benchmarks/attacks.py            # the tables of benchmarks/attacks.md
    OMP_NUM_THREADS=1 python benchmarks/attacks.py --sweep    # candidate schedules (how "standard" was chosen)
    OMP_NUM_THREADS=1 python benchmarks/attacks.py --targets  # APGD-T: all targets in one batch vs in turn
    OMP_NUM_THREADS=1 python benchmarks/attacks.py --pgd      # "standard" vs PGD-100 x 5 only, 5 rounds
    OMP_NUM_THREADS=1 python benchmarks/attacks.py --budgeted # "standard" with a deadline of 0.3x AutoAttack's time

Models: the examples' digits MLP and CNN, and ``Quantised``, the MLP behind an input rounding to the
data's 17 grey levels (its clean predictions are the MLP's, since digits pixels are multiples of 1/16;
its input gradient is zero everywhere: gradients are masked). First 400 test samples, linf, domain [0, 1].
A sample is robust only if it is right on the clean input. Times: median of interleaved rounds in one
process, after a warm-up run of each, so a load change hits all methods alike.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import Counter
from dataclasses import replace
from functools import partial
from statistics import median

import torch
from _common import machine, table
from digits import load_model, test_data

import robustest
from robustest.attacks.sequence import STRENGTHS, Strength, build_sequence, run_sequence
from robustest.checks import HealthCheckWarning
from robustest.spec import LpBall

N = 400
EPS = (0.03, 0.05, 0.1)
EPS_SWEEP = (0.1, 0.03)


class Quantised(torch.nn.Module):
    """``inner`` after rounding the input to multiples of 1/16: zero input gradient almost everywhere."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 16) / 16)


class AsImage(torch.nn.Module):
    """torchattacks' AutoAttack wants (N, C, H, W): the MLP behind a flatten."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.flatten(1))


def models():
    mlp = load_model("mlp")
    x_flat, y = test_data("mlp", N)
    x_img, _ = test_data("cnn", N)
    return {"MLP": (mlp, x_flat, y), "CNN": (load_model("cnn"), x_img, y),
            "quantised MLP": (Quantised(mlp).eval(), x_flat, y)}


def timed(fns, rounds, warm=True):
    """Median seconds of each function over interleaved rounds (after one warm-up each unless not
    ``warm``) and the last result."""
    out, times = {}, {k: [] for k in fns}
    for k, fn in fns.items():
        if warm:
            out[k] = fn()
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - start)
    return {k: median(v) for k, v in times.items()}, out


def robust(model, adv, x, y):
    with torch.no_grad():
        return float(((model(adv).argmax(1) == y) & (model(x).argmax(1) == y)).float().mean())


def ours_fn(model, x, y, eps, strength):
    attacks = build_sequence("auto", strength=strength) if isinstance(strength, str) else strength
    return lambda: run_sequence(model, x, y, LpBall(eps, "linf", (0.0, 1.0)), attacks,
                                generator=torch.Generator().manual_seed(0))


def comparison(name, model, x, y, eps, rounds, warm):
    import torchattacks

    img = AsImage(model).eval() if x.dim() == 2 else model
    xi = x.view(-1, 1, 8, 8)
    aa = torchattacks.AutoAttack(img, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
    torch.manual_seed(0)
    pgd = torchattacks.MultiAttack([torchattacks.PGD(img, eps=eps, alpha=2.5 * eps / 100, steps=100,
                                                     random_start=True) for _ in range(5)])
    t, out = timed({"ours": ours_fn(model, x, y, eps, "standard"), "aa": lambda: aa(xi, y),
                    "pgd": lambda: pgd(xi, y)}, rounds, warm)
    ours = out["ours"]
    r_ours = robust(model, ours.adversarial, x, y)
    r_aa, r_pgd = robust(img, out["aa"], xi, y), robust(img, out["pgd"], xi, y)
    with torch.no_grad():  # samples AutoAttack broke (right on the clean input) that robustest did not
        aa_broke = (img(out["aa"]).argmax(1) != y) & (model(x).argmax(1) == y)
    missed = int((aa_broke & ~ours.success).sum())
    by = Counter(m for m in ours.method if m)
    return [name, eps, f"{r_ours:.1%}", f"{r_aa:.1%}", f"{r_pgd:.1%}", f"{t['ours']:.2f}", f"{t['aa']:.2f}",
            f"{t['pgd']:.2f}", f"**{t['ours'] / t['aa']:.2f}**", f"**{t['ours'] / t['pgd']:.2f}**", missed,
            ", ".join(f"{k} {v}" for k, v in sorted(by.items()))]


def budgeted(name, model, x, y, eps, share=0.3):
    """What robustest's default reaches within ``share`` of AutoAttack's time (measured just before, same
    process): its sequence run with that deadline (every attack checks it), robust accuracy and the
    samples AutoAttack broke that it did not."""
    import torchattacks

    img = AsImage(model).eval() if x.dim() == 2 else model
    xi = x.view(-1, 1, 8, 8)
    aa = torchattacks.AutoAttack(img, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
    start = time.perf_counter()
    adv = aa(xi, y)
    t_aa = time.perf_counter() - start
    attacks = build_sequence("auto", strength="standard")
    start = time.perf_counter()
    ours = run_sequence(model, x, y, LpBall(eps, "linf", (0.0, 1.0)), attacks,
                        generator=torch.Generator().manual_seed(0), deadline=start + share * t_aa)
    t_ours = time.perf_counter() - start
    with torch.no_grad():
        aa_broke = (img(adv).argmax(1) != y) & (model(x).argmax(1) == y)
    return [name, eps, f"{robust(model, ours.adversarial, x, y):.1%}", f"{robust(img, adv, xi, y):.1%}",
            f"{t_ours:.2f}", f"{t_aa:.2f}", f"**{t_ours / t_aa:.2f}**", int((aa_broke & ~ours.success).sum())]


def masking(model, x, y, eps):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = robustest.check(model, x, y, eps=eps, seed=0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, HealthCheckWarning)]
    methods = Counter(s.method for s in report.samples if s.verdict == "falsified")
    return report, methods, msgs


def sweep(rounds, only_standard=False):
    """Robust accuracy and time of candidate schedules (or only "standard", at every eps) against
    PGD-100 x 5 on the MLP and CNN."""
    import torchattacks

    # the candidates of the sweep in attacks.md (absolute, so the table stays reproducible when the
    # profiles change); "ce 50, t 3x40" was the first draft of "standard"
    draft = Strength(fgsm=True, ce_steps=50, dlr_steps=0, targets=3, target_steps=40, square_queries=1000,
                     square_probe=50)
    candidates = {"standard": STRENGTHS["standard"]} if only_standard else {
        "ce 50, t 3x40": draft,
        "ce 50, t 3x40 (again)": replace(draft),
        "ce 50, t 5x40": replace(draft, targets=5),
        "ce 50, t 9x20": replace(draft, targets=9, target_steps=20),
        "ce 30, t 9x20": replace(draft, ce_steps=30, targets=9, target_steps=20),
        "ce 50, t 9x40": replace(draft, targets=9),
        "ce 50, t 3x40, Square probe 100": replace(draft, square_probe=100),
        "ce 50, dlr 50, t 3x40": replace(draft, dlr_steps=50),
        "fast": STRENGTHS["fast"],
        "standard": STRENGTHS["standard"],
    }
    rows = []
    for name, (model, x, y) in models().items():
        if name == "quantised MLP":
            continue
        img = AsImage(model).eval() if x.dim() == 2 else model
        for eps in EPS if only_standard else EPS_SWEEP:
            pgd = torchattacks.MultiAttack([torchattacks.PGD(img, eps=eps, alpha=2.5 * eps / 100, steps=100,
                                                             random_start=True) for _ in range(5)])
            fns = {k: ours_fn(model, x, y, eps, [a for a in build_sequence([*s.attacks()])])
                   for k, s in candidates.items()}
            fns["pgd"] = lambda pgd=pgd, x=x, y=y: pgd(x.view(-1, 1, 8, 8), y)
            t, out = timed(fns, rounds)
            for k in candidates:
                rows.append([name, eps, k, f"{robust(model, out[k].adversarial, x, y):.1%}",
                             f"{t[k]:.3f}", f"{t[k] / t['pgd']:.2f}"])
    print(table(["model", "eps", "schedule", "robust acc", "s", "vs PGD-100x5"], rows))


def targets(rounds):
    """APGD-T 9 x 20 on what APGD-CE 30 leaves: one batch of copies per target vs the targets in turn."""
    from robustest.attacks import get_attack

    rows = []
    for name, (model, x, y) in models().items():
        if name == "quantised MLP":
            continue
        for eps in EPS_SWEEP:
            ball = LpBall(eps, "linf", (0.0, 1.0))
            left = ~get_attack("apgd-ce", steps=30)(model, x, y, ball, generator=torch.Generator().manual_seed(0)).success
            xs, ys = x[left], y[left]
            fns = {b: partial(get_attack("apgd-t", steps=20, targets=9, batch_targets=b), model, xs, ys, ball,
                              generator=torch.Generator().manual_seed(0)) for b in (True, False)}
            t, out = timed(fns, rounds)
            rows.append([name, eps, len(ys), int(out[True].success.sum()), int(out[False].success.sum()),
                         f"{t[True]:.3f}", f"{t[False]:.3f}", f"**{t[True] / t[False]:.2f}**"])
    print(table(["model", "eps", "samples", "broken (batched)", "broken (in turn)", "batched s", "in turn s",
                 "ratio"], rows))


def main() -> None:
    print(f"Machine: {machine()}\n")
    if "--sweep" in sys.argv:
        sweep(rounds=3)
        return
    if "--pgd" in sys.argv:
        sweep(rounds=5, only_standard=True)
        return
    if "--targets" in sys.argv:
        targets(rounds=3)
        return
    if "--budgeted" in sys.argv:  # robustest with a deadline of 0.3x AutoAttack's time, per case
        rows = []
        for name, (model, x, y) in models().items():
            budgeted(name, model, x[:16], y[:16], 0.05)  # warm-up
            rows += [budgeted(name, model, x, y, eps) for eps in EPS]
        print(table(["model", "eps", "robustest in 0.3x AA time", "AutoAttack", "robustest s", "AA s",
                     "vs AA time", "AA broke, robustest not"], rows))
        return
    rows = []
    for name, (model, x, y) in models().items():
        # AutoAttack takes 10-50 s a case here: each method is warmed up once on a few samples per model,
        # then timed once per case, the three in turn
        comparison(name, model, x[:16], y[:16], 0.05, rounds=1, warm=False)
        for eps in EPS:
            rows.append(comparison(name, model, x, y, eps, rounds=1, warm=False))
    print(table(["model", "eps", "robustest", "AutoAttack", "PGD-100x5", "robustest s", "AA s", "PGD s",
                 "vs AA time", "vs PGD time", "AA broke, robustest not", "broken by"], rows) + "\n")
    model, x, y = models()["quantised MLP"]
    for eps in (0.05, 0.1):
        _, methods, msgs = masking(model, x, y, eps)
        print(f"quantised MLP, eps {eps}: robustest.check falsified {dict(methods)}; health checks:")
        for m in msgs:
            print(f"- {m}")
        print()


if __name__ == "__main__":
    main()
