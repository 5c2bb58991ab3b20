"""Moved to :mod:`robustest.solvers.dual` (the registry's "dual" backend); kept while
``repair/api.py`` still imports :class:`DualQP` from here."""

from ..solvers.dual import DualQP, solve

__all__ = ["DualQP", "solve"]
