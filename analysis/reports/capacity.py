"""The tuning report: the capacity curve (PNG) and one self-contained HTML page."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.capacity import PassResult, TuneResult  # noqa: E402

COLOURS = {"before": "#d62728", "after": "#2ca02c"}


def capacity_png(result: TuneResult) -> bytes:
    """Left: throughput and p99 against offered load. Right: throughput against concurrency
    (Little's law) with the USL fit. The knee is starred on both."""
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(13, 4.8))
    ax2 = ax1.twinx()
    passes = [p for p in (result.before, result.after) if p is not None]
    top = 1.0
    for p in passes:
        c = COLOURS[p.name]
        label = _setting(p)
        steps = sorted(p.steps, key=lambda s: s.offered_rps)
        off = [s.offered_rps for s in steps]
        x = [s.throughput_rps or 0 for s in steps]
        p99 = [s.p99_ms or np.nan for s in steps]
        top = max(top, *off, *x)
        ax1.plot(off, x, "o-", color=c, label=f"throughput, {label}")
        ax2.plot(off, p99, "s--", color=c, alpha=0.6, label=f"p99, {label}")
        held = [ch.holds for ch in p.knee.checks]
        by_id = dict(zip((id(s) for s in p.steps), held, strict=True))
        ax1.scatter(
            [s.offered_rps for s in steps if not by_id[id(s)]],
            [s.throughput_rps or 0 for s in steps if not by_id[id(s)]],
            marker="x",
            s=80,
            color="black",
            zorder=5,
        )
        pts = [(s.concurrency, s.throughput_rps) for s in steps if s.concurrency]
        if pts:
            ax3.plot(*zip(*pts, strict=True), "o", color=c, label=f"measured, {label}")
        if p.fit.supported:
            n_max = max(n for n, _ in pts) * 1.3
            grid = np.linspace(0.05, n_max, 200)
            ax3.plot(
                grid,
                [p.fit.predict(n) for n in grid],
                "-",
                color=c,
                alpha=0.7,
                label=f"USL σ={p.fit.sigma:.3f} κ={p.fit.kappa:.4f}",
            )
        k = p.knee.step
        if k is not None and k.throughput_rps is not None:
            ax1.plot([k.offered_rps], [k.throughput_rps], "*", ms=18, color=c, mec="black")
            ax1.annotate(
                f"knee {'' if p.knee.bounded else '>= '}{k.throughput_rps:.1f}",
                (k.offered_rps, k.throughput_rps),
                textcoords="offset points",
                xytext=(-70, -22),
            )
            if k.concurrency:
                ax3.plot([k.concurrency], [k.throughput_rps], "*", ms=18, color=c, mec="black")
    ax1.plot([0, top], [0, top], ":", color="grey", label="throughput = offered")
    for t in result.slo:
        if t.startswith("p99<"):
            v = _slo_ms(t)
            if v is not None:
                ax2.axhline(v, color="grey", lw=0.8, ls="-.", label=f"SLO {t}")
    ax1.set_xlabel("offered load (req/s, open model)")
    ax1.set_ylabel("throughput (req/s)")
    ax2.set_ylabel("p99 from the intended send time (ms)")
    ax2.set_yscale("log")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    ax1.set_title("throughput and p99 against offered load (x = SLO broken)")
    ax3.set_xlabel("concurrency N = throughput x mean time in system (Little's law)")
    ax3.set_ylabel("throughput X (req/s)")
    ax3.set_title("scalability: X(N) = λN / (1 + σ(N-1) + κN(N-1))")
    ax3.legend(fontsize=7, loc="lower right")
    ax3.set_xlim(left=0)
    ax3.set_ylim(bottom=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _slo_ms(text: str) -> float | None:
    from analysis.capacity import parse_slo

    try:
        return parse_slo([text])[0].value
    except Exception:
        return None


def _setting(p: PassResult) -> str:
    c = p.capacity
    if c.get("worker_class") == "gthread":
        return f"{c['workers']} gthread x {c['threads']}"
    return f"{c.get('workers')} {c.get('worker_class')}"


def _f(v: Any, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "-"
    if unit == "%":
        return f"{v:.{digits}%}"
    return f"{v:,.{digits}f}{unit}"


def _side_by_side(r: TuneResult) -> str:
    """Knee, then throughput, p99 and 5xx at the rate where the current setting broke and at the
    target, for both settings (the same offered rates: the proof reran the steps)."""
    b, a = r.before, r.after
    rows: list[tuple[str, str, str]] = [
        ("setting", _setting(b), _setting(a) if a else "-"),
        (
            "knee throughput",
            _f(b.knee.rps, " req/s") + ("" if b.knee.bounded else " (lower bound)"),
            (_f(a.knee.rps, " req/s") + ("" if a.knee.bounded else " (not reached)")) if a else "-",
        ),
    ]
    rates = []
    if b.knee.broke is not None:
        rates.append((b.knee.broke.offered_rps, "where before broke"))
    if r.target_rps is not None and all(abs(x - r.target_rps) > 1e-6 for x, _ in rates):
        rates.append((r.target_rps, "the target"))
    for rate, why in rates:
        sb = b.step_at(rate)
        sa = a.step_at(rate) if a else None
        for label, attr, unit, digits in (
            ("throughput", "throughput_rps", " req/s", 1),
            ("p99", "p99_ms", " ms", 0),
            ("5xx rate", "rate_5xx", "%", 2),
        ):
            rows.append(
                (
                    f"{label} at {rate:g} req/s ({why})",
                    _f(getattr(sb, attr) if sb else None, unit, digits),
                    _f(getattr(sa, attr) if sa else None, unit, digits),
                )
            )
    return _table(("", "before", "after"), rows)


def _table(head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    h = "".join(f"<th>{escape(str(x))}</th>" for x in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(x))}</td>" for x in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def _steps_table(p: PassResult) -> str:
    rows = []
    for s, c in zip(p.steps, p.knee.checks, strict=True):
        rows.append(
            (
                s.run_id,
                f"{s.offered_rps:g}",
                _f(s.throughput_rps),
                _f(s.concurrency, "", 2),
                _f(s.mean_ms, "", 0),
                _f(s.p99_ms, "", 0),
                _f(s.rate_5xx, "%", 2),
                f"{s.dropped}/{s.scheduled}",
                s.status,
                "holds" if c.holds else "; ".join(c.failed),
            )
        )
    return _table(
        (
            "step (run directory/step)",
            "offered req/s",
            "throughput req/s",
            "concurrency",
            "mean ms",
            "p99 ms",
            "5xx",
            "dropped",
            "status",
            "SLO",
        ),
        rows,
    )


def _usl(p: PassResult) -> str:
    f = p.fit
    if not f.supported:
        return f"<p>USL fit ({escape(p.name)}): <b>not supported by the data</b>: {escape(f.reason)}.</p>"
    if f.peak_concurrency is None:
        peak = "no retrograde region (κ = 0): throughput levels off rather than falling"
    else:
        peak = (
            f"the curve peaks at N* = {f.peak_concurrency:.1f} in flight ({f.peak_rps:.1f} req/s)"
        )
        peak += {
            True: ", and a measured step beyond N* did lose throughput",
            False: ", but no measured step beyond N* lost throughput: κ only shapes the curve "
            "(a worker-pool limit looks like this), N* is not a finding",
            None: ", beyond every measured step: an extrapolation",
        }[f.retrograde_measured]
    return (
        f"<p>USL fit ({escape(p.name)}): λ = {f.lam:.2f} req/s per unit of concurrency, "
        f"σ (contention) = {f.sigma:.4f}, κ (coherency) = {f.kappa:.5f}; {escape(peak)}; "
        f"R² = {f.r2:.3f}, RMSE {f.rmse:.2f} req/s over {f.points} steps.</p>"
    )


def render_html(result: TuneResult, png: bytes) -> str:
    r, rec = result, result.recommendation
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>albprobe tune</title><style>body{font-family:-apple-system,'Segoe UI',Helvetica,"
        "Arial,sans-serif;margin:24px;color:#222;max-width:1150px}table{border-collapse:collapse;"
        "margin:8px 0 18px;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:"
        "left;vertical-align:top}th{background:#f4f4f4}code{background:#f4f4f4;padding:1px 4px}"
        "img{max-width:100%;border:1px solid #eee}.box{padding:12px 16px;border-left:6px solid "
        "#1f77b4;background:#eef5fb;margin:12px 0}</style></head><body>",
        f"<h1>albprobe tune: {escape(r.target)}</h1>",
        f"<p>SLO: <code>{escape(' and '.join(r.slo))}</code> (p99 measured from each request's "
        "intended send time: corrected for coordinated omission).</p>",
        "<div class='box'>" + "<br>".join(escape(s) for s in r.statements if s) + "</div>",
        f"<img alt='capacity curve' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
        "<h2>Before and after</h2>",
        _side_by_side(r),
    ]
    if rec is not None:
        parts += [
            "<h2>Recommendation</h2>",
            f"<p><code>gunicorn {escape(rec.gunicorn_args)}</code> for {rec.target_rps:g} req/s "
            f"with {rec.headroom:.0%} headroom: {escape(rec.why_class)}.</p>",
            "<ol>" + "".join(f"<li>{escape(a)}</li>" for a in rec.arithmetic) + "</ol>",
        ]
        if rec.notes:
            parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in rec.notes) + "</ul>")
    m = r.measurements
    parts += [
        "<h2>Scalability (Universal Scalability Law)</h2>",
        _usl(r.before),
        _usl(r.after) if r.after else "",
        "<h2>Measurements</h2>",
        _table(
            ("figure", "value", "source"),
            [
                ("service time", _f(m.get("service_ms"), " ms"), m.get("service_source") or "-"),
                (
                    "CPU share of the service time",
                    _f(m.get("cpu_share"), "%"),
                    m.get("cpu_source") or "-",
                ),
                (
                    "memory per worker",
                    _f((m.get("memory") or {}).get("per_worker_mb"), " MB", 0),
                    (m.get("memory") or {}).get("source") or "unknown",
                ),
            ],
        ),
        "<h2>Steps, before</h2>",
        _steps_table(r.before),
    ]
    if r.after:
        parts += ["<h2>Steps, after</h2>", _steps_table(r.after)]
    parts.append(
        "<p>Each step is a run directory under <code>steps/</code>; every figure is in "
        "<code>tune.json</code>. The method and its limits: docs/tuning.md.</p></body></html>"
    )
    return "\n".join(parts)
