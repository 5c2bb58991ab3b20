"""Certifiers: IBP, CROWN (and alpha-CROWN), LP and MILP over the layer graph (see :func:`bounds`)."""

from .api import bounds

__all__ = ["bounds"]
