"""One file per layer kind; each gives forward, interval (IBP), backward linear (CROWN) and LP/MILP rules.

    >>> import torch
    >>> from robustest.layers import ReLU
    >>> ReLU().interval((torch.tensor([[-1.0, 2.0]]), torch.tensor([[1.0, 3.0]])))
    (tensor([[0., 2.]]), tensor([[1., 3.]]))
"""

from .add import Add
from .avgpool import AvgPool2d
from .base import AffineLayer, Layer
from .conv import Conv2d
from .linear import Linear
from .maxpool import MaxPool2d
from .relu import ReLU
from .reshape import Reshape
from .scale import Scale

__all__ = [
           "Add",
           "AffineLayer",
           "AvgPool2d",
           "Conv2d",
           "Layer",
           "Linear",
           "MaxPool2d",
           "ReLU",
           "Reshape",
           "Scale",
]
