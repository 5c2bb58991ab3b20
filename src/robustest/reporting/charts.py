"""The HTML report's pictures, as inline SVG written here (no plotting library, nothing to install).

- :func:`curve_svg`: the robustness curve, the share of samples certified / not falsified / falsified
  against eps, from the checks of one test at several eps (a parametrized eps) or from per-sample radii
  (:func:`curve_from_radii`, of ``@robust(min_radius=...)`` or ``robustest.radius``);
- :func:`histogram_svg`: per-sample radii, the certified lower radius beside the attack's upper one;
- :func:`scale_svg`: the colour scale of a perturbation image (gray is no change);
- :func:`class_table`: verdicts per true label.

Each picture has a ``<title>`` and ``aria-label`` saying what it shows, and its numbers as text, so a
reader (or a test) can check it without looking.

    >>> svg = curve_svg("mlp (linf)", [(0.01, 0.5, 0.9, 0.1), (0.05, 0.1, 0.6, 0.4)])
    >>> svg.startswith("<svg") and svg.count("<polyline") == 3
    True
    >>> curve_from_radii([(0.1, 0.3), (0.0, 0.05)], points=3)
    [(0.0, 1.0, 1.0, 0.0), (0.15, 0.0, 0.5, 0.5), (0.3, 0.0, 0.0, 1.0)]
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import VERDICTS, TestRecord

__all__ = ["ChartStyle", "curve_svg", "curve_from_radii", "histogram_svg", "scale_svg", "class_table"]

CurvePoint = Tuple[float, float, float, float]  # eps, certified, not falsified, falsified (shares)


@dataclass(frozen=True)
class ChartStyle:
    """Sizes (pixels) and colours of the pictures."""

    width: int = 440
    height: int = 230
    left: int = 46
    right: int = 135  # the legend's column
    top: int = 14
    bottom: int = 34
    certified: str = "#1a7f37"
    not_falsified: str = "#0969da"
    falsified: str = "#cf222e"
    axis: str = "#57606a"
    bins: int = 12


STYLE = ChartStyle()
_SERIES = (("certified", "certified"), ("not falsified", "not_falsified"),
           ("falsified/miscls.", "falsified"))


def _frame(label: str, style: ChartStyle, x_max: float, y_ticks: Sequence[Tuple[float, str]],
           x_label: str) -> List[str]:
    w, h, s = style.width, style.height, style
    e = html.escape(label)
    base = h - s.bottom
    parts = [f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
             f'aria-label="{e}">', f"<title>{e}</title>",
             f'<line x1="{s.left}" y1="{base}" x2="{w - s.right}" y2="{base}" stroke="{s.axis}"/>',
             f'<line x1="{s.left}" y1="{s.top}" x2="{s.left}" y2="{h - s.bottom}" stroke="{s.axis}"/>']
    for frac, text in y_ticks:
        y = s.top + (h - s.top - s.bottom) * (1 - frac)
        parts.append(f'<text x="{s.left - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    for k in range(5):
        value = x_max * k / 4
        x = s.left + (w - s.left - s.right) * k / 4
        parts.append(f'<text x="{x:.1f}" y="{h - s.bottom + 14}" text-anchor="middle">{value:.3g}</text>')
    parts.append(f'<text x="{(s.left + w - s.right) / 2:.1f}" y="{h - 4}" text-anchor="middle">'
                 f"{html.escape(x_label)}</text>")
    return parts


def _legend(style: ChartStyle, items: Sequence[Tuple[str, str]]) -> List[str]:
    x = style.width - style.right + 12
    return [f'<text x="{x}" y="{style.top + 14 * (k + 1)}" text-anchor="start" '
            f'style="fill:{colour}">{html.escape(text)}</text>' for k, (text, colour) in enumerate(items)]


def curve_svg(name: str, points: Sequence[CurvePoint], *, style: ChartStyle = STYLE,
              x_label: str = "eps") -> str:
    """The robustness curve of ``name``: per eps, the shares certified, not falsified (certified or
    unknown) and falsified (or misclassified: not robust either), as three lines with dots."""
    s = style
    pts = sorted(points)
    x_max = max((p[0] for p in pts), default=0.0) or 1.0
    plot_w, plot_h = s.width - s.left - s.right, s.height - s.top - s.bottom

    def xy(eps: float, share: float) -> Tuple[float, float]:
        return s.left + plot_w * eps / x_max, s.top + plot_h * (1 - share)

    parts = _frame(f"robustness curve of {name}: share of samples certified, not falsified and falsified "
                   f"against {x_label}", s, x_max, [(0.0, "0%"), (0.5, "50%"), (1.0, "100%")], x_label)
    for k, (label, key) in enumerate(_SERIES):
        colour = getattr(s, key)
        coords = [xy(p[0], p[k + 1]) for p in pts]
        parts.append(f'<polyline class="series-{key}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in coords)}"/>')
        if len(pts) <= 20:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{label} at '
                      f"{x_label}={p[0]:g}: {p[k + 1]:.0%}</title></circle>"
                      for (x, y), p in zip(coords, pts)]
    parts += _legend(s, [(label, getattr(s, key)) for label, key in _SERIES])
    parts.append("</svg>")
    return "".join(parts)


def curve_from_radii(radii: Sequence[Tuple[float, float]], *, points: int = 41) -> List[CurvePoint]:
    """The curve implied by per-sample ``(certified lower, attack upper)`` radii on ``points`` eps from 0
    to the largest finite radius: at eps a sample is certified when ``lower >= eps``, falsified when
    ``upper <= eps`` (a re-checked adversarial input that close exists; a misclassified sample has upper 0),
    and not falsified otherwise."""
    if not radii:
        return []
    finite = [v for pair in radii for v in pair if math.isfinite(v)]
    top = max(finite, default=0.0) or 1.0
    n = len(radii)
    out = []
    for k in range(points):
        eps = top * k / (points - 1) if points > 1 else top
        falsified = sum(up <= eps for _, up in radii) / n
        certified = sum(lo >= eps and not up <= eps for lo, up in radii) / n
        out.append((eps, certified, 1.0 - falsified, falsified))
    return out


def histogram_svg(name: str, radii: Sequence[Tuple[float, float]], *, style: ChartStyle = STYLE) -> str:
    """Per-sample radii of ``name``: for each bin of radius, how many samples have their certified lower
    radius there and how many their attack's upper radius (the true radius lies between the two)."""
    s = style
    lowers = [lo for lo, _ in radii if math.isfinite(lo)]
    uppers = [up for _, up in radii if math.isfinite(up)]
    top = max(lowers + uppers, default=0.0) or 1.0
    width = top / s.bins

    def counts(values: Sequence[float]) -> List[int]:
        out = [0] * s.bins
        for v in values:
            out[min(s.bins - 1, int(v / width))] += 1
        return out

    low, up = counts(lowers), counts(uppers)
    peak = max(low + up + [1])
    parts = _frame(f"radii of {name}: certified lower radius and attack upper radius per sample", s, top,
                   [(0.0, "0"), (1.0, str(peak))], "radius")
    plot_w, plot_h = s.width - s.left - s.right, s.height - s.top - s.bottom
    bar = plot_w / s.bins / 2 - 1
    for b in range(s.bins):
        x0 = s.left + plot_w * b / s.bins
        for k, (series, colour, label) in enumerate(((low, s.certified, "certified lower"),
                                                      (up, s.falsified, "attack upper"))):
            hgt = plot_h * series[b] / peak
            kind = "lower" if k == 0 else "upper"
            parts.append(f'<rect class="bar-{kind}" x="{x0 + 1 + k * (bar + 1):.1f}" '
                         f'y="{s.top + plot_h - hgt:.1f}" width="{bar:.1f}" height="{hgt:.1f}" '
                         f'fill="{colour}"><title>{label} in [{b * width:.3g}, {(b + 1) * width:.3g}): '
                         f"{series[b]}</title></rect>")
    none_found = len(radii) - len(uppers)
    legend = [("certified lower radius", s.certified), ("attack upper radius", s.falsified)]
    if none_found:
        legend.append((f"{none_found} with no adversarial found", s.axis))
    parts += _legend(s, legend)
    parts.append("</svg>")
    return "".join(parts)


