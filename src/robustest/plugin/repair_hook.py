"""``--robust-repair``'s part of the marker hook: the training data (``--robust-repair-data=FILE`` or a
``repair_data`` fixture), the settings from the ``--robust-repair-...`` options, and the hand-over to
:func:`robustest.repair.pytest_support.repair_after_check`. Torch-free until a repair runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import pytest

from .marker import as_samples, usage_error

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report


def repair_failed_test(item: pytest.Item, model: Any, inputs: Any, labels: Any, report: "Report",
                       kwargs: Dict[str, Any], out_dir: str, *, min_pass: float, require: str
                       ) -> Tuple[List[Tuple[str, str]], List[str], Optional["Report"]]:
    """Run the repair helper on a failed marker check: (JUnit properties, failure-text lines, re-check)."""
    from ..errors import RobustestError
    from ..repair.pytest_support import repair_after_check

    try:
        train = _repair_data(item)
    except RobustestError as exc:  # e.g. a --robust-repair-data file that does not load
        return [("repair_error", str(exc))], [f"  robustest repair of {item.nodeid}: not repaired: {exc}"], None
    summary = repair_after_check(model, inputs, labels, report, check_kwargs=dict(kwargs), out_dir=out_dir,
                                 test_name=item.nodeid, min_pass=min_pass, require=require, train=train,
                                 method=item.config.option.robust_repair_method, settings=_repair_settings(item))
    return (list(summary.properties()), [f"  {line}" for line in summary.lines()],
            getattr(summary, "after_report", None))


def _repair_settings(item: pytest.Item) -> Any:
    """GuidedSettings from the --robust-repair-... options (None: the defaults)."""
    if not item.config.option.robust_repair_save_anyway:
        return None
    from ..repair.guided_settings import GuidedSettings

    return GuidedSettings(save_anyway=True)


def _repair_data(item: pytest.Item) -> Optional[Tuple[Any, Any]]:
    """The repair's training data: --robust-repair-data=FILE, else a ``repair_data`` fixture, else None."""
    path = item.config.option.robust_repair_data
    if path is not None:
        from ..io.data import load_data

        return load_data(path)
    try:
        value = item._request.getfixturevalue("repair_data")  # type: ignore[attr-defined]
    except pytest.FixtureLookupError:
        return None
    samples = as_samples(value)
    if samples is None:
        raise usage_error(f"@robust on {item.nodeid}: fixture 'repair_data' gave {type(value).__name__}: expected "
                          "(inputs, labels) or a dict with 'inputs' and 'labels'. Fix: return (x_train, y_train)")
    return samples


__all__ = ["repair_failed_test"]
