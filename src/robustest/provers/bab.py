"""BaB: batched beta-CROWN branch and bound over ReLU splits (:mod:`robustest.certify.bab`), with the
intermediate bounds refined by BaB on each layer's prefix (:mod:`robustest.certify.refine`).

Networks of linear layers (Linear, Conv2d, AvgPool2d, constant Scale/Sub/Div, BatchNorm, MatMul by a
constant, Flatten, Add/Concat of branches...) and ReLU or LeakyReLU activations, residual ones included
(:func:`~robustest.certify.mlp.dense_plan`, :mod:`robustest.certify.dense_read`: the linear layers before
each activation become one dense matrix, skip connections are carried forward by linear neurons);
:meth:`BabProver.refusal` says why another graph is refused without computing anything (MaxPool, smooth
activations, a dense matrix over the size limit), and such graphs get ``open`` with the reason. With at most ``ProofSettings.input_split.max_dim`` inputs (ACAS Xu) the search splits the
input box instead of ReLUs (:mod:`robustest.certify.input_split`). The input region is the box of the
ball (for l2/l1 balls their outer box: sound, looser). A box point that the bounds point to and that
reaches a disjunct is returned as a counterexample candidate for the orchestrator to re-check.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, List

import torch

from ..errors import UnsupportedLayer
from ..graph import Graph
from .base import ProofTask, Prover, ProverOutcome

if TYPE_CHECKING:
    from ..certify.input_split import DomainGuard
    from ..certify.mlp import DenseMLP
    from ..layers.base import Box


class BabProver(Prover):
    """The schedule, in shares of the time given (``ProofSettings``):

    1. a quick search (``bab_quick``) on the root's alpha-CROWN bounds: most properties close here;
    2. a short round: refine the intermediate bounds for ``bab_first``, then search on them for as long;
    3. one long refinement (``bab_refine``) from the bounds of step 2, then the search with all that is left.

    Why one long refinement rather than rounds of doubling length: each refinement call starts its
    per-neuron searches afresh, so rounds spend most of their time redoing the last round's work. Measured
    on mnist_fc 256x4 prop_12_0.05 (``benchmarks/vnncomp.md``): 150 s in one call leave 78 of the last
    layer's neurons unstable and the search reaches a worst margin of -0.05 in 80 s; three doubling rounds
    in about the same total time left 123 unstable and -0.55."""

    name = rung = "bab"

    def refusal(self, graph: Graph) -> str:
        """Why the dense read (:func:`~robustest.certify.mlp.dense_plan`) refuses the graph; "" when it
        does not (cheap: no matrix is built)."""
        from ..certify.mlp import dense_plan

        try:
            dense_plan(graph)
        except UnsupportedLayer as exc:
            return str(exc)
        return ""

    def supports(self, graph: Graph) -> bool:
        return not self.refusal(graph)

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        out = []
        for n in range(len(task)):
            t0 = time.perf_counter()
            try:
                found = self._one(task, n, deadline)
            except UnsupportedLayer as exc:
                out.append(ProverOutcome("open", self.name, reason=f"bab: {exc}"))
                continue
            out.append(ProverOutcome(found[0], self.name, time.perf_counter() - t0, counterexample=found[1],
                                     reason=found[2]))
        return out

    def _one(self, task: ProofTask, n: int, deadline: float):  # type: ignore[no-untyped-def]
        from ..certify.bab import bab_mlp
        from ..certify.input_split import input_split
        from ..certify.mlp import root_bounds
        from ..certify.refine import refine_bounds

        s = task.settings
        net = _dense(task.graph)  # the search runs on CPU copies: it is tuned and tested there
        lo, hi = task.ball.box(task.x0[n:n + 1])
        lo, hi = lo[0].reshape(-1).double().cpu(), hi[0].reshape(-1).double().cpu()
        C, b = polytopes(task, n)
        if lo.numel() <= s.input_split.max_dim:
            split = input_split(net, lo, hi, C, b, deadline=deadline, settings=s.input_split,
                                guard=_domain_guard(task, n, deadline))
            return _answer(task, split.proved, split.candidate,
                           f"bab (input split): {split.reason} after {split.domains} domains")
        now = time.perf_counter()
        span = deadline - now
        bounds = root_bounds(net, lo, hi, alpha_steps=s.bab_root_alpha_steps, deadline=deadline,
                             alpha_until=now + s.bab_root_alpha_share * span)
        stats = bab_mlp(net, lo, hi, C, b, deadline=now + s.bab_quick * span, bounds=bounds)
        for tighten, search in ((s.bab_first, s.bab_first), (s.bab_refine, None)):
            if stats.proved or stats.candidate is not None or len(net.weights) <= 2 \
                    or time.perf_counter() >= deadline:
                break
            bounds = refine_bounds(net, lo, hi, *bounds,
                                   deadline=min(deadline, time.perf_counter() + tighten * span))
            stop = deadline if search is None else min(deadline, time.perf_counter() + search * span)
            stats = bab_mlp(net, lo, hi, C, b, deadline=stop, bounds=bounds)
        return _answer(task, stats.proved, stats.candidate,
                       f"bab: {stats.reason or 'time limit'} after {stats.domains} domains")


def _answer(task: ProofTask, proved: bool, candidate: torch.Tensor | None, why: str
            ) -> tuple[str, torch.Tensor | None, str]:
    if proved:
        return "proved", None, ""
    if candidate is not None:
        return "counterexample", candidate.reshape(task.x0.shape[1:]).to(task.x0), ""
    return "open", None, why


#: the dense form of each graph BaB has read (reading a CIFAR conv net takes seconds)
_DENSE: weakref.WeakKeyDictionary[Graph, DenseMLP] = weakref.WeakKeyDictionary()


def _dense(graph: Graph) -> DenseMLP:
    from ..certify.mlp import dense_mlp
    from ..certify.run_ops import with_run_ops

    if graph not in _DENSE:
        _DENSE[graph] = with_run_ops(graph, dense_mlp(graph))
    return _DENSE[graph]


def _domain_guard(task: ProofTask, n: int, deadline: float) -> DomainGuard | None:
    """For a guarded task, the rounding bound of sample ``n``'s rows on sub-boxes of its input box: the
    graph's interval bounds on each sub-box, intersected with the search's CROWN bounds of the ReLUs'
    inputs, through :func:`~robustest.certify.float_error.boxes_rows_error`."""
    from ..certify.float_error import boxes_rows_error
    from ..certify.ibp import interval_bounds
    from ..certify.input_split import DomainGuard

    if task.rounding is None:
        return None
    slack, precision = task.rounding
    C, _ = polytopes(task, n)
    _, S = polytopes(replace(task, d=-slack.to(task.d)), n)  # the slack in the polytopes' layout
    S = torch.where(torch.isfinite(S), S, torch.zeros_like(S))  # padded rows: none
    shape = tuple(task.x0.shape[1:])
    device = task.x0.device
    nodes = task.graph.nodes
    relu_inputs = [nd.inputs[0] for nd in nodes[1:] if nd.layer is not None and nd.layer.dense_role == "relu"]

    def of(lo: torch.Tensor, hi: torch.Tensor, prop: torch.Tensor,
           pre: tuple[list[torch.Tensor], list[torch.Tensor]]) -> torch.Tensor:
        D = lo.shape[0]
        tighter: list[Box | None] = [None] * len(nodes)
        if len(pre[0]) == len(relu_inputs):  # the chain's activations are the graph's, in graph order
            for k, l, u in zip(relu_inputs, *pre):
                shape_k = (D,) + tuple(nodes[k].shape)
                n = math.prod(nodes[k].shape)  # a layer's first n neurons are the activation's, then carries
                tighter[k] = (l[:, :n].to(device).reshape(shape_k), u[:, :n].to(device).reshape(shape_k))
        boxes = interval_bounds(task.graph, lo.to(device).reshape((D,) + shape), hi.to(device).reshape((D,) + shape),
                                tighter=tighter)
        bound, why = boxes_rows_error(task.graph, boxes, C[prop].to(device), precision, rows=True, deadline=deadline)
        return torch.full_like(bound, float("inf")).cpu() if why else bound.cpu()

    return DomainGuard(S, of)


def polytopes(task: ProofTask, n: int):  # type: ignore[no-untyped-def]
    """Sample ``n``'s groups as the unsafe polytopes ``A_p y <= b_p`` that BaB refutes: ``A_p`` the group's
    rows, ``b_p = -d``; short groups are padded with zero rows whose right-hand side is ``inf`` (always
    satisfied, never refutable). Returns ``C`` (P, M, K) and ``b`` (P, M) on the CPU, float64."""
    groups = sorted(set(task.groups))
    members = [[r for r, g in enumerate(task.groups) if g == v] for v in groups]
    M = max(len(m) for m in members)
    K = task.C.shape[2]
    cpu = torch.device("cpu")  # the search runs on CPU copies (see BabProver._one)
    C = torch.zeros(len(groups), M, K, dtype=torch.float64, device=cpu)
    b = torch.full((len(groups), M), float("inf"), dtype=torch.float64, device=cpu)
    rows, offs = task.C[n].double().cpu(), task.d[n].double().cpu()
    for p, m in enumerate(members):
        C[p, :len(m)] = rows[m]
        b[p, :len(m)] = -offs[m]
    return C, b
