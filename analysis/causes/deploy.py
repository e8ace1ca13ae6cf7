"""A deploy that fails requests: stopped before deregistered, short drain or graceful timeout,
registered before ready (from the testbed's deploy events); or, from the ALB log alone, targets
that left with their in-flight requests cut (502s, refused connects, 503s in the second they
left) while a new target took their place and the others served."""

from __future__ import annotations

from typing import Any

from analysis.causes import alb_log
from analysis.causes.base import (
    MIN_STRENGTH,
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    release_explained,
    release_of,
    val,
)
from analysis.figures import Figures

ID = "deploy"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "events.in-deploy-window": 0.9,
    "events.stopped-before-deregistered": 0.5,
    "events.drain-short": 0.5,
    "events.graceful-short": 0.4,
    "events.registered-before-ready": 0.5,
    "haproxy.no-routable-503": 0.4,
    "alb.replaced-without-drain": 0.7,
    "alb.others-served": 0.3,
}
AT_EXIT_S = 2.0  # ... ending this close to its last line
NEW_TARGET_S = 30.0  # a new target this close to the exit: its replacement


def targets_named(counts: dict[str, int]) -> str:
    return ", ".join(f"{t} ({cnt(n)})" for t, n in sorted(counts.items()))


def judge(fig: Figures, ctx: Context) -> Cause | None:
    """From the deploy's events when the run recorded them, else from the ALB log."""
    return _from_events(fig, ctx) or _from_alb_log(fig, ctx)


def _from_events(fig: Figures, ctx: Context) -> Cause | None:
    """Failures inside a deploy's deregistration / stop / registration windows."""
    rel = release_of(fig)
    total = val(rel.get("failures"))
    inside = val(rel.get("in_windows"))
    if not rel.get("deploys") or not total or not inside:
        return None
    sc = Score(WEIGHTS, fig, ctx)
    sc.add(
        "events.in-deploy-window",
        inside / total * 1.5,
        f"{cnt(inside)} of {cnt(total)} proxy failures fell inside a target's deregistration, stop "
        f"or registration window of the deploy ({rel.get('failure_source')})",
    )
    fixes = []
    stopped = rel.get("stopped_before_deregistered") or {}
    if stopped:
        sc.add(
            "events.stopped-before-deregistered",
            1.0,
            f"the container was stopped before it was deregistered: {targets_named(stopped)} "
            "failures while the ALB still sent it requests",
        )
        fixes.append(
            "deregister the target first and stop the container only after the deregistration "
            "delay (`aws elbv2 deregister-targets`, then wait for it to leave 'draining')"
        )
    short = rel.get("short_drain") or {}
    if short:
        delays = rel.get("drain_delays") or {}
        d = max(delays.values()) if delays else None
        sc.add(
            "events.drain-short",
            1.0,
            f"the drain (deregistration_delay{f' {d:g} s' if d is not None else ''}) was shorter "
            f"than the in-flight work: {targets_named(short)} failures cut when it ended",
        )
        fixes.append(
            "make deregistration_delay.timeout_seconds longer than the longest request "
            "(`albprobe check` prints the command)"
        )
    graceful = rel.get("short_graceful") or {}
    if graceful:
        g = rel.get("graceful") or {}
        gv = max(g.values()) if g else None
        sc.add(
            "events.graceful-short",
            1.0,
            f"gunicorn's graceful timeout{f' ({gv:g} s)' if gv is not None else ''} was shorter "
            f"than the in-flight work: {targets_named(graceful)} failures after SIGTERM",
        )
        fixes.append("raise gunicorn's --graceful-timeout above the longest request")
    early = rel.get("early_register") or {}
    if early:
        sc.add(
            "events.registered-before-ready",
            1.0,
            f"the new target was registered before the app was ready: {targets_named(early)} "
            "failures right after it turned healthy",
        )
        fixes.append(
            "make /health answer 200 only when the app can serve (migrations done, workers "
            "booted), and register the target after that"
        )
    nosrv = val(rel.get("no_routable_503"))
    if nosrv:
        sc.add(
            "haproxy.no-routable-503",
            nosrv / total * 2,
            f"{cnt(nosrv)} 503s with no routable target (every target deregistered or draining)",
        )
        fixes.append("replace targets one at a time, keeping at least one registered and healthy")
    if sc.strength < MIN_STRENGTH:
        return None
    fix = "; ".join(fixes) or (
        "deploy in the ALB's order: deregister, wait out the drain, stop gracefully, start, "
        "register, wait until healthy - one target at a time"
    )
    return Cause("deploy", sc.strength, sc.evidence, fix[0].upper() + fix[1:] + ".", sc.signals)


