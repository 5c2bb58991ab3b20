"""Read a torch model into a :class:`Graph`: ``nn.Sequential`` directly, anything else through torch.fx.

Every module and call is converted by the layer kind that declares it (:mod:`robustest.layers.registry`).
BatchNorm (eval) directly after a Linear/Conv2d is folded into it (``Layer.followed_by``); Identity/Dropout
vanish; constant ``+ - * /`` (e.g. input normalisation ``(x - mean) / std``) become
:class:`~robustest.layers.Scale`. The graph is checked against the model on the example input, so a misread
model fails loudly, never silently.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> g = read_model(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU()).eval(), torch.zeros(1, 2))
    >>> [n.layer.kind for n in g.nodes[1:]]
    ['Linear', 'ReLU']
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import HealthCheckError, ModelError, UnsupportedLayer
from ..layers import Layer
from ..layers.base import Call
from ..layers.registry import kind_of_module, kinds_of_call, torch_modules, unsupported
from ..layers.rounding import Precision
from .nodes import Graph, Node

Entry = dict[str, Any]  # name, layer, inputs (indices), shape


def read_model(model: nn.Module, example: torch.Tensor) -> Graph:
    """The graph of ``model`` for inputs shaped like ``example`` (a batch), in float64 on ``example``'s device.

    Raises :class:`HealthCheckError` for a model in train mode, :class:`UnsupportedLayer` naming a layer
    without rules, :class:`ModelError` when torch.fx cannot trace the model.
    """
    if not isinstance(model, nn.Module):
        raise ModelError(f"model={type(model).__name__} is not valid: expected a torch.nn.Module. "
                         f"Fix: wrap the function in an nn.Module whose forward calls it")
    _refuse_compiled(model)
    training = [name or "<model>" for name, m in model.named_modules() if m.training]
    if training:
        raise HealthCheckError(f"the model is in train mode (modules {', '.join(training[:3])}"
                               f"{'...' if len(training) > 3 else ''}): BatchNorm and Dropout then behave "
                               f"differently from deployment and certificates would be meaningless. "
                               f"Fix: call model.eval() first")
    shape = tuple(example.shape[1:])
    if isinstance(model, torch_modules()) and not isinstance(model, nn.Sequential):
        model = nn.Sequential(model)  # a bare layer: fx would trace into its functional form
    if _plain_sequential(model):
        entries = _from_sequential(model, shape)
    else:
        entries = _from_fx(model, example)
    graph = _compact(_fold(entries))
    graph = graph.to(example.device, torch.float64)
    _verify(model, graph, example)
    return graph


def _refuse_compiled(model: nn.Module) -> None:
    """TorchScript and exported programs hold compiled code or ATen operators, not the layers the
    certifiers read: say so, with the fixes that apply to a model file."""
    kinds = {"TorchScript": any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()),
             "a torch.export program (.pt2)": any(
                 isinstance(m, torch.fx.GraphModule) and any(isinstance(n.target, torch._ops.OpOverload)
                                                             for n in m.graph.nodes) for m in model.modules())}
    what = next((k for k, found in kinds.items() if found), None)
    if what is not None:
        raise ModelError(f"the model is {what}: its layers are compiled away, so it can be attacked but not "
                         f"certified (the certifiers read nn.Module layers). Fix: to certify it, export the "
                         f"original module to ONNX (torch.onnx.export) and check the .onnx file, or save its "
                         f"state_dict and pass --model-class package.module:Class (model_class=...); or check "
                         f"it with escalate='attack'")


def _leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    out = []
    for name, child in model.named_children():
        path = f"{prefix}{name}"
        out += _leaves(child, path + ".") if isinstance(child, nn.Sequential) else [(path, child)]
    return out


def _plain_sequential(model: nn.Module) -> bool:
    known = torch_modules()
    return isinstance(model, nn.Sequential) and all(isinstance(m, known) for _, m in _leaves(model))


def convert_module(mod: nn.Module, path: str, in_shapes: Sequence[tuple[int, ...]]) -> Layer | None:
    """The layer for ``mod`` on inputs of batch-free shapes ``in_shapes`` (None for an identity), by the
    kind whose ``modules`` include its class."""
    kind = kind_of_module(mod)
    if kind is None:
        raise unsupported(type(mod).__name__, path)
    return kind.from_module(mod, path, tuple(in_shapes[0]))


def _apply(layer: Layer | None, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    if layer is None:
        return shapes[0]
    xs = [torch.zeros((1,) + s, dtype=torch.float64) for s in shapes]
    return tuple(layer.to(torch.device("cpu"), torch.float64).forward(*xs).shape[1:])


def _from_sequential(model: nn.Module, shape: tuple[int, ...]) -> list[Entry]:
    entries: list[Entry] = [{"name": "input", "layer": None, "inputs": (), "shape": shape}]
    for path, mod in _leaves(model):
        prev = len(entries) - 1
        layer = convert_module(mod, path, [entries[prev]["shape"]])
        entries.append({"name": path, "layer": layer, "inputs": (prev,), "shape": _apply(layer, [entries[prev]["shape"]])})
    return entries


_SKIP = {"size", operator.getitem}  # feed shapes to reshape calls, never a tensor the graph needs


def _from_fx(model: nn.Module, example: torch.Tensor) -> list[Entry]:
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        gm = torch.fx.symbolic_trace(model)
    except UnsupportedLayer:
        raise  # a model that knows it has no graph (e.g. run by onnxruntime) says which operator blocks it
    except Exception as err:
        raise ModelError(
            f"torch.fx cannot trace {type(model).__name__}.forward ({type(err).__name__}: {err}). Certifiers "
            f"need a forward without Python control flow that depends on tensor values. Fix: write the model "
            f"as nn.Sequential, or make forward traceable (no if/for on tensor values, no .item())") from err
    try:
        ShapeProp(gm).propagate(example[:1])
    except Exception as err:
        raise ModelError(f"running the traced model on the example input failed: {err}") from err
    entries: list[Entry] = []
    index: dict[str, int] = {}
    consts: dict[str, torch.Tensor] = {}

    def shape_of(node: Any) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else ()

    def add(node: Any, layer: Layer | None, inputs: tuple[int, ...]) -> None:
        if layer is None:
            index[node.name] = inputs[0]
            return
        entries.append({"name": str(node.target) if node.op == "call_module" else node.name, "layer": layer,
                            "inputs": inputs, "shape": shape_of(node)})
        index[node.name] = len(entries) - 1

    def const(arg: Any, full_rank: int) -> torch.Tensor | None:
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return torch.tensor(float(arg), dtype=torch.float64)
        if isinstance(arg, torch.fx.Node) and arg.name in consts:
            c = consts[arg.name].detach().to(torch.float64)
            if c.dim() == full_rank:
                if c.shape[0] != 1:
                    return None
                c = c[0]
            return c
        return None

    output_name = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if entries:
                raise ModelError("the model's forward takes more than one tensor input. Fix: certify a module "
                                 "whose forward takes the input batch only")
            entries.append({"name": "input", "layer": None, "inputs": (), "shape": tuple(example.shape[1:])})
            index[node.name] = 0
        elif node.op == "get_attr":
            obj: Any = gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            consts[node.name] = torch.as_tensor(obj)
        elif node.op == "call_module":
            mod = gm.get_submodule(str(node.target))
            ins = tuple(index[a.name] for a in node.args if isinstance(a, torch.fx.Node))
            add(node, convert_module(mod, str(node.target), [entries[i]["shape"] for i in ins]), ins)
        elif node.op in ("call_function", "call_method"):
            _function(node, entries, index, consts, const, add, shape_of)
        elif node.op == "output":
            arg = node.args[0]
            if not isinstance(arg, torch.fx.Node) or arg.name not in index:
                raise ModelError("the model's output is not a single tensor computed from the input. Fix: "
                                 "return the logits tensor only")
            output_name = arg.name
    assert output_name is not None
    return _ancestors(entries, index[output_name])


def _function(node: Any, entries: list[Entry], index: dict[str, int], consts: dict[str, torch.Tensor],
              const: Any, add: Any, shape_of: Any) -> None:
    import torch.fx

    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    if target in _SKIP:
        return
    flat = [b for a in node.args for b in (a if isinstance(a, (list, tuple)) else (a,))]  # torch.cat((a, b))
    tensors = [a for a in flat if isinstance(a, torch.fx.Node) and a.name in index]
    if not tensors:  # arithmetic on constants only: fold it
        try:
            args = [consts[a.name] if isinstance(a, torch.fx.Node) else a for a in node.args]
            consts[node.name] = (getattr(args[0], target)(*args[1:]) if isinstance(target, str)
                                 else target(*args))
            return
        except Exception:  # noqa: BLE001
            raise unsupported(f"function {name}", node.name) from None
    rank = len(entries[index[tensors[0].name]]["shape"]) + 1
    binary = len(tensors) == 1 and len(node.args) == 2
    first = bool(node.args) and node.args[0] is tensors[0]
    call = Call(target=target, function=name, name=node.name, inputs=tuple(index[t.name] for t in tensors),
                in_shapes=tuple(tuple(entries[index[t.name]]["shape"]) for t in tensors), out_shape=shape_of(node),
                binary=binary, constant=const(node.args[1] if first else node.args[0], rank) if binary else None,
                tensor_first=first, keeps_batch=_keeps_batch(node), args=tuple(node.args[1:]),
                kwargs=dict(node.kwargs))
    for kind in kinds_of_call(target):
        layer = kind.from_call(call)
        if layer is not NotImplemented:
            add(node, layer, call.inputs[:1] if layer is None else call.inputs[:layer.arity])
            return
    raise unsupported(f"function {name}", node.name)


def _keeps_batch(node: Any) -> bool:
    """Whether the output's dimension 0 is the batch (the shapes were propagated on a batch of 1)."""
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return False
    if meta.shape[0] == 1:
        return True
    src = getattr(node.args[0], "meta", {}).get("tensor_meta") if node.args else None
    return src is not None and meta.shape[0] == src.shape[0]


