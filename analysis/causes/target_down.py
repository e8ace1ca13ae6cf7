"""A target that is down: refused connects, no server up, the target stopped."""

from __future__ import annotations

from typing import Any

from analysis.causes import alb_log
from analysis.causes.base import (
    MIN_STRENGTH,
    REFUSED_REASONS,
    Cause,
    CauseSpec,
    Context,
    Score,
    Window,
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
    "alb.refused-then-back": 0.7,
    "alb.stopped-listening": 0.7,
}
KILLED_MIN = 3  # requests closed mid-request as a target went down: it was killed, not stopped
FIX = (
    "Bring the target back and keep it supervised: `docker ps -a` / `docker logs academy-api` for "
    "the exit reason (OOM-killed? exit code), run it with `--restart unless-stopped`, and check "
    "`dmesg | grep -i oom`."
)
# The app went down and came back by itself: the fix is why it went down, or how it is restarted.
FIX_CAME_BACK = (
    "Find why the app stopped: `docker inspect -f '{{.RestartCount}} {{.State.OOMKilled}} "
    "{{.State.ExitCode}}' academy-api` on the target (137 = SIGKILL, often the OOM killer), "
    "`dmesg -T | grep -i oom`, `docker logs --since <time> academy-api`; give it memory headroom "
    "(or fewer gunicorn workers). If a deploy restarted it, take the target out first: "
    "`aws elbv2 deregister-targets --target-group-arn <tg> --targets Id=<instance>,Port=8000`, "
    "wait for the deregistration delay, restart, then `aws elbv2 register-targets` with the same "
    "arguments (or deploy by replacing targets: an ECS rolling update drains each one)."
)


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
    window = _came_back(fig, sc)
    window = _stopped(fig, sc) or window
    if sc.strength < MIN_STRENGTH:
        return None
    return Cause(
        "target-down",
        sc.strength,
        sc.evidence,
        FIX_CAME_BACK if window is not None else FIX,
        sc.signals,
        window=window,
    )


def _came_back(fig: Figures, sc: Score) -> Window | None:
    """ALB log alone: targets that refused every connect for a stretch, then answered again on
    the same address (alb_log.came_back). Their window: the target that refused most."""
    pat = alb_log.patterns(fig)
    back = alb_log.came_back(pat) if pat else []
    if pat is None or not back:
        return None
    refused = sum(int(t["fails"]["connect_fail"]) for t in back)
    sc.add(
        "alb.refused-then-back",
        refused / max(1, alb_log.alb_5xx(pat)) * 1.5,
        "ALB log: "
        + "; ".join(_outage(pat, t, first=i == 0) for i, t in enumerate(back[:3]))
        + (f"; and {len(back) - 3} more target(s)" if len(back) > 3 else "")
        + ": the app was down and came back on the same address (a network block drops "
        "packets, which the ALB logs as 504 connect timeouts, and does not lift by itself)",
    )
    if len(back) > 1:
        spans = sorted((float(t["refused_first_ts"]), float(t["refused_last_ts"])) for t in back)
        apart = all(b[0] > a[1] for a, b in zip(spans, spans[1:], strict=False))
        sc.evidence.append(
            f"{len(back)} targets went down one after another, never two at once: a restart "
            "target by target (a deploy that restarts each container in place)"
            if apart
            else f"{len(back)} targets were down at the same time"
        )
    t = back[0]
    # requests it dropped mid-work as it went down: killed (a stop on purpose lets gunicorn
    # finish them in its graceful timeout)
    mid = int(t["fails"].get("closed_mid_request", 0)) + int(t["fails"].get("timeout_kill", 0))
    if mid >= KILLED_MIN and float(t["fail_first_ts"]) <= float(t["refused_first_ts"]):
        sc.evidence.append(
            f"{cnt(mid)} of its requests were closed mid-request as it went down: it was killed "
            "while working (a restart on purpose lets gunicorn finish them), a crash or an OOM "
            "kill restarted by its supervisor: the container's OOMKilled flag and "
            "`dmesg -T | grep -i oom` tell which"
        )
    else:
        sc.evidence.append(
            "the log alone cannot tell a crash restarted by its supervisor (Docker's --restart, "
            "systemd, ECS) from a restart on purpose (a deploy that restarts the app without "
            "deregistering the target first): the container's restart count and OOMKilled flag, "
            "`dmesg -T | grep -i oom` and the deploy history at that time tell them apart"
        )
    return alb_log.window(
        pat, float(t["refused_first_ts"]), float(t["refused_last_ts"]), t["target"]
    )


