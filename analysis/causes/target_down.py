"""A target that is down: refused connects, no server up, the target stopped."""

from __future__ import annotations

from analysis.causes.base import (
    MIN_STRENGTH,
    REFUSED_REASONS,
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    conditional,
    hap,
    hap_5xx,
    haproxy_explained,
    health_reason_samples,
    pct,
    release_of,
    val,
)
from analysis.figures import Figures

ID = "target-down"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "health.refused": 0.6,
    "health.unhealthy-failure-rate": 0.3,
    "haproxy.refused": 0.6,
    "haproxy.no-server": 0.2,
    "events.target-stopped": 0.7,
    "requests.refused": 0.3,
    "alb.connect-fail": 0.35,
}


def judge(fig: Figures, ctx: Context) -> Cause | None:
    sc = Score(WEIGHTS, fig, ctx)
    n_ref, desc = health_reason_samples(fig, REFUSED_REASONS)
    if n_ref:
        sc.add(
            "health.refused",
            min(1.0, n_ref / 3),
            f"target health: {n_ref} unhealthy samples with connect-refused reason ({desc})",
        )
        cond = conditional(fig)
        if cond:
            sc.add("health.unhealthy-failure-rate", cond[0], cond[1])
    h5 = hap_5xx(fig)
    refused = hap(fig, "connect-refused")
    if h5 and refused:
        sc.add(
            "haproxy.refused",
            refused / h5 * 2,
            f"HAProxy log: {cnt(refused)} of {cnt(h5)} 5xx were refused connects (SC--; the testbed serves its 503 as the ALB's 502 page)",
        )
    if h5 and n_ref and hap(fig, "no-server"):
        sc.add(
            "haproxy.no-server",
            hap(fig, "no-server") / h5,
            f"HAProxy log: {cnt(hap(fig, 'no-server'))} requests found no server up (<NOSRV>)",
        )
    killed = int(fig.target_stops or 0)
    during = fig.share_5xx_while_target_stopped
    faults = [f for f in fig.faults or [] if "down" in str(f) or "kill" in str(f)]
    if killed:
        value = during if during is not None else 1.0
        # A stopped target refuses connects (or leaves no server up). When the proxy log shows
        # its 5xx were mostly something else - closed connections, timeouts - the stop (e.g. a
        # restart that reconfigured gunicorn) is not what failed them.
        conn_share = (refused + hap(fig, "no-server")) / h5 if h5 else None
        if conn_share is not None:
            value *= min(1.0, 2 * conn_share)
        sc.add(
            "events.target-stopped",
            value,
            f"events: target killed/stopped {killed}x"
            + (f", {pct(during)} of proxy 5xx while it was down" if during is not None else "")
            + (f" (testbed fault {faults[0]})" if faults else "")
            + (
                f", but only {pct(conn_share)} of the proxy's 5xx were failed connects"
                if conn_share is not None and conn_share < 0.5
                else ""
            ),
        )
    refused_client = sum(
        int(r["count"]) for r in fig.network_errors or [] if "Refused" in str(r.get("error"))
    )
    if refused_client:
        sc.add(
            "requests.refused",
            1.0,
            f"{cnt(refused_client)} requests were refused at connect (ConnectionRefusedError)",
        )
    cf = val(fig.alb_connect_fail)
    if cf and val(fig.alb_elb_5xx):
        sc.add(
            "alb.connect-fail",
            cf / val(fig.alb_elb_5xx),
            f"ALB log: {cnt(cf)} ALB 502s with target_status_code '-' and -1/-1/-1 times (could not connect: refused, reset or unreachable)",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    return Cause(
        "target-down",
        sc.strength,
        sc.evidence,
        "Bring the target back and keep it supervised: `docker ps -a` / `docker logs academy-api` for the exit "
        "reason (OOM-killed? exit code), run it with `--restart unless-stopped`, and check `dmesg | grep -i oom`.",
        sc.signals,
    )


def explained(fig: Figures) -> float | None:
    """Refused connects and no server up in the proxy log, less the deploy's own failures."""
    n = haproxy_explained("connect-refused", "no-server")(fig)
    if n is None:
        return None
    # A deploy's failures are its own, not a target crash's, though the proxy log looks the same.
    return max(0.0, n - val(release_of(fig).get("in_windows")))


SPEC = CauseSpec(ID, WEIGHTS, judge, explained=explained)