def _ancestors(entries: list[Entry], out: int) -> list[Entry]:
    keep = {out}
    for k in range(out, -1, -1):
        if k in keep:
            keep.update(entries[k]["inputs"])
    keep.add(0)
    remap = {old: new for new, old in enumerate(sorted(keep))}
    return [dict(e, inputs=tuple(remap[i] for i in e["inputs"])) for k, e in enumerate(entries) if k in keep]


def _fold(entries: list[Entry]) -> list[Entry]:
    """Fold a layer into the one right before it when that layer says they are one (``Layer.followed_by``:
    a Linear/Conv2d absorbs a per-channel Scale, i.e. a BatchNorm or a constant affine map) and it is that
    layer's only consumer. Folded layers become identities (layer None)."""
    entries = [dict(e) for e in entries]
    cpu = torch.device("cpu")
    for e in entries[1:]:
        if e["layer"] is None or len(e["inputs"]) != 1:
            continue
        (p,) = e["inputs"]
        prev = entries[p]["layer"]
        if prev is None or sum(p in f["inputs"] for f in entries) != 1:
            continue
        nxt = e["layer"].to(cpu, torch.float64)
        merged = prev.to(cpu, torch.float64).followed_by(nxt)
        if merged is not None:
            # the model still computes the parts one after the other: their rounding is what it does
            merged.__dict__["parts"] = prev.__dict__.get("parts", (prev.to(cpu, torch.float64),)) + (nxt,)
            entries[p]["layer"] = merged
            e["layer"] = None
    return entries


