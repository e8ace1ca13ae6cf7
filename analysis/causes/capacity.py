"""Overload: more work than workers x threads, worker timeouts, 504s waiting for the target."""

from __future__ import annotations

import math
from typing import Any

from analysis.causes import alb_log
from analysis.causes.base import (
    MIN_STRENGTH,
    Cause,
    CauseSpec,
    Context,
    Score,
    busy_health,
    cnt,
    hap,
    hap_5xx,
    haproxy_explained,
    pct,
    release_of,
    span,
    val,
)
from analysis.figures import Figures

ID = "capacity"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "requests.utilisation": 0.5,
    "requests.utilisation-unconfirmed": 0.15,
    "requests.littles-law": 0.3,
    "requests.littles-law-unconfirmed": 0.1,
    "requests.p99-near-timeout": 0.5,
    "health.busy": 0.4,
    "gunicorn.worker-timeout": 0.6,
    "gunicorn.worker-sigkill": 0.4,
    "gunicorn.boot-loop": 0.4,
    "requests.gunicorn-5xx": 0.6,
    "haproxy.server-timeout": 0.4,
    "requests.proxy-504": 0.2,
    "requests.failure-rate-at-capacity": 0.4,
    "gunicorn.near-worker-event": 0.3,
    "alb.response-timeout": 0.4,
    "alb.target-5xx": 0.3,
    "alb.timeout-kill": 0.5,
    "alb.latency-climb": 0.6,
}
CLIMB = 2.0  # the answered requests' median target time this many times the start's: falling behind
TARGET_5XX_SHARE = 0.02  # the target's own 5xx at this share of the entries and more: a full signal


