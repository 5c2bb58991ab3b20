"""Every registered layer kind's rules are sound on sampled points, and the "supported" text is the registry.

One parametrized test per rule over the registry: for random input boxes, the forward pass at random points
of the box (and its corners) lies inside the interval rule's bounds, above the CROWN rule's linear lower
bound (with the adaptive and with random alpha-CROWN slopes), and inside the LP relaxation; the MILP
encoding with the input fixed to a point gives exactly the forward value. Each kind is checked on its own
``example()`` (a small random instance), so a new kind is tested once it is registered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustest.layers import Layer, kinds, supported_text
from robustest.layers.base import widen
from robustest.solvers import open_solver
from robustest.solvers.base import Problem

KINDS = {k.kind: k for k in kinds()}
TOL = 1e-9


@pytest.mark.parametrize("name", KINDS)
def test_every_registered_kind_has_an_example(name: str):
    layer, shapes = KINDS[name].example(torch.Generator().manual_seed(0))
    assert type(layer) is KINDS[name] and shapes and all(isinstance(s, tuple) for s in shapes)
    assert len(shapes) == layer.arity


@pytest.mark.parametrize("name", KINDS)
def test_what_a_kind_declares_it_converts(name: str):
    """A kind declaring modules / fx calls / ONNX operators overrides the matching converter."""
    kind = KINDS[name]
    for declared, method in ((kind.modules, "from_module"), (kind.functions, "from_call"),
                             (kind.onnx_ops, "from_onnx")):
        if declared:
            assert getattr(kind, method).__func__ is not getattr(Layer, method).__func__, method


def _case(name: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    layer, shapes = KINDS[name].example(g)
    B = 3
    boxes = []
    for s in shapes:
        mid = 2 * torch.rand((B,) + s, generator=g, dtype=torch.float64) - 1
        rad = torch.rand((B,) + s, generator=g, dtype=torch.float64) * torch.tensor([0.0, 0.3, 2.0],
                                                                                  dtype=torch.float64).view(
            (B,) + (1,) * len(s))
        boxes.append((mid - rad, mid + rad))
    # points: random ones and corners of each box (P, B, *shape)
    P = 64
    pts = []
    for lo, hi in boxes:
        u = torch.rand((P,) + tuple(lo.shape), generator=g, dtype=torch.float64)
        u[: P // 4] = u[: P // 4].round()  # corners
        pts.append(lo + u * (hi - lo))
    return layer, shapes, boxes, pts, g


def _forward(layer: Layer, pts: list[torch.Tensor]) -> torch.Tensor:
    P, B = pts[0].shape[:2]
    out = layer.forward(*[p.reshape((P * B,) + tuple(p.shape[2:])) for p in pts])
    return out.reshape((P, B) + tuple(out.shape[1:]))


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interval_rule_contains_sampled_outputs(name: str, seed: int):
    layer, _, boxes, pts, _ = _case(name, seed)
    lo, hi = layer.interval(*boxes)
    out = _forward(layer, pts)
    assert lo.shape == hi.shape == out.shape[1:]
    assert bool((out >= lo - TOL).all()) and bool((out <= hi + TOL).all())
    # a zero-width box gives the forward value itself
    centre = [b[0] for b in boxes]
    c_lo, c_hi = layer.interval(*[(c, c) for c in centre])
    torch.testing.assert_close(c_lo, layer.forward(*centre))
    torch.testing.assert_close(c_hi, layer.forward(*centre))


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_rule_is_below_sampled_outputs(name: str, seed: int):
    layer, _, boxes, pts, g = _case(name, seed)
    out = _forward(layer, pts)
    M = 4
    A = torch.randn((out.shape[1], M) + tuple(out.shape[2:]), generator=g, dtype=torch.float64)
    relaxes: list[dict | None] = [None]
    init = layer.relax_init(boxes[0], M)
    if init is not None:  # the adaptive slopes, and random ones: any value in [0, 1] must be sound
        relaxes += [{"alpha": init}, {"alpha": torch.rand(init.shape, generator=g, dtype=torch.float64)}]
    for relax in relaxes:
        coefs, const = layer.backward(A, boxes, relax)
        assert len(coefs) == len(boxes) and const.shape == A.shape[:2]
        value = (A.unsqueeze(0) * out.unsqueeze(2)).flatten(3).sum(-1)  # (P, B, M)
        bound = const.unsqueeze(0).clone()
        for a, p in zip(coefs, pts):
            assert a.shape == A.shape[:2] + p.shape[2:]
            bound = bound + (a.unsqueeze(0) * p.unsqueeze(2)).flatten(3).sum(-1)
        assert bool((value >= bound - 1e-9 * (1 + value.abs())).all()), float((bound - value).max())


@pytest.mark.parametrize("name", KINDS)
def test_bounded_inputs_mask_fits_the_box(name: str):
    layer, _, boxes, _, _ = _case(name, 0)
    mask = layer.bounded_inputs(boxes[0])
    assert mask is None or (mask.dtype == torch.bool and mask.shape == boxes[0][0].shape)


def _range(layer: Layer, shapes, boxes, points: list[np.ndarray], c: np.ndarray, *, exact: bool, b: int = 0):
    """min and max of ``c . y`` over the layer's encoding on sample ``b``'s boxes with every input fixed
    to ``points``."""
    p = Problem()
    ins = [p.add_vars(x, x) for x in points]
    np_boxes = [(lo[b].reshape(-1).numpy(), hi[b].reshape(-1).numpy()) for lo, hi in boxes]
    olo, ohi = layer.interval(*boxes)
    out_box = (olo[b].reshape(-1).numpy(), ohi[b].reshape(-1).numpy())
    y = layer.encode(p, ins, np_boxes, out_box, in_shapes=shapes, exact=exact)
    p.tighten(y, *widen(*out_box))
    solver = open_solver(p)
    res = [solver.minimize({int(v): s * float(w) for v, w in zip(y, c) if w}) for s in (1.0, -1.0)]
    assert all(r.status == "optimal" for r in res), [r.status for r in res]
    return res[0].objective, -res[1].objective


@pytest.mark.parametrize("name", KINDS)
def test_lp_and_milp_encodings_contain_sampled_outputs(name: str):
    """On each sample's box (zero, small and wide radius), with the input fixed to a sampled point: the
    LP and MILP encodings contain the forward value; a kind whose MILP encoding is exact (``exact_milp``)
    gives exactly it."""
    layer, shapes, boxes, pts, g = _case(name, 3)
    out = _forward(layer, pts)
    for b in range(out.shape[1]):
        for k in range(4):
            points = [p[k, b].reshape(-1).numpy() for p in pts]
            value = out[k, b].reshape(-1).numpy()
            c = torch.randn(value.size, generator=g, dtype=torch.float64).numpy()
            want = float(c @ value)
            tol = 1e-6 * (1 + abs(want))
            for exact in (False, True):
                lo, hi = _range(layer, shapes, boxes, points, c, exact=exact, b=b)
                assert lo - tol <= want <= hi + tol
                if exact and type(layer).exact_milp:  # the input fixes the output
                    assert abs(lo - want) <= tol and abs(hi - want) <= tol


def test_supported_text_lists_exactly_the_registry():
    text = supported_text()
    entries = text.split("), ")
    assert [e.split(" (", 1)[0] for e in entries] == list(KINDS)
    for kind in kinds():
        for mod in kind.modules:
            assert f"nn.{mod.__name__}" in text
    # no torch module is named that no kind stands for
    named = {w for w in (w.strip("(),;") for w in text.split()) if w.startswith("nn.")}
    assert named == {f"nn.{m.__name__}" for k in kinds() for m in k.modules}


def test_readme_lists_the_supported_layers():
    from robustest.layers.registry import onnx_ops

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text().replace("\n", " ")
    assert supported_text() in readme
    assert f"ONNX operators the layer kinds import: {', '.join(sorted(onnx_ops()))}." in readme


def test_unsupported_module_error_lists_the_registry():
    from robustest.errors import UnsupportedLayer
    from robustest.graph import read_model

    with pytest.raises(UnsupportedLayer) as info:
        read_model(nn.Sequential(nn.Linear(2, 2), nn.ELU()).eval(), torch.zeros(1, 2))
    assert supported_text() in str(info.value)


def test_unsupported_onnx_operator_error_lists_the_registry_operators(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from robustest.errors import UnsupportedLayer
    from robustest.io.onnx_import import import_onnx
    from robustest.layers.registry import onnx_ops

    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="probs")], "bad",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(UnsupportedLayer) as info:
        import_onnx(path)
    listed = str(info.value).split("Supported: ", 1)[1].split(". Fix:", 1)[0].split(", ")
    assert onnx_ops() <= set(listed)


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_difference_rule_holds_at_sampled_point_pairs(name: str, seed: int):
    """``Layer.difference`` (the row-wise rounding bound's backward rule): for an exact input ``x`` in the
    box and a computed one ``x + e`` with ``|e| <= err``, any coefficients ``c'`` in the output's interval
    read the output difference as ``sum_in centre_in . d_in`` up to ``sum_in radius_in . |d_in|``."""
    layer, shapes, boxes, pts, g = _case(name, seed)
    P, B = pts[0].shape[:2]
    errs = [torch.rand(lo.shape, generator=g, dtype=torch.float64) * 0.2 for lo, _ in boxes]
    moved = [p + (2 * torch.rand(p.shape, generator=g, dtype=torch.float64) - 1) * e for p, e in zip(pts, errs)]
    d_out = _forward(layer, moved) - _forward(layer, pts)  # (P, B, *out)
    R = 2
    centre = torch.randn((B, R) + tuple(d_out.shape[2:]), generator=g, dtype=torch.float64)
    radius = torch.rand(centre.shape, generator=g, dtype=torch.float64) * 0.5
    rule = layer.difference((centre, radius), boxes, errs)
    if rule is None:
        pytest.skip(f"{name} has no difference rule (the a-priori rounding bound covers it)")
    assert len(rule) == len(shapes)
    for _ in range(4):
        c = centre + (2 * torch.rand(centre.shape, generator=g, dtype=torch.float64) - 1) * radius
        value = (c.unsqueeze(0) * d_out.unsqueeze(2)).flatten(3).sum(-1)  # (P, B, R)
        read, slack = torch.zeros_like(value), torch.zeros_like(value)
        for (ci, ri), p, q in zip(rule, pts, moved):
            assert ri.shape == ci.shape and bool((ri >= 0).all())
            d_in = (q - p).unsqueeze(2)
            read = read + (ci.unsqueeze(0) * d_in).flatten(3).sum(-1)
            slack = slack + (ri.unsqueeze(0) * d_in.abs()).flatten(3).sum(-1)
        assert bool(((value - read).abs() <= slack + 1e-9 * (1 + value.abs())).all()), name