def _compact(entries: list[Entry]) -> Graph:
    """Drop identity entries (layer None after the input), rewiring their consumers."""
    alias: dict[int, int] = {}
    nodes: list[Node] = []
    for k, e in enumerate(entries):
        ins = tuple(alias[i] for i in e["inputs"])
        if k > 0 and e["layer"] is None:
            alias[k] = ins[0]
            continue
        alias[k] = len(nodes)
        nodes.append(Node(e["name"], e["layer"], ins, tuple(e["shape"])))
    if len(nodes) == 1:
        raise ModelError("the model computes nothing the certifiers can bound (it is the identity). "
                         "Fix: pass a classifier")
    if alias[len(entries) - 1] != len(nodes) - 1:
        raise ModelError("the model's output is its input. Fix: pass a classifier")
    return Graph(tuple(nodes))


def _verify(model: nn.Module, graph: Graph, example: torch.Tensor) -> None:
    with torch.no_grad():
        want = model(example).double()
        got = graph(example.to(torch.float64))
    if want.shape != got.shape:
        raise ModelError(f"reading the model gave outputs of shape {tuple(got.shape)}, the model gives "
                         f"{tuple(want.shape)}. Fix: write the model as nn.Sequential of supported layers")
    err = float((want - got).abs().max()) if want.numel() else 0.0
    tol = 1e-3 * (1.0 + float(want.abs().max())) if want.numel() else 0.0
    if not err <= tol:  # the model's own rounding may explain it (a cancellation): allow its bound
        from .rounding import node_errors

        x = example.to(torch.float64)
        point = [(v, v) for v in graph.forward(x)]
        rounding = node_errors(graph, point, Precision.of(example.dtype, example.device))[0][-1]
        err = float((want - got).abs().sub(rounding).max())
    if not err <= tol:
        raise ModelError(f"reading the model into a graph changed its outputs (max difference {err:.3g}); "
                         f"its forward does something the reader missed. Fix: write the model as "
                         f"nn.Sequential of supported layers")


__all__ = ["UnsupportedLayer", "read_model"]
