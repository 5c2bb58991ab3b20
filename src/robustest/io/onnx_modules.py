"""The two small modules the ONNX importer needs beyond torch's own layers, defined by the layer kinds
that import them (:class:`ConstantAffine` by :class:`~robustest.layers.Scale`, :class:`Reshape` by
:class:`~robustest.layers.Reshape`) and kept here under their import names.

Everything else an imported graph holds is a standard torch layer (``nn.Linear``, ``nn.Conv2d``,
``nn.ReLU``, ``nn.BatchNorm2d``...), so attacks and certifiers treat it as any torch model.
"""

from __future__ import annotations

from ..layers.reshape import ReshapeModule as Reshape
from ..layers.scale import ConstantAffine

__all__ = ["ConstantAffine", "Reshape"]
