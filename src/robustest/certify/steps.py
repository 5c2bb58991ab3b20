"""The certifier rungs of the escalation ladder: "ibp", "crown", "lp", "milp".

Each rung works only on the samples still undecided, charges its time to them, and leaves what it learnt
in ``ctx.cache["certify"]`` (per sample: the per-node bounds and the best known lower bound of each
margin) so the next rung starts from the tightest bounds found so far. A certified outcome's ``figure``
is the certified lower bound of the smallest margin; an undecided one says why in ``reason``.
Options read from ``ctx.options``: ``solver`` ("highs"/"gurobi") and ``alpha_crown`` (bool, default
False: optimise CROWN's ReLU slopes for the samples plain CROWN leaves undecided).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..graph import Graph, read_model
from ..ladder import Step, StepContext, StepOutcome, register
from ..spec import margin_matrix
from .encode import numpy_boxes


def _graph(ctx: StepContext) -> Graph:
    if "graph" not in ctx.cache:
        ctx.cache["graph"] = read_model(ctx.model, ctx.inputs[:1])
    return ctx.cache["graph"]


def _store(ctx: StepContext) -> dict[int, dict[str, Any]]:
    return ctx.cache.setdefault("certify", {})


def _spec(ctx: StepContext, graph: Graph, idx: list[int]) -> torch.Tensor:
    K = graph.nodes[-1].shape[0]
    return margin_matrix(ctx.labels[idx], K).to(torch.float64)


def _live(ctx: StepContext, indices: list[int]) -> list[int]:
    return [i for i in indices if ctx.remaining(i) > 0]


def _decide(name: str, lower: np.ndarray) -> StepOutcome:
    worst = float(np.min(lower))
    if worst > 0:
        return StepOutcome(verdict="certified", figure=worst, method=name)
    return StepOutcome(reason=f"{name} margin >= {worst:.3g}")


def _remember(ctx: StepContext, i: int, lower: np.ndarray, boxes: Any = None) -> None:
    entry = _store(ctx).setdefault(i, {})
    old = entry.get("lower")
    entry["lower"] = lower if old is None else np.maximum(old, lower)
    if boxes is not None:
        entry["boxes"] = boxes



def _decide_batch(ctx: StepContext, name: str, idx: list[int], lower: np.ndarray,
                  boxes: Any = None) -> dict[int, StepOutcome]:
    """Remember a batch's margin lower bounds (row k is sample ``idx[k]``) and decide each sample on the
    best bound known so far (every rung's bound is sound, so the largest one is)."""
    out = {}
    for k, i in enumerate(idx):
        _remember(ctx, i, lower[k], None if boxes is None else numpy_boxes(boxes, k))
        out[i] = _decide(name, _store(ctx)[i]["lower"])
    return out

@register("ibp")
class IbpStep(Step):
    """Interval bounds: one batched pass, loose."""

    def run(self, ctx: StepContext, indices: list[int]) -> dict[int, StepOutcome]:
        from .ibp import interval_bounds

        live = _live(ctx, indices)
        if not live:
            return {}
        t0 = time.perf_counter()
        graph = _graph(ctx)
        x = ctx.inputs[live].to(torch.float64)
        lo, hi = interval_bounds(graph, *ctx.ball.box(x))[-1]
        C = _spec(ctx, graph, live)
        low = (C.clamp(min=0) @ lo.unsqueeze(2) + C.clamp(max=0) @ hi.unsqueeze(2)).squeeze(2).cpu().numpy()
        out = _decide_batch(ctx, "ibp", live, low)
        ctx.charge(live, time.perf_counter() - t0)
        return out


@register("crown")
class CrownStep(Step):
    """Backward linear bounds (batched), then optionally optimised slopes on what is left."""

    def run(self, ctx: StepContext, indices: list[int]) -> dict[int, StepOutcome]:
        from .crown import crown

        live = _live(ctx, indices)
        if not live:
            return {}
        t0 = time.perf_counter()
        graph = _graph(ctx)
        x = ctx.inputs[live].to(torch.float64)
        res = crown(graph, x, ctx.ball, _spec(ctx, graph, live))
        out = _decide_batch(ctx, "crown", live, res.lower.detach().cpu().numpy(), res.boxes)
        ctx.charge(live, time.perf_counter() - t0)
        left = [i for i in live if out[i].verdict is None and ctx.remaining(i) > 0]
        if ctx.options.get("alpha_crown") and left:
            t1 = time.perf_counter()
            pos = [live.index(i) for i in left]
            boxes = [(lo[pos], hi[pos]) for lo, hi in res.boxes]
            res2 = crown(graph, x[pos], ctx.ball, _spec(ctx, graph, left), alpha_steps=20, boxes=boxes)
            out.update(_decide_batch(ctx, "alpha-crown", left, res2.lower.detach().cpu().numpy()))
            ctx.charge(left, time.perf_counter() - t1)
        return out


def _prepared(ctx: StepContext, graph: Graph, i: int) -> dict[str, Any]:
    """The cached bounds of sample ``i``, computing CROWN for it if no earlier rung did."""
    entry = _store(ctx).get(i, {})
    if "boxes" not in entry:
        from .crown import crown

        res = crown(graph, ctx.inputs[i:i + 1].to(torch.float64), ctx.ball, _spec(ctx, graph, [i]))
        _remember(ctx, i, res.lower[0].detach().cpu().numpy(), numpy_boxes(res.boxes, 0))
    return _store(ctx)[i]


@register("lp")
class LpStep(Step):
    """The triangle-relaxation LP per sample, on the margins still unproven."""

    def run(self, ctx: StepContext, indices: list[int]) -> dict[int, StepOutcome]:
        from .lp import lp_margins

        out: dict[int, StepOutcome] = {}
        solver = ctx.options.get("solver", "highs")
        for i in _live(ctx, indices):
            t0 = time.perf_counter()
            graph = _graph(ctx)
            entry = _prepared(ctx, graph, i)
            known = entry["lower"]
            rows = [m for m in np.argsort(known) if not known[m] > 0]
            spec = _spec(ctx, graph, [i])[0].cpu().numpy()
            low, reason = lp_margins(graph, ctx.inputs[i].to(torch.float64), ctx.ball, spec, entry["boxes"],
                                     rows=rows, solver=solver, deadline=t0 + ctx.remaining(i))
            _remember(ctx, i, low)
            out[i] = _decide("lp", entry["lower"])
            if out[i].verdict is None and reason:
                out[i].reason = f"{out[i].reason}; {reason}"
            ctx.charge([i], time.perf_counter() - t0)
        return out


@register("milp")
class MilpStep(Step):
    """Exact big-M MILP per sample with the sample's remaining budget as the solver's time limit."""

    def run(self, ctx: StepContext, indices: list[int]) -> dict[int, StepOutcome]:
        from .milp import milp_verify

        out: dict[int, StepOutcome] = {}
        solver = ctx.options.get("solver", "highs")
        for i in _live(ctx, indices):
            t0 = time.perf_counter()
            graph = _graph(ctx)
            entry = _prepared(ctx, graph, i)
            spec = _spec(ctx, graph, [i])[0].cpu().numpy()
            res = milp_verify(graph, ctx.inputs[i].to(torch.float64), ctx.ball, spec, entry["lower"],
                              entry["boxes"], solver=solver, time_limit=ctx.remaining(i) - (time.perf_counter() - t0))
            if res.verdict == "falsified":
                assert res.counterexample is not None
                out[i] = StepOutcome(verdict="falsified", figure=res.figure, method="milp",
                                     counterexample=res.counterexample.to(ctx.inputs.dtype))
            elif res.verdict == "certified":
                out[i] = StepOutcome(verdict="certified", figure=res.figure, method="milp")
            else:
                out[i] = StepOutcome(reason=res.reason)
            ctx.charge([i], time.perf_counter() - t0)
        return out