def judge(fig: Figures, ctx: Context) -> Cause | None:
    sc = Score(WEIGHTS, fig, ctx)
    cap = fig.capacity or {}
    ev = fig.events or {}
    h5 = hap_5xx(fig)
    r99 = fig.target_p99_over_timeout
    # Load above workers x threads only queues requests; it is a cause when failures show the
    # overload (worker timeouts/kills, gunicorn's own 5xx, 504s waiting for the target, latency
    # near the timeout). Without such a signal the pressure figures weigh little.
    specific = bool(
        ev.get("worker_timeout")
        or fig.worker_sigkill > int(val(release_of(fig).get("oom_kills")))
        or fig.boot_loop
        or val(fig.server_5xx)
        or hap(fig, "server-timeout")
        or (r99 is not None and r99 >= 0.5)
        or val(fig.alb_response_timeout_504)
        or val(fig.alb_target_5xx)
        or val(fig.alb_timeout_kill)
        or busy_health(fig)[2] >= 0.5
    )
    util = fig.utilisation
    if util is not None and fig.capacity_total:
        src = (
            "in flight at the target (HAProxy scur)"
            if fig.peak_in_flight is not None
            else "concurrent (Little's law)"
        )
        sc.add(
            "requests.utilisation" if specific else "requests.utilisation-unconfirmed",
            (util - 0.8) / 0.4,
            f"peak {fig.peak_concurrency:.0f} requests {src} vs capacity {fig.capacity_total:.0f} (workers x threads) = {util:.2f}x",
        )
    lit = fig.peak_littles_concurrency
    if lit is not None and fig.capacity_total and lit > fig.capacity_total:
        sc.add(
            "requests.littles-law" if specific else "requests.littles-law-unconfirmed",
            (lit / fig.capacity_total - 1),
            f"Little's law cross-check: throughput x latency peaks at {lit:.1f} concurrent requests, {lit / fig.capacity_total:.1f}x the {fig.capacity_total:.0f} slots",
        )
    if r99 is not None and r99 >= 0.5:
        sc.add(
            "requests.p99-near-timeout",
            (r99 - 0.5) / 0.5,
            f"target p99 latency {val(fig.target_p99_ms):.0f} ms = {r99:.2f}x gunicorn's --timeout {cap.get('timeout')} s",
        )
    n_busy, n_full, busy = busy_health(fig)
    if n_busy:
        sc.add(
            "health.busy",
            busy,
            f"target health: {n_busy} samples where health checks connected but got no answer in time (L7TOUT)"
            + (
                ": every worker busy"
                if n_full == n_busy
                else f", {n_full} of them under the load with every slot busy (the others: a cold start before the load or a stalled checker)"
            ),
        )
    wt = int(ev.get("worker_timeout", 0))
    if wt:
        sc.add("gunicorn.worker-timeout", wt / 3, f"gunicorn: {wt} WORKER TIMEOUT events")
    # SIGKILLs with no WORKER TIMEOUT before them are the OOM killer's (worker-kill), not load
    timeout_kills = fig.worker_sigkill - int(val(release_of(fig).get("oom_kills")))
    if timeout_kills > 0:
        sc.add(
            "gunicorn.worker-sigkill",
            timeout_kills / 3,
            f"gunicorn: {timeout_kills} workers sent SIGKILL after a WORKER TIMEOUT",
        )
    if fig.boot_loop:
        sc.add(
            "gunicorn.boot-loop", 1.0, f"gunicorn boot loop: {fig.worker_restarts} worker restarts"
        )
    fails = val(fig.failures)
    srv = val(fig.server_5xx)
    # Failed connects (target down, port blocked) are other causes' failures: capacity's shares
    # are taken among the failures they do not explain, so both can be found in one run.
    conn = hap(fig, "connect-refused") + hap(fig, "connect-timeout") + hap(fig, "no-server")
    other = max(1.0, fails - conn) if conn else fails
    if fails and srv:
        sc.add(
            "requests.gunicorn-5xx",
            srv / other * 3,
            f"{cnt(srv)} of {cnt(fails)} failures were gunicorn's own 5xx pages (source 'server', no CORS headers)",
        )
    h5 = hap_5xx(fig)
    st = hap(fig, "server-timeout")
    if h5 and st:
        sc.add(
            "haproxy.server-timeout",
            st / max(1.0, h5 - conn) * 3,
            f"HAProxy log: {cnt(st)} 504s waiting for the target's response (sH--)",
        )
    elif (
        val(fig.proxy_504)
        and not hap(fig, "connect-timeout")
        and not fig.present.get("haproxy_log")
    ):
        sc.add("requests.proxy-504", 1.0, f"{cnt(fig.proxy_504)} proxy 504s (gateway timeout)")
    ra, rb = fig.failure_rate_at_capacity, fig.failure_rate_below_capacity
    if ra is not None and rb is not None and ra > rb:
        sc.add(
            "requests.failure-rate-at-capacity",
            (ra - rb) / ra if ra else 0,
            f"failure rate {pct(ra)} in the {fig.seconds_at_capacity} s at >= 80% of capacity vs {pct(rb)} below",
        )
    near = fig.share_5xx_near_worker_event
    if near and wt:
        sc.add(
            "gunicorn.near-worker-event",
            near,
            f"{pct(near)} of proxy 5xx within 3 s of a gunicorn worker event",
        )
    rt = val(fig.alb_response_timeout_504)
    if rt:
        sc.add(
            "alb.response-timeout",
            rt / max(1.0, val(fig.alb_elb_5xx)) * 2,
            f"ALB log: {cnt(rt)} 504s after the request reached the target (target too slow for the idle timeout)",
        )
    if val(fig.alb_target_5xx):
        # A few of the app's own 500s are in every window; many are gunicorn's overload answers.
        share = val(fig.alb_target_5xx) / max(1.0, val(fig.alb_entries))
        sc.add(
            "alb.target-5xx",
            share / TARGET_5XX_SHARE,
            f"ALB log: {cnt(fig.alb_target_5xx)} 5xx returned by the target itself ({pct(share)} of the entries)",
        )
    pat = alb_log.patterns(fig)
    climb = (pat or {}).get("latency_climb")
    if climb is not None and climb >= CLIMB:
        sc.add(
            "alb.latency-climb",
            (climb - CLIMB) / 4,
            f"ALB log: the answered requests' median target time climbed {climb:.1f}x (p90 "
            f"{pat['latency_p90_before_fail_s']:.1f} s) in the run-up to the first failure: the "
            "workers fell behind",
        )
    tk = val(fig.alb_timeout_kill)
    if tk:
        sc.add(
            "alb.timeout-kill",
            tk / max(1.0, val(fig.alb_elb_5xx)) * 2,
            f"ALB log: {cnt(tk)} 502s where the target closed the connection at gunicorn's --timeout "
            f"({cnt(fig.alb_kill_timeout_s)} s): workers killed mid-request (WORKER TIMEOUT), not a keep-alive race",
        )
    overload = bool(
        st
        or srv
        or wt
        or fig.worker_sigkill
        or val(fig.alb_response_timeout_504)
        or val(fig.alb_target_5xx)
        or (val(fig.proxy_504) and not hap(fig, "connect-timeout") and not h5)
    )
    if h5 and fails and not overload:
        # The proxy log classified every failure, and none is what overload produces (a 504
        # waiting for the target, gunicorn's own 5xx, a worker timeout): busy as the target may
        # have been, it is not what failed these requests.
        sc.damp(
            0.3,
            f"but none of the {cnt(fails)} failures was an overload failure (504 waiting for the target, gunicorn 5xx, worker timeout)",
        )
    if h5 and conn / h5 > 0.5 and not specific:
        sc.damp(
            1 - conn / h5,
            f"but {pct(conn / h5)} of the proxy's 5xx were failed connects (target down or unreachable), not overload",
        )
    if climb is not None and climb < CLIMB / 1.5 and not val(fig.alb_timeout_kill):
        sc.damp(
            0.5,
            f"but the answered requests' median target time held steady up to the failures "
            f"({climb:.1f}x the start's): the targets were not falling behind",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    onset = fig.failure_onset_concurrency
    if onset is not None:
        inflight = fig.failure_onset_in_flight
        sc.evidence.append(
            f"failures began {(fig.failure_onset_offset_s or 0):.0f} s into {span(ctx)} at {(fig.failure_onset_rps or 0):.0f} req/s, "
            f"{onset:.1f} concurrent by Little's law"
            + (f", {inflight:.0f} in flight at the target" if inflight is not None else "")
        )
    window = None
    if pat is not None and pat.get("fail_first_ts") is not None:
        window = alb_log.window(pat, pat["fail_first_ts"], pat["fail_last_ts"], None)
    fix = _timeout_kill_fix(fig, pat) or _capacity_fix(fig)
    return Cause("capacity", sc.strength, sc.evidence, fix, sc.signals, window=window)


def _timeout_kill_fix(fig: Figures, pat: dict[str, Any] | None) -> str | None:
    """When most ALB 5xx are workers killed at gunicorn's --timeout on one URL, the fix is that
    endpoint or the timeout, not more workers: more workers die the same way."""
    tk, share = val(fig.alb_timeout_kill), (pat or {}).get("timeout_kill_top_url_share")
    if not tk or tk < 0.5 * val(fig.alb_elb_5xx) or share is None or share < 0.8:
        return None
    url, timeout = pat["timeout_kill_top_url"], cnt(fig.alb_kill_timeout_s)  # type: ignore[index]
    return (
        f"{pct(share)} of the workers killed at gunicorn's --timeout ({timeout} s) were serving "
        f"{url}: make it answer within the timeout (paginate, or move the work to a background "
        "job), or raise gunicorn's --timeout above its longest request (e.g. `gunicorn --timeout "
        "<s>`), kept below the ALB's idle timeout (idle_timeout.timeout_seconds, 60 s by default) "
        "so that the ALB does not give up first (a 504). More workers would be killed the same way."
    )


def _capacity_fix(fig: Figures) -> str:
    cap = fig.capacity or {}
    w = fig.recommended_workers
    if not w:
        return (
            "Size gunicorn for the load: workers x threads >= peak concurrency (throughput x latency) "
            "+ headroom; set [capacity] in the config so albprobe can compute the numbers."
        )
    threads = int(fig.recommended_threads or cap.get("threads") or 1)
    timeout = cap.get("timeout") or 30
    p99 = val(fig.target_p99_ms) / 1000
    klass = cap.get("worker_class") or ("gthread" if threads > 1 else "sync")
    flags = f"gunicorn --workers {w}" + (
        f" --threads {threads} --worker-class gthread"
        if threads > 1
        else f" --worker-class {klass}"
    )
    if p99 and p99 * 2 > timeout:
        flags += f" --timeout {max(int(timeout), math.ceil(p99 * 2))}"
    return (
        f"{flags} (measured {(fig.offered_rps_p95 or 0):.0f} req/s at p95 x {(fig.service_ms or 0):.0f} ms service time "
        f"= {(fig.needed_slots or 0):.1f} slots with 30% headroom, per target); or make the slow endpoint faster."
    )


def explained(fig: Figures) -> float | None:
    """504s waiting for the target in the proxy log, plus gunicorn's own 5xx."""
    n = haproxy_explained("server-timeout")(fig)
    return None if n is None else n + val(fig.server_5xx)


SPEC = CauseSpec(ID, WEIGHTS, judge, explained=explained)
