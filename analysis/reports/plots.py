"""Matplotlib figures for the report, returned as PNG bytes (embedded base64 in the HTML).

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, without
pyplot (no global figure registry, no backend switching: a third of matplotlib's import time).
A timeline longer than the plot is wide is drawn from binned series (``binned``): a 10,000-s
series on a 990-px axis cost most of the report's time and showed nothing more. The figures
themselves (summary.json) are computed from the full series, never from these bins.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from analysis.correlate import Timeline
from analysis.figures import Figures

# About one point per pixel of the timeline's axes (11 in at 90 dpi, minus the margins).
MAX_POINTS = 900
# Series drawn as peaks (a latency spike or a dip in healthy targets must survive binning);
# every other series is a per-second rate or count, drawn as the bin's mean.
_BIN_MAX = ("p50", "p99", "co_p99", "h_unhealthy", "h_in_flight", "hap_srv_conn")
_BIN_MIN = ("h_healthy",)

EVENT_COLOURS = {
    "worker_timeout": "#d62728",
    "worker_killed": "#8c564b",
    "worker_exit": "#9467bd",
    "worker_boot": "#2ca02c",
    "target_killed": "#000000",
    "target_started": "#17becf",
    "fault_on": "#ff7f0e",
    "fault_off": "#bcbd22",
    "master_stop": "#000000",
    "abort": "#e377c2",
}


def _title(ax: Any, text: str) -> None:
    """A panel's title at its default place, given explicitly: left automatic, matplotlib
    measures every tick label of the panel (and of its twin) at each draw to clear top ticks
    these panels do not have, a third of the report's drawing time."""
    ax.set_title(text, y=1.0)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)  # Agg draws it; savefig then needs no backend lookup
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def binned(tl: Timeline, max_points: int = MAX_POINTS) -> tuple[Timeline, int]:
    """(``tl`` with its series reduced over bins of ``width`` whole seconds, ``width``) when it has
    more than ``max_points`` seconds, for drawing only: a bin is the mean of its seconds (rates
    stay per second), or its peak for latencies and health (_BIN_MAX, _BIN_MIN). Events and
    CloudWatch points keep their times."""
    if tl.seconds <= max_points:
        return tl, 1
    width = math.ceil(tl.seconds / max_points)
    nbins = math.ceil(tl.seconds / width)
    pad = nbins * width - tl.seconds
    series: dict[str, np.ndarray] = {}
    for k, a in tl.series.items():
        grid = np.pad(a.astype(float), (0, pad), constant_values=np.nan).reshape(nbins, width)
        seen = ~np.isnan(grid)
        if k in _BIN_MAX:
            out = np.where(seen, grid, -np.inf).max(axis=1)
        elif k in _BIN_MIN:
            out = np.where(seen, grid, np.inf).min(axis=1)
        else:
            out = np.where(seen, grid, 0.0).sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
        out[~seen.any(axis=1)] = np.nan
        series[k] = out
    # everything else (events, CloudWatch points, worker gaps, the per-target matrix) keeps
    # its own times
    return dataclasses.replace(tl, seconds=nbins, series=series), width


def _markers(axes: list[Any], tl: Timeline) -> None:
    """gunicorn/testbed events as vertical lines on every panel (at most 200 drawn): one
    collection per kind and panel, not one artist per event (200 events x 4 panels cost 0.5 s)."""
    by_kind: dict[str, list[float]] = {}
    for ts, kind, _detail in tl.events[:200]:
        if kind in EVENT_COLOURS:
            by_kind.setdefault(kind, []).append(ts - tl.t0)
    for kind, xs in by_kind.items():
        for ax in axes:
            ax.vlines(
                xs,
                0,
                1,
                transform=ax.get_xaxis_transform(),  # x in data, y from bottom to top of the panel
                colors=EVENT_COLOURS[kind],
                lw=0.8,
                linestyles="--",
                alpha=0.7,
                label=kind if ax is axes[0] else None,
            )


