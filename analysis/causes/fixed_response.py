"""A listener rule answered with its own 5xx (actions_executed ``fixed-response``): a maintenance
rule switched on, or requests that no forward rule matched falling to a fixed-response default
action. No target was asked, none failed; the ALB cannot add CORS headers to a fixed response,
so a browser reports each as a CORS error (shared/reference/aws-alb.md §2)."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import MIN_STRENGTH, Cause, CauseSpec, Context, Score, cnt, pct
from analysis.figures import Figures

ID = "fixed-response"
WEIGHTS = {"alb.fixed-response": 0.9}
MOST = 0.9  # of every request in their stretch: a rule that caught everything (maintenance)


def judge(fig: Figures, ctx: Context) -> Cause | None:
    pat = alb_log.patterns(fig)
    n = int(((pat or {}).get("kinds") or {}).get("fixed_response", 0))
    if pat is None or not n:
        return None
    first, last = float(pat["fixed_response_first_ts"]), float(pat["fixed_response_last_ts"])
    codes = ", ".join(f"{cnt(v)} x {k}" for k, v in pat["fixed_response_statuses"].items())
    sc = Score(WEIGHTS, fig, ctx)
    sc.add(
        "alb.fixed-response",
        n / max(1, alb_log.alb_5xx(pat)) * 1.5,
        f"ALB log: {cnt(n)} ALB 5xx ({codes}) were a listener rule's fixed response "
        f"(actions_executed 'fixed-response', target '-') from {alb_log.clock(first)} to "
        f"{alb_log.clock(last)}: the ALB answered them itself, as configured; no target was "
        "asked and none failed",
    )
    share = float(pat.get("fixed_response_share") or 0.0)
    if share >= MOST:
        sc.evidence.append(
            f"{pct(share)} of all requests in those seconds got it: a rule that caught "
            "everything, like a maintenance page switched on"
        )
    else:
        top, top_share = pat.get("fixed_response_top_url"), pat.get("fixed_response_top_url_share")
        sc.evidence.append(
            f"only {pct(share)} of the requests in those seconds got it"
            + (f", {pct(float(top_share))} of them for {top}" if top and top_share else "")
            + ": requests that no forward rule matched (their host or path) falling to the "
            "listener's default action"
        )
    sc.evidence.append(
        "a fixed response carries no Access-Control-Allow-Origin header (the ALB cannot add "
        "one), so the browser reports each as a CORS error"
    )
    if sc.strength < MIN_STRENGTH:
        return None
    sc.evidence.append(
        "the log alone cannot tell a maintenance rule from a default action that caught "
        "unmatched requests: the listener's rules (conditions and priorities) tell"
    )
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        "Read the listener's rules: `aws elbv2 describe-rules --listener-arn <listener-arn> "
        "--query 'Rules[].[Priority,Conditions,Actions[0].Type]'`. A maintenance rule left on: "
        "`aws elbv2 delete-rule --rule-arn <rule-arn>`. Requests falling to a fixed-response "
        "default action: make the forward rule's host-header / path-pattern conditions match "
        "them (e.g. add api.hakwonplus.com), or forward by default.",
        sc.signals,
        window=alb_log.window(pat, first, last, None),
    )


SPEC = CauseSpec(ID, WEIGHTS, judge)
