"""The verdict (docs/architecture.md, "Verdict logic"): pure functions from figures to a Verdict.

1. CORS setup is at fault only when *app*-produced responses fail the browser's CORS check.
2. Failures are from the proxy when the failing responses are proxy- or server-generated 5xx
   (or no response at all, corroborated by proxy-side evidence) while app responses pass.
3. Proxy failures are attributed to causes, each a module of analysis/causes/ (registered in
   analysis/causes/registry.py) scoring its own signals. This module only ranks them, adds the
   caveats and words the headline: it names no cause.

The ids of ``at_fault`` and of the causes are a stable interface (summary.json consumers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from analysis.causes import registry
from analysis.causes.base import MIN_REQUESTS, SOURCE_NAMES, Cause, Context, Window
from analysis.causes.base import cnt as _n
from analysis.causes.base import pct as _pct
from analysis.causes.base import span as _span
from analysis.causes.base import val as _f
from analysis.caveats import caveats
from analysis.figures import Figures

__all__ = [
    "AT_FAULT",
    "CAUSE_IDS",
    "MIN_REQUESTS",
    "SOURCE_NAMES",
    "WEIGHTS",
    "Cause",
    "Context",
    "Verdict",
    "Window",
    "decide",
]

AT_FAULT = ("proxy", "cors-setup", "none", "insufficient-evidence")
CAUSE_IDS = tuple(c.id for c in registry.ALL)
# Each cause's signals and their weights in the noisy-OR, as the cause modules declare them
# (docs/analysis.md, "Signal weights", lists the same table; a test keeps the two equal). A
# signal's id names its source first: health (target health samples), haproxy / alb (the proxy's
# log), requests (the recorded requests), gunicorn (its log), events (the testbed's event log),
# config (run.json).
WEIGHTS: dict[str, dict[str, float]] = {c.id: c.weights for c in registry.ALL}


@dataclass
class Verdict:
    at_fault: str
    headline: str
    causes: list[Cause] = field(default_factory=list)
    cross_table: list[dict[str, Any]] = field(default_factory=list)
    security_findings: list[dict[str, Any]] = field(default_factory=list)
    missing_evidence: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=lambda: Figures(present={}))
    caveats: list[str] = field(default_factory=list)  # default: analysis.caveats of the figures

    def __post_init__(self) -> None:
        if not self.caveats:
            self.caveats = caveats(self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_fault": self.at_fault,
            "headline": self.headline,
            "causes": [c.to_dict() for c in self.causes],
            "cross_table": self.cross_table,
            "security_findings": self.security_findings,
            "missing_evidence": self.missing_evidence,
            "caveats": self.caveats,
            "figures": self.figures.to_dict(),
        }

    @property
    def top(self) -> Cause | None:
        return self.causes[0] if self.causes else None


# ---- the decision ------------------------------------------------------------------------------


def missing_evidence(fig: Figures) -> list[str]:
    p = fig.present or {}
    out = []
    if not p.get("requests") and not p.get("alb_log"):
        out.append("requests table (requests/part-*.parquet): no per-request outcomes")
    if p.get("requests") is False and p.get("alb_log"):
        out.append(
            "browser-side CORS verdicts: ALB logs carry no response headers; run `albprobe run` or `albprobe cors` to judge the CORS setup"
        )
    if not p.get("run_json") and p.get("requests"):
        out.append("run.json: no capacity model or proxy settings")
    if not fig.capacity and (p.get("requests") or p.get("run_json")):
        out.append(
            "capacity model ([capacity] workers/threads/timeout/keepalive): capacity and keep-alive causes cannot be confirmed"
        )
    if p.get("alb_log") and not p.get("requests") and not fig.capacity:
        out.append(
            "proxy idle timeout and gunicorn --keep-alive (ALB attribute idle_timeout.timeout_seconds, [capacity] keepalive): needed to confirm a keep-alive race"
        )
    if not p.get("health"):
        out.append(
            "target health samples (health/): cannot correlate failures with unhealthy targets"
        )
    if not p.get("haproxy_log") and not p.get("alb_log"):
        out.append(
            "proxy logs (logs/haproxy-*.log or logs/alb/): no termination states / -1 timers to tell refused, timed-out and closed connections apart"
        )
    if not p.get("gunicorn_events"):
        out.append(
            "gunicorn log or events (logs/gunicorn.log): no WORKER TIMEOUT / SIGKILL / boot evidence"
        )
    if p.get("requests") and fig.share_5xx_reused is None and _f(fig.proxy_5xx):
        out.append("connection reuse (conn_reused) of the failing requests")
    return out


def _insufficient(fig: Figures, why: str, missing: list[str], advice: str = "") -> Verdict:
    return Verdict(
        "insufficient-evidence",
        f"Insufficient evidence: {why}"
        + (
            f" Missing: {'; '.join(m.split(' (')[0].split(':')[0] for m in missing[:4])}."
            if missing
            else ""
        )
        + (f" {advice}" if advice else ""),
        cross_table=fig.cross_table or [],
        missing_evidence=missing,
        figures=fig,
    )


def _more_requests(fig: Figures) -> str:
    """How to get enough requests from a load run (never said of ALB logs)."""
    d = fig.duration_s
    longer = f"{max(60, math.ceil(3 * (d or 20) / 10) * 10)}s"
    return (
        f"For more evidence, run longer (e.g. --duration {longer}) or with more users (--users): "
        f"each user waits out every slow or timed-out call, so a run of only {_n(fig.requests)} requests "
        "is too short to measure failure rates."
    )


def _independent(cause: Cause) -> bool:
    """Two or more sources agree, and at least one is not the (too few) requests."""
    src = cause.sources
    return len(src) >= 2 and any(s != "requests" for s in src)


def context_of(fig: Figures) -> Context:
    p = fig.present or {}
    return "alb-logs" if not p.get("requests") and p.get("alb_log") else "run"


def decide(
    fig: Figures | dict[str, Any],
    security_findings: list[dict[str, Any]] | None = None,
    context: Context | None = None,
) -> Verdict:
    """Turn figures (analysis.correlate.compute) into the verdict. ``context`` says what they
    were read from - a load run or ALB access logs alone - and so how the verdict is worded
    (default: inferred from which inputs are present)."""
    if isinstance(fig, dict):
        fig = Figures.from_dict(fig)
    ctx: Context = context or context_of(fig)
    missing = missing_evidence(fig)
    n = _f(fig.requests)
    alb_only = ctx == "alb-logs"
    few = not alb_only and n < MIN_REQUESTS
    if few:
        missing = missing + [
            f"enough requests: only {_n(n)} recorded (>= {MIN_REQUESTS} to measure failure rates); "
            "run longer or with more users"
        ]
    if not alb_only and _f(fig.unattributed_errors) > 0.5 * max(1.0, _f(fig.errors)):
        return _insufficient(
            fig,
            f"{_n(fig.unattributed_errors)} failing responses have no source attribution.",
            missing,
        )

    cors = registry.CORS.judge(fig, ctx)
    proxy_fail = _f(fig.proxy_5xx) + _f(fig.server_5xx) + _f(fig.proxy_redirect_fail)
    network = _f(fig.network)
    if alb_only:
        proxy_fail = _f(fig.alb_elb_5xx) + _f(fig.alb_target_5xx)
    causes = _judge_all(fig, ctx) if (proxy_fail or network) else []
    if alb_only and not _f(fig.alb_elb_5xx) and not causes:
        proxy_fail = 0.0  # the app's own few 5xx and nothing else: a healthy window (noted below)
    causes = _rank(fig, _with_target_split(fig, causes))
    corroborated = any(c.strength >= 0.5 for c in causes)
    # Network-only failures (no HTTP response) are "CORS errors" too, but without proxy-side
    # evidence they could be the client's own network: do not guess.
    if network and not proxy_fail and not corroborated and not cors:
        return _insufficient(
            fig,
            f"{_n(network)} of {_n(n)} requests failed without any HTTP response ({_top_error(fig)}), and nothing on the proxy side shows where.",
            missing,
        )
    failing = proxy_fail + (network if corroborated else 0)
    if few:
        # Too few requests for rates: a cause stands only on independent sources (target health,
        # the proxy log, gunicorn's log) that agree; otherwise say what is missing and how to get it.
        lead = causes[0] if causes else None
        if not failing and not cors and _latent(fig, ctx, few):
            pass  # nothing failed but the target was unhealthy: judged below, on health and logs
        elif not failing or lead is None or lead.strength < 0.5 or not _independent(lead):
            why = f"only {_n(n)} requests recorded (need >= {MIN_REQUESTS})"
            if lead is not None:
                why += f"; strongest lead: {lead.id} (strength {lead.strength:.2f}, from {_from(lead)})"
            return _insufficient(fig, why + ".", missing, _more_requests(fig))
        causes = [c for c in causes if c.strength >= 0.5 and _independent(c)]
    cors_count = _f(fig.app_cors_fail)
    cross = fig.cross_table or []
    sec = list(security_findings or [])
    if cors and cors_count >= max(3.0, 0.01 * _f(fig.app_responses)) and cors_count >= failing:
        all_causes = [cors] + causes
        head = cors.evidence[0] + "; "
        head += (
            f"the proxy also produced {_n(failing)} failures (see causes)."
            if failing
            else "the proxy produced no failures - fix the CORS setup, not the proxy."
        )
        return Verdict(
            "cors-setup", head[0].upper() + head[1:], all_causes, cross, sec, missing, fig
        )
    if failing:
        if cors:
            causes.append(cors)
        head = _proxy_headline(fig, failing, causes, alb_only)
        if few:
            head += (
                f" The cause rests on {_from(causes[0], without_requests=True)}; "
                f"the {_n(n)} requests add little. " + _more_requests(fig)
            )
        return Verdict("proxy", head, causes, cross, sec, missing, fig)
    if not failing and not cors:
        found = _findings(fig, ctx)
        if found:
            return Verdict(
                "proxy", _finding_headline(fig, ctx, found[0]), found, cross, sec, missing, fig
            )
        latent = _latent(fig, ctx, few)
        if latent:
            return Verdict(
                "proxy", _latent_headline(fig, ctx, latent[0]), latent, cross, sec, missing, fig
            )
    if cors:  # a few app CORS failures, below the noise threshold
        return Verdict("cors-setup", cors.evidence[0] + ".", [cors], cross, sec, missing, fig)
    if alb_only:
        t5 = _f(fig.alb_target_5xx)
        head = f"No ALB-generated 5xx in {_n(_f(fig.alb_entries))} ALB log entries" + (
            f"; {_n(t5)} 5xx from the target itself, too few to point at a cause (the app's own errors)."
            if t5
            else " and none from the target."
        )
    else:
        head = (
            f"No failures in {_n(n)} requests: no proxy or gunicorn 5xx, every app response passed CORS"
            + (f" for {fig.origin}" if fig.origin else "")
            + (f" (p99 {_f(fig.p99_ms):.0f} ms)" if fig.p99_ms is not None else "")
            + "."
        )
        if _f(fig.app_5xx):
            head += f" Note: {_n(fig.app_5xx)} app-generated 5xx (the app's own errors, with CORS headers)."
        refused = _f(fig.app_responses) - _f(fig.app_ok) - _f(fig.app_5xx)
        if refused > 0:  # e.g. 415 for a body the endpoint does not take: not proxy, not CORS
            head += (
                f" Note: {_n(refused)} app responses were 4xx: the app refused the requests itself "
                "(check the endpoint's method, body and Content-Type in the config)."
            )
    letin = _origins_let_in(sec)
    if letin:
        # Verdict logic (docs/architecture.md): the CORS setup is also at fault when a disallowed origin is let in.
        worst = letin[0]
        cause = Cause(
            "cors-setup",
            1.0,
            [f"{f.get('severity')}: {f.get('check')} - {f.get('detail')}" for f in letin],
            str(
                worst.get("fix") or "Allow only the exact front-end origins (CORS_ALLOWED_ORIGINS)."
            ),
        )
        head += (
            f" But the CORS setup lets disallowed origins in ({len(letin)} {worst.get('severity')}+ "
            f"finding(s) from the run's CORS scan, e.g. {worst.get('check')})."
        )
        return Verdict("cors-setup", head, [cause], cross, sec, missing, fig)
    return Verdict("none", head, [], cross, sec, missing, fig)


_LET_IN = ("high", "critical")


def _judge_all(fig: Figures, ctx: Context) -> list[Cause]:
    """Every registered proxy cause that the figures support (MIN_STRENGTH and up)."""
    return [c for c in (spec.judge(fig, ctx) for spec in registry.PROXY) if c is not None]


def _findings(fig: Figures, ctx: Context) -> list[Cause]:
    """Nothing failed, yet a cause that stands without failures is well supported (e.g. a target
    leaving and coming back in the ALB log): those causes, strongest first."""
    found = [
        c
        for c in (spec.judge(fig, ctx) for spec in registry.PROXY if spec.without_failures)
        if c is not None and c.strength >= 0.5
    ]
    return sorted(found, key=lambda c: -c.strength)


def _finding_headline(fig: Figures, ctx: Context, top: Cause) -> str:
    return (
        f"No request failed in {_span(ctx)}, but {top.evidence[0].split(': ', 1)[-1]}; cause: "
        f"{top.id} (strength {top.strength:.2f}). Clients did not see it because other targets "
        "served; with fewer targets, or all of them affected, they would get 502/503/504s - "
        "which browsers report as CORS errors."
    )


def _with_target_split(fig: Figures, causes: list[Cause]) -> list[Cause]:
    """One bad target of N: the per-target split goes into the evidence of the target's causes."""
    pattern = (fig.target_breakdown or {}).get("one_of_n")
    if pattern:
        for c in causes:
            if registry.BY_ID[c.id].target_split:
                c.evidence.append(pattern)
    return causes


