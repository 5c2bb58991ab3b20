"""ONNX -> an ordinary torch module built from torch's own layers.

    >>> from robustest.io.onnx_import import import_onnx            # doctest: +SKIP
    >>> net = import_onnx("mnist-net_256x2.onnx")                     # doctest: +SKIP
    >>> net                                                           # doctest: +SKIP
    Sequential((0): Flatten(...) (1): Linear(784, 256) (2): ReLU() ...)

Each ONNX node becomes a standard layer (Gemm/MatMul(+Add) -> ``nn.Linear``, Conv -> ``nn.Conv2d``,
Relu -> ``nn.ReLU``, BatchNormalization -> ``nn.BatchNorm1d/2d`` in eval mode, pools -> ``nn.AvgPool2d``/
``nn.MaxPool2d``, Flatten/Reshape, Sub/Div/Mul/Add by constants -> :class:`ConstantAffine`,
Identity/Dropout -> nothing). A chain becomes an ``nn.Sequential``; a graph with residual additions a
``torch.fx.GraphModule`` whose nodes call those layers. So attacks and certifiers see the same modules as
for a torch model. Dimension 0 of the ONNX input is the batch. Unsupported operators are all listed, by
type and node name, in one :class:`~robustest.errors.UnsupportedLayer`.
"""

from __future__ import annotations

import operator
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import fx, nn

from ..errors import ModelError, UnsupportedLayer
from .onnx_modules import ConstantAffine, Reshape

PathLike = Union[str, "os.PathLike[str]"]
Value = Union[np.ndarray, "_Act"]


class _Act:
    """An activation (a tensor that depends on the input): its fx node and a batch-1 probe value."""

    def __init__(self, node: fx.Node, probe: torch.Tensor) -> None:
        self.node, self.probe = node, probe


