"""Models as small immutable graphs of layers (see :func:`read_model`)."""

from .nodes import Graph, Node
from .read import read_model

__all__ = ["Graph", "Node", "read_model"]
