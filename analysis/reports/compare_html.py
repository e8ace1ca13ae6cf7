"""The comparison as one self-contained HTML page: latency CDFs per endpoint (baseline and new
overlaid), both timelines on one time axis, the failure mix side by side, and every judged
figure. Plots are inlined as base64 PNG; no external URL anywhere."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.compare import Comparison
from analysis.compare.data import ALL, PRODUCERS
from analysis.reports.compare_terminal import change, value
from analysis.reports.plots import plain_log_axis

COLOURS = {"baseline": "#1f77b4", "new": "#d62728"}
CDF_POINTS = 400  # each curve is drawn from this many quantiles, however many rows


def _png(fig: Figure) -> str:
    """Drawn by Agg with the margins each figure set: no pyplot (no figure registry, a third of
    matplotlib's import), no tight_layout (it draws the whole figure once more to measure it)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def cdf_png(cmp: Comparison) -> str:
    scopes = [ALL, *sorted(s for s in cmp.base.latency if s != ALL and s in cmp.new.latency)]
    cols = min(3, len(scopes))
    rows = -(-len(scopes) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    qs = np.linspace(0, 1, CDF_POINTS)
    for ax, scope in zip(axes.flat, scopes, strict=False):
        span: list[float] = []
        for side, rd in (("baseline", cmp.base), ("new", cmp.new)):
            lat = rd.latency[scope]  # the rows, or a uniform sample of them
            if len(lat.ms):
                x = np.quantile(lat.ms, qs)
                ax.plot(x, qs, color=COLOURS[side], label=f"{side} ({lat.n:,})")
                span += [float(v) for v in x[[0, -1]] if v > 0]
        ax.set_xscale("log")
        if span:
            plain_log_axis(ax.xaxis, min(span), max(span))
        ax.set_title("all endpoints" if scope == ALL else scope, fontsize=10)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("share of requests")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(scopes) :]:
        ax.axis("off")
    # fixed margins in inches (labels and tick labels of a panel), as fractions of the figure
    w, h = 4.2 * cols, 3.2 * rows
    fig.subplots_adjust(
        left=0.6 / w, right=1 - 0.15 / w, bottom=0.55 / h, top=1 - 0.3 / h,
        wspace=0.3, hspace=0.45,
    )  # fmt: skip
    return _png(fig)


def timeline_png(cmp: Comparison) -> str:
    """Seconds since each run's first request: both runs on one axis."""
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(3, 1, sharex=True)
    for side, rd in (("baseline", cmp.base), ("new", cmp.new)):
        t = np.array([r["t"] for r in rd.timeline], dtype=float)
        c = COLOURS[side]
        axes[0].plot(t, [r["requests"] for r in rd.timeline], color=c, label=side)
        axes[1].plot(
            t, [np.nan if r["p95_ms"] is None else r["p95_ms"] for r in rd.timeline], color=c
        )
        axes[2].plot(t, [r["failures"] for r in rd.timeline], color=c)
    axes[0].set_ylabel("requests/s")
    axes[1].set_ylabel("p95 (ms)")
    axes[2].set_ylabel("failures/s")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xlabel("seconds since the run's first request")
    axes[0].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.98, hspace=0.12)
    return _png(fig)


def failure_mix_png(cmp: Comparison) -> str:
    names = list(PRODUCERS)
    x = np.arange(len(names))
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    for k, (side, rd) in enumerate((("baseline", cmp.base), ("new", cmp.new))):
        c = rd.counts[ALL]
        rates = [c.events[p].sum() / max(c.total, 1) * 100 for p in names]
        ax.bar(x + (k - 0.5) * 0.4, rates, 0.4, color=COLOURS[side], label=side)
    ax.set_xticks(x, names)
    ax.set_ylabel("% of requests")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.96)
    return _png(fig)