def import_onnx(model: Union[PathLike, Any]) -> nn.Module:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as a torch module in eval mode."""
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
    builder = _Builder({t.name: numpy_helper.to_array(t) for t in graph.initializer})
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
    return builder.finish(graph.output[0].name).eval()


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


_SUPPORTED = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Conv", "Relu", "Flatten", "Reshape",
              "BatchNormalization", "AveragePool", "MaxPool", "GlobalAveragePool", "Identity", "Dropout",
              "Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Squeeze", "Sigmoid", "Tanh"}


def _check_supported(graph: Any) -> None:
    bad = [f"{n.op_type} (node {n.name or '#' + str(i)!r})" for i, n in enumerate(graph.node)
           if n.op_type not in _SUPPORTED]
    if bad:
        raise UnsupportedLayer(
            f"model has {len(bad)} ONNX operator(s) robustest cannot import: {', '.join(bad[:20])}"
            f"{' ...' if len(bad) > 20 else ''}. Supported: {', '.join(sorted(_SUPPORTED))}. Fix: "
            "export the network with these operators, or load it as a torch module instead")


class _Builder:
    """Walks the ONNX nodes in order, keeping constants as arrays and activations as fx nodes."""

    def __init__(self, initializers: Dict[str, np.ndarray]) -> None:
        self.values: Dict[str, Value] = dict(initializers)
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.count = 0
        self.consumers: Dict[str, int] = {}

    # ----------------------------------------------------------------- plumbing
    def add_input(self, name: str, dims: List[int]) -> None:
        node = self.graph.placeholder(_ident(name))
        self.values[name] = _Act(node, torch.zeros(dims))

    def module(self, onnx_node: Any, mod: nn.Module, src: _Act) -> _Act:
        """Register ``mod`` and call it on ``src``."""
        base = _ident(onnx_node.name or onnx_node.op_type.lower()) or "layer"
        name = base
        while hasattr(self.root, name):
            self.count += 1
            name = f"{base}_{self.count}"
        mod.eval()
        self.root.add_module(name, mod)
        node = self.graph.call_module(name, (src.node,))
        with torch.no_grad():
            probe = mod(src.probe)
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
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            raise UnsupportedLayer(f"model has ONNX operator {node.op_type} (node {node.name!r}) applied "
                                   "to the input, which robustest cannot import. Fix: export without it")
        self.values[node.output[0]] = handler(self, node, ins, attrs)


def _ident(name: str) -> str:
    out = re.sub(r"\W", "_", name).strip("_").lower()
    return ("n_" + out) if out[:1].isdigit() else out


def _fold(op: str, ins: List[Any], attrs: Dict[str, Any]) -> np.ndarray:
    """Constant folding for the shape arithmetic exporters emit around Reshape."""
    if op in ("Identity", "Cast", "Dropout"):
        return np.asarray(ins[0])
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


def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.array(a, dtype=np.float32))


# --------------------------------------------------------------------------- node handlers
def _gemm(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, w = ins[0], ins[1]
    if not isinstance(x, _Act) or isinstance(w, _Act) or at.get("transA", 0):
        raise UnsupportedLayer(f"model has Gemm node {node.name!r} with a non-constant weight or transA; "
                               "robustest imports only x @ W + c with constant W. Fix: export a plain Linear")
    w = np.asarray(w) * at.get("alpha", 1.0)
    w = w if at.get("transB", 0) else w.T  # -> (out, in)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=True)
    c = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(w.shape[0], np.float32)
    bias = np.broadcast_to(np.asarray(c) * at.get("beta", 1.0), (1, w.shape[0])).reshape(-1)
    with torch.no_grad():
        lin.weight.copy_(_t(w))
        lin.bias.copy_(_t(bias))
    return b.module(node, lin, x)


def _matmul(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, w = ins
    if not isinstance(x, _Act) or isinstance(w, _Act) or np.ndim(w) != 2:
        raise UnsupportedLayer(f"model has MatMul node {node.name!r} that is not input @ constant "
                               "matrix. Fix: export a plain Linear")
    lin = nn.Linear(w.shape[0], w.shape[1], bias=False)
    with torch.no_grad():
        lin.weight.copy_(_t(np.asarray(w).T))
    return b.module(node, lin, x)


def _elementwise(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, y = ins
    op = node.op_type
    if isinstance(x, _Act) and isinstance(y, _Act):
        if op not in ("Add", "Sub"):
            raise UnsupportedLayer(f"model has {op} node {node.name!r} of two activations (only Add/Sub "
                                   "of two activations, e.g. a residual, is supported)")
        fn = operator.add if op == "Add" else operator.sub
        out = b.graph.call_function(fn, (x.node, y.node))
        return _Act(out, fn(x.probe, y.probe))
    act, const, act_first = (x, _t(y), True) if isinstance(x, _Act) else (y, _t(x), False)
    one, zero = torch.ones_like(const), torch.zeros_like(const)
    if op == "Add":
        scale, shift = one, const
    elif op == "Sub":
        scale, shift = (one, -const) if act_first else (-one, const)
    elif op == "Mul":
        scale, shift = const, zero
    elif act_first:  # Div by a constant
        scale, shift = 1.0 / const, zero
    else:
        raise UnsupportedLayer(f"model has Div node {node.name!r} dividing a constant by the input")
    # A constant with a leading batch dimension of 1 broadcasts over the batch; drop nothing else.
    act_name = node.input[0] if act_first else node.input[1]
    if b.consumers.get(act_name, 0) == 1 and _fold_into_linear(b, act, scale, shift):
        return _Act(act.node, act.probe * scale + shift)
    return b.module(node, ConstantAffine(scale, shift), act)


def _fold_into_linear(b: _Builder, act: _Act, scale: torch.Tensor, shift: torch.Tensor) -> bool:
    """``Linear`` followed by a per-output bias add (MatMul + Add): fold it into the bias."""
    if act.node.op != "call_module" or len(act.node.users) != 0:
        return False
    mod = b.root.get_submodule(str(act.node.target))
    if not isinstance(mod, nn.Linear) or not bool(torch.all(scale == 1)):
        return False
    if shift.dim() > 1 and any(s != 1 for s in shift.shape[:-1]) or shift.shape[-1:] not in (
            torch.Size([mod.out_features]), torch.Size([1])):
        return False
    with torch.no_grad():
        bias = shift.reshape(-1).expand(mod.out_features).clone()
        if mod.bias is None:
            mod.bias = nn.Parameter(bias)
        else:
            mod.bias.add_(bias)
    return True


def _conv(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, w = ins[0], np.asarray(ins[1])
    if w.ndim != 4 or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedLayer(f"model has Conv node {node.name!r} that is not 2-D with explicit pads; "
                               "robustest imports Conv2d only. Fix: export with explicit padding")
    pads = list(at.get("pads", [0, 0, 0, 0]))
    groups = at.get("group", 1)
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(at.get("strides", [1, 1])),
                     dilation=tuple(at.get("dilations", [1, 1])), groups=groups, bias=len(ins) > 2,
                     padding=(pads[0], pads[1]) if pads[:2] == pads[2:] else 0)
    with torch.no_grad():
        conv.weight.copy_(_t(w))
        if len(ins) > 2 and conv.bias is not None:
            conv.bias.copy_(_t(ins[2]))
    if pads[:2] != pads[2:]:  # asymmetric: ONNX pads are (top, left, bottom, right)
        x = b.module(node, nn.ZeroPad2d((pads[1], pads[3], pads[0], pads[2])), x)
    return b.module(node, conv, x)


def _pool(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    k = tuple(at["kernel_shape"])
    pads = list(at.get("pads", [0] * 4))
    if len(k) != 2 or pads[:2] != pads[2:] or at.get("ceil_mode", 0):
        raise UnsupportedLayer(f"model has {node.op_type} node {node.name!r} that is not 2-D with "
                               "symmetric pads and floor mode. Fix: export a standard 2-D pool")
    stride = tuple(at.get("strides", [1, 1]))
    if node.op_type == "MaxPool":
        mod: nn.Module = nn.MaxPool2d(k, stride=stride, padding=tuple(pads[:2]),
                                      dilation=tuple(at.get("dilations", [1, 1])))
    else:
        mod = nn.AvgPool2d(k, stride=stride, padding=tuple(pads[:2]),
                           count_include_pad=bool(at.get("count_include_pad", 0)))
    return b.module(node, mod, ins[0])


def _batchnorm(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, scale, bias, mean, var = ins[:5]
    dim = x.probe.dim()
    if dim not in (2, 3, 4):
        raise UnsupportedLayer(f"model has BatchNormalization node {node.name!r} on a {dim}-D tensor")
    cls = nn.BatchNorm2d if dim == 4 else nn.BatchNorm1d
    bn = cls(len(mean), eps=float(at.get("epsilon", 1e-5)))
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats=True
    with torch.no_grad():
        bn.weight.copy_(_t(scale))
        bn.bias.copy_(_t(bias))
        bn.running_mean.copy_(_t(mean))
        bn.running_var.copy_(_t(var))
    return b.module(node, bn, x)


def _flatten(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    if at.get("axis", 1) != 1:
        raise UnsupportedLayer(f"model has Flatten node {node.name!r} with axis={at.get('axis')}; only "
                               "axis=1 keeps the batch dimension. Fix: flatten from dimension 1")
    return b.module(node, nn.Flatten(), ins[0])


def _reshape(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x, shape = ins[0], [int(s) for s in np.asarray(ins[1]).reshape(-1)]
    if isinstance(ins[1], _Act) or not shape:
        raise UnsupportedLayer(f"model has Reshape node {node.name!r} whose target shape depends on the "
                               "input values. Fix: export with constant folding")
    if shape[0] not in (-1, 0, 1, x.probe.shape[0]):
        raise UnsupportedLayer(f"model has Reshape node {node.name!r} to {shape}, which mixes the batch "
                               "dimension with the others. Fix: keep dimension 0 as the batch")
    rest = [x.probe.shape[i] if s == 0 else s for i, s in enumerate(shape)][1:]
    if len(rest) == 1 and (rest[0] == -1 or rest[0] == x.probe[0].numel()):
        return b.module(node, nn.Flatten(), x)
    return b.module(node, Reshape(rest), x)


def _simple(mod: Callable[[], nn.Module]) -> Callable[..., _Act]:
    def handler(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
        return b.module(node, mod(), ins[0])
    return handler


def _passthrough(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    return ins[0]


def _squeeze_unsqueeze(b: _Builder, node: Any, ins: List[Any], at: Dict[str, Any]) -> _Act:
    x = ins[0]
    axes = at.get("axes", ins[1] if len(ins) > 1 else None)
    if axes is None or any(int(v) in (0, -x.probe.dim() - (node.op_type == "Unsqueeze"))
                           for v in np.atleast_1d(np.asarray(axes))):
        raise UnsupportedLayer(f"model has {node.op_type} node {node.name!r} on the batch dimension (or "
                               "on every dimension). Fix: squeeze/unsqueeze named dimensions after the batch")
    probe = torch.as_tensor(_fold(node.op_type, [x.probe.numpy(), axes], {}))
    return b.module(node, Reshape(tuple(probe.shape[1:])), x)


_HANDLERS: Dict[str, Callable[..., _Act]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _elementwise, "Sub": _elementwise, "Mul": _elementwise,
    "Div": _elementwise, "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool,
    "BatchNormalization": _batchnorm, "Flatten": _flatten, "Reshape": _reshape,
    "Relu": _simple(nn.ReLU), "Sigmoid": _simple(nn.Sigmoid), "Tanh": _simple(nn.Tanh),
    "GlobalAveragePool": _simple(lambda: nn.AdaptiveAvgPool2d(1)),
    "Identity": _passthrough, "Dropout": _passthrough, "Cast": _passthrough,
    "Squeeze": _squeeze_unsqueeze, "Unsqueeze": _squeeze_unsqueeze,
}


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
