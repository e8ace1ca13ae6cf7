"""The keep-alive race: the target closes an idle kept-alive connection as the proxy reuses it."""

from __future__ import annotations

from analysis.capacity.recommend import safe_keepalive
from analysis.causes import alb_log
from analysis.causes.base import (
    MIN_STRENGTH,
    Cause,
    CauseSpec,
    Context,
    Score,
    cnt,
    hap,
    hap_5xx,
    haproxy_explained,
    pct,
    release_of,
    val,
)
from analysis.figures import Figures

ID = "keepalive-race"
# Its signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights").
WEIGHTS = {
    "config.keepalive-below-idle": 0.45,
    "haproxy.server-closed": 0.5,
    "alb.keepalive-race": 0.6,
    "requests.sporadic-low-load": 0.4,
    "requests.reused-connections": 0.25,
    "alb.race-spread": 0.4,
}
SPORADIC = 0.3  # proxy_5xx_spread below this: the failures came in bursts


def judge(fig: Figures, ctx: Context) -> Cause | None:
    sc = Score(WEIGHTS, fig, ctx)
    cap = fig.capacity or {}
    idle = (fig.proxy or {}).get("idle_timeout")
    ka = cap.get("keepalive")
    klass = fig.gunicorn_worker_class or cap.get("worker_class")
    p5 = val(fig.proxy_5xx) or val(fig.alb_elb_502)
    if not p5 and not hap(fig, "server-closed"):
        return None
    cfg_ok = False
    if ka is not None and idle is not None:
        sync = klass == "sync" and (
            fig.gunicorn_worker_class == "sync" or (cap.get("threads") or 1) <= 1
        )
        if sync:
            pass  # damped below: sync workers answer Connection: close
        elif ka < idle:
            cfg_ok = True
            sc.add(
                "config.keepalive-below-idle",
                1.0,
                f"gunicorn --keep-alive {ka} s < proxy idle timeout {idle} s ({klass} workers keep connections open)",
            )
            if fig.gunicorn_worker_class and fig.gunicorn_worker_class != cap.get("worker_class"):
                sc.evidence.append(
                    f"gunicorn log: 'Using worker: {fig.gunicorn_worker_class}' (run.json said {cap.get('worker_class')})"
                )
    h5 = hap_5xx(fig)
    closed = hap(fig, "server-closed")
    if h5 and closed:
        notimer = val(fig.haproxy_server_closed_no_timer)
        sc.add(
            "haproxy.server-closed",
            closed / h5 * 1.5,
            f"HAProxy log: {cnt(closed)} of {cnt(h5)} 5xx were 502s where the target closed the connection (SH--/SD--), {cnt(notimer)} with no server response time (-1)",
        )
    tc = val(fig.alb_keepalive_race)
    if tc and val(fig.alb_elb_5xx):
        other = val(fig.alb_target_closed) - tc
        sc.add(
            "alb.keepalive-race",
            tc / val(fig.alb_elb_5xx) * 1.5,
            f"ALB log: {cnt(tc)} ALB 502s where the target closed the connection at once, within 0.1 s of dispatch "
            f"(target_status_code '-', response_processing_time -1: the keep-alive signature)"
            + (
                f"; {cnt(other)} more closed after longer processing, not counted as races"
                if other
                else ""
            ),
        )
    low = fig.share_5xx_low_load
    spread = fig.proxy_5xx_spread
    # ALB logs say what each closed connection was: when none closed at once, sporadic 502s are
    # the timeout kills and late closes counted there, not races.
    closes_explained = bool(val(fig.alb_target_closed)) and not val(fig.alb_keepalive_race)
    # One reading of the spread: sporadic (a signal) or bursts (counter-evidence), never both.
    if low is not None and spread is not None and spread >= SPORADIC and not closes_explained:
        sc.add(
            "requests.sporadic-low-load",
            low * spread,
            f"{pct(low)} of proxy 5xx at low load, spread over {fig.proxy_5xx_seconds} separate seconds (max {fig.proxy_5xx_max_per_s} per s): sporadic",
        )
    pat = alb_log.patterns(fig)
    at_once = int(((pat or {}).get("kinds") or {}).get("closed_at_once", 0))
    if pat is not None and at_once:
        hit, of = int(pat["closed_at_once_targets"]), len(pat["targets"])
        one_by_one = float(pat["closed_at_once_spread"] or 0)
        sc.add(
            "alb.race-spread",
            1.0 if hit >= min(of, 2) and one_by_one >= 0.7 else 0.0,
            f"ALB log: the closes at once hit {hit} of the {of} targets, one at a time "
            f"({cnt(at_once)} closes in {round(one_by_one * at_once)} separate seconds): a race on "
            "reused connections, not one target failing",
        )
    reused, base = fig.share_5xx_reused, fig.share_reused
    if reused is not None and reused >= 0.8:
        sc.add(
            "requests.reused-connections",
            reused,
            f"{pct(reused)} of proxy 5xx went out on reused connections (run baseline {pct(base or 0)})",
        )
    if not cfg_ok and ka is None:
        sc.damp(0.7)
    # The race shows as closed connections, sporadically: failed connects or bursts are not it.
    if h5:
        closed_share = closed / h5
        if closed_share < 0.5:
            sc.damp(
                max(2 * closed_share, 0.1),
                f"but only {pct(closed_share)} of the proxy's 5xx were closed connections",
            )
    if spread is not None and spread < SPORADIC:
        sc.damp(
            0.5,
            f"but the failures came in bursts (up to {fig.proxy_5xx_max_per_s} per s), not sporadically",
        )
    # Counter-evidence is judged on the closed connections themselves when the proxy log tells
    # them apart: failed connects near a restart belong to target-down, not to the race.
    near = fig.share_closed_near_worker_event
    if near is None:
        near = fig.share_5xx_near_worker_event
    if near and near > 0.3:
        sc.damp(1 - near, f"but {pct(near)} of them were within 3 s of a worker event")
    unh = fig.share_closed_while_unhealthy
    if unh is None:
        unh = fig.share_failures_while_unhealthy
    if unh and unh > 0.3:
        sc.damp(1 - unh, f"but {pct(unh)} of them happened while a target was unhealthy")
    if (
        ka is not None
        and idle is not None
        and klass == "sync"
        and cfg_ok is False
        and (fig.gunicorn_worker_class == "sync" or (cap.get("threads") or 1) <= 1)
    ):
        sc.damp(
            0.2, "but gunicorn ran sync workers, which close every connection (no keep-alive race)"
        )
    if sc.strength < MIN_STRENGTH:
        return None
    new_ka = safe_keepalive(idle)
    window = None
    if pat is not None and at_once:
        window = alb_log.window(
            pat, pat["closed_at_once_first_ts"], pat["closed_at_once_last_ts"], None
        )
        if ka is None:
            sc.evidence.append(
                "the log alone cannot tell this race from gunicorn's --max-requests recycling, "
                "which closes kept-alive connections the same way: the gunicorn log "
                "('Autorestarting worker') and `albprobe check` (the ALB idle timeout vs "
                "--keep-alive) tell them apart"
            )
    return Cause(
        "keepalive-race",
        sc.strength,
        sc.evidence,
        f"Keep backend connections open longer than the proxy: `gunicorn --keep-alive {new_ka}` (> idle timeout "
        f"{idle or 60} s; e.g. GUNICORN_CMD_ARGS='--keep-alive {new_ka}') with gthread/gevent workers.",
        sc.signals,
        window=window,
    )


def explained(fig: Figures) -> float | None:
    """Closed-connection 502s in the proxy log, less those next to a killed or recycled worker."""
    n = haproxy_explained("server-closed")(fig)
    if n is None:
        return None
    r = release_of(fig)
    return max(0.0, n - val(r.get("near_kill")) - val(r.get("near_recycle")))


SPEC = CauseSpec(ID, WEIGHTS, judge, explained=explained)
