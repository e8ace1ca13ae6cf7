"""The HTML report is self-contained and renders in headless Chromium with non-empty plots."""

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image as mpimg

from analysis import pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _png(data: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(data), format="png")


def _ink(img: np.ndarray) -> float:
    """Share of pixels that are not (near) white."""
    rgb = img[..., :3]
    return float((rgb.min(axis=2) < 0.94).mean())


def _has_colour(img: np.ndarray, hex_colour: str, tol: float = 0.06) -> int:
    want = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(img[..., :3] - want).max(axis=2) < tol).sum())


@pytest.fixture(scope="module")
def report(mode_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    pipeline.analyze_run(mode_runs["target-down"], out=out)
    return out


def test_html_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert (
        "<script" not in html
        and "<link" not in html
        and "url(" not in html
        and "@import" not in html
    )
    srcs = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "target-down" in html and "At fault: proxy" in html


def test_embedded_plots_are_not_empty(report):
    html = (report / "report.html").read_text()
    imgs = {
        m.group(1): _png(base64.b64decode(m.group(2)))
        for m in re.finditer(r'<img id="(\w+)"[^>]+src="data:image/png;base64,([^"]+)"', html)
    }
    assert set(imgs) == {"timeline", "crosstable", "latency", "heat"}
    for name, img in imgs.items():
        assert img.shape[0] > 150 and img.shape[1] > 300, name
        assert _ink(img) > 0.03, name
    tl = imgs["timeline"]
    assert _has_colour(tl, "#2ca02c") > 500  # app OK band
    assert _has_colour(tl, "#d62728") > 500  # proxy 5xx band / 5xx rate
    assert (report / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
@pytest.mark.skipif(
    not shutil.which("chromium") and not __import__("os").path.exists(CHROMIUM),
    reason="needs Debian chromium",
)
def test_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2200",
        (report / "report.html").as_uri(),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("chromium did not finish within 90 s")
    assert shot.exists() and shot.stat().st_size > 20_000
    img = _png(shot.read_bytes())
    assert img.shape[1] == 1200
    assert _ink(img) > 0.05  # not a blank page
    # the plots were drawn on the page: their colours are on the screenshot
    assert _has_colour(img, "#2ca02c", 0.08) > 300
    assert _has_colour(img, "#d62728", 0.08) > 300
    # the verdict banner (v-proxy background #fdecea) is at the top
    top = img[:300]
    assert _has_colour(top, "#fdecea", 0.03) > 2000


def test_long_timeline_is_drawn_from_bins_that_keep_rates_and_peaks():
    """A timeline longer than the plot is wide is drawn from bins: counts as per-second means,
    latencies as the bin's peak, healthy targets as its dip; a short one is drawn as is."""
    import numpy as np

    from analysis.correlate import Timeline
    from analysis.reports.plots import MAX_POINTS, binned

    n = 10_000
    p99 = np.full(n, 20.0)
    p99[4321] = 900.0  # one slow second
    healthy = np.full(n, 2.0)
    healthy[7000:7003] = 1.0  # a 3-s dip
    tl = Timeline(
        t0=100, seconds=n, series={"n": np.full(n, 100.0), "p99": p99, "h_healthy": healthy}
    )
    tl.series["n"][:5000] = 50.0
    b, width = binned(tl)
    assert b.seconds <= MAX_POINTS and width * b.seconds >= n
    # a bin across the step from 50 to 100 requests/s is their mean, still per second
    edge = b.series["n"][5000 // width]
    assert 50.0 < edge < 100.0 and b.series["n"][0] == 50.0 and b.series["n"][-1] == 100.0
    assert float(b.series["n"].max()) == 100.0 and float(b.series["n"].min()) == 50.0
    assert (
        float(b.series["p99"].max()) == 900.0 and int(np.argmax(b.series["p99"])) == 4321 // width
    )
    assert float(b.series["h_healthy"].min()) == 1.0
    short = Timeline(t0=0, seconds=60, series={"n": np.ones(60)})
    assert binned(short) == (short, 1)


@pytest.mark.parametrize(
    "lo,hi,want",
    [
        (4.2, 900.0, [5, 10, 20, 50, 100, 200, 500]),
        (0.3, 40_000.0, [1, 10, 100, 1_000, 10_000]),  # many decades: decades only
        (12.0, 38.0, [20, 30]),  # fewer than 3 on 1-2-5 steps: every digit
        (20.5, 20.9, [20.5, 20.9]),  # no round value in range: its ends
        (1e-3, 1e9, [1e-3, 1e-1, 10, 1e3, 1e5, 1e7, 1e9]),  # at most 12
    ],
)
def test_log_ticks_are_round_and_few(lo, hi, want):
    from analysis.reports.plots import log_ticks

    assert log_ticks(lo, hi) == pytest.approx(want)
