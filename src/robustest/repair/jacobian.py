"""A model seen as a function of one flat vector ``w`` of its trainable parameters.

The repair needs, at a parameter point ``v``: the margins ``g_{a,j}(v) = f_{y_a}(x'_a; v) - f_j(x'_a; v)``
and their parameter gradients (one cut row each), the training loss and its gradient, and V and L of
many candidate points. :class:`FlatModel` provides these with ``torch.func.functional_call``, so the
module itself is never modified until :meth:`FlatModel.write`, and per-example Jacobians come in batches
from ``vmap(jacrev(...))``. Everything runs in eval mode (BatchNorm statistics frozen, dropout off)
on the device and dtype of the model's parameters.

    >>> import torch
    >>> fm = FlatModel(torch.nn.Linear(3, 2).eval())
    >>> fm.n, fm.w0.shape
    (8, torch.Size([8]))
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
from torch.func import functional_call, jacrev, vmap

from ..errors import ModelError

WrongClasses = Union[str, int]


class FlatModel:
    """Evaluate ``model`` at any flat parameter vector ``w`` (frozen parameters and buffers stay fixed)."""

    def __init__(self, model: torch.nn.Module):
        if isinstance(model, torch.jit.ScriptModule):
            raise ModelError(
                f"model={type(model).__name__} is not valid: expected a Python nn.Module; TorchScript modules "
                "cannot be evaluated at other weights (torch.func refuses them). Fix: build the model from "
                "its Python class and load the weights (CLI: a state dict with --model-class pkg.mod:Class)")
        self.model = model
        named = list(model.named_parameters())
        self.trainable = [(name, p) for name, p in named if p.requires_grad]
        if not self.trainable:
            raise ModelError(
                f"{type(model).__name__} has no trainable parameters (every parameter has "
                "requires_grad=False, or it only has buffers): repair changes trainable weights. Fix: "
                "call p.requires_grad_(True) on the parameters repair may change")
        self.fixed: Dict[str, torch.Tensor] = {name: p.detach() for name, p in named if not p.requires_grad}
        self.fixed.update({name: b for name, b in model.named_buffers()})
        self.names = [name for name, _ in self.trainable]
        self.shapes = [p.shape for _, p in self.trainable]
        self.numels = [p.numel() for _, p in self.trainable]
        self.w0 = torch.cat([p.detach().reshape(-1) for _, p in self.trainable]).clone()
        self.n = int(self.w0.numel())

    # ------------------------------------------------------------------ layout
    def layer_slices(self) -> List[Tuple[str, slice, bool]]:
        """``(name, slice into w, is_bias)`` per trainable tensor; 0-d/1-d tensors count as biases."""
        out, start = [], 0
        for name, shape, numel in zip(self.names, self.shapes, self.numels):
            out.append((name, slice(start, start + numel), len(shape) <= 1))
            start += numel
        return out

    def params(self, w: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = dict(self.fixed)
        for name, piece, shape in zip(self.names, torch.split(w, self.numels), self.shapes):
            out[name] = piece.view(shape)
        return out

    def logits(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self.params(w), (x,))  # type: ignore[no-any-return]

    def logits_batched(self, w: torch.Tensor, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.logits(w, x[i:i + batch]) for i in range(0, len(x), batch)])

    def write(self, w: torch.Tensor) -> None:
        """Copy ``w`` into the module's trainable parameters (in place)."""
        with torch.no_grad():
            for (_, p), piece in zip(self.trainable, torch.split(w, self.numels)):
                p.copy_(piece.view_as(p))

    # ------------------------------------------------------------------ cuts
    def margin_cuts(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                    wrong_classes: WrongClasses = "all", input_norm: Optional[str] = None,
                    batch: int = 16) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Rows ``grad_w g_{a,j}(w)``, values ``g_{a,j}(w)`` and (if ``input_norm``) ``||grad_x g_{a,j}||_q``.

        ``wrong_classes="all"`` gives K-1 rows per point (the paper); an int k keeps the k wrong classes
        with the largest logits at ``w`` (fewer rows; a labelled deviation). ``input_norm`` is the dual
        norm ``q`` ("l1", "l2", "linf") of the robust linearisation (eq. 18).
        """
        wd = w.detach()

        def single(v: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
            return self.logits(v, x1.unsqueeze(0)).squeeze(0)

        argnums = (0, 1) if input_norm else 0
        jac_fn = vmap(jacrev(single, argnums=argnums), in_dims=(None, 0))
        rows, values, robust = [], [], []
        for i in range(0, len(x), batch):
            xb, yb = x[i:i + batch], y[i:i + batch]
            with torch.no_grad():
                z = self.logits(wd, xb)
            jac = jac_fn(wd, xb)
            jw = jac[0] if input_norm else jac  # (B, K, n)
            sel = _wrong_index(z, yb, wrong_classes)  # (B, k)
            ar = torch.arange(len(yb), device=x.device)
            rows.append((jw[ar, yb].unsqueeze(1) - jw[ar.unsqueeze(1), sel]).reshape(-1, self.n))
            values.append((z[ar, yb].unsqueeze(1) - z[ar.unsqueeze(1), sel]).reshape(-1))
            if input_norm:
                jx = jac[1].flatten(2)  # (B, K, d)
                gx = jx[ar, yb].unsqueeze(1) - jx[ar.unsqueeze(1), sel]
                robust.append(_norm(gx.reshape(-1, gx.shape[-1]), input_norm))
        return (torch.cat(rows).detach(), torch.cat(values).detach(),
                torch.cat(robust).detach() if input_norm else None)

    # ------------------------------------------------------------------ objectives
    def loss_and_grad(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      batch: int = 512) -> Tuple[float, torch.Tensor]:
        """Mean cross-entropy over ``(x, y)`` and its gradient in ``w``."""
        v = w.detach().clone().requires_grad_(True)
        total = v.new_zeros(())
        grad = torch.zeros_like(v)
        for i in range(0, len(x), batch):
            part = torch.nn.functional.cross_entropy(self.logits(v, x[i:i + batch]), y[i:i + batch],
                                                     reduction="sum") / len(x)
            (g,) = torch.autograd.grad(part, v)
            grad += g
            total = total + part.detach()
        return float(total), grad

    def loss(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
        z = self.logits_batched(w.detach(), x, batch)
        return float(torch.nn.functional.cross_entropy(z, y, reduction="mean"))


def violation(z: torch.Tensor, y: torch.Tensor, *, kind: str = "sum", margin: float = 0.0) -> float:
    """V: the summed amount by which wrong logits exceed the true one (``kind="sum"``: over every wrong
    class, the paper's ``vio_abs_sum``; ``"max"``: only the largest wrong class per point)."""
    true = z.gather(1, y[:, None])
    over = (z - true + margin).clamp_min(0.0)
    over = over.scatter(1, y[:, None], 0.0)
    per_point = over.sum(1) if kind == "sum" else over.amax(1)
    return float(per_point.sum())


def _wrong_index(z: torch.Tensor, y: torch.Tensor, wrong_classes: WrongClasses) -> torch.Tensor:
    K = z.shape[1]
    masked = z.detach().clone()
    masked[torch.arange(len(y), device=z.device), y] = -torch.inf
    k = K - 1 if wrong_classes == "all" else min(int(wrong_classes), K - 1)
    if k == K - 1:  # every wrong class, in class order
        idx = torch.arange(K, device=z.device).expand(len(y), K)
        keep = idx != y[:, None]
        return idx[keep].view(len(y), K - 1)
    return masked.topk(k, dim=1).indices


def _norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "l1":
        return v.abs().sum(1)
    if norm == "l2":
        return v.norm(dim=1)
    return v.abs().amax(1)


__all__ = ["FlatModel", "violation"]
