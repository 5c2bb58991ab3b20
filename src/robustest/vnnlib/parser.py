"""A parser for VNN-LIB, the property format of VNN-COMP.

A property declares inputs ``X_i`` and outputs ``Y_j`` and asserts the *counterexample* region: input
constraints and output constraints, combined with ``and``/``or``. It holds (``unsat``) when no input
in the region reaches the output constraints; it is violated (``sat``) otherwise.

    >>> spec = parse_vnnlib('''
    ... (declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)
    ... (assert (>= X_0 0.0)) (assert (<= X_0 1.0))
    ... (assert (or (and (>= Y_1 Y_0))))''')
    >>> len(spec.regions), spec.regions[0].lower.tolist(), spec.regions[0].upper.tolist()
    (1, [0.0], [1.0])
    >>> A, b = spec.regions[0].polytopes[0]
    >>> A.tolist(), b.tolist()          # Y_0 - Y_1 <= 0
    ([[1.0, -1.0]], [-0.0])

The result is a list of :class:`Region`: an input box and a disjunction of output polytopes
``A y <= b``; the property is violated when, for some region, some input of the box gives an output in
some polytope. Strict ``<``/``>`` are read as ``<=``/``>=`` (the usual convention of the competition).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

import torch

from ..errors import InvalidArgument

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["VnnlibSyntaxError", "Region", "VnnlibSpec", "parse_vnnlib", "load_vnnlib"]

#: the largest disjunctive normal form we expand (products of `or`s across asserts)
MAX_DISJUNCTS = 100_000
#: the deepest nesting of parentheses read (the formula walk is recursive; real properties use < 10)
MAX_DEPTH = 200


class VnnlibSyntaxError(InvalidArgument):
    """Malformed VNN-LIB; the message names the line and the token."""


@dataclass(frozen=True)
class Region:
    """One input box ``lower <= x <= upper`` (float64, flat) and the output polytopes ``A y <= b``."""

    lower: torch.Tensor
    upper: torch.Tensor
    polytopes: Tuple[Tuple[torch.Tensor, torch.Tensor], ...]


@dataclass(frozen=True)
class VnnlibSpec:
    """A parsed property: ``num_inputs`` X variables, ``num_outputs`` Y variables, its regions."""

    num_inputs: int
    num_outputs: int
    regions: Tuple[Region, ...]

    def violated_by(self, x: torch.Tensor, y: torch.Tensor, *, tol: float = 0.0) -> bool:
        """Whether the flat input ``x`` and output ``y`` form a counterexample (in a box, in a polytope)."""
        x64, y64 = x.detach().double().reshape(-1).cpu(), y.detach().double().reshape(-1).cpu()
        for r in self.regions:
            if bool(((x64 >= r.lower - tol) & (x64 <= r.upper + tol)).all()):
                for a, b in r.polytopes:
                    if bool((a @ y64 <= b + tol).all()):
                        return True
        return False


class _Tok:
    __slots__ = ("text", "line", "col")

    def __init__(self, text: str, line: int, col: int) -> None:
        self.text, self.line, self.col = text, line, col


_TOKEN = re.compile(r"\s+|;[^\n]*|\(|\)|[^\s();]+")


def _tokens(text: str, source: str) -> Iterator[_Tok]:
    line, line_start = 1, 0
    for m in _TOKEN.finditer(text):
        t = m.group()
        if t[0].isspace() or t[0] == ";":
            nl = t.count("\n")
            if nl:
                line += nl
                line_start = m.start() + t.rfind("\n") + 1
            continue
        yield _Tok(t, line, m.start() - line_start + 1)
    if _TOKEN.sub("", text):  # pragma: no cover - every character matches one alternative
        raise VnnlibSyntaxError(f"{source}: unreadable characters")


def _error(source: str, tok: _Tok, expected: str) -> VnnlibSyntaxError:
    return VnnlibSyntaxError(
        f"spec={source!r} is not valid: line {tok.line}, column {tok.col}, token {tok.text!r}: "
        f"expected {expected}. Fix: see the VNN-LIB format (declare-const X_i/Y_j Real, "
        "assert with <=/>= over X_i, Y_j, and/or)")


def _sexprs(text: str, source: str) -> List[Any]:
    """Nested lists of tokens; a token keeps its position for messages."""
    stack: List[List[Any]] = [[]]
    opens: List[_Tok] = []
    for tok in _tokens(text, source):
        if tok.text == "(":
            if len(opens) >= MAX_DEPTH:
                raise _error(source, tok, f"at most {MAX_DEPTH} nested parentheses")
            stack.append([])
            opens.append(tok)
        elif tok.text == ")":
            if len(stack) == 1:
                raise _error(source, tok, "no ')' here (it closes nothing)")
            done = stack.pop()
            opens.pop()
            if not done:
                raise _error(source, tok, "an expression inside '()'")
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if opens:
        raise _error(source, opens[-1], "a matching ')' for this '(' before the end of the file")
    return stack[0]


_VAR = re.compile(r"^([XY])_(\d+)$")
Linear = Tuple[Dict[str, float], float]  # {var: coef}, constant


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: Dict[str, _Tok] = {}

    def head(self, expr: Any) -> _Tok:
        if isinstance(expr, _Tok):
            return expr
        assert isinstance(expr, list)
        return self.head(expr[0])

    def linear(self, expr: Any) -> Linear:
        if isinstance(expr, _Tok):
            if expr.text in self.declared:
                return {expr.text: 1.0}, 0.0
            if _VAR.match(expr.text):
                raise _error(self.source, expr, f"a declared variable ({expr.text} has no declare-const)")
            try:
                value = float(expr.text)
            except ValueError:
                raise _error(self.source, expr, "a number or a declared variable X_i / Y_j") from None
            if not math.isfinite(value):  # float() reads nan/inf; (<= Y_0 nan) would be "unsat"
                raise _error(self.source, expr, "a finite number (NaN and infinities make no constraint)")
            return {}, value
        assert isinstance(expr, list)
        op = expr[0]
        if not isinstance(op, _Tok) or op.text not in ("+", "-", "*"):
            raise _error(self.source, self.head(expr), "a term: a number, a variable, or (+ ...), (- ...), (* c v)")
        args = [self.linear(e) for e in expr[1:]]
        if not args:
            raise _error(self.source, op, f"arguments after {op.text!r}")
        if op.text == "*":
            coef, const = {}, 1.0
            nonconst = [a for a in args if a[0]]
            if len(nonconst) > 1:
                raise _error(self.source, op, "a linear term (a product of at most one variable term)")
            for a in args:
                if not a[0]:
                    const *= a[1]
            if nonconst:
                coef = {k: v * const for k, v in nonconst[0][0].items()}
                return coef, nonconst[0][1] * const
            return {}, const
        sign = -1.0 if op.text == "-" else 1.0
        if op.text == "-" and len(args) == 1:
            return {k: -v for k, v in args[0][0].items()}, -args[0][1]
        out: Dict[str, float] = dict(args[0][0])
        const = args[0][1]
        for a in args[1:]:
            for k, v in a[0].items():
                out[k] = out.get(k, 0.0) + sign * v
            const += sign * a[1]
        return out, const

    def dnf(self, expr: Any) -> List[List[Linear]]:
        """A formula as a list of conjunctions of atoms ``expr <= 0``."""
        if isinstance(expr, _Tok) or not expr:
            raise _error(self.source, self.head(expr), "a formula such as (<= X_0 1.0), (and ...) or (or ...)")
        op = expr[0]
        if not isinstance(op, _Tok):
            raise _error(self.source, self.head(expr), "an operator: and, or, <=, >=, <, >")
        if op.text == "and":
            parts = [self.dnf(e) for e in expr[1:]]
            out: List[List[Linear]] = [[]]
            for p in parts:
                if len(out) * len(p) > MAX_DISJUNCTS:
                    raise _error(self.source, op, f"at most {MAX_DISJUNCTS} disjuncts once expanded")
                out = [a + b for a in out for b in p]
            return out
        if op.text == "or":
            return [c for e in expr[1:] for c in self.dnf(e)]
        if op.text in ("<=", ">=", "<", ">"):
            if len(expr) != 3:
                raise _error(self.source, op, f"({op.text} lhs rhs) with two operands")
            (lc, lk), (rc, rk) = self.linear(expr[1]), self.linear(expr[2])
            if op.text in (">=", ">"):
                (lc, lk), (rc, rk) = (rc, rk), (lc, lk)
            diff = dict(lc)
            for k, v in rc.items():
                diff[k] = diff.get(k, 0.0) - v
            return [[({k: v for k, v in diff.items() if v != 0.0}, lk - rk)]]
        raise _error(self.source, op, "an operator: and, or, <=, >=, <, >")


def parse_vnnlib(text: str, *, source: str = "<string>") -> VnnlibSpec:
    """Parse VNN-LIB ``text`` (see the module docstring). Raises :class:`VnnlibSyntaxError`."""
    p = _Parser(source)
    asserts: List[Tuple[_Tok, Any]] = []
    for expr in _sexprs(text, source):
        if isinstance(expr, _Tok):
            raise _error(source, expr, "'(' starting a declare-const or assert")
        assert isinstance(expr, list)
        cmd = expr[0]
        if not isinstance(cmd, _Tok):
            raise _error(source, p.head(expr), "declare-const or assert")
        if cmd.text == "declare-const":
            if len(expr) != 3 or not isinstance(expr[1], _Tok) or not _VAR.match(expr[1].text):
                raise _error(source, p.head(expr[1]) if len(expr) > 1 else cmd, "(declare-const X_i Real)")
            if not isinstance(expr[2], _Tok) or expr[2].text != "Real":
                raise _error(source, p.head(expr[2]), "the sort Real")
            if expr[1].text in p.declared:
                first = p.declared[expr[1].text]
                raise _error(source, expr[1], f"one declaration per variable ({expr[1].text} is declared "
                                              f"already on line {first.line})")
            p.declared[expr[1].text] = expr[1]
        elif cmd.text == "assert":
            if len(expr) != 2:
                raise _error(source, cmd, "(assert FORMULA) with one formula")
            asserts.append((cmd, expr[1]))
        else:
            raise _error(source, cmd, "declare-const or assert")
    n_in = _count(p.declared, "X", source)
    n_out = _count(p.declared, "Y", source)
    # Conjunction of all asserts: pure input bounds go to the shared box; the rest is expanded.
    lower = torch.full((n_in,), -float("inf"), dtype=torch.float64, device="cpu")  # data: users move it
    upper = torch.full((n_in,), float("inf"), dtype=torch.float64, device="cpu")
    cases: List[List[Linear]] = [[]]
    for cmd, formula in asserts:
        dnf = p.dnf(formula)
        if len(dnf) == 1 and all(_is_bound(a) for a in dnf[0]):
            for atom in dnf[0]:
                _apply_bound(atom, lower, upper)
            continue
        if len(cases) * len(dnf) > MAX_DISJUNCTS:
            raise _error(source, cmd, f"at most {MAX_DISJUNCTS} disjuncts once expanded")
        cases = [a + b for a in cases for b in dnf]
    regions: Dict[Tuple[bytes, bytes], List[Tuple[torch.Tensor, torch.Tensor]]] = {}
    boxes: Dict[Tuple[bytes, bytes], Tuple[torch.Tensor, torch.Tensor]] = {}
    for case in cases:
        lo, hi = lower.clone(), upper.clone()
        rows: List[Tuple[Dict[str, float], float]] = []
        for coefs, const in case:
            kinds = {k[0] for k in coefs}
            if kinds == {"X"} and len(coefs) == 1:
                _apply_bound((coefs, const), lo, hi)
            elif kinds <= {"Y"}:
                rows.append((coefs, const))
            else:
                raise VnnlibSyntaxError(
                    f"spec={source!r} is not valid: a constraint over {sorted(coefs)} mixes inputs and "
                    "outputs or couples several inputs; expected input bounds on single X_i and linear "
                    "constraints over Y_j. Fix: write the input region as a box")
        key = (lo.numpy().tobytes(), hi.numpy().tobytes())
        boxes[key] = (lo, hi)
        a = torch.zeros((len(rows), n_out), dtype=torch.float64, device="cpu")
        b = torch.zeros(len(rows), dtype=torch.float64, device="cpu")
        for i, (coefs, const) in enumerate(rows):
            for k, v in coefs.items():
                a[i, int(k[2:])] += v
            b[i] = -const
        regions.setdefault(key, []).append((a, b))
    out = []
    for key, polys in regions.items():
        lo, hi = boxes[key]
        if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            missing = int((~(torch.isfinite(lo) & torch.isfinite(hi))).nonzero()[0])
            raise VnnlibSyntaxError(f"spec={source!r} is not valid: input X_{missing} has no lower or no "
                                    "upper bound; expected a bounded box for every X_i. Fix: assert "
                                    f"(>= X_{missing} lo) and (<= X_{missing} hi)")
        if bool((lo > hi).any()):
            continue  # an empty box can hold no counterexample
        out.append(Region(lo, hi, tuple(polys)))
    return VnnlibSpec(n_in, n_out, tuple(out))


def load_vnnlib(path: PathLike) -> VnnlibSpec:
    """Read and parse a ``.vnnlib`` file."""
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(f"spec={str(path)!r} is not valid: expected an existing .vnnlib file. "
                              "Fix: check the path")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VnnlibSyntaxError(f"spec={str(path)!r} is not valid: expected UTF-8 (ASCII) text, byte "
                                f"{exc.start} is 0x{exc.object[exc.start]:02x}. Fix: pass the .vnnlib text file "
                                "(not a compressed or binary one)") from None
    except OSError as exc:
        raise InvalidArgument(f"spec={str(path)!r} is not valid: expected a readable file ({exc.strerror}). "
                              "Fix: check the path and its permissions") from None
    return parse_vnnlib(text, source=str(path))


def _count(declared: Dict[str, _Tok], kind: str, source: str) -> int:
    idx = sorted(int(k[2:]) for k in declared if k[0] == kind)
    if not idx:
        raise VnnlibSyntaxError(f"spec={source!r} is not valid: expected declared {kind}_0, {kind}_1, ... "
                                f"but found no {kind} variable. Fix: add (declare-const {kind}_0 Real)")
    if idx != list(range(len(idx))):
        gap = next(i for i, v in enumerate(idx) if i != v)
        raise VnnlibSyntaxError(f"spec={source!r} is not valid: the {kind} variables are not numbered "
                                f"0..{len(idx) - 1} ({kind}_{gap} is missing). Fix: declare {kind}_{gap}")
    return len(idx)


def _is_bound(atom: Linear) -> bool:
    coefs, _ = atom
    return len(coefs) == 1 and next(iter(coefs))[0] == "X"


def _apply_bound(atom: Linear, lo: torch.Tensor, hi: torch.Tensor) -> None:
    (name, coef), = atom[0].items()
    i, value = int(name[2:]), -atom[1] / coef
    if coef > 0:
        hi[i] = min(float(hi[i]), value)
    else:
        lo[i] = max(float(lo[i]), value)

