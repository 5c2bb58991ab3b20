"""ONNX -> an ordinary torch module built from torch's own layers.

    >>> from robustest.io.onnx_import import import_onnx            # doctest: +SKIP
    >>> net = import_onnx("mnist-net_256x2.onnx")                     # doctest: +SKIP
    >>> net                                                           # doctest: +SKIP
    Sequential((0): Flatten(...) (1): Linear(784, 256) (2): ReLU() ...)

Each ONNX node becomes a standard layer, imported by the layer kind that declares its operator
(``onnx_ops`` / ``from_onnx`` in :mod:`robustest.layers`: Gemm/MatMul(+Add) -> ``nn.Linear``, Conv ->
``nn.Conv2d``, Relu -> ``nn.ReLU``, BatchNormalization -> ``nn.BatchNorm1d/2d`` in eval mode, pools ->
``nn.AvgPool2d``/``nn.MaxPool2d``, Flatten/Reshape, Sub/Div/Mul/Add by constants -> :class:`ConstantAffine`,
Identity/Dropout -> nothing). Beyond the layer kinds, the importer folds constant shape arithmetic
(:data:`PLUMBING`; a ``Cast`` of an activation only where it keeps every value, i.e. to float32/float64
without narrowing: to an integer, bool or float16 type it is refused, never approximated) and imports a few
operators attacks can use but certifiers cannot (:data:`IMPORT_ONLY`).
A chain becomes an ``nn.Sequential``; a graph with residual additions a ``torch.fx.GraphModule`` whose
nodes call those layers. So attacks and certifiers see the same modules as for a torch model. Dimension 0
of the ONNX input is the batch. Unsupported operators are all listed, by type and node name, in one
:class:`~robustest.errors.UnsupportedLayer`. The finished module is compared with onnxruntime on sampled
inputs (:mod:`robustest.io.onnx_check`) and refused when they disagree.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import fx, nn

from ..errors import ModelError, UnsupportedLayer
from ..layers.registry import kinds_of_onnx, onnx_ops
from .onnx_check import ONNX_CHECK, OnnxCheck, check_against_onnxruntime
from .onnx_modules import ConstantAffine, Reshape

PathLike = Union[str, "os.PathLike[str]"]
Value = Union[np.ndarray, "_Act"]


class _Act:
    """An activation (a tensor that depends on the input): its fx node and a batch-1 probe value."""

    def __init__(self, node: fx.Node, probe: torch.Tensor) -> None:
        self.node, self.probe = node, probe


def import_onnx(model: Union[PathLike, Any], *, check: OnnxCheck = ONNX_CHECK) -> nn.Module:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as a torch module in eval mode.

    The module is then compared with onnxruntime on sampled inputs (:mod:`robustest.io.onnx_check`,
    tolerances in ``check``) and refused with :class:`~robustest.io.onnx_check.OnnxMismatch` when they
    disagree. Raises :class:`~robustest.errors.UnsupportedLayer` for operators it cannot reproduce
    exactly (a Cast to an integer type, say), naming them."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("model is an ONNX file but the onnx package is not installed. "
                         "Fix: pip install 'robustest[onnx]'") from None
    if not isinstance(model, onnx.ModelProto):
        try:
            model = onnx.load(str(model))
        except Exception as exc:  # noqa: BLE001 - protobuf raises many kinds
            raise ModelError(f"model={str(model)!r} is not valid: expected an ONNX model file "
                             f"({type(exc).__name__}: {str(exc)[:200]}). Fix: export the network "
                             "with torch.onnx.export or check the file") from None
    graph = model.graph
    if not graph.node:
        raise ModelError("model is not valid: expected an ONNX graph with at least one node, got an "
                         "empty graph. Fix: check that the file is an exported network")
    _check_supported(graph)
    builder = _Builder({t.name: numpy_helper.to_array(t) for t in graph.initializer}, _elem_types(model))
    inputs = [i for i in graph.input if i.name not in builder.values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(f"model is not valid: expected one input and one output, got inputs "
                         f"{[i.name for i in inputs]} and outputs {[o.name for o in graph.output]}. "
                         "Fix: export a network with a single input tensor and a single output")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
            for d in inputs[0].type.tensor_type.shape.dim]
    for node in graph.node:
        for name in node.input:
            builder.consumers[name] = builder.consumers.get(name, 0) + 1
    builder.add_input(inputs[0].name, dims)
    for node in graph.node:
        builder.add_node(node, numpy_helper)
    module = builder.finish(graph.output[0].name).eval()
    check_against_onnxruntime(model.SerializeToString(), module, dims, check=check)
    return module


def onnx_input_shape(path: PathLike) -> Tuple[int, ...]:
    """The ONNX input's shape with unknown dimensions as 1 (dimension 0 is the batch)."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {t.name for t in graph.initializer}
    inp = next(i for i in graph.input if i.name not in inits)
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in inp.type.tensor_type.shape.dim)


def _attrs(node: Any) -> Dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


