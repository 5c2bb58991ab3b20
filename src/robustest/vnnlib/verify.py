"""Decide a VNN-LIB property on a network: ``sat`` (a re-checked counterexample), ``unsat`` or ``timeout``.

    >>> from robustest.io import load_model                                     # doctest: +SKIP
    >>> from robustest.vnnlib import load_vnnlib, verify                          # doctest: +SKIP
    >>> res = verify(load_model("net.onnx"), load_vnnlib("prop.vnnlib"),          # doctest: +SKIP
    ...              input_shape=(1, 784, 1), timeout=60)
    >>> res.status, res.method                                                    # doctest: +SKIP
    ('sat', 'pgd')

The property's regions go through the orchestrator of :mod:`robustest.ladder`, as ``check()``'s samples
do (:class:`RegionSubject`; the rungs of :func:`robustest.vnnlib.prove.vnnlib_ladder`): a few random
points, CROWN bounds on ``A y - b``, a short gradient attack (the library's own attacks, run on a
wrapper whose two "logits" are ``[violation margin, 0]`` so that "misclassified" means "inside the
output polytope"), batched beta-CROWN branch and bound, alpha-CROWN and MILP, then attacks until the time
is up. A counterexample is reported only after a plain forward pass confirms it; a region is proved only
by a sound bound. Whatever is left when the time is up is ``timeout``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ShapeError, UnsupportedLayer, invalid_argument
from ..ladder import AttackRung, Rung, StepOutcome, Subject, climb
from ..layers.rounding import Precision
from ..provers import Known, ProofSettings, ProofTask
from ..validate import model_place
from .parser import Region, VnnlibSpec
from .prove import region_task, vnnlib_ladder

Status = str  # "sat" | "unsat" | "timeout" | "unknown"

#: an attack's counterexample must be inside its polytope by this much (absolute, on the outputs), so
#: that float rounding in another runtime (onnxruntime) does not undo it.
SAT_MARGIN = 1e-4


@dataclass(frozen=True)
class VerifyResult:
    """``status`` with, for ``sat``, the flat input ``x`` (float32, in the box) and the output ``y``."""

    status: Status
    seconds: float
    method: str = ""
    x: Optional[torch.Tensor] = None
    y: Optional[torch.Tensor] = None
    reason: str = ""

    def format(self) -> str:
        """The VNN-COMP result file: the status line, and for ``sat`` ``((X_0 v) ... (Y_0 v) ...)``."""
        if self.status != "sat" or self.x is None or self.y is None:
            return self.status + "\n"
        xs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(self.x.reshape(-1).tolist())]
        ys = [f"(Y_{j} {float(v)!r})" for j, v in enumerate(self.y.reshape(-1).tolist())]
        return "sat\n(" + "\n ".join(xs + ys) + ")\n"


def check_input_shape(spec: VnnlibSpec, input_shape: Sequence[int]) -> Tuple[int, ...]:
    """The network's per-sample input shape; raises :class:`ShapeError` when it does not hold X_0..X_{n-1}."""
    shape = tuple(int(s) for s in input_shape)
    per_sample = shape[1:] if shape and shape[0] == 1 and len(shape) > 1 else shape
    if math.prod(per_sample) != spec.num_inputs:
        raise invalid_argument("spec", f"{spec.num_inputs} inputs X_0..X_{spec.num_inputs - 1}",
                               f"as many inputs as the network takes: {math.prod(per_sample)} (input shape "
                               f"{list(shape)})", "pair the property with the network it was written for",
                               cls=ShapeError)
    return per_sample


def check_output_count(model: nn.Module, spec: VnnlibSpec, shape: Tuple[int, ...], *, device: torch.device,
                       dtype: torch.dtype) -> None:
    """One forward pass at zero: the network must take ``shape`` and give ``spec.num_outputs`` outputs.
    Raises :class:`ShapeError` (instead of a raw error from deep inside a prover)."""
    try:
        with torch.no_grad():
            out = model(torch.zeros((1, *shape), device=device, dtype=dtype))
    except (RuntimeError, ValueError, IndexError) as exc:
        raise invalid_argument("input_shape", list(shape), f"a shape the network accepts ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                               "pass --input-shape as the network's input shape, e.g. 1 1 28 28",
                               cls=ShapeError) from None
    n_out = out.numel() if isinstance(out, torch.Tensor) else -1
    if n_out != spec.num_outputs:
        raise invalid_argument("spec", f"{spec.num_outputs} outputs Y_0..Y_{spec.num_outputs - 1}",
                               f"as many outputs as the network gives: {n_out}",
                               "pair the property with the network it was written for", cls=ShapeError)


