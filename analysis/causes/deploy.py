"""A deploy that fails requests: stopped before deregistered, short drain or graceful timeout, registered before ready."""

from __future__ import annotations

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
}


def targets_named(counts: dict[str, int]) -> str:
    return ", ".join(f"{t} ({cnt(n)})" for t, n in sorted(counts.items()))


def judge(fig: Figures, ctx: Context) -> Cause | None:
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


SPEC = CauseSpec(
    "deploy", WEIGHTS, judge, explained=release_explained("in_windows"), target_split=False
)
