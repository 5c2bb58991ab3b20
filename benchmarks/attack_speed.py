"""Attack speed against the bare floor and torchattacks, in one process.

    python benchmarks/attack_speed.py            # prints markdown tables (copied to benchmarks/README.md)

Speed: 40-step linf PGD on the same model, batch and steps: samples per second of
  - the floor: a bare loop doing only forward + backward + sign step + projection,
  - robustest's PGD with per-sample early stop off (the same work as the floor) and on (the default),
  - torchattacks.PGD.
Strength (the default sequence vs AutoAttack and PGD-100 x 5) is benchmarks/attacks.py.
"""

from __future__ import annotations

import torch
from _common import interleaved, machine, table

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


def main() -> None:
    print(f"Machine: {machine()}\n")
    for name, eps in [("mlp", 0.05), ("cnn", 0.05)]:
        rows, broken = speed(name, eps)
        print(f"### Speed: 40-step linf PGD, eps={eps}, batch 400, digits {name.upper()} "
              f"({broken} of 400 broken by PGD)\n")
        print(table(["attack", "samples/s", "vs floor", "vs torchattacks"], rows) + "\n")


if __name__ == "__main__":
    main()
