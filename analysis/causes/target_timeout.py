"""Target timeouts: the ALB gave up on a dispatched request at its idle timeout (504, target '-',
target time -1), on a slow endpoint while the rest stays fast; the requests' target time did not
climb before (that would be overload: capacity)."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import MIN_STRENGTH, Cause, CauseSpec, Context, Score, cnt, pct
from analysis.figures import Figures

ID = "target-timeout"
WEIGHTS = {
    "alb.idle-timeout-504": 0.7,
    "alb.one-url": 0.3,
}
CLIMB = 3.0  # answered requests this many times slower before the failures: overload


def judge(fig: Figures, ctx: Context) -> Cause | None:
    pat = alb_log.patterns(fig)
    n = int(((pat or {}).get("kinds") or {}).get("response_timeout", 0))
    if pat is None or not n:
        return None
    sc = Score(WEIGHTS, fig, ctx)
    after = pat.get("response_timeout_median_s")
    sc.add(
        "alb.idle-timeout-504",
        n / max(1, alb_log.alb_5xx(pat)) * 1.5,
        f"ALB log: {cnt(n)} ALB 504s after the request was dispatched (target '-', target time -1), "
        f"a median {after or 0:.1f} s after it arrived: the target did not answer within the ALB's "
        "idle timeout (idle_timeout.timeout_seconds)",
    )
    share, url = pat.get("response_timeout_top_url_share"), pat.get("response_timeout_top_url")
    if share is not None and share >= 0.8:
        sc.add("alb.one-url", 1.0, f"{pct(share)} of those 504s were on one URL: {url}")
    climb = pat.get("latency_climb")
    if climb is not None and climb >= CLIMB:
        sc.damp(
            0.4,
            f"but the answered requests' median target time climbed {climb:.1f}x before the "
            "failures: the targets were overloaded (capacity), not one slow endpoint",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        f"Make {url or 'the slow endpoint'} answer within the idle timeout (paginate, or move the "
        "work to a background job), or raise the timeout above its longest request: `aws elbv2 "
        "modify-load-balancer-attributes --load-balancer-arn <alb> --attributes "
        "Key=idle_timeout.timeout_seconds,Value=<s>` (with gunicorn's --timeout above it).",
        sc.signals,
        window=alb_log.window(
            pat,
            float(pat["response_timeout_first_ts"]),
            float(pat["response_timeout_last_ts"]),
            None,
        ),
    )


SPEC = CauseSpec(ID, WEIGHTS, judge)