def _rank(fig: Figures, causes: list[Cause]) -> list[Cause]:
    """Strongest first; but among the well-supported causes (>= 0.5), the one that explains the
    most failures in the proxy log leads: strength says a cause is present, the count says which
    one failed most of these requests (a one-second restart vs a race recurring all run)."""
    by_strength = sorted(causes, key=lambda c: c.strength, reverse=True)
    strong = [c for c in by_strength if c.strength >= 0.5]
    counts = [registry.BY_ID[c.id].explained(fig) for c in strong]
    if len(strong) < 2 or any(x is None for x in counts):
        return by_strength
    lead = max(zip(strong, counts, strict=True), key=lambda t: (t[1], t[0].strength))[0]
    return [lead] + [c for c in by_strength if c is not lead]


def _latent(fig: Figures, ctx: Context, few: bool) -> list[Cause]:
    """Nothing failed, yet the target was unhealthy for >= 10 % of the time and a cause explains
    it (the proxy failed open): the causes, strongest first; with few requests, only those that
    independent sources corroborate. Empty when there is no such case."""
    if _f(fig.share_time_unhealthy) < 0.1:
        return []
    latent = sorted(_judge_all(fig, ctx), key=lambda c: -c.strength)
    if few:
        latent = [c for c in latent if _independent(c)]
    return latent if latent and latent[0].strength >= 0.5 else []


