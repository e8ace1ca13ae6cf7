"""Health-check flapping, read from the ALB log: a target that stops receiving requests while the
others serve, and comes back, more than once (the ALB takes an unhealthy target out of service
while another is healthy, and back in when its checks pass). It stands even when no request
failed: the log shows the target leaving."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import MIN_STRENGTH, Cause, CauseSpec, Context, Score, cnt
from analysis.figures import Figures

ID = "health-check-flapping"
WEIGHTS = {
    "alb.target-flapping": 0.7,
    "alb.failures-at-exits": 0.2,
}
EXIT_S = 5.0  # a failure this close before the target left went with it


def judge(fig: Figures, ctx: Context) -> Cause | None:
    pat = alb_log.patterns(fig)
    if pat is None:
        return None
    flappers = [t for t in pat["targets"] if len(t["gaps"]) >= 2]
    if not flappers:
        return None
    t = max(flappers, key=lambda x: len(x["gaps"]))
    gaps = t["gaps"]
    sc = Score(WEIGHTS, fig, ctx)
    away = [b - a for a, b in gaps]
    sc.add(
        "alb.target-flapping",
        len(gaps) / 2,
        f"ALB log: {t['target']} stopped receiving requests {len(gaps)} times while the other "
        f"targets served (away {min(away):.0f} to {max(away):.0f} s each, first at "
        f"{alb_log.clock(gaps[0][0])}) and came back each time: taken out of service and back in "
        "as its health checks failed and passed",
    )
    n_own = alb_log.own(t)
    if (
        n_own
        and float(t["fail_first_ts"]) >= gaps[0][0] - EXIT_S
        and float(t["fail_last_ts"]) <= gaps[-1][0] + EXIT_S
    ):
        sc.add(
            "alb.failures-at-exits",
            1.0,
            f"its {cnt(n_own)} ALB 5xx fell between its first and last exit, while the other "
            "targets served",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    sc.evidence.append(
        "the access log shows when it left, not why: the ALB's health-check logs or "
        "`aws elbv2 describe-target-health` during an exit give the reason (Target.Timeout: "
        "/health too slow under load; Target.ResponseCodeMismatch: an error code)"
    )
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        f"Read {t['target']}'s health reason while it is out (`aws elbv2 describe-target-health "
        "--target-group-arn <tg>`); give /health a cheap view that does not wait on the workers' "
        "queue or the database, and raise HealthCheckTimeoutSeconds / UnhealthyThresholdCount "
        "(`aws elbv2 modify-target-group`) so one slow check does not take it out.",
        sc.signals,
        window=alb_log.window(pat, gaps[0][0], gaps[-1][1], t["target"]),
    )


SPEC = CauseSpec(ID, WEIGHTS, judge, without_failures=True)
