"""VNN-LIB parser: the competition files, linear terms, disjunctions, and errors with line and token."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustest.vnnlib import VnnlibSyntaxError, load_vnnlib, parse_vnnlib

HEAD = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 0.5))\n"


def test_mnist_fc_property(shared_dir):
    spec = load_vnnlib(shared_dir / "benchmarks/vnncomp2022_mnist_fc/vnnlib/prop_0_0.03.vnnlib")
    assert (spec.num_inputs, spec.num_outputs, len(spec.regions)) == (784, 10, 1)
    region = spec.regions[0]
    assert bool((region.lower <= region.upper).all()) and bool((region.upper - region.lower <= 0.06 + 1e-6).all())
    assert len(region.polytopes) == 9  # label 4 vs each other class
    for a, b in region.polytopes:
        assert a.shape == (1, 10) and float(b) == 0.0 and float(a[0, 4]) == 1.0 and float(a.sum()) == 0.0


def test_linear_terms_and_disjunction_of_input_boxes():
    text = HEAD + """
    (assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= (+ Y_0 (* 2 Y_1)) 3))
                (and (>= X_0 2) (<= X_0 3) (>= X_1 0) (<= X_1 1) (>= (- Y_0 Y_1) 0.5) (< Y_1 -1))))"""
    spec = parse_vnnlib(text)
    assert len(spec.regions) == 2
    r0, r1 = spec.regions
    assert r0.lower.tolist() == [0.0, 0.0] and r1.lower.tolist() == [2.0, 0.0]
    (a0, b0), = r0.polytopes
    assert a0.tolist() == [[1.0, 2.0]] and b0.tolist() == [3.0]
    (a1, b1), = r1.polytopes
    assert a1.tolist() == [[-1.0, 1.0], [0.0, 1.0]] and b1.tolist() == [-0.5, -1.0]
    assert spec.violated_by(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]))
    assert not spec.violated_by(torch.tensor([0.5, 0.5]), torch.tensor([2.0, 1.0]))
    assert spec.violated_by(torch.tensor([2.5, 0.0]), torch.tensor([0.0, -2.0]))
    assert not spec.violated_by(torch.tensor([1.5, 0.0]), torch.tensor([0.0, -2.0]))  # outside both boxes


@pytest.mark.parametrize("text, line, token", [
    (HEAD + BOX + "(assert (<= Y_0 Y_1)", 9, "("),               # unclosed
    (HEAD + BOX + "(assert (<= Y_0 Y_1)))", 9, ")"),              # one too many
    (HEAD + BOX + "(assert (=> Y_0 Y_1))", 9, "=>"),              # unknown operator
    (HEAD + BOX + "(assert (<= Y_0 Y_7))", 9, "Y_7"),             # undeclared
    (HEAD + BOX + "(assert (<= Y_0 abc))", 9, "abc"),             # not a number
    (HEAD + "(declare-const X_2 Int)\n" + BOX, 5, "Int"),         # wrong sort
    (HEAD + "(check-sat)\n" + BOX, 5, "check-sat"),               # unknown command
])
def test_malformed_names_line_and_token(text, line, token):
    with pytest.raises(VnnlibSyntaxError) as info:
        parse_vnnlib(text, source="bad.vnnlib")
    msg = str(info.value)
    assert f"line {line}," in msg and f"token {token!r}" in msg and "bad.vnnlib" in msg


def test_unbounded_input_and_mixed_constraint():
    with pytest.raises(VnnlibSyntaxError, match="X_1 has no lower or no upper bound"):
        parse_vnnlib(HEAD + "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= Y_0 Y_1))")
    with pytest.raises(VnnlibSyntaxError, match="mixes inputs and outputs"):
        parse_vnnlib(HEAD + BOX + "(assert (<= X_0 Y_1))")
    with pytest.raises(VnnlibSyntaxError, match="Y_0 is missing"):
        parse_vnnlib("(declare-const X_0 Real)(declare-const Y_1 Real)(assert (<= X_0 1))(assert (>= X_0 0))")


_coef = st.integers(-3, 3).map(float)


@given(rows=st.lists(st.tuples(_coef, _coef, _coef), min_size=1, max_size=3),
       ys=st.lists(st.tuples(st.floats(-4, 4), st.floats(-4, 4)), min_size=5, max_size=5),
       flip=st.booleans())
def test_parsed_polytope_agrees_with_the_formula(rows, ys, flip):
    """Writing rows as VNN-LIB and parsing them back gives a polytope with the same membership."""
    atoms = []
    for c0, c1, rhs in rows:
        lhs = f"(+ (* {c0} Y_0) (* {c1} Y_1))"
        atoms.append(f"(>= {rhs} {lhs})" if flip else f"(<= {lhs} {rhs})")
    spec = parse_vnnlib(HEAD + BOX + f"(assert (and {' '.join(atoms)}))")
    for y0, y1 in ys:
        inside = all(c0 * y0 + c1 * y1 <= rhs for c0, c1, rhs in rows)
        assert spec.violated_by(torch.tensor([0.0, 0.25]), torch.tensor([y0, y1], dtype=torch.float64)) == inside
