"""No registered or routable target: the ALB answers 503 itself with target '-'. An unhealthy
target still gets traffic (the ALB fails open), so the 503 means none registered, or all unused
(shared/reference/aws-alb.md §1, §5)."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import MIN_STRENGTH, Cause, CauseSpec, Context, Score, cnt
from analysis.figures import Figures

ID = "no-routable-target"
WEIGHTS = {
    "alb.no-target-503": 0.8,
    "alb.none-served": 0.3,
}
BEFORE_S = 15.0  # a target's failures this soon before: the 503s end its story


def judge(fig: Figures, ctx: Context) -> Cause | None:
    pat = alb_log.patterns(fig)
    n503 = int(((pat or {}).get("kinds") or {}).get("no_target", 0))
    if pat is None or not n503:
        return None
    first, last = float(pat["no_target_first_ts"]), float(pat["no_target_last_ts"])
    sc = Score(WEIGHTS, fig, ctx)
    sc.add(
        "alb.no-target-503",
        n503 / max(1, alb_log.alb_5xx(pat)) * 1.5,
        f"ALB log: {cnt(n503)} ALB 503s with no target (target '-', -1/-1/-1) in "
        f"{pat['no_target_seconds']} s from {alb_log.clock(first)} to {alb_log.clock(last)}: the "
        "target group had no registered target, or all were unused (an unhealthy target would "
        "still get traffic: the ALB fails open)",
    )
    if not pat["served_during_no_target"]:
        sc.add("alb.none-served", 1.0, "no target answered a single request in those seconds")
    before = [
        t
        for t in pat["targets"]
        if alb_log.own(t) - int(t["fails"].get("connect_fail", 0)) >= 3
        and t["fail_last_ts"] is not None
        and first - BEFORE_S <= float(t["fail_last_ts"]) <= first + 1
    ]
    if before:
        sc.damp(
            0.4,
            f"but they came right after {before[0]['target']}'s own failures: the end of that "
            "target's story, not a cause of their own",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    sc.evidence.append(
        "the log alone cannot tell 'none registered' from 'all unused' (a target in an "
        "Availability Zone the ALB does not use, an instance stopped): the reason of "
        "`aws elbv2 describe-target-health` (Target.NotRegistered, Target.NotInUse, "
        "Target.InvalidState) does"
    )
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        "List the targets: `aws elbv2 describe-target-health --target-group-arn <tg>`; register "
        "them (or fix the ECS service's desired count and its events), enable their Availability "
        "Zone on the ALB, and keep at least one target registered through a deploy.",
        sc.signals,
        window=alb_log.window(pat, first, last, None),
    )


SPEC = CauseSpec(ID, WEIGHTS, judge)
