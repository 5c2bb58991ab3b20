"""Attacks: each one file, each a subclass of :class:`~robustest.attacks.base.Attack` registered by name.

    >>> from robustest.attacks import get_attack, ATTACKS
    >>> sorted(ATTACKS)
    ['apgd', 'apgd-t', 'fab', 'fgsm', 'pgd', 'square']
    >>> get_attack("apgd", loss="dlr").describe()
    'apgd-dlr'
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid_argument
from .apgd import APGD, APGDT
from .base import ATTACKS, Attack, AttackOutcome, recheck
from .fab import FAB
from .pgd import FGSM, PGD
from .square import Square

#: aliases: name -> (attack, fixed options)
ALIASES = {"apgd-ce": ("apgd", {"loss": "ce"}), "apgd-dlr": ("apgd", {"loss": "dlr"})}


def get_attack(name: str, **options: Any) -> Attack:
    """Build the attack registered as ``name`` (or an alias such as "apgd-dlr") with ``options``."""
    base, fixed = ALIASES.get(name, (name, {}))
    if base not in ATTACKS:
        known = sorted(set(ATTACKS) | set(ALIASES))
        raise invalid_argument("method", name, f"one of {known}", "pass method='apgd' or method='pgd'")
    try:
        return ATTACKS[base](**{**options, **fixed})
    except TypeError as exc:
        raise invalid_argument("attack options", options, f"options that {name} accepts ({exc})",
                               "see help(robustest.attacks." + ATTACKS[base].__name__ + ")") from None


__all__ = ["ALIASES", "APGD", "APGDT", "ATTACKS", "FAB", "FGSM", "PGD", "Attack", "AttackOutcome", "Square",
           "get_attack", "recheck"]