def _gaps(axes: list[Any], tl: Timeline) -> None:
    """Lost Locust workers as hatched spans on every panel: the load there is incomplete."""
    for i, (a, b, worker) in enumerate(tl.gaps):
        for ax in axes:
            ax.axvspan(
                a - tl.t0,
                max(b, a + 1) - tl.t0,
                facecolor="#bbbbbb",
                alpha=0.3,
                hatch="//",
                edgecolor="#777777",
                lw=0,
                label=f"worker {worker} lost: load incomplete" if ax is axes[0] and i < 5 else None,
            )


def timeline_png(tl: Timeline, fig_data: Figures) -> bytes:
    """Requests/s by outcome, 5xx rate + healthy targets, concurrency vs capacity, latency."""
    tl, width = binned(tl)
    x = np.arange(tl.seconds) * width
    fig = Figure(figsize=(11, 10))
    axes = fig.subplots(4, 1, sharex=True)
    ax = axes[0]
    if "n" in tl.series:
        ok = tl.get("ok")
        layers = [
            ("app OK", ok, "#2ca02c"),
            ("proxy 5xx", tl.get("proxy_5xx"), "#d62728"),
            ("gunicorn 5xx", tl.get("server_5xx"), "#ff7f0e"),
            ("no response", tl.get("network"), "#7f7f7f"),
            ("app CORS fail", tl.get("app_cors_fail"), "#9467bd"),
        ]
        other = np.clip(tl.get("n") - sum(v for _, v, _ in layers), 0, None)
        layers.append(("other", other, "#c7c7c7"))
        ax.stackplot(
            x,
            *[v for _, v, _ in layers],
            labels=[n for n, _, _ in layers],
            colors=[c for _, _, c in layers],
            step="post",
        )
        ax.set_ylabel("requests/s")
    elif "alb_n" in tl.series:
        ax.stackplot(
            x,
            tl.get("alb_n") - tl.get("alb_a5xx") - tl.get("alb_t5xx"),
            tl.get("alb_a5xx"),
            tl.get("alb_t5xx"),
            labels=["ALB OK", "ALB-generated 5xx", "target 5xx"],
            colors=["#2ca02c", "#d62728", "#ff7f0e"],
            step="post",
        )
        ax.set_ylabel("ALB entries/s")
    # CloudWatch's 60-s series aligned alongside, as per-second means.
    for key, style in (("HTTPCode_ELB_5XX_Count.Sum", "-"), ("HTTPCode_ELB_502_Count.Sum", ":")):
        pts = tl.cloudwatch.get(key)
        if pts:
            xs = [p[0] - tl.t0 for p in pts] + [pts[-1][0] - tl.t0 + 60]
            ys = [p[1] / 60 for p in pts] + [pts[-1][1] / 60]
            ax.step(
                xs,
                ys,
                where="post",
                color="black",
                lw=1.2,
                ls=style,
                label=f"CloudWatch {key.split('.')[0]} (per s, 60-s mean)",
            )
    _title(ax, "Requests per second by outcome")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7, ncol=4)

    ax = axes[1]
    n = tl.get("n") if "n" in tl.series else tl.get("alb_n")
    bad = (
        (tl.get("proxy_5xx") + tl.get("server_5xx"))
        if "n" in tl.series
        else tl.get("alb_a5xx") + tl.get("alb_t5xx")
    )
    rate = np.where(n > 0, 100 * bad / np.maximum(n, 1), 0)
    who = "proxy + gunicorn" if "n" in tl.series else "ALB + target"
    ax.plot(x, rate, color="#d62728", lw=1.2, label=f"5xx rate % ({who})")
    ax.set_ylabel("5xx %")
    _title(ax, "5xx rate and healthy targets" if "h_healthy" in tl.series else "5xx rate")
    if "h_healthy" in tl.series:
        ax2 = ax.twinx()
        ax2.step(
            x, tl.get("h_healthy"), where="post", color="#1f77b4", lw=1.2, label="healthy targets"
        )
        ax2.set_ylabel("healthy targets")
        ax2.set_ylim(
            bottom=0,
            top=max(
                1.0,
                float(
                    np.nanmax(tl.get("h_targets")) if np.isfinite(tl.get("h_targets")).any() else 1
                ),
            )
            + 0.5,
        )
        ax2.legend(loc="upper right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)

    ax = axes[2]
    ax.plot(
        x, tl.get("busy_target"), color="#8c564b", lw=1, label="target concurrency (Little's law)"
    )
    if "h_in_flight" in tl.series:
        ax.step(
            x,
            tl.get("h_in_flight"),
            where="post",
            color="#1f77b4",
            lw=1,
            label="in flight (HAProxy scur)",
        )
    cap = fig_data.get("capacity_total")
    if cap:
        ax.axhline(cap, color="black", lw=1.5, label=f"capacity {cap:.0f} (workers x threads)")
    ax.set_ylabel("concurrent")
    _title(ax, "Concurrency against capacity" if cap else "Concurrency at the target")
    ax.legend(loc="upper left", fontsize=7)

    ax = axes[3]
    ax.plot(x, tl.get("p50"), lw=1, label="p50")
    ax.plot(x, tl.get("p99"), lw=1, label="p99")
    if fig_data.get("co_measured"):
        ax.plot(x, tl.get("co_p99"), lw=1, ls=":", label="p99 corrected for coordinated omission")
    timeout = (fig_data.get("capacity") or {}).get("timeout")
    if timeout:
        ax.axhline(
            timeout * 1000, color="red", lw=1, ls="--", label=f"gunicorn --timeout {timeout} s"
        )
    ax.set_ylabel("ms")
    ax.set_yscale("symlog", linthresh=10)
    # plain tick labels (10, 100, 1,000): the log scale's default 10^n labels go through
    # mathtext, whose parser alone cost a third of a second to build
    ax.yaxis.set_major_formatter(FuncFormatter(_ms_tick))
    ax.set_ylim(bottom=0)
    _title(ax, "Latency per second" + ("" if "n" in tl.series else " (ALB target_processing_time)"))
    ax.set_xlabel(f"seconds since {_clock(tl.t0)} UTC")
    ax.legend(loc="upper left", fontsize=7)
    _markers(list(axes), tl)
    _gaps(list(axes), tl)
    if tl.gaps or any(k in EVENT_COLOURS for _, k, _ in tl.events):
        axes[0].legend(loc="upper left", fontsize=7, ncol=4)
    # fixed margins: tight_layout would draw the whole figure once more just to measure it
    fig.subplots_adjust(left=0.07, right=0.93, top=0.97, bottom=0.05, hspace=0.3)
    return _png(fig)


def _ms_tick(v: float, _pos: Any = None) -> str:
    return f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:g}"


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis from lo to hi (> 0): 1-2-5 steps, decades only over many decades,
    every digit over a narrow range: up to 12 in the range (its ends when no round value is)."""
    lo, hi = max(lo, 1e-9), max(hi, lo * 1.0001)
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks: list[float] = []
    for steps in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(e0, e1 + 1) for m in steps if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 3:
            break
    return ticks[:: -(-len(ticks) // 12)] if ticks else [lo, hi]


def plain_log_axis(axis: Any, lo: float, hi: float) -> None:
    """A log axis with fixed ticks and plain labels (1, 20, 5,000): matplotlib's default log
    labels are mathtext (10^n), whose parser and layout cost most of a small figure's drawing,
    and its labelled minor ticks add dozens of texts to lay out."""
    axis.set_ticks(log_ticks(lo, hi))
    axis.set_major_formatter(FuncFormatter(_ms_tick))
    axis.set_minor_locator(NullLocator())


def latency_png(fig_data: Figures) -> bytes:
    """Overall latency percentiles; the coordinated-omission-corrected series when measured."""
    labels = ["p50", "p90", "p99", "p99.9", "max"]
    vals = [fig_data.get(k) or 0 for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    xs = np.arange(len(labels))
    ax.bar(xs - 0.2, vals, width=0.4, label="service latency", color="#1f77b4")
    if fig_data.get("co_measured"):
        co = [fig_data.get("co_p50_ms") or 0, 0, fig_data.get("co_p99_ms") or 0, 0, 0]
        ax.bar(xs + 0.2, co, width=0.4, label="corrected for coordinated omission", color="#ff7f0e")
    for i, v in enumerate(vals):
        ax.text(i - 0.2, v, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, labels)
    ax.set_ylabel("ms")
    _title(ax, "Latency percentiles")
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.1)  # fixed: no measuring draw
    return _png(fig)


def cross_table_png(cross: list[dict[str, Any]]) -> bytes:
    """The source x CORS verdict table as a heat map."""
    sources = ["app", "proxy", "server", "network"] + sorted(
        {c["source"] for c in cross} - {"app", "proxy", "server", "network"}
    )
    cors = ["pass", "fail", "unknown"]
    grid = np.zeros((len(sources), len(cors)))
    for c in cross:
        grid[sources.index(c["source"]), cors.index(c["cors"]) if c["cors"] in cors else 2] += c[
            "count"
        ]
    fig = Figure(figsize=(5, 0.5 + 0.45 * len(sources)))
    ax = fig.subplots()
    ax.imshow(np.log1p(grid), cmap="Reds", aspect="auto")
    for i in range(len(sources)):
        for j in range(len(cors)):
            dark = grid[i, j] and np.log1p(grid[i, j]) > 0.6 * np.log1p(grid.max())
            ax.text(
                j,
                i,
                f"{int(grid[i, j]):,}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(cors)), [f"CORS {c}" for c in cors])
    ax.set_yticks(range(len(sources)), sources)
    _title(ax, "Response source x browser CORS verdict")
    h = 0.5 + 0.45 * len(sources)  # margins in inches (the height grows with the sources)
    fig.subplots_adjust(left=0.9 / 5, right=1 - 0.15 / 5, bottom=0.3 / h, top=1 - 0.3 / h)
    return _png(fig)


HEAT_MAX_COLUMNS = 1800  # wider windows are binned: a column is then several seconds


def heat_strip_png(tl: Timeline, window: Any = None) -> bytes | None:
    """The proxy's 5xx per target per second, one row per target ('-' = no target): a burst on
    one target is a dark run on its row. ``window`` (the top cause's Window) is outlined. None
    when no 5xx was logged."""
    if tl.by_target is None:
        return None
    t0, names, m = tl.by_target
    step = max(1, int(np.ceil(m.shape[1] / HEAT_MAX_COLUMNS)))
    if step > 1:
        pad = (-m.shape[1]) % step
        m = np.pad(m, ((0, 0), (0, pad))).reshape(len(names), -1, step).sum(axis=2)
    h = 0.45 * len(names) + 1.4
    labels = [n if n != "-" else "- (no target)" for n in names]
    fig = Figure(figsize=(11, h))
    ax = fig.subplots()
    # fixed margins, in inches (tight_layout would draw the whole figure once more to measure
    # it): the target names' width from their length (a 10-pt character is about 0.08 in), one line
    # for the x label, one for the title
    left = min(0.45, (0.3 + 0.08 * max(len(s) for s in labels)) / 11)
    fig.subplots_adjust(left=left, right=1 - 0.15 / 11, bottom=0.6 / h, top=1 - 0.4 / h)
    shown = np.ma.masked_equal(m, 0)
    cmap = colormaps["Reds"].with_extremes(bad="#f4f4f4")
    im = ax.imshow(
        shown,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=0,
        extent=(0, m.shape[1] * step, len(names) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(names)), labels)
    ax.set_xlabel(
        f"seconds since {_clock(t0)} UTC" + (f" ({step} s per column)" if step > 1 else "")
    )
    _title(ax, "Proxy-generated 5xx per target per second (proxy / ALB log)")
    fig.colorbar(im, ax=ax, pad=0.01, label="5xx")
    if window is not None:
        rows = [names.index(window.target)] if window.target in names else range(len(names))
        lo, hi = min(rows) - 0.5, max(rows) + 0.5
        a, b = window.first_ts - t0, window.last_ts - t0 + 1
        ax.plot(
            [a, b, b, a, a], [lo, lo, hi, hi, lo], color="#1f77b4", lw=1.5, label="cause window"
        )
        ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def _clock(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