#: Operators the importer handles itself: constants and the shape arithmetic exporters emit around Reshape
#: (on constants, every operator is folded by :func:`_fold`; these ones only exist on constants).
PLUMBING = frozenset({"Constant", "Shape", "Gather", "Concat", "Cast"})
#: Operators imported as torch layers that no layer kind has certification rules for (attacks only).
IMPORT_ONLY: Dict[str, Callable[[], nn.Module]] = {}


def supported_ops() -> set:
    """Every ONNX operator type the importer reads: the layer kinds' and its own."""
    return onnx_ops() | PLUMBING | set(IMPORT_ONLY)


def _check_supported(graph: Any) -> None:
    supported = supported_ops()
    bad = [f"{n.op_type} (node {n.name or '#' + str(i)!r})" for i, n in enumerate(graph.node)
           if n.op_type not in supported]
    if bad:
        raise UnsupportedLayer(
            f"model has {len(bad)} ONNX operator(s) robustest cannot import: {', '.join(bad[:20])}"
            f"{' ...' if len(bad) > 20 else ''}. Supported: {', '.join(sorted(supported))}. Fix: "
            "export the network with these operators, or load it as a torch module instead")


class _Builder:
    """Walks the ONNX nodes in order, keeping constants as arrays and activations as fx nodes."""

    def __init__(self, initializers: Dict[str, np.ndarray], types: Dict[str, int]) -> None:
        self.values: Dict[str, Value] = dict(initializers)
        self.types = types
        self.bits: Dict[str, int] = {}  # float precision of Cast outputs (what a later Cast may keep)
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.count = 0
        self.consumers: Dict[str, int] = {}

    def bits_of(self, name: str) -> Optional[int]:
        """The float precision of a value computed from the input: a Cast's, else its type's (None: not float)."""
        return self.bits.get(name, _FLOAT_BITS.get(self.types.get(name, 1)))

    # ----------------------------------------------------------------- plumbing
    def add_input(self, name: str, dims: List[int]) -> None:
        node = self.graph.placeholder(_ident(name))
        self.values[name] = _Act(node, torch.zeros(dims))

    def module(self, onnx_node: Any, mod: nn.Module, *srcs: _Act) -> _Act:
        """Register ``mod`` and call it on ``srcs``."""
        base = _ident(onnx_node.name or onnx_node.op_type.lower()) or "layer"
        name = base
        while hasattr(self.root, name):
            self.count += 1
            name = f"{base}_{self.count}"
        mod.eval()
        self.root.add_module(name, mod)
        node = self.graph.call_module(name, tuple(s.node for s in srcs))
        with torch.no_grad():
            probe = mod(*[s.probe for s in srcs])
        return _Act(node, probe)

    def finish(self, output: str) -> nn.Module:
        out = self.values[output]
        if not isinstance(out, _Act):
            raise ModelError("model is not valid: its output does not depend on its input. "
                             "Fix: check the exported graph")
        self.graph.output(out.node)
        gm = fx.GraphModule(self.root, self.graph)
        return _as_sequential(gm) or gm

    def add_node(self, node: Any, numpy_helper: Any) -> None:
        ins = [self.values.get(n) if n else None for n in node.input]
        missing = [n for n, v in zip(node.input, ins) if n and v is None]
        if missing:
            raise ModelError(f"model is not valid: node {node.name!r} ({node.op_type}) reads {missing}, "
                             "which no earlier node produces. Fix: export a topologically sorted graph")
        attrs = _attrs(node)
        if node.op_type == "Constant":
            self.values[node.output[0]] = numpy_helper.to_array(attrs["value"])
            return
        acts = [v for v in ins if isinstance(v, _Act)]
        if not acts:  # every input is constant: fold it
            self.values[node.output[0]] = _fold(node.op_type, ins, attrs)
            return
        if node.op_type == "Shape":
            self.values[node.output[0]] = np.array(acts[0].probe.shape, dtype=np.int64)
            return
        if node.op_type == "Cast":
            self.values[node.output[0]] = _cast(node, acts[0], self.bits_of(node.input[0]), attrs["to"])
            self.bits[node.output[0]] = self.bits_of(node.input[0]) or 32  # kept: the cast did not narrow
            return
        if node.op_type in IMPORT_ONLY:
            self.values[node.output[0]] = self.module(node, IMPORT_ONLY[node.op_type](), acts[0])
            return
        view = _Node(self, node, ins, attrs)
        for kind in kinds_of_onnx(node.op_type):
            out = kind.from_onnx(view)
            if out is not NotImplemented:
                self.values[node.output[0]] = out
                return
        raise UnsupportedLayer(f"model has ONNX operator {node.op_type} (node {node.name!r}) applied "
                               "to the input, which robustest cannot import. Fix: export without it")


