"""The HTML report: one self-contained page to look at a robustness run.

Per test and per sample: the verdict, the deciding method, the time and the margin (certified lower bound
or adversarial margin) and distance; for image inputs the clean image, the adversarial image and the
perturbation side by side (inline PNG data URIs), the perturbation with its colour scale; pictures
(inline SVG, :mod:`.charts`): the robustness curve of each test checked at several eps and of each test
with per-sample radii, a histogram of those radii, and a table of verdicts per class; the same result
words and totals as the terminal summary; sorting by any column and filtering by verdict (a few lines
of inline JavaScript). The file is written atomically.

    >>> from robustest.reporting.html import write_html                     # doctest: +SKIP
    >>> write_html("robustness.html", [("mlp eps=0.05", report)], inputs=[x_test])  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_write_text
from . import VERDICTS, TestRecord, record_from_report, totals_text
from .charts import CurvePoint, class_table, curve_from_radii, curve_svg, histogram_svg, scale_svg
from .html_template import CSS, SCRIPT

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report

__all__ = ["HtmlTest", "write_html", "write_html_tests", "render_html", "tests_from_reports", "png_data_uri"]

ImagePair = Tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class HtmlTest:
    """One test for the page: its record and, per sample index, ``(clean, adversarial)`` images as arrays
    of shape (C, H, W) with C in {1, 3}, values in ``value_range``."""

    record: TestRecord
    images: Mapping[int, ImagePair] = field(default_factory=dict)
    value_range: Tuple[float, float] = (0.0, 1.0)
    #: per sample index, (certified lower radius, attack upper radius; inf: none found), when known
    radii: Mapping[int, Tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {"record": self.record.to_dict(), "value_range": list(self.value_range),
                "images": {str(k): {"clean": v[0].tolist(), "adversarial": v[1].tolist()}
                           for k, v in self.images.items()},
                "radii": {str(k): [lo, up if math.isfinite(up) else None]
                          for k, (lo, up) in self.radii.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HtmlTest":
        images = {int(k): (np.asarray(v["clean"], dtype=np.float32), np.asarray(v["adversarial"], dtype=np.float32))
                  for k, v in data.get("images", {}).items()}
        lo, hi = data.get("value_range", (0.0, 1.0))
        radii = {int(k): (float(v[0]), math.inf if v[1] is None else float(v[1]))
                 for k, v in data.get("radii", {}).items()}
        return cls(TestRecord.from_dict(data["record"]), images, (float(lo), float(hi)), radii)


def image_of(x: np.ndarray, image_shape: Optional[Sequence[int]] = None) -> Optional[np.ndarray]:
    """``x`` (one sample) as (C, H, W) when it looks like an image, else ``None``.

    (C, H, W) with C in {1, 3}; (H, W); (H, W, C) with C in {1, 3}; a flat vector (or one with trailing
    1s) whose length is a square >= 16 is taken as a gray square image. ``image_shape`` forces a shape.
    """
    a = np.asarray(x, dtype=np.float32)
    if image_shape is not None:
        return a.reshape(tuple(image_shape)) if len(image_shape) == 3 else a.reshape((1,) + tuple(image_shape))
    a = a.reshape([s for s in a.shape if s != 1] or [1]) if a.ndim > 1 and 1 in a.shape[1:] and a.ndim != 3 else a
    if a.ndim == 3 and a.shape[0] in (1, 3) and min(a.shape[1:]) >= 2:
        return a
    if a.ndim == 3 and a.shape[2] in (1, 3) and min(a.shape[:2]) >= 2:
        return a.transpose(2, 0, 1)
    if a.ndim == 2 and min(a.shape) >= 2:
        return a[None]
    if a.ndim == 1 and a.size >= 16 and int(math.isqrt(a.size)) ** 2 == a.size:
        side = int(math.isqrt(a.size))
        return a.reshape(1, side, side)
    return None


def png_data_uri(img: np.ndarray) -> str:
    """A ``data:image/png`` URI for a uint8 array (H, W) or (H, W, 3), written with zlib (no Pillow)."""
    a = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = a.shape[:2]
    color = 2 if a.ndim == 3 else 0
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _to_uint8(chw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    a = np.clip((chw - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    a = (a * 255.0 + 0.5).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def _perturbation(clean: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """Gray 128 = unchanged; brighter = increased, darker = decreased, scaled to the largest change."""
    d = adv - clean
    scale = float(np.abs(d).max()) or 1.0
    return _to_uint8(d / scale, -1.0, 1.0)


def tests_from_reports(reports: Sequence[Union[Tuple[str, "Report"], TestRecord]],
                       inputs: Optional[Sequence[Any]] = None, *, min_pass: float = 1.0,
                       require: str = "not_falsified",
                       image_shape: Optional[Sequence[int]] = None) -> List[HtmlTest]:
    """:class:`HtmlTest` per report; ``inputs[i]`` (the clean inputs of report ``i``) adds the images of
    its falsified samples."""
    out = []
    for i, item in enumerate(reports):
        if isinstance(item, TestRecord):
            out.append(HtmlTest(item))
            continue
        name, report = item
        record = record_from_report(name, report, min_pass=min_pass, require=require)
        images: Dict[int, ImagePair] = {}
        value_range = (0.0, 1.0)
        domain = report.ball.domain
        if domain is not None and all(np.ndim(np.asarray(d)) == 0 for d in domain):
            value_range = (float(domain[0]), float(domain[1]))
        xs = inputs[i] if inputs is not None and i < len(inputs) else None
        if xs is not None:
            xs = np.asarray(xs.detach().cpu() if hasattr(xs, "detach") else xs, dtype=np.float32)
            for s in report.samples:
                if s.counterexample is None or not (0 <= s.index < len(xs)):
                    continue
                clean = image_of(xs[s.index], image_shape)
                adv = image_of(np.asarray(s.counterexample.detach().cpu(), dtype=np.float32), image_shape)
                if clean is not None and adv is not None and clean.shape == adv.shape:
                    images[int(s.index)] = (clean, adv)
            if domain is None and images:
                allv = np.concatenate([np.concatenate([c.ravel(), a.ravel()]) for c, a in images.values()])
                value_range = (float(allv.min()), float(allv.max()))
        out.append(HtmlTest(record, images, value_range))
    return out


_EPS = re.compile(r"eps=([0-9.eE+-]+)\s+(\w+)")


def _group(record: TestRecord) -> str:
    """The test a record belongs to: its ``group`` property, else its name without the parameters
    (``[0.01]``) and the label of a ``robustness.check(name=...)`` (after the first space)."""
    props = dict(record.properties)
    return props.get("group") or re.split(r"[\[ ]", record.name, maxsplit=1)[0]


def _curves(tests: Sequence[HtmlTest]) -> List[Tuple[str, List[CurvePoint]]]:
    """Per group with several eps: (eps, certified, not falsified, falsified or misclassified) shares,
    sorted by eps."""
    groups: Dict[str, Dict[float, CurvePoint]] = {}
    for t in tests:
        m = _EPS.search(t.record.threat)
        n = len(t.record.samples)
        if not m or not n or t.radii:
            continue
        c = t.record.counts()
        broken = (c["falsified"] + c["misclassified"]) / n
        eps = float(m.group(1))
        point = (eps, c["certified"] / n, 1 - broken, broken)
        groups.setdefault(f"{_group(t.record)} ({m.group(2)})", {})[eps] = point
    return [(g, sorted(pts.values())) for g, pts in groups.items() if len(pts) >= 2]


def _pictures(tests: Sequence[HtmlTest]) -> Tuple[str, str]:
    """(The curves, of several eps of a test or of per-sample radii, and the radii histograms; the
    per-class tables)."""
    e = html.escape
    parts = [f"<figure><figcaption>{e(name)}</figcaption>{curve_svg(name, pts)}</figure>"
             for name, pts in _curves(tests)]
    for t in tests:
        if t.radii:
            pairs = list(t.radii.values())
            name = f"{t.record.name} ({t.record.threat.split()[-1]})"
            parts.append(f"<figure><figcaption>{e(name)}: from per-sample radii</figcaption>"
                         f"{curve_svg(name, curve_from_radii(pairs), x_label='radius')}</figure>"
                         f"<figure><figcaption>{e(name)}: radii per sample</figcaption>"
                         f"{histogram_svg(name, pairs)}</figure>")
    out = (f'<h2>Robust accuracy vs eps (robustness curves)</h2><div class="pics">{"".join(parts)}</div>'
           if parts else "")
    checked = [t for t in tests if t.record.samples]
    tables = "".join(f"<details{' open' if k == 0 else ''}><summary>{e(t.record.name)}</summary>"
                     f"{class_table(t.record)}</details>" for k, t in enumerate(checked))
    return out, (f"<h2>Per class</h2>{tables}" if tables else "")


def _num(v: Optional[float], fmt: str = "{:.4g}") -> Tuple[str, str]:
    return ("", "") if v is None else (repr(float(v)), fmt.format(v))


def _row(t: HtmlTest, s: Any) -> str:
    """One sample's table row. Every value is escaped: results files come from outside (``robustest
    report results.json``), so a verdict or a name could carry markup."""
    e = html.escape
    pred = "" if s.predicted is None else f" &rarr; {e(str(s.predicted))}"
    cells = [(t.record.name, e(t.record.name), ""), (str(s.index), e(str(s.index)), "num"),
             (s.verdict, f'<span class="v v-{e(s.verdict)}">{e(s.verdict)}</span>', ""),
             (s.method, e(s.method), ""), (repr(float(s.seconds)), f"{s.seconds:.3f}s", "num"),
             (*_num(s.figure), "num"), (*_num(s.distance), "num"),
             (str(s.label), f"{e(str(s.label))}{pred}", "")]
    imgs = ""
    if s.index in t.images:
        clean, adv = t.images[s.index]
        lo, hi = t.value_range
        pics = (("clean", _to_uint8(clean, lo, hi)), ("adversarial", _to_uint8(adv, lo, hi)),
                ("perturbation", _perturbation(clean, adv)))
        scale = {"perturbation": scale_svg(float(np.abs(adv - clean).max()))}
        imgs = "".join(f'<span><img class="px" alt="{n}" title="{n}" src="{png_data_uri(p)}"><br>'
                       f'{scale.get(n, "")}{"<br>" if n in scale else ""}{n}</span>' for n, p in pics)
    tds = "".join(f'<td class="{cls}" data-key="{e(key)}">{shown}</td>' for key, shown, cls in cells)
    reason = f' title="{e(s.reason)}"' if s.reason else ""
    return (f'<tr data-verdict="{e(s.verdict)}"{reason}>{tds}<td class="imgs" data-key="{int(bool(imgs))}">'
            f"{imgs}</td></tr>")


def render_html(tests: Sequence[HtmlTest], *, title: str = "robustest report") -> str:
    """The whole page as a string."""
    e = html.escape
    totals = {v: sum(t.record.counts()[v] for t in tests) for v in VERDICTS}
    n_samples = sum(totals.values())
    all_ok = all(t.record.result != "FAILED" for t in tests)
    cards = [f'<div class="card">checks<b class="{"passed" if all_ok else "failed"}">'
             f"{e(totals_text([t.record for t in tests]))}</b></div>",
             f'<div class="card">samples<b>{n_samples}</b></div>']
    cards += [f'<div class="card">{v}<b>{totals[v]}</b></div>' for v in VERDICTS]
    tests_rows = "".join(
        f'<tr><td>{e(t.record.name)}</td><td>{e(t.record.threat)}</td><td>{e(t.record.escalate)}</td>'
        f'<td class="{"failed" if t.record.result == "FAILED" else "passed"}">{t.record.result}</td>'
        f"<td>{e(t.record.summary)}</td></tr>" for t in tests)
    filters = "".join(f'<label><input type="checkbox" value="{v}" checked> {v} ({totals[v]})</label>'
                      for v in VERDICTS)
    heads = [("test", ""), ("sample", "num"), ("verdict", ""), ("method", ""), ("time (share)", "num"),
             ("margin", "num"), ("distance", "num"), ("label", ""), ("clean / adversarial / perturbation", "")]
    tips = {"time (share)": "the sample's share of the batched phases (split equally among the samples they "
                            "worked on) plus the time of its own per-sample proofs"}
    th = "".join(f'<th data-type="{kind}"' + (f' title="{tips[name]}"' if name in tips else "")
                 + f">{name}</th>" for name, kind in heads)
    rows = "".join(_row(t, s) for t in tests for s in t.record.samples)
    curves, classes = _pictures(tests)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>"
            f'<div class="meta">{len(tests)} test(s), {n_samples} sample(s)</div>'
            f'<div class="summary">{"".join(cards)}</div>{curves}'
            f"<h2>Tests</h2><table id=\"tests\"><thead><tr><th>test</th><th>threat</th><th>escalate</th>"
            f"<th>result</th><th>summary</th></tr></thead><tbody>{tests_rows}</tbody></table>{classes}"
            f'<h2>Samples (<span id="shown">{n_samples}</span> shown)</h2><div class="filters">{filters}</div>'
            f'<table id="samples"><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>'
            f"<script>{SCRIPT}</script></body></html>\n")


def write_html_tests(path: Union[str, "os.PathLike[str]"], tests: Sequence[HtmlTest], *,
                     title: str = "robustest report") -> Path:
    """Write the page for ``tests`` to ``path`` atomically."""
    return atomic_write_text(path, render_html(tests, title=title))


def write_html(path: Union[str, "os.PathLike[str]"], reports: Sequence[Union[Tuple[str, "Report"], TestRecord]],
               *, inputs: Optional[Sequence[Any]] = None, title: str = "robustest report",
               min_pass: float = 1.0, require: str = "not_falsified",
               image_shape: Optional[Sequence[int]] = None) -> Path:
    """Write the HTML report for ``reports`` (``(test_name, Report)`` pairs or records) to ``path``.

    ``inputs``, parallel to ``reports``, are the clean inputs each report was computed on; with them the
    falsified samples of image inputs show clean, adversarial and perturbation images. Example::

        report = robustest.check(model, x, y, eps=0.05)
        write_html("robustness.html", [("mlp eps=0.05", report)], inputs=[x])
    """
    tests = tests_from_reports(reports, inputs, min_pass=min_pass, require=require, image_shape=image_shape)
    return write_html_tests(path, tests, title=title)
