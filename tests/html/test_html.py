"""The HTML report: content checks, and a real headless chromium that renders it (DOM and screenshot)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from robustest.reporting.html import image_of, png_data_uri, write_html


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (gray, RGB or RGBA) to (H, W, C) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = w * channels
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for r in range(h):
        f = raw[r * (stride + 1)]
        line = np.frombuffer(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)], np.uint8).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (line[i] + pred) & 0xFF
        out[r], prev = cur, cur
    return out.reshape(h, w, channels).astype(np.uint8)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report of the digits CNN at two eps (attacks only: fast), with images."""
    from digits import load_model, load_split

    import robustest

    (_, _), (x, y) = load_split(image=True)
    x, y = x[:12], y[:12]
    model = load_model("cnn")
    reports = [(f"cnn[eps={eps}]", robustest.check(model, x, y, eps=eps, timeout=2.0, seed=0))
               for eps in (0.02, 0.3)]
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_html(path, reports, inputs=[x, x], title="digits cnn")
    return path, reports


def test_content(page):
    path, reports = page
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "http://" not in text and "https://" not in text
    assert len(re.findall(r'<tr data-verdict="', text)) == 24
    for name, rep in reports:
        for v, n in rep.counts().items():
            assert len(re.findall(rf'<tr data-verdict="{v}"[^>]*><td class="" data-key="{re.escape(name)}"', text)) == n
    falsified = sum(r.counts()["falsified"] for _, r in reports)
    assert falsified > 0
    assert text.count('alt="adversarial"') == falsified and text.count('alt="perturbation"') == falsified
    assert "<svg" in text and "Robust accuracy vs eps" in text


def test_images_are_the_clean_and_adversarial_inputs(page):
    path, reports = page
    text = path.read_text()
    name, rep = reports[1]
    s = next(s for s in rep.samples if s.verdict == "falsified")
    uris = re.findall(rf'data-key="{re.escape(name)}">{re.escape(name)}</td><td class="num" data-key="{s.index}">.*?</tr>', text)[0]
    clean_b64, adv_b64, pert_b64 = re.findall(r'src="data:image/png;base64,([^"]+)"', uris)
    from digits import load_split

    (_, _), (x, _) = load_split(image=True)
    clean = read_png(base64.b64decode(clean_b64))[..., 0]
    adv = read_png(base64.b64decode(adv_b64))[..., 0]
    assert clean.shape == (8, 8)
    np.testing.assert_allclose(clean / 255.0, x[s.index, 0].numpy(), atol=1 / 255)
    np.testing.assert_allclose(adv / 255.0, s.counterexample[0].numpy(), atol=1 / 255)
    pert = read_png(base64.b64decode(pert_b64))[..., 0].astype(int)
    assert pert.max() > 128 or pert.min() < 128  # the perturbation is visible


def test_png_writer_and_image_detection():
    img = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    back = read_png(base64.b64decode(png_data_uri(img).split(",", 1)[1]))
    assert (back[..., 0] == img).all()
    assert image_of(np.zeros(64)).shape == (1, 8, 8)
    assert image_of(np.zeros((784, 1))).shape == (1, 28, 28)
    assert image_of(np.zeros((3, 4, 4))).shape == (3, 4, 4)
    assert image_of(np.zeros(10)) is None


def _chromium():
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (tests/html/install_chromium.sh installs it)"
    if os.environ.get("CI"):  # .ci/run installs it: a skip there would hide a broken report
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, timeout=120, cwd=tmp_path)


def test_renders_in_headless_chromium(page, tmp_path):
    path, reports = page
    url = path.resolve().as_uri()
    dom = _run_chromium(tmp_path, "--dump-dom", url + "#only=falsified").stdout.decode()
    assert 'data-ready="1"' in dom  # the script ran
    rows = re.findall(r'<tr data-verdict="(\w+)"([^>]*)>', dom)
    assert len(rows) == 24
    falsified = sum(r.counts()["falsified"] for _, r in reports)
    visible = [v for v, attrs in rows if "display: none" not in attrs]
    assert visible == ["falsified"] * falsified  # the filter from the link hid the rest
    assert f'<span id="shown">{falsified}</span>' in dom
    shot = tmp_path / "shot.png"
    _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,800", url)
    pixels = read_png(shot.read_bytes())[..., :3].astype(int)
    assert pixels.shape[:2] == (800, 1000)
    non_white = (pixels.sum(-1) < 720).mean()
    assert 0.01 < non_white < 0.9  # text, tables and images, not a blank or black page
    assert len({tuple(p) for p in pixels.reshape(-1, 3)[::97]}) > 10


