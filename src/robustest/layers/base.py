"""What every layer kind provides, and the shared machinery of the affine (linear + bias) layers.

A layer has four faces, one per certifier:

* ``forward(*xs)`` — the plain computation (batched);
* ``interval(*boxes)`` — IBP: elementwise bounds of the output from bounds of the inputs;
* ``backward(A, boxes, relax)`` — CROWN: given ``A`` of shape (B, M, *out_shape) such that the quantity
  to bound from below is ``sum(A * out)``, return linear coefficients on each input and the constant
  term (B, M) such that ``sum(A * out) >= sum(A_in * in) + const`` on the boxes;
* ``encode(problem, ins, boxes, out_box, exact)`` — LP/MILP: add variables and rows for one sample and
  return the output variables' indices (flattened in C order).

``boxes`` are the (sound) bounds of the layer's inputs: batched tensors for ``interval``/``backward``,
flat numpy arrays of one sample for ``encode``. Layers are immutable once built.

A layer kind also declares what it stands for, so that every reader finds it in the registry
(:mod:`robustest.layers.registry`): torch modules (``modules``, converted by ``from_module``), torch.fx calls
(``functions``, converted by ``from_call``) and ONNX operators (``onnx_ops``, imported by ``from_onnx`` as
ordinary torch modules, which ``from_module`` then reads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from ..solvers.base import Problem
from .rounding import Precision, in_range, magnitude

Box = tuple[torch.Tensor, torch.Tensor]
NpBox = tuple[np.ndarray, np.ndarray]
#: An interval of row coefficients ``(centre, radius)``, each (N, R, *shape) (:meth:`Layer.difference`).
Coef = tuple[torch.Tensor, torch.Tensor]

#: Intermediate bounds become variable bounds in LP/MILP; they are widened by this (relative + absolute)
#: slack so float rounding of a sound bound never cuts off a reachable point.
ENCODE_SLACK = 1e-6


def widen(lo: np.ndarray, hi: np.ndarray) -> NpBox:
    """``lo``/``hi`` pushed out by :data:`ENCODE_SLACK` (relative and absolute)."""
    pad = ENCODE_SLACK * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
    return lo - pad, hi + pad


def randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal float64 numbers from ``gen`` (for the kinds' :meth:`Layer.example`)."""
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def pair(v: object) -> tuple[int, int]:
    """An int or a pair of ints (a torch module's kernel/stride/padding) as a pair."""
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))  # type: ignore[index]


