"""The command-line options every subcommand that reads a model and a data file shares.

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_model_arguments(p)
    >>> add_data_arguments(p)
    >>> a = p.parse_args(["net.onnx", "test.npz", "--model-kwargs", '{"width": 8}'])
    >>> a.model, a.data, a.model_kwargs
    ('net.onnx', 'test.npz', {'width': 8})
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Dict, Tuple

from ..errors import invalid_argument

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}); expected e.g. '{{\"width\": 64}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"width\": 64}'")
    return value


def add_model_arguments(parser: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """MODEL (may be left out with ``optional``) plus ``--model-class`` and ``--model-kwargs`` (for state
    dicts)."""
    parser.add_argument("model", nargs="?" if optional else None, default=None,
                        help="model file: .onnx, TorchScript (.pt), torch.export (.pt2), or a "
                             "state dict with --model-class")
    parser.add_argument("--model-class", dest="model_class", default=None, metavar="PKG.MOD:CLASS",
                        help="module class (or factory) of a state-dict model, e.g. mypkg.nets:Net")
    parser.add_argument("--model-kwargs", dest="model_kwargs", type=_json_object, default=None,
                        metavar="JSON", help="keyword arguments for --model-class, as a JSON object")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """DATA plus ``--inputs-key``/``--labels-key`` and ``--limit``."""
    parser.add_argument("data", help="data file (.pt or .npz) holding 'inputs' (N, ...) and 'labels' (N,)")
    parser.add_argument("--inputs-key", default="inputs", help="name of the inputs array (default inputs)")
    parser.add_argument("--labels-key", default="labels", help="name of the labels array (default labels)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N samples")


def model_from_args(args: argparse.Namespace) -> "nn.Module":
    from .models import load_model

    return load_model(args.model, model_class=args.model_class, model_kwargs=args.model_kwargs)


def data_from_args(args: argparse.Namespace) -> Tuple["torch.Tensor", "torch.Tensor"]:
    from .data import load_data

    inputs, labels = load_data(args.data, inputs_key=args.inputs_key, labels_key=args.labels_key)
    if args.limit is not None:
        if args.limit < 1:
            raise invalid_argument("--limit", args.limit, "a number of samples >= 1", "pass --limit 100")
        inputs, labels = inputs[: args.limit], labels[: args.limit]
    return inputs, labels
