"""``robustest.repair``: cutting-plane adversary correction (Algorithm 1 of Zhao & Kronqvist 2024).

Find weights ``w`` close to the trained ``w0`` that classify given adversarial points correctly without
raising the training loss: minimise ``||w - w0||^2`` subject to linearised "true logit >= other logit"
cuts for every adversarial point and a linearised "loss no worse than L(w0)" cut. Cuts are added at every
QP minimiser and kept (the objective stays anchored at ``w0``); after each QP, ten candidates on the
segment from ``w0`` towards the minimiser join a pool, and the final model is the Pareto candidate with
the best weighted sum of scaled violation V and loss L (``omega`` weights the loss).
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import ModelError, invalid_argument
from ..results import Report
from ..solvers.dual import DualQP
from ..spec import Bound, LpBall, dual_norm, normalize_norm
from ..validate import as_inputs, as_labels, as_seed
from .block import block_solve, draw_free_set
from .guided_settings import METHODS, GuidedSettings
from .guided_types import GuidedRepairResult, RepairTest
from .jacobian import FlatModel, violation
from .qp import SOLVERS, QPSolution, get_solver
from .result import Candidate, QPRecord, RepairResult
from .robust_loss import adversarial_loss
from .select import select
from .source import from_attack, from_report

Data = Tuple[Any, Any]


def repair(model: torch.nn.Module, adversarial: Union[Data, Report, None] = None, train: Optional[Data] = None,
           *, iterations: int = 20, steps: int = 10, omega: float = 0.2, loss_slack: float = 0.0,
           margin: float = 0.0, robust_linearisation: bool = False, robust_radius: Optional[float] = None,
           block: Optional[float] = None, block_rounds: int = 2, solver: str = "dual",
           eps: Optional[float] = None, norm: str = "linf",
           domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), seed: int = 0, n_adversarial: int = 10,
           violation_kind: str = "sum", wrong_classes: Union[str, int] = "all",
           loss_subsample: Optional[int] = None, penalty: float = 1e6, evaluate: Optional[Data] = None,
           stop_when_fixed: bool = False, step_grid: Optional[Sequence[float]] = None,
           time_limit: Optional[float] = None, loss_eps: Optional[float] = None, loss_eps_decrease: float = 0.0,
           protect: Optional[Data] = None,
           test: Optional[RepairTest] = None, until: str = "passes",
           method: str = "auto", holdout: Optional[Data] = None,
           guided: Optional[GuidedSettings] = None) -> Union[RepairResult, GuidedRepairResult]:
    """Repair a copy of ``model`` so that it classifies the adversarial points correctly, or, given a
    failing ``test``, so that the test passes.

    With ``test=RepairTest(inputs, labels, check={...}, min_pass=..., require=...)`` the default is the
    counterexample-guided repair (:mod:`robustest.repair.guided`, ``until="passes"``): rounds of attack,
    cuts for every counterexample so far, QP step and re-check until the test passes, a budget runs out
    or held-out clean accuracy would drop by more than ``guided.accuracy_tolerance``; it returns a
    :class:`~robustest.repair.guided_types.GuidedRepairResult`. ``train`` is then the training data (a
    share is held out unless ``holdout=`` is given); ``method`` is "auto" (the default: "guided", then
    "adversarial-finetune" from the original model when the guided model is not accepted as a fix,
    :mod:`robustest.repair.auto`), "guided", "one-shot" (one round) or "adversarial-finetune" (PGD
    training steps in the same rounds); ``until="fixed"`` is "one-shot";
    ``guided`` holds the rounds' settings (:class:`~robustest.repair.guided_settings.GuidedSettings`;
    the one-shot options below are refused with a test, so that none is silently ignored);
    ``adversarial`` may be the test's report (saves one check). Without ``test`` it is one cutting-plane
    repair of the given points (below).

    ``adversarial`` is ``(x_adv, y)`` (y: the clean labels), a :class:`~robustest.results.Report` whose
    falsified samples' counterexamples are used, or ``None`` to run PGD at ``eps`` on the training data
    and keep ``n_adversarial`` successes. ``train=(x, y)`` defines the loss L (``loss_subsample`` draws a
    fixed subset). Options: ``iterations`` master QPs, ``steps`` candidates per QP (t = 1/steps .. 1, or
    ``step_grid``), ``omega`` in [0, 1] (0: least violation), ``loss_slack`` tau in ``L(w) <= L(w0) +
    tau``, ``margin`` kappa in the cuts (``g >= kappa``), ``robust_linearisation`` (eq. 18: tighten each
    cut by ``robust_radius`` (default ``eps``) times the dual norm of the input gradient), ``block`` (the
    share of each layer's weights fixed per round of Algorithm 2; ``None`` solves the QP exactly),
    ``solver`` ("dual", "highs", "gurobi"), ``penalty`` (the elastic weight: cuts that cannot all hold
    leave a reported slack instead of failing), ``wrong_classes`` ("all", or k: only the k strongest wrong
    classes per point, fewer rows), ``evaluate=(x, y)`` for the before/after accuracies (default: the
    training data); with ``eps`` the robust accuracy under PGD is reported too; ``time_limit`` (seconds)
    stops the master QPs early (a note says so); ``loss_eps`` adds a second loss cut on the *adversarial*
    training loss (cross-entropy at PGD points at ``loss_eps`` of the loss data, recomputed at every cut
    point: "the repair may not make the training data less robust", to first order; an engineering
    choice, not the paper's; ``loss_eps_decrease`` in [0, 1) asks it to fall by that share instead); ``protect=(x, y)``: points (e.g. the worst points of the training samples
    near the counterexamples) whose margins may not fall below ``min(margin, their margin now)``, with
    plain cuts: what a correction may not break on its way (an engineering choice). The input model is
    never modified.

    Example::

        result = robustest.repair(model, adversarial=(x_adv, y_adv), train=(x_train, y_train))
        print(result.summary())
        fixed_model = result.model
    """
    t_start = time.perf_counter()
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model={type(model).__name__} is not valid: expected a torch.nn.Module. Fix: "
                         "repair changes weights, so pass the module itself (not a function or state_dict)")
    if test is not None or method != "auto":
        _one_shot_only({"iterations": iterations, "steps": steps, "omega": omega, "loss_slack": loss_slack,
                        "margin": margin, "robust_linearisation": robust_linearisation,
                        "robust_radius": robust_radius, "block": block, "block_rounds": block_rounds,
                        "solver": solver, "eps": eps, "norm": norm, "n_adversarial": n_adversarial,
                        "violation_kind": violation_kind, "wrong_classes": wrong_classes,
                        "loss_subsample": loss_subsample, "penalty": penalty, "evaluate": evaluate,
                        "stop_when_fixed": stop_when_fixed, "step_grid": step_grid, "time_limit": time_limit,
                        "loss_eps": loss_eps, "loss_eps_decrease": loss_eps_decrease,
                        "protect": protect})
        return _guided(model, adversarial, train, test=test, until=until, method=method, holdout=holdout,
                       settings=guided, domain=domain, seed=seed)
    _check_options(iterations=iterations, steps=steps, omega=omega, loss_slack=loss_slack, margin=margin,
                   solver=solver, block_rounds=block_rounds, n_adversarial=n_adversarial,
                   violation_kind=violation_kind, wrong_classes=wrong_classes, penalty=penalty,
                   loss_eps_decrease=loss_eps_decrease)
    seed = as_seed(seed)
    norm = normalize_norm(norm)
    if block is not None and (isinstance(block, bool) or not isinstance(block, (int, float)) or not 0 <= block < 1):
        raise invalid_argument("block", block, "the share of weights to fix, in [0, 1), or None",
                               "use block=0.8 (the paper's ResNet8 setting) or block=None for the exact QP")
    if eps is not None:
        LpBall(eps=eps, norm=norm, domain=domain)  # validates eps and domain
    if train is None:
        raise invalid_argument("train", None, "the training data (x, y) that defines the loss L",
                               "pass train=(x_train, y_train) (a subsample is fine)")
    x_tr, y_tr = _data("train", train, domain)
    work = copy.deepcopy(model).eval()
    fm = FlatModel(work)
    z_tr = _forward_checked(fm, x_tr, y_tr, "train")
    K = z_tr.shape[1]

    # ------------------------------------------------------------------ adversarial points
    notes: List[str] = []
    if isinstance(adversarial, Report):
        x_adv, y_adv = from_report(adversarial, like=x_tr)
    elif adversarial is None:
        if eps is None:
            raise invalid_argument("adversarial", None, "(x_adv, y), a check Report, or eps= to run PGD",
                                   "pass adversarial=(x_adv, y_adv), or eps=0.1 to attack the training data")
        x_adv, y_adv = from_attack(work, x_tr, y_tr, eps=eps, norm=norm, domain=domain, count=n_adversarial,
                                   seed=seed)
        notes.append(f"{len(y_adv)} adversarial points from PGD at eps={eps:g} {norm} on the training data")
    else:
        x_adv, y_adv = _data("adversarial", adversarial, None)
    if len(y_adv) == 0:
        raise invalid_argument("adversarial", "0 points", "at least one adversarial point",
                               "pass the counterexamples to fix, or adversarial=None with eps=...")
    x_adv = x_adv.to(device=x_tr.device, dtype=x_tr.dtype)
    z_adv = _forward_checked(fm, x_adv, y_adv, "adversarial", classes=K)
    if margin == 0.0 and bool((z_adv.argmax(1) == y_adv).all()) and violation(z_adv, y_adv) == 0.0:
        raise invalid_argument("adversarial", f"{len(y_adv)} points",
                               "points the model misclassifies", "nothing to fix: the model already classifies "
                               "every adversarial point correctly")

    x_loss, y_loss = _subsample(x_tr, y_tr, loss_subsample, seed)
    x_pr, y_pr = _data("protect", protect, None) if protect is not None else (x_adv[:0], y_adv[:0])
    x_pr = x_pr.to(device=x_tr.device, dtype=x_tr.dtype)
    if len(y_pr):
        _forward_checked(fm, x_pr, y_pr, "protect", classes=K)
    floor_pr = None if not len(y_pr) else fm.margin_cuts(fm.w0, x_pr, y_pr, wrong_classes="all")[1].clamp_max(margin)
    x_ev, y_ev = _data("evaluate", evaluate, domain) if evaluate is not None else (x_tr, y_tr)
    w0 = fm.w0
    input_norm = None
    delta = 0.0
    if robust_linearisation:
        delta = float(robust_radius if robust_radius is not None else (eps if eps is not None else -1))
        if not delta >= 0:
            raise invalid_argument("robust_radius", robust_radius, "a radius >= 0 for the robust cuts",
                                   "pass robust_radius=0.05 or eps=0.05")
        input_norm = dual_norm(norm)

    timer = {"qp": 0.0, "grad": 0.0, "eval": 0.0}
    tic = time.perf_counter()
    L0, grad0 = fm.loss_and_grad(w0, x_loss, y_loss)
    loss_ball = None if loss_eps is None else LpBall(eps=loss_eps, norm=norm, domain=domain)
    adv_loss0 = None if loss_ball is None else adversarial_loss(fm, w0, x_loss, y_loss, ball=loss_ball, seed=seed)[0]
    timer["grad"] += time.perf_counter() - tic

    def cuts(v: torch.Tensor) -> Tuple[torch.Tensor, np.ndarray]:
        """Margin rows and the loss row at v, as (A, r) in the step d = w - w0."""
        tic = time.perf_counter()
        rows, g, rob = fm.margin_cuts(v, x_adv, y_adv, wrong_classes=wrong_classes, input_norm=input_norm)
        Lv, dL = (L0, grad0) if v is w0 else fm.loss_and_grad(v, x_loss, y_loss)
        timer["grad"] += time.perf_counter() - tic
        shift = (v - w0).to(rows.dtype)
        r_adv = (rows @ shift - g + margin).double()
        if rob is not None:
            r_adv = r_adv + delta * rob.double()
        r_loss = [Lv + float(dL @ (w0 - v)) - L0 - loss_slack]
        loss_rows = [-dL.unsqueeze(0).to(rows.dtype)]
        if loss_ball is not None and adv_loss0 is not None:
            tic = time.perf_counter()
            La, dLa = adversarial_loss(fm, v, x_loss, y_loss, ball=loss_ball, seed=seed)
            timer["grad"] += time.perf_counter() - tic
            r_loss.append(La + float(dLa @ (w0 - v)) - adv_loss0 * (1.0 - loss_eps_decrease) - loss_slack)
            loss_rows.append(-dLa.unsqueeze(0).to(rows.dtype))
        parts, rhs = [rows], [r_adv.cpu().numpy()]
        if floor_pr is not None:
            tic = time.perf_counter()
            rows_p, g_p, _ = fm.margin_cuts(v, x_pr, y_pr, wrong_classes="all")
            timer["grad"] += time.perf_counter() - tic
            parts.append(rows_p)
            rhs.append((rows_p @ shift - g_p + floor_pr).double().cpu().numpy())
        A = torch.cat([*parts, *loss_rows])
        r = np.concatenate([*rhs, r_loss])
        return A, r

    grid = _grid(steps, step_grid)
    generator = torch.Generator().manual_seed(seed)
    exact = DualQP(penalty=penalty) if (solver == "dual" and block is None) else None
    all_A: List[torch.Tensor] = []
    all_r: List[np.ndarray] = []
    pool: List[Candidate] = []
    stars: List[torch.Tensor] = []
    records: List[QPRecord] = []
    V0 = violation(z_adv, y_adv, kind=violation_kind)
    A, r = cuts(w0)
    for k in range(1, iterations + 1):
        tic = time.perf_counter()
        if exact is not None:
            exact.add_rows(A, r)
            sol = exact.solve()
        else:
            all_A.append(A)
            all_r.append(r)
            sol = _solve_stacked(torch.cat(all_A), np.concatenate(all_r), solver=solver, block=block,
                                 rounds=block_rounds, penalty=penalty, fm=fm, generator=generator)
        seconds = time.perf_counter() - tic
        timer["qp"] += seconds
        rows = exact.rows if exact is not None else sum(len(a) for a in all_r)
        records.append(QPRecord(iteration=k, rows=rows, status=sol.status, slack=sol.slack,
                                objective=sol.objective, seconds=seconds))
        d = sol.d.to(w0.dtype)
        stars.append(d)
        tic = time.perf_counter()
        norm_d = float(d.norm())
        for t in grid:
            w = w0 + t * d
            z = fm.logits_batched(w, x_adv)
            pool.append(Candidate(iteration=k, step=t, violation=violation(z, y_adv, kind=violation_kind),
                                  loss=fm.loss(w, x_loss, y_loss), fixed=int((z.argmax(1) == y_adv).sum()),
                                  distance=t * norm_d))
        timer["eval"] += time.perf_counter() - tic
        if stop_when_fixed and min(c.violation for c in pool) == 0.0:
            break
        if time_limit is not None and time.perf_counter() - t_start >= time_limit:
            notes.append(f"stopped after {k} of {iterations} QPs: time_limit={time_limit:g} s reached")
            break
        if k < iterations:
            A, r = cuts(w0 + d)

    chosen = select([c.violation for c in pool], [c.loss for c in pool], omega=omega)
    w_final = w0 if chosen is None else w0 + pool[chosen].step * stars[pool[chosen].iteration - 1]
    fm.write(w_final)
    if any(q.status == "elastic" for q in records):
        notes.append(f"the cuts could not all be met (largest slack {max(q.slack for q in records):.3g}): "
                     "the points conflict with each other or with the loss cut; try loss_slack>0")
    if any(q.status == "iteration_limit" for q in records):
        notes.append("a master QP stopped at its iteration limit (its step is still used; see result.qp)")

    tic = time.perf_counter()
    before = _metrics(model, x_ev, y_ev, x_adv, y_adv, eps=eps, norm=norm, domain=domain, seed=seed)
    after = _metrics(work, x_ev, y_ev, x_adv, y_adv, eps=eps, norm=norm, domain=domain, seed=seed)
    z_after = fm.logits_batched(w_final, x_adv)
    timer["eval"] += time.perf_counter() - tic
    return RepairResult(
        model=work, candidates=tuple(pool), chosen=chosen, distance=float((w_final - w0).norm()),
        violation_before=V0, violation_after=violation(z_after, y_adv, kind=violation_kind),
        loss_before=L0, loss_after=fm.loss(w_final, x_loss, y_loss),
        clean_accuracy_before=before[0], clean_accuracy_after=after[0],
        adversarial_accuracy_before=before[1], adversarial_accuracy_after=after[1],
        robust_accuracy_before=before[2], robust_accuracy_after=after[2],
        n_adversarial=int(len(y_adv)), n_parameters=fm.n, qp=tuple(records), qp_seconds=timer["qp"],
        gradient_seconds=timer["grad"], evaluation_seconds=timer["eval"],
        seconds=time.perf_counter() - t_start, solver=solver + ("" if block is None else f"+block{block:g}"),
        omega=float(omega), notes=tuple(notes), start=w0, directions=tuple(stars))


# ---------------------------------------------------------------------------------------- helpers
def _guided(model: torch.nn.Module, adversarial: Any, train: Optional[Data], *, test: Optional[RepairTest],
            until: str, method: str, holdout: Optional[Data], settings: Optional[GuidedSettings], domain: Any,
            seed: int) -> GuidedRepairResult:
    from .auto import auto_repair
    from .guided import guided_repair

    if not isinstance(test, RepairTest):
        raise invalid_argument("test", test, "a RepairTest (the failing test's samples, check options, criterion)",
                               "pass test=RepairTest(x, y, check={'eps': 0.1}) from robustest.repair.guided_types")
    if until not in ("passes", "fixed"):
        raise invalid_argument("until", until, "'passes' (rounds until the test passes) or 'fixed' (one round)",
                               "leave until='passes' out, or pass until='fixed'")
    if method not in METHODS:
        raise invalid_argument("method", method, f"one of {', '.join(METHODS)}", "use method='auto'")
    if settings is not None and not isinstance(settings, GuidedSettings):
        raise invalid_argument("guided", type(settings).__name__, "a GuidedSettings", "pass guided=GuidedSettings()")
    if adversarial is not None and not isinstance(adversarial, Report):
        raise invalid_argument("adversarial", type(adversarial).__name__, "the test's Report or None (with test=, "
                               "the rounds find the counterexamples)", "leave adversarial out")
    data = {"train": None if train is None else _data("train", train, domain),
            "holdout": None if holdout is None else _data("holdout", holdout, domain)}
    if method == "auto" and until != "fixed":
        return auto_repair(model, test, **data, settings=settings or GuidedSettings(), seed=as_seed(seed),
                           before=adversarial)
    return guided_repair(model, test, **data, settings=settings or GuidedSettings(),
                         method="one-shot" if until == "fixed" else method, seed=as_seed(seed), before=adversarial)


def _one_shot_only(given: Dict[str, Any]) -> None:
    """Refuse a one-shot option passed together with ``test=`` (the rounds take theirs from ``guided=``)."""
    params = inspect.signature(repair).parameters
    for name, value in given.items():
        default = params[name].default
        if value is not default and value != default:
            raise invalid_argument(name, value, f"the default ({default!r}) when test= is given: the guided rounds "
                                   "take their settings from guided=GuidedSettings(...)",
                                   f"leave {name} out, or set its counterpart in GuidedSettings (margin, iterations, "
                                   "robust_linearisation, loss_subsample, time_budget), or drop test= for one repair")


def _solve_stacked(A: torch.Tensor, r: np.ndarray, *, solver: str, block: Optional[float], rounds: int,
                   penalty: float, fm: FlatModel, generator: torch.Generator) -> QPSolution:
    if block is None:
        return get_solver(solver)(A, r, penalty=penalty)
    layout = fm.layer_slices()
    free = [draw_free_set(layout, fix=block, generator=generator, device=A.device) for _ in range(rounds)]
    return block_solve(A, r, free_sets=free, penalty=penalty, solver=solver)


def _metrics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
             y_adv: torch.Tensor, *, eps: Optional[float], norm: str, domain: Any,
             seed: int) -> Tuple[float, float, Optional[float]]:
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
        adv = float((model(x_adv).argmax(1) == y_adv).float().mean())
    robust = None
    if eps is not None:
        from ..api import attack

        res = attack(model, x, y, eps=eps, norm=norm, method="pgd", domain=domain, seed=seed)
        with torch.no_grad():
            correct = model(x).argmax(1) == y
        robust = float((correct & ~res.success).float().mean())
    return clean, adv, robust


def _data(name: str, data: Any, domain: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise invalid_argument(name, type(data).__name__, "a pair (inputs, labels)",
                               f"pass {name}=(x, y) with one label per input")
    x = as_inputs(data[0], domain, allow_empty=True)  # an empty set gets repair's own message
    return x, as_labels(data[1], x.shape[0], x.device)


def _forward_checked(fm: FlatModel, x: torch.Tensor, y: torch.Tensor, name: str,
                     classes: Optional[int] = None) -> torch.Tensor:
    try:
        z = fm.logits_batched(fm.w0, x)
    except RuntimeError as exc:
        raise invalid_argument(name, f"inputs of shape {tuple(x.shape)}", "inputs the model accepts",
                               f"reshape them to what the model takes ({str(exc).splitlines()[0][:120]})") from None
    if z.dim() != 2 or z.shape[1] < 2 or (classes is not None and z.shape[1] != classes):
        raise ModelError(f"model output={tuple(z.shape)} is not valid: expected logits (N, K) with K >= 2. "
                         "Fix: return one row of class scores per input")
    k = z.shape[1]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        bad = y[(y < 0) | (y >= k)][:5].tolist()
        raise invalid_argument(f"{name} labels", bad, f"class indices in [0, {k - 1}] (the model has {k} outputs)",
                               "check that the labels match the model's classes")
    return z


def _subsample(x: torch.Tensor, y: torch.Tensor, size: Optional[int], seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    if size is None or size >= len(y):
        return x, y
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise invalid_argument("loss_subsample", size, "an int >= 1 or None", "pass loss_subsample=10000")
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:size].to(x.device)
    return x[idx], y[idx]


def _grid(steps: int, step_grid: Optional[Sequence[float]]) -> List[float]:
    if step_grid is None:
        return [(i + 1) / steps for i in range(steps)]
    grid = [float(t) for t in step_grid]
    if not grid or any(not (0 < t <= 1) for t in grid):
        raise invalid_argument("step_grid", step_grid, "step sizes in (0, 1]", "pass step_grid=[0.1, 0.5, 1.0]")
    return grid


def _check_options(*, iterations: int, steps: int, omega: float, loss_slack: float, margin: float, solver: str,
                   block_rounds: int, n_adversarial: int, violation_kind: str, wrong_classes: Any,
                   penalty: float, loss_eps_decrease: float) -> None:
    for name, value in (("iterations", iterations), ("steps", steps), ("block_rounds", block_rounds),
                        ("n_adversarial", n_adversarial)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid_argument(name, value, "an integer >= 1", f"pass {name}=10")
    if isinstance(omega, bool) or not isinstance(omega, (int, float)) or not 0 <= omega <= 1:
        raise invalid_argument("omega", omega, "a number in [0, 1]",
                               "use omega=0 (least violation), 0.2 (default) or 0.4 (favour the loss)")
    for fname, fvalue in (("loss_slack", loss_slack), ("margin", margin)):
        if not isinstance(fvalue, (int, float)) or not math.isfinite(fvalue) or fvalue < 0:
            raise invalid_argument(fname, fvalue, "a finite number >= 0", f"pass {fname}=0.0")
    if solver not in SOLVERS:
        raise invalid_argument("solver", solver, f"one of {sorted(SOLVERS)}",
                               "use solver='dual' (fast, no dependency) or 'highs' to cross-check")
    if violation_kind not in ("sum", "max"):
        raise invalid_argument("violation_kind", violation_kind, "'sum' or 'max'", "use violation_kind='sum'")
    if wrong_classes != "all" and (isinstance(wrong_classes, bool) or not isinstance(wrong_classes, int)
                                   or wrong_classes < 1):
        raise invalid_argument("wrong_classes", wrong_classes, "'all' or an int k >= 1",
                               "use wrong_classes='all' (the paper) or 3")
    if isinstance(loss_eps_decrease, bool) or not isinstance(loss_eps_decrease, (int, float)) or not (
            0 <= loss_eps_decrease < 1):
        raise invalid_argument("loss_eps_decrease", loss_eps_decrease, "a share in [0, 1)",
                               "pass loss_eps_decrease=0.0 (the adversarial loss may not rise) or 0.05")
    if not isinstance(penalty, (int, float)) or not penalty > 0:
        raise invalid_argument("penalty", penalty, "a number > 0 (inf: hard cuts)", "use penalty=1e6")


__all__ = ["repair"]