# ------------------------------------------------------------------------------------------ pictures
SERIES_COLOURS = {"certified": (0x1a, 0x7f, 0x37), "not_falsified": (0x09, 0x69, 0xda),
                  "falsified": (0xcf, 0x22, 0x2e)}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A page with a curve over eps (the CNN at three eps), a radius test (the MLP: curve from radii and
    histogram), per-class tables and perturbation scales."""
    from digits import load_model, load_split

    import robustest
    from robustest.plugin.marker import radius_report
    from robustest.reporting import record_from_report
    from robustest.reporting.html import HtmlTest, tests_from_reports, write_html_tests

    (_, _), (x, y) = load_split(image=True)
    x, y = x[:12], y[:12]
    cnn = load_model("cnn")
    reports = [(f"cnn[eps={eps}]", robustest.check(cnn, x, y, eps=eps, timeout=2.0, seed=0))
               for eps in (0.02, 0.1, 0.3)]
    tests = tests_from_reports(reports, [x] * 3)
    (_, _), (xf, yf) = load_split()
    report, radii = radius_report(load_model("mlp"), xf[:10], yf[:10], min_radius=0.05, escalate="ibp",
                                  method="deepfool", timeout=2.0)
    tests.append(HtmlTest(record_from_report("mlp_radius", report, min_pass=0.5), radii=radii))
    path = tmp_path_factory.mktemp("pictures") / "report.html"
    write_html_tests(path, tests)
    return path, reports, radii, tests


def _points(svg, key):
    found = re.search(rf'<polyline class="series-{key}"[^>]*points="([^"]+)"', svg).group(1)
    return [tuple(map(float, p.split(","))) for p in found.split()]


def test_the_curve_over_eps_draws_the_shares_of_each_check(pictures):
    from robustest.reporting.charts import STYLE

    path, reports, _, _ = pictures
    text = path.read_text()
    svg = re.search(r'<svg class="chart"[^>]*aria-label="robustness curve of cnn \(linf\)[^"]*".*?</svg>',
                    text).group(0)
    plot_h = STYLE.height - STYLE.top - STYLE.bottom
    for key in SERIES_COLOURS:
        ys = [y for _, y in _points(svg, key)]
        shares = []
        for _, rep in reports:
            c, n = rep.counts(), len(rep.samples)
            broken = (c["falsified"] + c["misclassified"]) / n
            share = {"certified": c["certified"] / n, "not_falsified": 1 - broken, "falsified": broken}
            shares.append(share[key])
        assert ys == pytest.approx([STYLE.top + plot_h * (1 - s) for s in shares], abs=0.06)


def test_radii_histogram_class_tables_and_scales(pictures):
    path, reports, radii, tests = pictures
    text = path.read_text()
    bars = re.findall(r'<rect class="bar-(lower|upper)"[^>]*><title>[^<]*: (\d+)</title>', text)
    assert sum(int(n) for k, n in bars if k == "lower") == len(radii)
    assert sum(int(n) for k, n in bars if k == "upper") == sum(np.isfinite(up) for _, up in radii.values())
    assert "from per-sample radii" in text
    # per-class tables: one per test, each label's row adds up to its samples
    tables = re.findall(r'<table class="classes">(.*?)</table>', text)
    assert len(tables) == len(tests)
    for table, t in zip(tables, tests):
        for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]:
            cells = [int(c) if c.isdigit() else c for c in re.findall(r'<td class="num">([^<]*)</td>', row)]
            label, n, *counts, _ = cells
            assert n == sum(counts) == sum(s.label == label for s in t.record.samples)
    # each perturbation image carries its scale: the largest change of that counterexample
    _, rep = reports[2]
    largest = [float(np.abs(s.counterexample.numpy() - tests[2].images[s.index][0]).max())
               for s in rep.samples if s.verdict == "falsified"]
    shown = [float(v) for v in re.findall(r'aria-label="perturbation scale: black -([0-9.e-]+),', text)]
    assert len(shown) == sum(len(t.images) for t in tests)
    assert all(any(abs(v - m) <= 0.06 * m for v in shown) for m in largest)  # shown to 2 digits


def test_pictures_render_in_headless_chromium(pictures, tmp_path):
    path, _, _, _ = pictures
    url = path.resolve().as_uri()
    dom = _run_chromium(tmp_path, "--dump-dom", url).stdout.decode()
    assert dom.count('<svg class="chart"') == 3  # the eps curve, the radii curve, the histogram
    shot = tmp_path / "shot.png"
    _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,900", url)
    pixels = read_png(shot.read_bytes())[..., :3].astype(int)
    for key, colour in SERIES_COLOURS.items():  # the browser drew every series (they are at the top)
        near = (np.abs(pixels - np.array(colour)).sum(-1) < 40).sum()
        assert near > 50, key