def scale_svg(largest: float, *, width: int = 56, steps: int = 14) -> str:
    """The colour scale under a perturbation image: black = -largest, gray = 0, white = +largest (the
    image is scaled to its largest change). Stepped rectangles, so the page needs no shared ids."""
    text = f"{largest:.2g}"
    step = width / steps
    rects = "".join(f'<rect x="{k * step:.2f}" y="0" width="{step + 0.3:.2f}" height="8" '
                    f'fill="#{round(255 * k / (steps - 1)):02x}{round(255 * k / (steps - 1)):02x}'
                    f'{round(255 * k / (steps - 1)):02x}"/>' for k in range(steps))
    return (f'<svg class="scale" width="{width}" height="22" viewBox="0 0 {width} 22" role="img" '
            f'aria-label="perturbation scale: black -{text}, gray 0, white +{text}">{rects}'
            f'<rect x="0" y="0" width="{width}" height="8" fill="none" stroke="#d0d7de"/>'
            f'<text x="0" y="19" text-anchor="start">-{text}</text>'
            f'<text x="{width}" y="19" text-anchor="end">+{text}</text></svg>')


def class_counts(record: TestRecord) -> Dict[int, Dict[str, int]]:
    """Verdict counts per true label."""
    out: Dict[int, Dict[str, int]] = {}
    for smp in record.samples:
        out.setdefault(smp.label, {v: 0 for v in VERDICTS})[smp.verdict] += 1
    return dict(sorted(out.items()))


def class_table(record: TestRecord, *, passing: Optional[Sequence[str]] = None) -> str:
    """A table of verdicts per true label, with the share passing under the record's ``require``."""
    ok = tuple(passing) if passing is not None else (
        ("certified",) if record.require == "certified" else ("certified", "unknown"))
    rows = []
    for label, c in class_counts(record).items():
        n = sum(c.values())
        share = sum(c[v] for v in ok) / n if n else 0.0
        cells = "".join(f'<td class="num">{c[v]}</td>' for v in VERDICTS)
        rows.append(f'<tr><td class="num">{label}</td><td class="num">{n}</td>{cells}'
                    f'<td class="num">{share:.0%}</td></tr>')
    head = "".join(f"<th>{v}</th>" for v in ("label", "samples", *VERDICTS, "pass"))
    return f'<table class="classes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
