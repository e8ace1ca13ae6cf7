"""A health check the app rejects (ALLOWED_HOSTS: the checker's Host is the private IP)."""

from __future__ import annotations

from analysis.causes.base import (
    MIN_STRENGTH,
    STATUS_REASONS,
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    conditional,
    hap,
    hap_5xx,
    health_reason_samples,
    val,
)
from analysis.figures import Figures

ID = "health-check-config"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "health.status-400": 0.7,
    "health.status": 0.4,
    "requests.app-ok-meanwhile": 0.3,
    "health.unhealthy-failure-rate": 0.2,
    "haproxy.no-server": 0.2,
    "haproxy.failopen": 0.2,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    sc = Score(WEIGHTS, fig, ctx)
    n_sts, desc = health_reason_samples(fig, STATUS_REASONS)
    if not n_sts:
        return None
    code400 = desc is not None and "400" in desc
    sc.add(
        "health.status-400" if code400 else "health.status",
        min(1.0, n_sts / 3),
        f"target health: {n_sts} failing samples with HTTP-status reason ({desc})",
    )
    app_ok = val(fig.app_ok)
    if app_ok:
        sc.add(
            "requests.app-ok-meanwhile",
            1.0,
            f"meanwhile {cnt(app_ok)} app requests with the public Host header succeeded: the app is up, only the health check is rejected",
        )
    cond = conditional(fig)
    if cond:
        sc.add("health.unhealthy-failure-rate", cond[0], cond[1])
    h5 = hap_5xx(fig)
    if h5 and hap(fig, "no-server"):
        sc.add(
            "haproxy.no-server",
            hap(fig, "no-server") / h5,
            f"HAProxy log: {cnt(hap(fig, 'no-server'))} requests found no server up (<NOSRV>) after the target was marked down",
        )
    fo = val(fig.haproxy_failopen)
    if fo:
        sc.add(
            "haproxy.failopen",
            1.0,
            f"HAProxy log: {cnt(fo)} requests were served through the fail-open path while the target "
            "was marked down (an ALB routes to unhealthy targets only when all are unhealthy)",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    hc = (fig.proxy or {}).get("health_check") or {}
    path = hc.get("path") or "/health"
    return Cause(
        "health-check-config",
        sc.strength,
        sc.evidence,
        "The health checker's Host is the target's private IP: add it to Django's ALLOWED_HOSTS "
        "(e.g. the EC2 local-ipv4 from instance metadata, or socket.gethostbyname(socket.gethostname())), "
        f"or answer {path} in a middleware placed before Django's host validation.",
        sc.signals,
    )


SPEC = CauseSpec("health-check-config", WEIGHTS, judge)