class SpecMargin(nn.Module):
    """Network + property as a 2-class "classifier" on ``u`` in ``[-1, 1]^n``: ``x = center + radius * u``,
    logits ``[v(y) + margin, 0]`` where ``v(y) = min_p max_k (A_p y - b_p)_k``. Label 0 is "safe"; an
    attack that flips it has found ``A_p y < b_p - margin`` for some polytope ``p``."""

    def __init__(self, model: nn.Module, region: Region, shape: Tuple[int, ...], *, margin: float,
                 device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.shape, self.margin = model, shape, margin
        lo, hi = f32_box(region)
        self.lo, self.hi = lo.to(device, dtype), hi.to(device, dtype)
        self.center = ((lo + hi) / 2).to(device, dtype)
        self.radius = ((hi - lo) / 2).to(device, dtype)
        self.polys = [(a.to(device, dtype), b.to(device, dtype)) for a, b in region.polytopes]

    def point(self, u: torch.Tensor) -> torch.Tensor:
        # clamped: centre + radius can round one ulp past the box's (float32) corner
        return torch.minimum(torch.maximum(self.center + self.radius * u.clamp(-1, 1), self.lo), self.hi)

    def violation(self, y: torch.Tensor) -> torch.Tensor:
        vals = [(y @ a.T - b).amax(1) if a.shape[0] else torch.full_like(y[:, 0], -math.inf)
                for a, b in self.polys]
        return torch.stack(vals, 1).amin(1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        y = self.model(self.point(u).reshape((u.shape[0],) + self.shape)).reshape(u.shape[0], -1)
        v = self.violation(y) + self.margin
        return torch.stack([v, torch.zeros_like(v)], 1)


def f32_box(region: Region) -> Tuple[torch.Tensor, torch.Tensor]:
    """The box in float32, rounded inwards, so every float32 point in it is in the float64 box."""
    lo, hi = region.lower.float(), region.upper.float()
    lo = torch.where(lo.double() < region.lower, torch.nextafter(lo, torch.full_like(lo, math.inf)), lo)
    hi = torch.where(hi.double() > region.upper, torch.nextafter(hi, torch.full_like(hi, -math.inf)), hi)
    return lo, torch.maximum(hi, lo)


class RegionSubject(Subject):
    """The regions of one VNN-LIB property as the orchestrator's items (:class:`robustest.ladder.Subject`):
    one deadline for them all, attacks on the spec-margin wrapper, proofs on each region's task, and every
    counterexample confirmed by a plain forward pass of the network and the property. One violated region
    settles the property (``sat``)."""

    batchable = False

    def __init__(self, model: nn.Module, spec: VnnlibSpec, shape: Tuple[int, ...], *, deadline: float,
                 seed: int, device: torch.device, dtype: torch.dtype, real_arithmetic: bool = False) -> None:
        self.model, self.spec, self.shape, self.deadline, self.seed = model, spec, shape, deadline, seed
        self.device, self.dtype = device, dtype
        # the schedule lists alpha-CROWN: it runs
        self.settings = ProofSettings(alpha_crown=True, real_arithmetic=real_arithmetic)
        self.known: Dict[int, Known] = {}
        self.slack: Dict[int, Tuple[np.ndarray, str]] = {}
        self.outputs: Dict[int, torch.Tensor] = {}  # a confirmed counterexample's output, per region
        self._graph: Any = None
        self._tasks: Dict[int, Optional[ProofTask]] = {}

    @property
    def size(self) -> int:
        return len(self.spec.regions)

    def remaining(self, i: int) -> float:
        return self.deadline - time.perf_counter()

    def read_graph(self) -> Any:
        if self._graph is None:
            from ..graph import read_model

            try:
                self._graph = read_model(self.model, torch.zeros((1, *self.shape), device=self.device))
            except UnsupportedLayer as exc:
                self._graph = exc
        if isinstance(self._graph, UnsupportedLayer):
            raise self._graph
        return self._graph

    def precision(self) -> Precision:
        return Precision.of(self.dtype, self.device)

    def plain_task(self, indices: Sequence[int]) -> Optional[ProofTask]:
        (i,) = indices
        if i not in self._tasks:
            task = region_task(self.read_graph(), self.spec.regions[i], self.shape, self.device)
            if task is not None and task.known is not None:
                self.known[i] = task.known[0]
            self._tasks[i] = task
        return self._tasks[i]

    def attack(self, indices: List[int], rung: AttackRung) -> Dict[int, StepOutcome]:
        share = 1.0 if rung.share is None else rung.share
        for i in indices:
            now = time.perf_counter()
            found = falsify(self.model, self.spec, self.spec.regions[i], self.shape, device=self.device,
                            dtype=self.dtype, seed=self.seed, level=rung.level,
                            deadline=min(self.deadline, now + share * max(0.0, self.deadline - now)))
            if found is not None:
                return {i: StepOutcome("falsified", counterexample=found[0], method=found[2])}
        return {}

    def recheck(self, outcomes: Dict[int, StepOutcome]) -> None:
        for i, o in list(outcomes.items()):
            if o.verdict != "falsified":
                continue
            wrapped = SpecMargin(self.model, self.spec.regions[i], self.shape, margin=0.0, device=self.device,
                                 dtype=self.dtype)
            hit = None
            if isinstance(o.counterexample, torch.Tensor) and o.counterexample.numel() == self.spec.num_inputs:
                u = (o.counterexample.to(self.device, self.dtype).reshape(1, -1) - wrapped.center) / \
                    wrapped.radius.clamp_min(1e-30)
                hit = _confirm(self.model, self.spec, wrapped, u.clamp(-1, 1), self.shape)
            if hit is None:
                outcomes[i] = StepOutcome(reason=f"{o.method} found a point that the network does not confirm")
            else:
                o.counterexample, self.outputs[i] = hit

    def settled(self, decided: Dict[int, Tuple[str, StepOutcome]]) -> bool:
        return any(o.verdict == "falsified" for _, o in decided.values())


def verify(model: nn.Module, spec: VnnlibSpec, *, input_shape: Sequence[int], timeout: float,
           seed: int = 0, ladder: Optional[Sequence[Rung]] = None, real_arithmetic: bool = False
           ) -> VerifyResult:
    """Decide ``spec`` on ``model`` within ``timeout`` seconds (wall clock).

    ``unsat`` holds for the model as it computes in its dtype (every proof clears a bound on its
    floating-point rounding); with ``real_arithmetic`` for the exact network, VNN-COMP's convention
    (``ProofSettings.real_arithmetic``).

    ``ladder``: the rungs run on the property's regions (:class:`RegionSubject`) by the orchestrator of
    :mod:`robustest.ladder`; by default :func:`~robustest.vnnlib.prove.vnnlib_ladder`.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 \
            or not math.isfinite(timeout):
        raise invalid_argument("timeout", timeout, "a number of seconds > 0", "pass --timeout 60")
    start = time.perf_counter()
    # A margin for what follows the last check (returning, writing the file, interpreter exit, a solver
    # or an attack step overshooting its limit): measured overshoots reached ~6 s at 120 s on a loaded machine.
    deadline = start + float(timeout) * 0.92 - min(1.0, 0.05 * float(timeout))
    shape = check_input_shape(spec, input_shape)
    device, dtype = model_place(model)
    check_output_count(model, spec, shape, device=device, dtype=dtype)
    if not spec.regions:
        return VerifyResult("unsat", time.perf_counter() - start, "empty input region")
    subject = RegionSubject(model, spec, shape, deadline=deadline, seed=seed, device=device, dtype=dtype,
                            real_arithmetic=real_arithmetic)
    decided, last = climb(subject, vnnlib_ladder() if ladder is None else ladder)
    for i, (_, out) in decided.items():
        if out.verdict == "falsified":
            return VerifyResult("sat", time.perf_counter() - start, out.method or "", out.counterexample,
                                subject.outputs[i])
    if len(decided) == subject.size:
        methods = sorted({out.method or rung for rung, out in decided.values()})
        return VerifyResult("unsat", time.perf_counter() - start, "+".join(methods))
    notes = list(dict.fromkeys(why for i, (_, why) in sorted(last.items()) if why and i not in decided))
    if isinstance(subject._graph, UnsupportedLayer):  # the last (attack) rung's silence must not hide it
        notes = [f"no proof tried: {subject._graph}", *notes]
    return VerifyResult("timeout", time.perf_counter() - start, reason="; ".join(
        [f"{subject.size - len(decided)} of {subject.size} regions neither falsified nor proved"] + notes))


def falsify(model: nn.Module, spec: VnnlibSpec, region: Region, shape: Tuple[int, ...], *,
            device: torch.device, dtype: torch.dtype, seed: int, level: int, deadline: float
            ) -> Optional[Tuple[torch.Tensor, torch.Tensor, str]]:
    """A re-checked counterexample in ``region``: (x float32 flat, y flat, method) or ``None``.

    ``level`` 0 tries the centre and random points; 1 adds a short PGD on each disjunct's margin
    (:mod:`.spec_attack`) and APGD; 2 attacks until the deadline."""
    from ..api import attack

    if time.perf_counter() >= deadline:
        return None
    wrapped = SpecMargin(model, region, shape, margin=SAT_MARGIN, device=device, dtype=dtype).eval()
    n = spec.num_inputs
    g = torch.Generator(device="cpu").manual_seed(seed)
    # 1. the centre, the corners the gradient sign points to, and random points
    probes = torch.cat([torch.zeros(1, n, device="cpu"), torch.rand(63, n, generator=g, device="cpu") * 2 - 1]
                       ).to(device, dtype)  # drawn on the CPU generator: the same points on every device
    hit = _confirm(model, spec, wrapped, probes, shape)
    if hit is not None:
        return hit + ("random",)
    if level == 0:
        return None
    hard = level >= 2
    # 2. PGD on each disjunct's own margin, the best point of every restart re-checked (finds violations
    # shallower than the attacks' success margin: oval21 cifar_base_kw img1598, 7.2e-5; spec_attack.py)
    if not getattr(model, "gradient_free", False):
        from .spec_attack import HARD, SpecPgd, spec_pgd

        plan = HARD if hard else SpecPgd()
        for round_ in range(20 if hard else 1):
            if deadline - time.perf_counter() <= 0.05:
                return None
            cand = spec_pgd(wrapped, deadline=deadline, seed=seed + 104729 * round_, settings=plan)
            hit = _confirm(model, spec, wrapped, cand, shape) if cand.shape[0] else None
            if hit is not None:
                return hit + ("spec-pgd",)
    # 3. gradient attacks on the margin, several restarts in one batch
    # APGD with cross-entropy on the spec-margin logits: measured on mnist_fc 256x2 (eps 0.05) it finds
    # counterexamples that 100-300 PGD steps miss (prop 4) and finds the easy ones in well under a second.
    batch = 8
    u0 = torch.zeros(batch, n, device=device, dtype=dtype)
    y0 = torch.zeros(batch, dtype=torch.long, device=device)
    methods = [("apgd", dict(steps=100, loss="ce"))]
    if hard:
        methods += [("apgd", dict(steps=200, loss="ce")), ("pgd", dict(steps=100, loss="margin"))]
    if getattr(model, "gradient_free", False):  # run by onnxruntime (io.onnx_runtime): forward passes only
        methods = [("square", dict(queries=1000 if hard else 100))]
    for round_ in range(1000 if hard else 1):
        for name, opts in methods:
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                return None
            out = attack(wrapped, u0, y0, eps=1.0, norm="linf", domain=(-1.0, 1.0), method=name,
                         seed=seed + 7919 * round_ + len(name), timeout=remaining, **opts)
            cand = out.adversarial[out.success]
            if cand.shape[0]:
                hit = _confirm(model, spec, wrapped, cand, shape)
                if hit is not None:
                    return hit + (name,)
    return None


def _confirm(model: nn.Module, spec: VnnlibSpec, wrapped: SpecMargin, u: torch.Tensor,
             shape: Tuple[int, ...]) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """The first candidate whose float32 input, run through ``model`` alone, violates the property."""
    with torch.no_grad():
        x = wrapped.point(u).float()
        y = model(x.to(wrapped.center.dtype).reshape((x.shape[0],) + shape)).reshape(x.shape[0], -1)
        good = wrapped.violation(y) <= -SAT_MARGIN / 2
    for i in good.nonzero().flatten().tolist():
        if spec.violated_by(x[i], y[i]):
            return x[i].cpu(), y[i].cpu()
    return None
