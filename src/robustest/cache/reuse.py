"""The verdict cache's part in one :func:`robustest.check`: look the samples up, re-check what is reused,
store what was decided.

    >>> plan = CachePlan.open(None, model=None, inputs=None, labels=None, ball=None, escalate="attack",
    ...                       seed=0, sample_ids=[], options={}, timeout=1.0)
    >>> plan is None
    True
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from ..ladder import StepContext, StepOutcome
from ..results import SampleResult
from . import CachedVerdict, VerdictCache
from .keys import fingerprint_or_none, sample_keys

_log = logging.getLogger("robustest.cache")

Recheck = Callable[[Dict[int, StepOutcome]], None]


def _dtype(name: str) -> torch.dtype:
    value = getattr(torch, name.replace("torch.", ""), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return value


class CachePlan:
    """The keys of one check's samples in ``cache``, and the check's budget per sample."""

    def __init__(self, cache: VerdictCache, keys: List[str], timeout: float) -> None:
        self.cache, self.keys, self.timeout = cache, keys, timeout
        self.reused: set = set()

    @classmethod
    def open(cls, cache: Optional[VerdictCache], *, model: Any, inputs: Any, labels: Any, ball: Any,
             escalate: str, seed: int, sample_ids: Sequence[int], options: Mapping[str, Any],
             timeout: float) -> Optional["CachePlan"]:
        """The plan, or None when there is no cache, it is off, or the model cannot be fingerprinted."""
        if cache is None or not (cache.reads or cache.writes):
            return None
        check = fingerprint_or_none(model, ball=ball, escalate=escalate, options=options)
        if check is None:
            return None
        return cls(cache, sample_keys(check, inputs, labels, seed=seed, sample_ids=sample_ids), timeout)

    def reuse(self, ctx: StepContext, indices: List[int], recheck: Recheck) -> Dict[int, SampleResult]:
        """The stored verdicts of ``indices`` that may be reused; stored counterexamples are re-checked
        by ``recheck`` (the ladder's forward pass, :meth:`robustest.ladder.StepContext.recheck`) and dropped
        when they fail it."""
        found = self.cache.get([self.keys[i] for i in indices])
        out: Dict[int, SampleResult] = {}
        claimed: Dict[int, StepOutcome] = {}
        stored: Dict[int, CachedVerdict] = {}
        for i in indices:
            hit = found.get(self.keys[i])
            if hit is None or not hit[0].usable(self.timeout):
                continue
            verdict, blob = hit
            stored[i] = verdict
            if verdict.verdict == "falsified":
                try:
                    ce = torch.frombuffer(bytearray(blob), dtype=_dtype(verdict.ce_dtype))
                    ce = ce.reshape(verdict.ce_shape).to(ctx.inputs.device)
                except (ValueError, RuntimeError, TypeError):
                    continue  # an unreadable counterexample: decide the sample afresh
                claimed[i] = StepOutcome("falsified", counterexample=ce, method=verdict.method)
            elif verdict.verdict in ("certified", "unknown"):
                out[i] = self._result(ctx, i, verdict)
        recheck(claimed)
        for i, o in claimed.items():
            if o.verdict == "falsified":
                out[i] = replace(self._result(ctx, i, stored[i]), counterexample=o.counterexample,
                                 predicted=o.predicted, distance=o.distance, figure=o.figure)
            else:
                _log.warning("a cached counterexample of sample %d failed the forward-pass re-check; "
                             "deciding the sample afresh", i)
        self.reused = set(out)
        return out

    def _result(self, ctx: StepContext, i: int, v: CachedVerdict) -> SampleResult:
        return SampleResult(index=i, verdict=v.verdict, method=v.method,  # type: ignore[arg-type]
                            label=int(ctx.labels[i]), seconds=ctx.spent[i], predicted=v.predicted,
                            distance=v.distance, figure=v.figure, reason=v.reason, cached=True)

    def store(self, results: Mapping[int, SampleResult]) -> None:
        """Store the verdicts decided in this run (not the reused ones, not misclassified samples)."""
        items = []
        for i, s in results.items():
            if i in self.reused or s.verdict == "misclassified":
                continue
            ce = s.counterexample
            blob, dtype = b"", ""
            shape: Tuple[int, ...] = ()
            if s.verdict == "falsified":
                if not isinstance(ce, torch.Tensor):
                    continue
                t = ce.detach().to("cpu").contiguous()
                blob = t.reshape(-1).view(torch.uint8).numpy().tobytes()
                dtype, shape = str(t.dtype), tuple(t.shape)
            items.append((self.keys[i], CachedVerdict(
                verdict=s.verdict, method=s.method, budget=self.timeout, seconds=float(s.seconds),
                figure=s.figure, predicted=s.predicted, distance=s.distance, reason=s.reason,
                ce_dtype=dtype, ce_shape=shape), blob))
        self.cache.put(items)
