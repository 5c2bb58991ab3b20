"""Attack speed and strength against the bare floor and torchattacks, in one process.

    python benchmarks/attack_speed.py            # prints markdown tables (copied to benchmarks/README.md)

Speed: 40-step linf PGD on the same model, batch and steps: samples per second of
  - the floor: a bare loop doing only forward + backward + sign step + projection,
  - robustest's PGD with per-sample early stop off (the same work as the floor) and on (the default),
  - torchattacks.PGD.
Strength: robust accuracy under robustest's default falsification sequence ("auto": FGSM, APGD-CE,
APGD-DLR, APGD-T) vs torchattacks PGD with 100 steps and 5 random restarts, and the time of each.
"""

from __future__ import annotations

import torch
from _common import interleaved, machine, table

import robustest
from robustest.attacks import get_attack
from robustest.spec import LpBall
from digits import load_model, test_data

STEPS = 40


def floor_pgd(model, x, y, eps, alpha, steps):
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x + delta), y)
        (g,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    return x + delta


def speed(name: str, eps: float, n: int = 400):
    import torchattacks

    model = load_model(name)
    x, y = test_data(name, n)
    alpha = 2.5 * eps / STEPS
    ball = LpBall(eps, "linf", (0.0, 1.0))
    ours_full = get_attack("pgd", steps=STEPS, step_size=alpha, random_start=False, early_stop=False)
    ours = get_attack("pgd", steps=STEPS, step_size=alpha, random_start=False)
    ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=STEPS, random_start=False)
    t = interleaved({"floor": lambda: floor_pgd(model, x, y, eps, alpha, STEPS),
                     "full": lambda: ours_full(model, x, y, ball), "ours": lambda: ours(model, x, y, ball),
                     "ta": lambda: ta(x, y)})
    t_floor, t_full, t_ours, t_ta = t["floor"], t["full"], t["ours"], t["ta"]
    broken = int(ours(model, x, y, ball).success.sum())
    rows = []
    for label, t in [("floor (bare loop)", t_floor), ("robustest PGD, early stop off", t_full),
                     ("robustest PGD (default, early stop)", t_ours), ("torchattacks.PGD", t_ta)]:
        rows.append([label, f"{n / t:,.0f}", f"{t_floor / t:.2f}x", f"{t_ta / t:.2f}x"])
    return rows, broken


def strength(name: str, eps: float, n: int = 400):
    import torchattacks

    model = load_model(name)
    x, y = test_data(name, n)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    torch.manual_seed(0)
    ta = torchattacks.MultiAttack([torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 100, steps=100,
                                                    random_start=True) for _ in range(5)])
    # median of 3 interleaved runs each (one warm-up call first): single runs of 0.1-0.2 s are noise
    t = interleaved({"ours": lambda: robustest.attack(model, x, y, eps=eps, method="auto", seed=0),
                     "ta": lambda: ta(x, y)}, rounds=3)
    ours = robustest.attack(model, x, y, eps=eps, method="auto", seed=0)
    adv = ta(x, y)
    with torch.no_grad():
        ta_robust = float(((model(adv).argmax(1) == y) & clean).float().mean())
    ours_robust = ours.robust_accuracy(clean)
    return [name, eps, f"{ours_robust:.1%}", f"{ta_robust:.1%}", f"{t['ours']:.2f}", f"{t['ta']:.2f}",
            f"{t['ours'] / t['ta']:.2f}"]


def main() -> None:
    print(f"Machine: {machine()}\n")
    for name, eps in [("mlp", 0.05), ("cnn", 0.05)]:
        rows, broken = speed(name, eps)
        print(f"### Speed: 40-step linf PGD, eps={eps}, batch 400, digits {name.upper()} "
              f"({broken} of 400 broken by PGD)\n")
        print(table(["attack", "samples/s", "vs floor", "vs torchattacks"], rows) + "\n")
    print("### Strength: robust accuracy (lower is stronger) on 400 digits test samples\n")
    rows = [strength(name, eps) for name in ["mlp", "cnn"] for eps in [0.03, 0.05, 0.1]]
    print(table(["model", "eps (linf)", "robustest auto", "torchattacks PGD-100 x5", "robustest s",
                 "torchattacks s", "time ratio"], rows))


if __name__ == "__main__":
    main()
