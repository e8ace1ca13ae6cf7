"""One target crashing or killed (an OOM kill, a task stopped without a drain), read from the ALB
log alone: a burst of failures on that one target, its requests closed mid-request (target time
in the hundreds of ms, response_processing_time -1), then the target gone (refused connects,
no line routed to it, or ALB 503s with no target)."""

from __future__ import annotations

from analysis.causes import alb_log
from analysis.causes.base import MIN_STRENGTH, Cause, CauseSpec, Context, Score, clip, cnt, pct
from analysis.figures import Figures

ID = "target-crash"
WEIGHTS = {
    "alb.mid-request-closes": 0.5,
    "alb.one-target-burst": 0.5,
    "alb.target-gone": 0.6,
    "alb.no-target-after": 0.3,
}
NEXT_S = 15.0  # 503s this soon after the burst belong to it
NEW_TARGET_S = 30.0  # a target appearing this soon after may be the replacement of a deploy
DYING = 0.3  # this share of its requests failing while it failed: the target dying, not a blip


def judge(fig: Figures, ctx: Context) -> Cause | None:
    pat = alb_log.patterns(fig)
    t = alb_log.worst(pat) if pat else None
    if pat is None or t is None:
        return None
    fails = t["fails"]
    mid = int(fails.get("closed_mid_request", 0))
    if mid < 3:
        return None
    name, n_own, total = t["target"], alb_log.own(t), alb_log.alb_5xx(pat)
    sc = Score(WEIGHTS, fig, ctx)
    med = t.get("median_close_s")
    sc.add(
        "alb.mid-request-closes",
        mid / n_own * 1.5,
        f"ALB log: {cnt(mid)} of {name}'s {cnt(n_own)} ALB 502s closed mid-request (target '-', "
        f"response_processing_time -1, closed a median {1000 * (med or 0):.0f} ms after dispatch): "
        "the target dropped requests it was working on, not the keep-alive signature (closed at once)",
    )
    others = len(pat["targets"]) - 1
    burst = float(t["burst_s"])
    share = n_own / max(1, total - int(pat["kinds"].get("no_target", 0)))
    dying = n_own / max(1, int(t["during_fail"]))  # its requests failing while it failed
    sc.add(
        "alb.one-target-burst",
        clip((burst - alb_log.CUT_S) / 7)
        * clip((share - 0.5) / 0.3)
        * clip((dying - DYING / 2) / (DYING / 2)),
        f"a burst of {cnt(n_own)} failures over {burst:.0f} s ({alb_log.clock(t['fail_first_ts'])} to "
        f"{alb_log.clock(t['fail_last_ts'])}, up to {t['fail_max_per_s']} per s, {pct(dying)} of "
        f"its requests then), {pct(share)} of the targets' ALB 5xx on {name}; the other "
        f"{others} target(s) served {cnt(alb_log.served_meanwhile(pat, name))} requests",
    )
    refused = int(fails.get("connect_fail", 0))
    if t["ok_after_fail"] == 0 and t["gone"]:
        sc.add(
            "alb.target-gone",
            1.0,
            f"then {name} answered nothing more"
            + (f": {cnt(refused)} connects to it refused (-1/-1/-1)" if refused else "")
            + "; no request was routed to it to the end of the window",
        )
    last = float(t["fail_last_ts"])
    nt_first = pat.get("no_target_first_ts")
    if nt_first is not None and last - 1 <= nt_first <= last + NEXT_S:
        sc.add(
            "alb.no-target-after",
            1.0,
            f"then {pat['no_target_seconds']} s of ALB 503 with no target (target '-') from "
            f"{alb_log.clock(nt_first)}: no routable target was left",
        )
        last = max(last, float(pat["no_target_last_ts"]))
    if not {"alb.one-target-burst", "alb.target-gone"} & set(sc.signals):
        return None  # closes mid-request alone, the target serving on: no crash of the target
    if t["ok_after_fail"] and t["gaps"]:
        sc.damp(0.5, f"but {name} served again later ({cnt(t['ok_after_fail'])} requests)")
    new = [
        x["target"]
        for x in pat["targets"]
        if x["appeared"] and abs(float(x["first_ts"]) - last) <= NEW_TARGET_S
    ]
    if new and burst <= alb_log.CUT_S:
        sc.damp(
            0.4,
            f"but its failures lasted only {burst:.0f} s, as it left, and a new target "
            f"({new[0]}) took its place: a deploy's cut more than a target dying",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    if not new and burst <= alb_log.CUT_S:
        sc.evidence.append(
            f"its failures came within {burst:.0f} s, all at once: the log alone cannot tell a "
            "kill from a target stopped without a drain (a scale-in or a deploy); the task's stop "
            "reason and the ECS service events tell them apart"
        )
    if new and burst > alb_log.CUT_S:
        sc.evidence.append(
            f"a new target ({', '.join(new)}) appeared near the end: the log alone cannot tell a "
            "crash that was replaced from a deploy that stopped the target without a drain; the "
            "ECS service events (`aws ecs describe-services --query 'services[].events[:10]'`) or "
            "CloudTrail's DeregisterTargets at that time tell them apart"
        )
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        f"Find why {name} died: its task's stop reason and exit code (`aws ecs describe-tasks "
        "--tasks <id> --query 'tasks[].[stoppedReason,containers[].exitCode]'`; 137 = SIGKILL, "
        "often the OOM killer), `dmesg -T | grep -i oom` on the instance, gunicorn's log for "
        "'Perhaps out of memory?'. Give it memory headroom (or fewer workers), and deregister a "
        "target before stopping it so its requests drain.",
        sc.signals,
        window=alb_log.window(pat, float(t["fail_first_ts"]), last, name),
    )


SPEC = CauseSpec(ID, WEIGHTS, judge, target_split=False)  # it states the split itself
