"""One self-contained HTML report: plots inlined as base64 PNG, no external URL anywhere."""

from __future__ import annotations

import base64
from html import escape
from importlib import resources
from string import Template
from typing import Any

from analysis.correlate import Timeline
from analysis.reports import plots
from analysis.verdict import Verdict

KEY_FIGURES = (
    "requests",
    "duration_s",
    "failures",
    "failure_rate",
    "5xx_rate",
    "proxy_502",
    "proxy_503",
    "proxy_504",
    "server_5xx",
    "network",
    "app_cors_fail",
    "app_cors_fail_rate",
    "p50_ms",
    "p99_ms",
    "co_p99_ms",
    "target_p99_ms",
    "slots",
    "capacity_total",
    "peak_in_flight",
    "peak_littles_concurrency",
    "utilisation",
    "target_p99_over_timeout",
    "failure_rate_unhealthy",
    "failure_rate_healthy",
    "health_failure_lag_s",
    "health_failure_r",
    "share_5xx_near_worker_event",
    "share_5xx_low_load",
    "share_5xx_reused",
    "failure_onset_rps",
    "failure_onset_concurrency",
    "recommended_workers",
    "worker_gap_seconds",
    "alb_entries",
    "alb_elb_5xx",
    "alb_elb_502",
    "alb_target_5xx",
    "alb_connect_fail",
    "alb_target_closed",
    "alb_keepalive_race",
    "alb_timeout_kill",
    "alb_closed_late",
)


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            num = isinstance(v, int | float) and not isinstance(v, bool)
            txt = (
                f"{v:,.4g}"
                if isinstance(v, float)
                else (f"{v:,}" if num else escape(str(v if v is not None else "")))
            )
            cells.append(f"<td class='num'>{txt}</td>" if num else f"<td>{txt}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _causes(v: Verdict) -> str:
    if not v.causes:
        return "<p class='muted'>no proxy or CORS cause identified</p>"
    out = ["<table><tr><th>cause</th><th>strength</th><th>evidence</th><th>fix</th></tr>"]
    for c in v.causes:
        ev = "".join(f"<li>{escape(e)}</li>" for e in c.evidence)
        if c.window is not None:
            ev += f"<li><b>{escape(c.window.describe())}</b></li>"
        out.append(
            f"<tr><td><b>{escape(c.id)}</b></td><td class='num'>{c.strength:.2f} "
            f"<span class='bar' style='width:{int(60 * c.strength)}px'></span></td>"
            f"<td><ul>{ev}</ul></td><td><code>{escape(c.fix)}</code></td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render(
    v: Verdict,
    tl: Timeline,
    *,
    title: str,
    subtitle: str = "",
    extra_tables: dict[str, list[dict[str, Any]]] | None = None,
    version: str = "",
) -> tuple[str, bytes]:
    """(html, timeline_png): the timeline PNG is also written next to the report."""
    fig = v.figures
    timeline = plots.timeline_png(tl, fig)
    tmpl = Template(
        resources.files("analysis").joinpath("templates/report.html").read_text("utf-8")
    )
    extra = "".join(
        f"<h2>{escape(name)}</h2>{_table(rows)}" for name, rows in (extra_tables or {}).items()
    )
    parse = [d for d in (fig.get("parse") or {}).values() if d.get("files")]
    inputs = _table(
        [
            {"input": k, "present": "yes" if val else "no"}
            for k, val in (fig.get("present") or {}).items()
        ]
    ) + _table(
        parse, ["input", "files", "lines", "parsed", "malformed", "other", "truncated_files"]
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in fig.get("notes") or [])
    if notes:
        inputs += f"<ul>{notes}</ul>"
    figs = [{"figure": k, "value": fig.get(k)} for k in KEY_FIGURES if fig.get(k) is not None]
    strip = plots.heat_strip_png(tl, v.top.window if v.top else None)
    heat = (
        f'<img id="heat" alt="5xx per target per second" src="data:image/png;base64,{_b64(strip)}">'
        if strip
        else "<p class='muted'>no 5xx in the proxy or ALB log (or no such log)</p>"
    )
    html = tmpl.substitute(
        title=escape(title),
        subtitle=escape(subtitle),
        at_fault=escape(v.at_fault),
        headline=escape(v.headline),
        caveats="".join(f"<li>{escape(c)}</li>" for c in v.caveats).join(
            ("<div class='caveats'><b>Caveats</b><ul>", "</ul></div>")
        )
        if v.caveats
        else "",
        causes=_causes(v),
        timeline_png=_b64(timeline),
        heat=heat,
        cross_table=_table(v.cross_table, ["source", "cors", "count"])
        if v.cross_table
        else "<p class='muted'>no browser-side requests recorded (ALB logs carry no CORS headers)</p>",
        # no heat map of zeros when nothing was recorded on the browser side (ALB logs alone)
        cross_img=f'<img id="crosstable" alt="cross table" src="data:image/png;base64,'
        f'{_b64(plots.cross_table_png(v.cross_table))}">'
        if v.cross_table
        else "",
        latency_png=_b64(plots.latency_png(fig)),
        extra=extra,
        missing="".join(f"<li>{escape(m)}</li>" for m in v.missing_evidence).join(("<ul>", "</ul>"))
        if v.missing_evidence
        else "<p class='muted'>none: every input was present</p>",
        security=_table(v.security_findings)
        if v.security_findings
        else "<p class='muted'>none recorded</p>",
        inputs=inputs,
        figures=_table(figs, ["figure", "value"]),
        version=escape(version),
    )
    return html, timeline