def _from_alb_log(fig: Figures, ctx: Context) -> Cause | None:
    """Targets replaced with their in-flight requests cut, read from the ALB log alone."""
    pat = alb_log.patterns(fig)
    if pat is None:
        return None
    new = [t for t in pat["targets"] if t["appeared"]]
    cut = []  # (old target, its replacement)
    for t in pat["targets"]:
        if not (t["gone"] and alb_log.own(t) and t["fail_first_ts"] is not None):
            continue
        short = float(t["burst_s"]) <= alb_log.CUT_S  # (a stray failure earlier does not count)
        at_exit = float(t["last_ts"]) - float(t["fail_last_ts"]) <= AT_EXIT_S
        repl = [x for x in new if abs(float(x["first_ts"]) - float(t["last_ts"])) <= NEW_TARGET_S]
        if short and at_exit and repl:
            cut.append((t, repl[0]))
    if not cut:
        return None
    cut.sort(key=lambda pair: _cut_start(pair[0]))
    sc = Score(WEIGHTS, fig, ctx)
    n_cut = sum(alb_log.own(t) for t, _ in cut)
    kinds: dict[str, int] = {}
    for t, _ in cut:
        for k, v in t["fails"].items():
            kinds[k] = kinds.get(k, 0) + v
    first, second = cut[0]
    sc.add(
        "alb.replaced-without-drain",
        1.0,
        f"ALB log: {len(cut)} target(s) left with their requests cut ({cnt(n_cut)} ALB 5xx in the "
        f"seconds they left: {_kinds(kinds)}) and a new target took each one's place, "
        f"e.g. {first['target']} left at {alb_log.clock(first['last_ts'])} and "
        f"{second['target']} appeared at {alb_log.clock(second['first_ts'])}: a deploy that "
        "stopped targets without a drain",
    )
    if alb_log.served_meanwhile(pat, first["target"]):
        sc.add(
            "alb.others-served",
            1.0,
            "the other targets served meanwhile: the failures belong to the targets leaving",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    sc.evidence.append(
        "the log alone cannot tell a deploy from a target killed and replaced at that moment: "
        "the deployment history (`aws ecs describe-services --query 'services[].events[:10]'`, "
        "CloudTrail's DeregisterTargets) does"
    )
    return Cause(
        ID,
        sc.strength,
        sc.evidence,
        "Deregister each target and wait out deregistration_delay.timeout_seconds before "
        "stopping it (ECS does this when the container stops gracefully: handle SIGTERM, and "
        "keep stopTimeout above the longest request); replace targets one at a time.",
        sc.signals,
        window=alb_log.window(
            pat,
            min(_cut_start(t) for t, _ in cut),
            max(float(t["fail_last_ts"]) for t, _ in cut),
            first["target"],
        ),
    )


def _cut_start(t: dict[str, Any]) -> float:
    """When the target's cut began: its last burst, not a stray failure earlier."""
    return max(float(t["fail_first_ts"]), float(t["fail_last_ts"]) - float(t["burst_s"]))


def _kinds(fails: dict[str, int]) -> str:
    names = {
        "closed_mid_request": "closed mid-request",
        "closed_at_once": "closed at once",
        "connect_fail": "refused",
        "connect_timeout": "connect timeout",
        "no_target": "503 no target",
    }
    return ", ".join(f"{cnt(v)} {names.get(k, k)}" for k, v in sorted(fails.items()) if k in names)


SPEC = CauseSpec(ID, WEIGHTS, judge, explained=release_explained("in_windows"), target_split=False)