def _latent_headline(fig: Figures, ctx: Context, top: Cause) -> str:
    head = (
        f"No recorded request failed, but the target was unhealthy for {_n(_f(fig.seconds_unhealthy))} s "
        f"({_pct(_f(fig.share_time_unhealthy))} of {_span(ctx)}) and traffic reached it only because the proxy "
        f"failed open; cause: {top.id} (strength {top.strength:.2f}). With another, healthy "
        "target in the group the proxy stops routing to it, and with none it answers 502/503 - which "
        "browsers report as CORS errors."
    )
    if ctx == "run" and fig.requests < MIN_REQUESTS:
        head += f" The cause rests on {_from(top, without_requests=True)}. " + _more_requests(fig)
    return head


def _origins_let_in(sec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scan findings where a disallowed origin was admitted (severity high or critical), worst first."""
    found = [f for f in sec if isinstance(f, dict) and f.get("severity") in _LET_IN]
    return sorted(found, key=lambda f: -_LET_IN.index(f["severity"]))


def _from(cause: Cause, *, without_requests: bool = False) -> str:
    src = set(cause.sources) - ({"requests"} if without_requests else set())
    names = [name for s, name in SOURCE_NAMES.items() if s in src]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def _top_error(fig: Figures) -> str:
    errs = fig.network_errors or []
    return ", ".join(f"{e['error']} x{e['count']}" for e in errs[:2]) or "no response"


def _proxy_headline(fig: Figures, failing: float, causes: list[Cause], alb_only: bool) -> str:
    if alb_only:
        total = _f(fig.alb_entries)
        # each status the ALB answered itself, largest first (a window of 504s is not "0 x 502")
        codes = sorted(
            (
                (_f(n), code)
                for code, n in (
                    (502, fig.alb_elb_502),
                    (503, fig.alb_elb_503),
                    (504, fig.alb_elb_504),
                )
                if _f(n)
            ),
            reverse=True,
        )
        other = _f(fig.alb_elb_5xx) - sum(n for n, _ in codes)  # 500, 505, 561: rare ones
        by_code = (
            ", ".join(
                [f"{_n(n)} x {code}" for n, code in codes]
                + ([f"{_n(other)} other"] if other else [])
            )
            or "none"
        )
        head = (
            f"{_n(_f(fig.alb_elb_5xx))} of {_n(total)} requests got a 5xx generated by the ALB itself "
            f"(target_status_code '-'; {by_code}) and {_n(_f(fig.alb_target_5xx))} a 5xx from the target"
        )
        if _f(fig.alb_keepalive_race):
            head += (
                f"; {_n(fig.alb_keepalive_race)} of the ALB 502s carry the keep-alive signature "
                "(target closed the connection at once, within 0.1 s of dispatch)"
            )
    else:
        n = _f(fig.requests)
        parts = []
        for count, label in (
            (fig.proxy_502, "502"),
            (fig.proxy_503, "503"),
            (fig.proxy_504, "504"),
        ):
            if count:
                parts.append(f"{_n(count)} x {label}")
        if _f(fig.proxy_redirect_fail):
            parts.append(f"{_n(fig.proxy_redirect_fail)} x redirect to HTTPS")
        if _f(fig.server_5xx):
            parts.append(f"{_n(fig.server_5xx)} gunicorn 5xx")
        if _f(fig.network):
            parts.append(f"{_n(fig.network)} without response")
        cors_txt = (
            "and no request reached the app"
            if not _f(fig.app_responses)
            else "while app responses passed CORS"
            if not _f(fig.app_cors_fail)
            else f"({_n(fig.app_cors_fail)} app responses also failed CORS)"
        )
        head = (
            f"{_n(failing)} of {_n(n)} requests ({_pct(failing / n)}) failed at the proxy ({', '.join(parts)}), "
            f"with no CORS headers - the browser reports them as CORS errors - {cors_txt}"
        )
    proxy_causes = [c for c in causes if c.id != "cors-setup"]
    strong = [c for c in proxy_causes if c.strength >= 0.5]
    if len(strong) > 1:  # several causes, each well supported (e.g. overload, then a crash)
        named = " and ".join(f"{c.id} ({c.strength:.2f})" for c in strong)
        head += f"; causes: {named}."
    elif proxy_causes and proxy_causes[0].strength >= 0.35:
        head += (
            f"; most likely cause: {proxy_causes[0].id} (strength {proxy_causes[0].strength:.2f})."
        )
    else:
        head += "; the cause is undetermined from the evidence available."
        return head
    w = proxy_causes[0].window
    if w is not None:  # when and where, as `albprobe replay` will inject it
        head += f" It {w.describe()}."
    return head
