"""Frozen results of :func:`robustest.radius`: how far each sample is from changing its label.

For every sample, ``lower <= exact <= upper``: ``upper`` is the norm of a re-checked adversarial input
(``adversarial``), ``lower`` the largest radius a sound certifier proved robust, and ``exact`` the proven
minimum when it was computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch


@dataclass(frozen=True)
class RadiusSample:
    """One sample's robustness radius.

    ``upper`` is ``||adversarial - x||`` (``inf`` when no adversarial input was found; ``0`` when the
    clean input is already misclassified), ``method`` names the search that found it. ``lower`` is the
    largest radius certified by ``lower_method`` (``0.0`` and "none" when no certifier ran). ``exact`` is
    the proven minimal distance, or None; ``exact_reason`` then says why, when one was asked for (time
    limit, no solver, unsupported layer). ``seconds`` is the sample's share of the batched searches
    (split equally) plus the time of its own exact minimum.
    """

    index: int
    label: int
    upper: float
    lower: float
    method: str
    lower_method: str
    seconds: float
    adversarial: Optional[torch.Tensor] = None
    predicted: Optional[int] = None
    exact: Optional[float] = None
    exact_reason: str = ""

    @property
    def misclassified(self) -> bool:
        return self.method == "clean"


@dataclass(frozen=True)
class RadiusReport:
    """The result of :func:`robustest.radius` for a batch of inputs."""

    samples: Tuple[RadiusSample, ...]
    norm: str
    seconds: float
    warnings: Tuple[str, ...] = ()

    @property
    def upper(self) -> torch.Tensor:
        return torch.tensor([s.upper for s in self.samples], dtype=torch.float64)

    @property
    def lower(self) -> torch.Tensor:
        return torch.tensor([s.lower for s in self.samples], dtype=torch.float64)

    def summary(self) -> str:
        """One line: median upper and lower radius over the correctly classified samples."""
        ok = [s for s in self.samples if not s.misclassified]
        if not ok:
            return f"radius ({self.norm}): no correctly classified samples out of {len(self.samples)}"
        up = torch.tensor([s.upper for s in ok]).median().item()
        lo = torch.tensor([s.lower for s in ok]).median().item()
        return (f"radius ({self.norm}) over {len(ok)} correctly classified samples of {len(self.samples)}: "
                f"median upper {up:.4g}, median certified lower {lo:.4g}")

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready summary (adversarial inputs left out; ``inf`` becomes None)."""
        return {
            "norm": self.norm, "seconds": self.seconds, "warnings": list(self.warnings),
            "samples": [{"index": s.index, "label": s.label, "upper": _num(s.upper), "lower": _num(s.lower),
                         "exact": _num(s.exact), "exact_reason": s.exact_reason or None,
                         "method": s.method, "lower_method": s.lower_method,
                         "predicted": s.predicted, "seconds": s.seconds} for s in self.samples],
        }


def _num(v: Optional[float]) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(v)


__all__ = ["RadiusSample", "RadiusReport"]
