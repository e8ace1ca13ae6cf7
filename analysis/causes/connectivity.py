"""The proxy cannot reach the target port: security group, routes, NACLs."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import (
    MIN_STRENGTH,
    TIMEOUT_REASONS,
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    hap,
    hap_5xx,
    haproxy_explained,
    hc_port,
    health_reason_samples,
    val,
)
from analysis.figures import Figures

ID = "connectivity"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "health.timeout": 0.6,
    "haproxy.connect-timeout": 0.6,
    "requests.no-app-response": 0.4,
    "gunicorn.running": 0.2,
    "alb.connect-timeout": 0.5,
    "alb.connect-fail": 0.3,
    "alb.target-unreachable": 0.6,
}
SUSTAINED_S = 10.0  # a target failing every connect this long is unreachable, not restarting


def judge(fig: Figures, ctx: Context) -> Cause | None:
    sc = Score(WEIGHTS, fig, ctx)
    n_to, desc = health_reason_samples(fig, TIMEOUT_REASONS)
    if n_to:
        sc.add(
            "health.timeout",
            min(1.0, n_to / 3),
            f"target health: {n_to} unhealthy samples with timeout reason ({desc})",
        )
    h5 = hap_5xx(fig)
    ct = hap(fig, "connect-timeout")
    if h5 and ct:
        sc.add(
            "haproxy.connect-timeout",
            ct / h5 * 1.5,
            f"HAProxy log: {cnt(ct)} of {cnt(h5)} 5xx were connect timeouts (sC--): the proxy never reached the port",
        )
    fails = val(fig.failures)
    if fails and fig.present.get("requests") and val(fig.app_responses) == 0 and (n_to or ct):
        sc.add(
            "requests.no-app-response",
            1.0,
            f"not one of {cnt(val(fig.requests))} requests reached the app (0 app responses)",
        )
    ev = fig.events or {}
    if (
        (n_to or ct)
        and ev.get("worker_boot")
        and not ev.get("target_killed")
        and not ev.get("worker_timeout")
    ):
        sc.add(
            "gunicorn.running",
            1.0,
            f"gunicorn was running ({ev['worker_boot']} worker boots, 0 worker deaths) while unreachable",
        )
    cto = val(fig.alb_connect_timeout_504)
    if cto:
        sc.add(
            "alb.connect-timeout",
            cto / max(1.0, val(fig.alb_elb_5xx)) * 2,
            f"ALB log: {cnt(cto)} 504s with -1 processing times (connect timeout, no target contact)",
        )
    cf = val(fig.alb_connect_fail)
    if cf and not n_to and val(fig.alb_elb_5xx):
        sc.add(
            "alb.connect-fail",
            cf / val(fig.alb_elb_5xx),
            f"ALB log: {cnt(cf)} 502s with -1/-1/-1 times (no connection to the target: unreachable or refused)",
        )
    pat = alb_log.patterns(fig)
    t = alb_log.worst(pat) if pat else None
    window = None
    targets = (pat or {}).get("targets") or []
    refusing = {x["target"] for x in targets if x["fails"].get("connect_fail")}
    dropped = any(x["fails"].get("connect_timeout") for x in targets)
    # refusals on an address that served before, or served again: the port was right and
    # reachable; the app on it was not listening (a security group drops, it does not refuse)
    served = {x["target"] for x in (alb_log.came_back(pat) + alb_log.stopped(pat) if pat else [])}
    if refusing and not dropped and refusing <= served:
        sc.damp(
            0.3,
            f"but {'every target' if len(refusing) > 1 else next(iter(refusing))} that refused "
            "connects answered on the same address before or after: the path to it was open, "
            "the app there was not listening",
        )
    if pat is not None and t is not None:
        refused = int(t["fails"].get("connect_fail", 0))
        timed_out = int(t["fails"].get("connect_timeout", 0))
        n_own = alb_log.own(t)
        lasted = float(t["fail_last_ts"]) - float(t["fail_first_ts"])
        if (
            n_own >= 3
            and (refused + timed_out) / n_own >= 0.9
            and t["ok_after_fail"] == 0
            and lasted >= SUSTAINED_S
        ):
            how = (
                f"{cnt(timed_out)} x 504 after the ALB's 10 s connect timeout: packets dropped, "
                "a security group or NACL"
                if timed_out >= refused
                else f"{cnt(refused)} x 502 with -1/-1/-1: refused, nothing listening on the port"
            )
            sc.add(
                "alb.target-unreachable",
                1.0,
                f"ALB log: every request routed to {t['target']} from "
                f"{alb_log.clock(t['fail_first_ts'])} on failed at connect ({how}), for "
                f"{lasted:.0f} s, with no request closed mid-request before: the ALB never reached "
                "the app",
            )
            if refused > timed_out:
                sc.evidence.append(
                    "the log alone cannot tell a wrong port (or a security group that rejects) "
                    "from an app that is down on the right one: `ss -ltnp` on the target and "
                    f"`curl -v http://{t['target']}/health` from a host in the ALB's security "
                    "group tell them apart"
                )
            window = alb_log.window(pat, t["fail_first_ts"], t["fail_last_ts"], t["target"])
    if sc.strength < MIN_STRENGTH:
        return None
    port = hc_port(fig)
    return Cause(
        "connectivity",
        sc.strength,
        sc.evidence,
        f"Allow the ALB to reach the app port: `aws ec2 authorize-security-group-ingress --group-id <api-sg> "
        f"--protocol tcp --port {port} --source-group <alb-sg>`; check the target subnet's route table and "
        "NACLs (ephemeral ports 1024-65535 back to the ALB); `albprobe check` verifies the chain.",
        sc.signals,
        window=window,
    )


SPEC = CauseSpec("connectivity", WEIGHTS, judge, explained=haproxy_explained("connect-timeout"))
