"""VNN-LIB properties: the parser and the verifier behind ``robustest vnnlib``.

    >>> from robustest.vnnlib import load_vnnlib, verify     # doctest: +SKIP
"""

from __future__ import annotations

from .parser import Region, VnnlibSpec, VnnlibSyntaxError, load_vnnlib, parse_vnnlib
from .verify import VerifyResult, verify

__all__ = ["Region", "VnnlibSpec", "VnnlibSyntaxError", "load_vnnlib", "parse_vnnlib", "VerifyResult", "verify"]