def _mix_caption(cmp: Comparison) -> str:
    """The chart shows the rates as recorded; say so when the (all) rate figures are weighted."""
    if not any("failure rates are judged" in n for n in cmp.notes):
        return ""
    return (
        '<p class="muted">as recorded; the (all) rate figures below are at the baseline\'s '
        "endpoint mix (see the notes)</p>"
    )


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
td.num{text-align:right;font-variant-numeric:tabular-nums}.regressed{color:#b00;font-weight:bold}
.improved{color:#070}.inconclusive{color:#a60}.pass{background:#dfd}.marginal{background:#ffd}
.fail{background:#fdd}.banner{padding:.8em;border-radius:6px;font-size:1.2em}.muted{color:#777}"""


def _figures_table(cmp: Comparison) -> str:
    out = [
        "<table><tr><th>scope</th><th>figure</th><th>baseline</th><th>new</th><th>change [95% CI]</th>"
        "<th>p (adj.)</th><th>judgement</th><th>why</th></tr>"
    ]
    for f in cmp.figures:
        out.append(
            f"<tr><td>{escape(f.scope)}</td><td>{escape(f.name)}</td><td class='num'>{escape(value(f, f.base))}</td>"
            f"<td class='num'>{escape(value(f, f.new))}</td><td class='num'>{escape(change(f))}</td>"
            f"<td class='num'>{'-' if f.p_adj is None else f'{f.p_adj:.2g}'}</td>"
            f"<td class='{f.judgement}'>{f.judgement}</td><td>{escape(f.why)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _list(items: list[str], empty: str) -> str:
    if not items:
        return f"<p class='muted'>{escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def render(cmp: Comparison, *, version: str = "") -> str:
    o = cmp.overall
    v = cmp.verdicts
    verdict_rows = "".join(
        f"<tr><td>{side}</td><td>{escape(v[side]['at_fault'])}</td><td>{escape(v[side]['headline'])}</td>"
        f"<td>{escape(_causes(v[side]['causes']))}</td></tr>"
        for side in ("baseline", "new")
        if side in v
    )
    gates = "".join(
        f"<tr><td>{escape(g.name)}</td><td class='{'pass' if g.passed else 'fail'}'>{'ok' if g.passed else 'breached'}</td>"
        f"<td>{escape(g.message)}</td></tr>"
        for g in cmp.gates
    )
    s = cmp.settings
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>albprobe compare {escape(cmp.base.run_id)} vs {escape(cmp.new.run_id)}</title><style>{CSS}</style></head><body>
<h1>albprobe compare</h1>
<p>baseline <b>{escape(cmp.base.run_id)}</b> ({escape(str(cmp.base.path))}) vs new <b>{escape(cmp.new.run_id)}</b> ({escape(str(cmp.new.path))})</p>
<div class="banner {o.result}">overall: <b>{o.result}</b></div>{_list(o.reasons, "no figure regressed or looks worse")}
<h2>Compared despite (--force)</h2>{_list(cmp.differences, "nothing: the runs are comparable")}
<h2>Latency CDFs (app answers, baseline vs new)</h2><img alt="latency CDFs" src="data:image/png;base64,{cdf_png(cmp)}">
<h2>Timelines on one time axis</h2><img alt="timelines" src="data:image/png;base64,{timeline_png(cmp)}">
<h2>Failure mix</h2><img alt="failure mix" src="data:image/png;base64,{failure_mix_png(cmp)}">
{_mix_caption(cmp)}
<h2>Figures</h2>{_figures_table(cmp)}
<p class="muted">regressed = significant after {escape(s.correction)} correction (alpha {s.alpha}) and beyond the minimum effect
(latency +{s.min_latency_effect:.0%}, failure rate +{s.min_rate_effect * 100:.2g} points); time blocks of
{cmp.base.window_s:.3g} s / {cmp.new.window_s:.3g} s; see docs/compare.md.</p>
<h2>Verdicts</h2><table><tr><th>run</th><th>at fault</th><th>headline</th><th>causes</th></tr>{verdict_rows}</table>
{_list(cmp.changes, "no change in the verdict or its causes")}
<h2>Per target</h2>{_targets(cmp.targets)}
<h2>Gates</h2><table><tr><th>gate</th><th>result</th><th>detail</th></tr>{gates}</table>
{_list(cmp.notes, "")}
<p class="muted">albprobe {escape(version)}</p></body></html>"""


def _causes(causes: list[dict[str, Any]]) -> str:
    return ", ".join(f"{c['id']} ({c['strength']:.2f})" for c in causes) or "-"


def _targets(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class='muted'>one target (or none named)</p>"
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(f'{v:.3g}' if isinstance(v, float) else str(v))}</td>" for v in r.values()
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