def onnx_pool_args(node: OnnxNode) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Kernel, strides and (symmetric) pads of an ONNX 2-D pool node in floor mode; refuses the others."""
    from ..errors import UnsupportedLayer

    k = tuple(node.attrs["kernel_shape"])
    pads = list(node.attrs.get("pads", [0] * 4))
    if len(k) != 2 or pads[:2] != pads[2:] or node.attrs.get("ceil_mode", 0):
        raise UnsupportedLayer(f"model has {node.op} node {node.name!r} that is not 2-D with "
                               "symmetric pads and floor mode. Fix: export a standard 2-D pool")
    return pair(k), pair(node.attrs.get("strides", [1, 1])), pair(pads[:2])


_L = TypeVar("_L", bound="Layer")


@dataclass(frozen=True)
class Call:
    """A torch.fx function or method call, as the graph reader shows it to the kinds that declare it.

    ``function`` is the called function's or method's name and ``name`` the fx node's (for messages); ``inputs`` are the graph entries of the operands computed from the model's input (the others are
    constants); ``constant`` is the other operand of a binary call on one such tensor when it is a
    constant (float64, batch dimension dropped), else None; ``tensor_first`` says whether the tensor is
    the first operand; ``keeps_batch`` whether the output's dimension 0 is still the batch; ``args`` the
    call's positional operands after the first and ``kwargs`` its keywords (an activation's options, such
    as ``F.leaky_relu(x, 0.2)``; fx nodes where they are computed)."""

    target: object
    function: str
    name: str
    inputs: tuple[int, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    binary: bool
    constant: torch.Tensor | None
    tensor_first: bool
    keeps_batch: bool
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class OnnxNode(Protocol):
    """What the ONNX importer shows a kind's ``from_onnx``: the node, its inputs (numpy constants or
    activations) and the few builder operations a handler needs. It returns an activation."""

    op: str
    name: str
    inputs: list[Any]
    attrs: dict[str, Any]

    def is_activation(self, value: Any) -> bool: ...
    def probe(self, value: Any) -> torch.Tensor: ...  # an activation's value on a batch-1 probe input
    def apply(self, mod: nn.Module, *srcs: Any) -> Any: ...  # add ``mod`` to the model and call it on ``srcs``
    def call(self, fn: Any, *srcs: Any) -> Any: ...  # call the function ``fn`` on activations
    def sole_producer(self, i: int) -> nn.Module | None: ...  # the module that computed input i, if i is its only use
    def with_probe(self, act: Any, probe: torch.Tensor) -> Any: ...  # ``act`` after its module changed in place
    def evaluate(self, values: list[Any]) -> np.ndarray: ...  # this operator on constants (numpy)


class Layer:
    """Base class of every layer kind. ``kind`` names it in messages."""

    kind: ClassVar[str] = "layer"
    #: True for layers whose CROWN rule needs the bounds of their inputs (ReLU, MaxPool).
    nonlinear: ClassVar[bool] = False
    #: True for elementwise non-decreasing layers (ReLU, the monotone smooth kinds): their interval bound of
    #: an exact input box (one whose every end is reached) is exact, up to the rounding pad a kind adds, so
    #: CROWN need not bound their outputs again (:func:`robustest.certify.crown.intermediate_bounds`).
    monotone: ClassVar[bool] = False
    #: Whether ``encode(..., exact=True)`` is exact (piecewise-linear kinds). False: it is the sound
    #: relaxation of a smooth function, so an MILP over it proves soundly but its optimum (and any point
    #: it finds) is not the network's (:func:`robustest.certify.encode.relaxed_layers`).
    exact_milp: ClassVar[bool] = True
    #: Number of inputs (Add has 2; a Concat as many as it joins, set per instance); the fx reader passes a
    #: call's first ``arity`` tensor operands.
    arity: int = 1
    #: What the kind stands for, in words, for the "supported" text (:func:`~.registry.supported_text`).
    summary: ClassVar[str] = ""
    #: Torch module classes this kind stands for (converted by :meth:`from_module`).
    modules: ClassVar[tuple[type[nn.Module], ...]] = ()
    #: torch.fx call targets this kind stands for: functions (by identity) or names (converted by :meth:`from_call`).
    functions: ClassVar[tuple[object, ...]] = ()
    #: ONNX operator types this kind stands for (imported by :meth:`from_onnx`).
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    #: The kind's place in the dense chain of the branch and bound (:mod:`robustest.certify.mlp`): "affine"
    #: (``forward`` is :meth:`dense_linear` plus a constant), "reshape" (``forward`` is :meth:`dense_linear`:
    #: it only moves numbers), "relu" (the nonlinearity between runs of the other two) or None (refused).
    dense_role: ClassVar[str | None] = None

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Layer | None:
        """The layer for ``mod`` (one of :attr:`modules`) on inputs of batch-free shape ``in_shape``; None for
        an identity, which vanishes from the graph. Raises :class:`~robustest.errors.UnsupportedLayer`."""
        raise NotImplementedError

    @classmethod
    def from_call(cls, call: Call) -> Layer | None:
        """The layer for a torch.fx call of one of :attr:`functions`; None for an identity;
        ``NotImplemented`` when the call's form is another kind's (e.g. ``+`` of two tensors vs a constant)."""
        return NotImplemented

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        """Import an ONNX node of one of :attr:`onnx_ops` as torch modules: returns the output activation,
        or ``NotImplemented`` when the node's form is another kind's."""
        return NotImplemented

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Layer, list[tuple[int, ...]]]:
        """A small random instance (float64) and its batch-free input shapes: what the registry-wide
        soundness test (``tests/layers/test_layer_rules.py``) checks every rule of the kind on."""
        raise NotImplementedError

    def bounded_inputs(self, box: Box) -> torch.Tensor | None:
        """Which entries of the input's bounds the CROWN rule depends on (bool, shaped like the box), or
        None for all. Intermediate bounds are computed by CROWN only where some consumer needs them."""
        return None

    def relax_init(self, box: Box, rows: int) -> torch.Tensor | None:
        """Initial optimisable relaxation parameters (alpha-CROWN) for ``rows`` spec rows, passed back to
        :meth:`backward` as ``relax["alpha"]``; None when the rule has none."""
        return None

    def followed_by(self, nxt: Layer) -> Layer | None:
        """This layer and ``nxt`` after it as one layer (e.g. a Linear absorbing a BatchNorm), or None."""
        return None

    def dense_linear(self, x: torch.Tensor) -> torch.Tensor:
        """The linear part of ``forward`` (without its constant) on a batch, for kinds whose
        :attr:`dense_role` is "affine" or "reshape" (the dense read pushes the identity through it); a
        "reshape" kind's ``forward`` is linear already."""
        return self.forward(x)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def interval(self, *boxes: Box) -> Box:
        raise NotImplementedError

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        raise NotImplementedError

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor | None:
        """How far (elementwise, batched like the output) the layer as the model computes it, in
        ``precision`` (:mod:`.rounding`), can be from the exact layer on the exact inputs, when those lie in
        ``boxes`` and the computed inputs are within ``errors`` of them. None: the kind has no rule, and no
        certificate can account for the model's rounding (the certifiers then give none)."""
        return None

    def difference(self, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]) -> list[Coef] | None:
        """How the computed-minus-exact difference of the output reads on the inputs' differences, for the
        row-wise rounding bound (:mod:`robustest.certify.float_rows`). ``coef`` is an interval of row
        coefficients ``(centre, radius)`` (N, R, *out) on the output's difference ``d_out``; returns one
        interval per input such that, at every point of ``boxes`` whose computed inputs are within
        ``errors`` of the exact ones, the coefficients' value on ``d_out`` (less the layer's own rounding,
        which the caller adds) equals some coefficients in the returned intervals on the inputs' ``d_in``.
        None: the kind has no such rule (the a-priori bound of :meth:`rounding` is used instead)."""
        return None

    def to(self: _L, device: torch.device, dtype: torch.dtype) -> _L:  # noqa: PYI019 - Self needs 3.11
        """A copy with every tensor moved/cast (layers are immutable, so this returns a new one)."""
        new = object.__new__(type(self))
        for k, v in self.__dict__.items():
            new.__dict__[k] = v.to(device=device, dtype=dtype) if isinstance(v, torch.Tensor) else v
        new.__dict__.pop("_dense", None)
        return new

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AffineLayer(Layer):
    """A layer ``y = L(x) + b`` with ``L`` linear. Subclasses give ``linear`` (L without bias), ``bias_out``
    (b broadcast to the output shape, batch-free) and ``abs_linear`` (|L|); the rest follows."""

    dense_role = "affine"

    def dense_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bias_out(self, in_shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        zero = like.new_zeros((1,) + tuple(in_shape))
        return self.forward(zero)[0]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def interval(self, *boxes: Box) -> Box:
        lo, hi = boxes[0]
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        c, r = self.forward(mid), self.abs_linear(rad)
        return c - r, c + r

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """``A L``: coefficients on the input, from coefficients ``A`` (B, M, *out) on the output."""
        return _pullback(self.linear, A, in_shape)

    def abs_transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """``A |L|`` (for ``A >= 0``: radii of coefficient intervals, :meth:`difference`)."""
        return _pullback(self.abs_linear, A, in_shape)

    def difference(self, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]) -> list[Coef]:
        """``d_out = L d_in`` (the bias cancels): centre ``c L``, radius ``r |L|``."""
        in_shape = tuple(boxes[0][0].shape[1:])
        return [(self.transpose(coef[0], in_shape), self.abs_transpose(coef[1], in_shape))]

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        in_shape = tuple(boxes[0][0].shape[1:])
        b = self.bias_out(in_shape, A)
        const = (A * b).flatten(2).sum(-1)
        return [self.transpose(A, in_shape)], const

    def matrix(self, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(W, b)`` with ``y.flatten() = W @ x.flatten() + b`` (for LP/MILP encodings)."""
        cache = self.__dict__.setdefault("_dense", {})
        if in_shape in cache:
            return cache[in_shape]
        n = int(np.prod(in_shape))
        eye = torch.eye(n, dtype=torch.float64).reshape((n,) + tuple(in_shape))
        layer = self.to(torch.device("cpu"), torch.float64)
        cols = layer.linear(eye).reshape(n, -1)  # row j = L e_j
        b = layer.bias_out(in_shape, eye).reshape(-1)
        cache[in_shape] = (cols.T.contiguous().numpy(), b.numpy())
        return cache[in_shape]

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        W, b = self.matrix(tuple(in_shapes[0]))
        return encode_affine(problem, ins[0], W, b, out_box)

    def terms(self, in_shape: tuple[int, ...]) -> tuple[int, str] | None:
        """The most terms (products and the bias) one output sums, and the operation that sums them
        ("matmul", "conv" or "elementwise", see :meth:`.rounding.Precision.dot`); None: no rounding rule."""
        return None

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor | None:
        """``|L| e + dot(n) (|L| |x| + |b|)``: the input errors through ``|L|``, plus the rounding of the
        sums of :meth:`terms` (an infinite bound where they could overflow)."""
        in_shape = tuple(boxes[0][0].shape[1:])
        what = self.terms(in_shape)
        if what is None:
            return None
        n, op = what
        size = self.abs_linear(magnitude(boxes[0], errors[0])) + self.bias_out(in_shape, errors[0]).abs()
        factor = precision.dot(n, op)
        bound = self.abs_linear(errors[0]) + factor * size + precision.absolute(n)
        return in_range(bound, size * (1 + factor), precision)


def _pullback(fn: Callable[[torch.Tensor], torch.Tensor], A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """``A`` (B, M, *out) through the transpose of the linear map ``fn`` (its vector-Jacobian product, by
    autograd: ``torch.func.vjp`` would import torch._dynamo, seconds of start-up)."""
    B, M = A.shape[:2]
    with torch.enable_grad():
        x = A.new_zeros((B * M,) + tuple(in_shape), requires_grad=True)
        (grad,) = torch.autograd.grad(fn(x), x, A.reshape((B * M,) + tuple(A.shape[2:])),
                                      create_graph=A.requires_grad)  # alpha-CROWN differentiates through A
    return grad.reshape((B, M) + tuple(in_shape))


def signed_map_difference(layer: Layer, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]
                          ) -> list[Coef]:
    """:meth:`Layer.difference` of a kind whose output entries are input entries or their negatives (a
    reshape, a selection, a concatenation, a sum or difference of two inputs): its CROWN ``backward`` is
    exact, and the radii go through it in absolute value."""
    centres = layer.backward(coef[0], boxes)[0]
    radii = layer.backward(coef[1], boxes)[0]
    return [(c, r.abs()) for c, r in zip(centres, radii)]


def slope_difference(coef: Coef, low: torch.Tensor, high: torch.Tensor) -> list[Coef]:
    """:meth:`Layer.difference` of an elementwise kind whose difference is ``d_out = s d_in`` with the slope
    ``s`` in ``[low, high]`` (batched like the input): the interval product of the coefficients and ``s``."""
    lo, hi = coef[0] - coef[1], coef[0] + coef[1]
    a, b = low.unsqueeze(1), high.unsqueeze(1)
    ends = torch.stack([lo * a, lo * b, hi * a, hi * b])
    new_lo, new_hi = ends.amin(0), ends.amax(0)
    return [((new_hi + new_lo) / 2, (new_hi - new_lo) / 2)]


def distinct(problem: Problem, y: np.ndarray, out_box: NpBox) -> np.ndarray:
    """``y`` (variable indices) with every repeated variable after its first use replaced by a new one equal
    to it, so each output entry has a variable of its own (an objective keyed by variable would otherwise
    add up, or drop, the coefficients of repeated entries)."""
    y = np.asarray(y, dtype=np.int64).copy()
    _, first = np.unique(y, return_index=True)
    again = np.setdiff1d(np.arange(y.size), first)
    if again.size:
        lo, hi = widen(out_box[0][again], out_box[1][again])
        new = problem.add_vars(lo, hi)
        r = np.arange(again.size)
        problem.add_rows(np.r_[r, r], np.r_[new, y[again]], np.r_[np.ones(r.size), -np.ones(r.size)],
                         lo=np.zeros(r.size), hi=np.zeros(r.size))
        y[again] = new
    return y


def encode_affine(problem: Problem, x: np.ndarray, W: np.ndarray, b: np.ndarray, out_box: NpBox) -> np.ndarray:
    """New variables ``y = W x + b`` bounded by the (widened) ``out_box``; returns their indices."""
    lo, hi = widen(*out_box)
    y = problem.add_vars(lo, hi)
    rr, cc = np.nonzero(W)
    rows = np.concatenate([rr, np.arange(y.size)])
    cols = np.concatenate([x[cc], y])
    vals = np.concatenate([W[rr, cc], -np.ones(y.size)])
    problem.add_rows(rows, cols, vals, lo=-b, hi=-b)
    return y
