"""VNN-LIB inputs that were silently wrong or raised raw errors: each is a clear VnnlibSyntaxError or
ShapeError naming the line/argument and the fix."""

from __future__ import annotations

import pytest
from torch import nn

from robustest.errors import ShapeError
from robustest.vnnlib import load_vnnlib, parse_vnnlib, verify
from robustest.vnnlib.parser import VnnlibSyntaxError

HEAD = "(declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)\n" \
       "(assert (>= X_0 0.0)) (assert (<= X_0 1.0))\n"


@pytest.mark.parametrize("const", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_constants_are_refused(const):
    """`(assert (<= Y_0 nan))` was read as a constraint no output meets, so the property was "unsat"."""
    with pytest.raises(VnnlibSyntaxError, match=r"line 3.*finite number.*Fix:"):
        parse_vnnlib(HEAD + f"(assert (<= Y_0 {const}))")


def test_duplicate_declaration_is_refused():
    with pytest.raises(VnnlibSyntaxError, match=r"line 3.*X_0 is declared already on line 1"):
        parse_vnnlib(HEAD + "(declare-const X_0 Real)\n(assert (<= Y_0 Y_1))")


def test_deep_nesting_is_a_syntax_error_not_a_recursion_error():
    deep = "(assert " + "(and " * 5000 + "(<= Y_0 Y_1)" + ")" * 5000 + ")"
    with pytest.raises(VnnlibSyntaxError, match="nested parentheses"):
        parse_vnnlib(HEAD + deep)


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "p.vnnlib"
    path.write_bytes(HEAD.encode() + b"(assert (<= Y_0 \xff\xfe))")
    with pytest.raises(VnnlibSyntaxError, match=r"UTF-8.*0xff.*Fix:"):
        load_vnnlib(path)


def test_output_count_that_does_not_match_the_network():
    spec = parse_vnnlib(HEAD + "(assert (<= Y_0 Y_1))")
    net = nn.Sequential(nn.Linear(1, 3)).eval()
    with pytest.raises(ShapeError, match=r"spec=.*2 outputs.*network gives: 3.*Fix:"):
        verify(net, spec, input_shape=(1,), timeout=5)


def test_input_shape_the_network_does_not_take():
    text = "(declare-const X_0 Real) (declare-const X_1 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)\n" \
           + "".join(f"(assert (>= X_{i} 0.0)) (assert (<= X_{i} 1.0))" for i in range(2)) + "(assert (<= Y_0 Y_1))"
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(2, 2)).eval()
    with pytest.raises(ShapeError, match=r"input_shape=\[2\].*network accepts.*Fix: pass --input-shape"):
        verify(net, parse_vnnlib(text), input_shape=(2,), timeout=5)
