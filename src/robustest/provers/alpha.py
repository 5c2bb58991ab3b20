"""alpha-CROWN: CROWN with the ReLU slopes of the last backward pass optimised by Adam, on the intermediate
bounds plain CROWN computed (every iterate is sound; the best is kept)."""

from __future__ import annotations

from ..schedules import ProofSettings
from .crown import CrownProver


class AlphaCrownProver(CrownProver):
    """alpha-CROWN: run by the "crown" rung on what plain CROWN leaves open when ``alpha_crown`` is on."""

    name = "alpha-crown"
    rung = "crown"
    alpha = True

    def enabled(self, settings: ProofSettings) -> bool:
        return settings.alpha_crown
