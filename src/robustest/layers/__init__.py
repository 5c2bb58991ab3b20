"""One file per layer kind; each gives forward, interval (IBP), backward linear (CROWN) and LP/MILP rules,
and declares the torch modules, torch.fx calls and ONNX operators it stands for (:mod:`.registry`).

Adding a kind: its file here (a :func:`~.registry.register`-ed :class:`~.base.Layer` subclass with an
``example()``, on which ``tests/layers/test_layer_rules.py`` checks every rule for soundness) and its import
line below.

    >>> import torch
    >>> from robustest.layers import ReLU
    >>> ReLU().interval((torch.tensor([[-1.0, 2.0]]), torch.tensor([[1.0, 3.0]])))
    (tensor([[0., 2.]]), tensor([[1., 3.]]))
"""

from .add import Add
from .avgpool import AvgPool2d
from .base import AffineLayer, Layer
from .concat import Concat
from .conv import Conv2d
from .gelu import GELU
from .identity import Identity
from .leaky_relu import LeakyReLU
from .linear import Linear
from .matmul import MatMul
from .maxpool import MaxPool2d
from .pad import Pad
from .registry import kinds, supported_text
from .relu import ReLU
from .reshape import Reshape
from .scale import Scale
from .sigmoid import Sigmoid
from .silu import SiLU
from .smooth import Smooth
from .softplus import Softplus
from .tanh import Tanh
from .select import Select

__all__ = [
           "GELU",
           "Add",
           "AffineLayer",
           "AvgPool2d",
           "Concat",
           "Conv2d",
           "Identity",
           "Layer",
           "LeakyReLU",
           "Linear",
           "MatMul",
           "MaxPool2d",
           "Pad",
           "ReLU",
           "Reshape",
           "Scale",
           "SiLU",
           "Sigmoid",
           "Smooth",
           "Softplus",
           "Tanh",
           "Select",
           "kinds",
           "supported_text",
]