class _Node:
    """One ONNX node as a layer kind's ``from_onnx`` sees it (:class:`robustest.layers.base.OnnxNode`)."""

    def __init__(self, builder: _Builder, node: Any, ins: List[Any], attrs: Dict[str, Any]) -> None:
        self.builder, self.node = builder, node
        self.op, self.name, self.inputs, self.attrs = node.op_type, node.name, ins, attrs

    def is_activation(self, value: Any) -> bool:
        return isinstance(value, _Act)

    def probe(self, value: Any) -> torch.Tensor:
        return value.probe

    def apply(self, mod: nn.Module, *srcs: Any) -> _Act:
        return self.builder.module(self.node, mod, *srcs)

    def call(self, fn: Any, *srcs: Any) -> _Act:
        out = self.builder.graph.call_function(fn, tuple(a.node for a in srcs))
        return _Act(out, fn(*[a.probe for a in srcs]))

    def with_probe(self, act: Any, probe: torch.Tensor) -> _Act:
        return _Act(act.node, probe)

    def sole_producer(self, i: int) -> Optional[nn.Module]:
        act = self.inputs[i]
        if (self.builder.consumers.get(self.node.input[i], 0) != 1 or not isinstance(act, _Act)
                or act.node.op != "call_module" or len(act.node.users) != 0):
            return None
        return self.builder.root.get_submodule(str(act.node.target))

    def evaluate(self, values: List[Any]) -> np.ndarray:
        return _fold(self.op, values, self.attrs)


#: ONNX float element types and their bits: a Cast among them is the identity when it does not narrow.
_FLOAT_BITS = {1: 32, 11: 64, 10: 16, 16: 16}  # FLOAT, DOUBLE, FLOAT16, BFLOAT16


def _elem_types(model: Any) -> Dict[str, int]:
    """The element type of every value ONNX shape inference knows (graph inputs, initializers, the rest)."""
    import onnx

    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - inference is best effort; unknown types are refused where they matter
        graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _cast(node: Any, act: _Act, bits: Optional[int], to: int) -> _Act:
    """A Cast of an activation whose values have ``bits`` of float precision: the identity when the target
    is float32/float64 and keeps them all; refused otherwise (to an integer or bool type it rounds or
    truncates, to float16 it rounds: never approximated)."""
    import onnx

    if bits is not None and to in (1, 11) and _FLOAT_BITS[to] >= bits:
        return act
    raise UnsupportedLayer(
        f"model has Cast node {node.name!r} to {onnx.TensorProto.DataType.Name(to)} applied to "
        f"{'a float' + str(bits) if bits else 'a non-float'} value computed from the input: it changes values "
        "(rounds or truncates), which robustest's layers cannot reproduce exactly, so no proof is possible. "
        "Fix: export without the Cast (attacks still run on the model through onnxruntime)")


def _ident(name: str) -> str:
    out = re.sub(r"\W", "_", name).strip("_").lower()
    return ("n_" + out) if out[:1].isdigit() else out


def _fold(op: str, ins: List[Any], attrs: Dict[str, Any]) -> np.ndarray:
    """Constant folding for the shape arithmetic exporters emit around Reshape."""
    if op in ("Identity", "Dropout"):
        return np.asarray(ins[0])
    if op == "Cast":  # on constants the cast is exact: numpy does it
        from onnx.helper import tensor_dtype_to_np_dtype

        return np.asarray(ins[0]).astype(tensor_dtype_to_np_dtype(attrs["to"]))
    if op == "Gather":
        return np.take(ins[0], ins[1], axis=attrs.get("axis", 0))
    if op == "Unsqueeze":
        axes = attrs.get("axes", ins[1] if len(ins) > 1 else None)
        out = np.asarray(ins[0])
        for ax in sorted(int(v) for v in np.atleast_1d(np.asarray(axes))):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        axes = attrs.get("axes", ins[1] if len(ins) > 1 else None)
        return np.squeeze(ins[0], axis=None if axes is None else tuple(int(v) for v in np.atleast_1d(np.asarray(axes))))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in ins], axis=attrs.get("axis", 0))
    fns: Dict[str, Callable[[Any, Any], Any]] = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                                                 "Div": np.divide, "MatMul": np.matmul}
    if op in fns:
        return np.asarray(fns[op](ins[0], ins[1]))
    if op == "Reshape":
        return np.reshape(ins[0], [int(s) for s in ins[1]])
    if op == "Flatten":
        arr = np.asarray(ins[0])
        axis = attrs.get("axis", 1)
        return arr.reshape(int(np.prod(arr.shape[:axis])), -1)
    raise UnsupportedLayer(f"model has a constant {op} node robustest cannot fold. Fix: export with "
                           "constant folding (torch.onnx.export(..., do_constant_folding=True))")


def _as_sequential(gm: fx.GraphModule) -> Optional[nn.Sequential]:
    """The same layers as an ``nn.Sequential`` when the graph is a single chain of module calls."""
    nodes = list(gm.graph.nodes)
    body = nodes[1:-1]
    if not body or any(n.op != "call_module" for n in body):
        return None
    prev = nodes[0]
    for n in body:
        if n.args != (prev,) or len(prev.users) != 1:
            return None
        prev = n
    if nodes[-1].args[0] is not prev:
        return None
    return nn.Sequential(*[gm.get_submodule(str(n.target)) for n in body])


__all__ = ["import_onnx", "onnx_input_shape", "ConstantAffine", "Reshape"]