def _stopped(fig: Figures, sc: Score) -> Window | None:
    """ALB log alone: targets that served, then refused every connect to the end of the window
    (alb_log.stopped). Their window: the target that refused most."""
    pat = alb_log.patterns(fig)
    gone = alb_log.stopped(pat) if pat else []
    if pat is None or not gone:
        return None
    t = gone[0]
    refused = sum(int(x["fails"]["connect_fail"]) for x in gone)
    a, b = float(t["refused_first_ts"]), float(t["refused_last_ts"])
    sc.add(
        "alb.stopped-listening",
        refused / max(1, alb_log.alb_5xx(pat)) * 1.5,
        f"ALB log: {t['target']} answered {cnt(t['answered_before_refused'])} requests, then "
        f"from {alb_log.clock(a)} refused every connect to the end of the window "
        f"({cnt(t['fails']['connect_fail'])} x 502 with -1/-1/-1 over {b - a:.0f} s)"
        + (f", and {len(gone) - 1} more target(s) the same way" if len(gone) > 1 else "")
        + ": the app stopped listening on the port it had served on (crashed or stopped, not "
        "back yet); a security group or NACL drops packets, which the ALB logs as 504 connect "
        "timeouts, and does not refuse",
    )
    return alb_log.window(pat, a, b, t["target"])


def _outage(pat: dict[str, Any], t: dict[str, Any], *, first: bool) -> str:
    """One target's refused stretch, in words (``first``: with what the others did meanwhile)."""
    a, b = float(t["refused_first_ts"]), float(t["refused_last_ts"])
    refused, routed = int(t["fails"]["connect_fail"]), int(t["during_refused"])
    every = refused >= routed  # else most (alb_log.REFUSED_ALL): a client gave up meanwhile
    words = (
        f"{'every request' if every else f'{cnt(refused)} of the {cnt(routed)} requests'} routed "
        f"to {t['target']} from {alb_log.clock(a)} to {alb_log.clock(b)} ({b - a:.0f} s) "
        f"{'was' if every else 'were'} refused at connect"
        + (f" ({cnt(refused)} x 502 with -1/-1/-1)" if every else " (502 with -1/-1/-1)")
    )
    away = [g for g in t.get("gaps") or [] if b - 1 <= g[0] <= b + 60]
    if away:
        words += (
            f", then none was routed to it for {away[0][1] - away[0][0]:.0f} s (the health "
            "checks had taken it out)"
        )
    words += f", and it answered {cnt(t['answered_after_refused'])} requests after"
    if first and len(pat.get("targets") or []) > 1:
        words += (
            f" (the other targets served {cnt(alb_log.served_meanwhile(pat, t['target']))} "
            "requests in the window)"
        )
    elif first:
        words += " (the only target: the API was down for those seconds)"
    return words


def explained(fig: Figures) -> float | None:
    """Refused connects and no server up in the proxy log, less the deploy's own failures."""
    n = haproxy_explained("connect-refused", "no-server")(fig)
    if n is None:
        return None
    # A deploy's failures are its own, not a target crash's, though the proxy log looks the same.
    return max(0.0, n - val(release_of(fig).get("in_windows")))


SPEC = CauseSpec(ID, WEIGHTS, judge, explained=explained)
