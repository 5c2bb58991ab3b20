"""Same bounds before and after a refactor: dump every graph and bound of a fixed set of models with the
robustest of one checkout, then compare two dumps entry by entry (bitwise).

    python benchmarks/bounds_identity.py dump /path/to/checkout-A a.pt   # with checkout A's src on PYTHONPATH
    python benchmarks/bounds_identity.py dump /path/to/checkout-B b.pt   # with checkout B's src on PYTHONPATH
    python benchmarks/bounds_identity.py compare a.pt b.pt

Models: the examples' digits MLP (20 samples) and CNN (10), random MLP/CNN nets of every shape the
soundness tests draw (BatchNorm folded or not, residual, max/avg/no pooling, input normalisation), and the
VNN-COMP mnist_fc 256x2 ONNX network (its imported weights too). Entries: the graph read (``describe()``),
IBP / CROWN / alpha-CROWN logit and margin bounds (linf and l2, eps 0.03), and for Linear/ReLU chains the
dense BaB read (weights) with its root bounds (alpha-CROWN, 5 steps).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def dump(root: Path, out: str) -> None:
    sys.path.insert(0, str(root / "examples"))
    sys.path.insert(0, str(root / "tests/certify"))
    torch.set_num_threads(1)
    from certify_nets import build
    from digits import load_model, test_data

    import robustest
    from robustest.certify.mlp import dense_mlp, root_bounds
    from robustest.graph import read_model
    from robustest.io import load_model as load_any

    res: dict = {}
    models = [("mlp", load_model("mlp"), test_data("mlp", 20)), ("cnn", load_model("cnn"), test_data("cnn", 10))]
    for kind in ("mlp", "conv"):
        for bn in (False, True):
            for residual in (False, True):
                for pool in ("max", "avg", "none") if kind == "conv" else ("none",):
                    m, shape = build(kind, bn, residual, pool, seed=7)
                    x = torch.rand((4,) + shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
                    models.append((f"{kind}-{bn}-{residual}-{pool}", m, (x, m(x).argmax(1))))
    onnx = root.parent / "shared/benchmarks/vnncomp2022_mnist_fc/onnx/mnist-net_256x2.onnx"
    net = load_any(onnx)
    res["onnx-state"] = {k: v.clone() for k, v in net.state_dict().items()}
    res["onnx-repr"] = repr(net)
    x = torch.rand(3, 784, 1, generator=torch.Generator().manual_seed(0))
    models.append(("onnx256x2", net, (x, net(x).argmax(1))))
    for name, model, (x, y) in models:
        g = read_model(model, x)
        res[f"{name}/graph"] = g.describe()
        for method in ("ibp", "crown", "alpha-crown"):
            for norm in ("linf", "l2"):
                b = robustest.bounds(model, x, eps=0.03, norm=norm, method=method, labels=y)
                res[f"{name}/{method}/{norm}"] = (b.lower, b.upper, b.margins_lower, b.margins_upper)
        try:
            d = dense_mlp(g)
        except robustest.errors.UnsupportedLayer as exc:
            res[f"{name}/dense"] = str(exc)
            continue
        flat = x[0].reshape(-1).double()
        res[f"{name}/dense"] = (d.weights, d.biases, root_bounds(d, flat - 0.03, flat + 0.03, alpha_steps=5))
    torch.save(res, out)
    print(f"{len(res)} entries written to {out}")


def _equal(u: object, v: object) -> bool:
    if isinstance(u, torch.Tensor):
        return isinstance(v, torch.Tensor) and u.shape == v.shape and bool(torch.equal(u, v))
    if isinstance(u, (tuple, list)):
        return isinstance(v, (tuple, list)) and len(u) == len(v) and all(_equal(p, q) for p, q in zip(u, v))
    if isinstance(u, dict):
        return isinstance(v, dict) and u.keys() == v.keys() and all(_equal(u[k], v[k]) for k in u)
    return u == v


def compare(a_path: str, b_path: str) -> None:
    a, b = torch.load(a_path, weights_only=False), torch.load(b_path, weights_only=False)
    differ = sorted(set(a) ^ set(b)) + [k for k in a if k in b and not _equal(a[k], b[k])]
    print(f"{len(a)} entries compared, {len(differ)} differ{': ' + ', '.join(differ[:10]) if differ else ''}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(Path(sys.argv[2]).resolve(), sys.argv[3])
    else:
        compare(sys.argv[2], sys.argv[3])
