"""The verdict (docs/architecture.md, "Verdict logic"): pure functions from figures to a Verdict.

1. CORS setup is at fault only when *app*-produced responses fail the browser's CORS check.
2. Failures are from the proxy when the failing responses are proxy- or server-generated 5xx
   (or no response at all, corroborated by proxy-side evidence) while app responses pass.
3. Proxy failures are attributed to causes, each scored from independent signals: a signal ``s``
   in [0, 1] with a weight ``w`` contributes ``1 - w*s`` to a noisy-OR, so strength = 1 - prod(1 - w*s).
   A cause with one strong signal is "likely"; corroborating signals push it towards 1.

The ids of ``at_fault`` and of the causes are a stable interface (summary.json consumers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from analysis.capacity.recommend import safe_keepalive
from analysis.caveats import caveats
from analysis.figures import Figures
from analysis.release import NEAR_S

AT_FAULT = ("proxy", "cors-setup", "none", "insufficient-evidence")
CAUSE_IDS = (
    "target-down",
    "capacity",
    "keepalive-race",
    "health-check-config",
    "connectivity",
    "deploy",
    "worker-kill",
    "worker-recycle",
    "http-redirect",
    "cors-setup",
)
MIN_REQUESTS = 50
MIN_STRENGTH = 0.2  # causes weaker than this are not listed
REFUSED_REASONS = ("L4CON", "Target.FailedHealthChecks", "SOCKERR")
TIMEOUT_REASONS = ("L4TOUT", "Target.Timeout")  # connect-level: unreachable
BUSY_REASONS = ("L7TOUT",)  # connected, no HTTP answer in time: workers busy
STATUS_REASONS = ("L7STS", "Target.ResponseCodeMismatch", "L7RSP")

# Each cause's signals and their weights in the noisy-OR (docs/analysis.md, "Signal weights",
# lists the same table; a test keeps the two equal). A signal's id names its source first:
# health (target health samples), haproxy / alb (the proxy's log), requests (the recorded
# requests), gunicorn (its log), events (the testbed's event log), config (run.json).
WEIGHTS: dict[str, dict[str, float]] = {
    "target-down": {
        "health.refused": 0.6,
        "health.unhealthy-failure-rate": 0.3,
        "haproxy.refused": 0.6,
        "haproxy.no-server": 0.2,
        "events.target-stopped": 0.7,
        "requests.refused": 0.3,
        "alb.connect-fail": 0.35,
    },
    "capacity": {
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
    },
    "keepalive-race": {
        "config.keepalive-below-idle": 0.45,
        "haproxy.server-closed": 0.5,
        "alb.keepalive-race": 0.6,
        "requests.sporadic-low-load": 0.4,
        "requests.reused-connections": 0.25,
    },
    "health-check-config": {
        "health.status-400": 0.7,
        "health.status": 0.4,
        "requests.app-ok-meanwhile": 0.3,
        "health.unhealthy-failure-rate": 0.2,
        "haproxy.no-server": 0.2,
        "haproxy.failopen": 0.2,
    },
    "connectivity": {
        "health.timeout": 0.6,
        "haproxy.connect-timeout": 0.6,
        "requests.no-app-response": 0.4,
        "gunicorn.running": 0.2,
        "alb.connect-timeout": 0.5,
        "alb.connect-fail": 0.3,
    },
    "deploy": {
        "events.in-deploy-window": 0.9,
        "events.stopped-before-deregistered": 0.5,
        "events.drain-short": 0.5,
        "events.graceful-short": 0.4,
        "events.registered-before-ready": 0.5,
        "haproxy.no-routable-503": 0.4,
    },
    "worker-kill": {
        "gunicorn.oom-kill": 0.6,
        "gunicorn.failures-near-kill": 0.7,
    },
    "worker-recycle": {
        "gunicorn.recycle": 0.3,
        "gunicorn.failures-near-recycle": 0.7,
    },
    "http-redirect": {
        "requests.preflight-redirect": 0.9,
        "requests.redirect-no-cors": 0.5,
        "haproxy.redirect": 0.4,
    },
    "cors-setup": {"requests.app-cors-fail": 1.0},
}
SOURCE_NAMES = {
    "health": "target health samples",
    "haproxy": "the proxy log",
    "alb": "the ALB log",
    "requests": "the recorded requests",
    "gunicorn": "the gunicorn log",
    "events": "the run's events",
    "config": "the run's configuration",
}
# What the figures were read from: a load run (albprobe run) or ALB access logs alone.
Context = Literal["run", "alb-logs"]


@dataclass
class Cause:
    id: str
    strength: float
    evidence: list[str]
    fix: str
    signals: list[str] = field(default_factory=list)  # the WEIGHTS signals that fired

    @property
    def sources(self) -> list[str]:
        """The independent sources behind the cause (health, haproxy, requests, ...)."""
        return sorted({s.split(".")[0] for s in self.signals})

    def to_dict(self) -> dict[str, Any]:
        """summary.json's cause (id, strength, evidence, fix); signals stay internal."""
        d = asdict(self)
        d.pop("signals")
        return d


@dataclass
class Verdict:
    at_fault: str
    headline: str
    causes: list[Cause] = field(default_factory=list)
    cross_table: list[dict[str, Any]] = field(default_factory=list)
    security_findings: list[dict[str, Any]] = field(default_factory=list)
    missing_evidence: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=lambda: Figures(present={}))
    caveats: list[str] = field(default_factory=list)  # default: analysis.caveats of the figures

    def __post_init__(self) -> None:
        if not self.caveats:
            self.caveats = caveats(self.figures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_fault": self.at_fault,
            "headline": self.headline,
            "causes": [c.to_dict() for c in self.causes],
            "cross_table": self.cross_table,
            "security_findings": self.security_findings,
            "missing_evidence": self.missing_evidence,
            "caveats": self.caveats,
            "figures": self.figures.to_dict(),
        }

    @property
    def top(self) -> Cause | None:
        return self.causes[0] if self.causes else None


def _f(v: float | None) -> float:
    """A count or rate, with "not measured" (None) read as 0 where the verdict adds things up."""
    return float(v) if v is not None else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.3f}%"


def _n(x: float) -> str:
    return f"{int(x):,}"


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def _request_sample(fig: Figures, ctx: Context) -> float:
    """How far the recorded requests can be trusted for rates: 1 at >= MIN_REQUESTS."""
    if ctx == "alb-logs":
        return 1.0
    return min(1.0, fig.requests / MIN_REQUESTS)


def _span(ctx: Context) -> str:
    return "the log window" if ctx == "alb-logs" else "the run"


class _Score:
    """Noisy-OR accumulator with the evidence sentences of the signals that fired; each signal's
    weight comes from WEIGHTS[cause] (an unknown signal is a KeyError, not a silent weight)."""

    def __init__(self, cause: str, fig: Figures, ctx: Context) -> None:
        self.weights = WEIGHTS[cause]
        self.sample = _request_sample(fig, ctx)
        self.miss = 1.0
        self.evidence: list[str] = []
        self.signals: list[str] = []

    def add(self, signal: str, value: float, sentence: str) -> None:
        weight = self.weights[signal]
        # Signals read from the recorded requests count in proportion to how many there are:
        # a handful of requests cannot carry a failure rate, the health samples and logs still can.
        s = _clip(value) * (self.sample if signal.startswith("requests.") else 1.0)
        if s <= 0:
            return
        self.miss *= 1 - weight * s
        self.evidence.append(sentence)
        self.signals.append(signal)

    def damp(self, factor: float, sentence: str | None = None) -> None:
        """Counter-evidence: scale the strength down."""
        self.miss = 1 - (1 - self.miss) * _clip(factor)
        if sentence:
            self.evidence.append(sentence)

    @property
    def strength(self) -> float:
        return round(1 - self.miss, 3)


def _health_reason_samples(fig: Figures, reasons: tuple[str, ...]) -> tuple[int, str | None]:
    n, desc = 0, None
    for r in fig.health_reasons or []:
        if r.get("state") in ("unhealthy", "initial", "draining") and r.get("reason") in reasons:
            n += int(r.get("samples") or 0)
            if desc is None:  # "L7STS: 400 Bad Request", the reason code first
                d = r.get("description")
                desc = f"{r.get('reason')}: {d}" if d else str(r.get("reason"))
    return n, desc


def _unhealthy_total(fig: Figures) -> int:
    return sum(
        int(r.get("samples") or 0)
        for r in fig.health_reasons or []
        if r.get("state") == "unhealthy"
    )


def _conditional(fig: Figures) -> tuple[float, str] | None:
    ru, rh = fig.failure_rate_unhealthy, fig.failure_rate_healthy
    if ru is None:
        return None
    rh = rh or 0.0
    lift = _clip((ru - rh) / ru) if ru > 0 else 0.0
    share = fig.share_failures_while_unhealthy
    text = (
        f"failure rate {_pct(ru)} while a target was unhealthy vs {_pct(rh)} while all were healthy"
        + (f"; {_pct(share)} of failures fell in unhealthy periods" if share is not None else "")
    )
    lag = fig.health_failure_lag_s
    if lag is not None and fig.health_failure_r is not None:
        text += f" (lagged correlation r={fig.health_failure_r:.2f} at {lag:+d} s)"
    return lift, text


def _hap(fig: Figures, cls: str) -> float:
    return float((fig.haproxy_classes or {}).get(cls, 0))


def _hap_5xx(fig: Figures) -> float:
    return _f(fig.haproxy_5xx)


def _busy(fig: Figures) -> tuple[int, int, float]:
    """Health checks that connected but got no answer in time (L7TOUT): (samples, samples with
    every slot busy, signal).
    Only samples taken under the load while every slot at the target was busy count as
    "workers busy"; the others are a cold start before the load or a stalled checker. (Samples
    without an in-flight reading, as from AWS, count.)"""
    n = busy = 0
    for r in fig.health_reasons:
        if (
            r.get("state") in ("unhealthy", "initial", "draining")
            and r.get("reason") in BUSY_REASONS
        ):
            n += int(r.get("samples") or 0)
            busy += int(r.get("at_capacity", r.get("samples")) or 0)
    return n, busy, min(1.0, busy / 3)


def _port(fig: Figures) -> int:
    hc = (fig.proxy or {}).get("health_check") or {}
    return int(hc.get("port") or 8000)


# ---- causes ------------------------------------------------------------------------------------


def _target_down(fig: Figures, ctx: Context) -> Cause | None:
    sc = _Score("target-down", fig, ctx)
    n_ref, desc = _health_reason_samples(fig, REFUSED_REASONS)
    if n_ref:
        sc.add(
            "health.refused",
            min(1.0, n_ref / 3),
            f"target health: {n_ref} unhealthy samples with connect-refused reason ({desc})",
        )
        cond = _conditional(fig)
        if cond:
            sc.add("health.unhealthy-failure-rate", cond[0], cond[1])
    h5 = _hap_5xx(fig)
    refused = _hap(fig, "connect-refused")
    if h5 and refused:
        sc.add(
            "haproxy.refused",
            refused / h5 * 2,
            f"HAProxy log: {_n(refused)} of {_n(h5)} 5xx were refused connects (SC--; the testbed serves its 503 as the ALB's 502 page)",
        )
    if h5 and n_ref and _hap(fig, "no-server"):
        sc.add(
            "haproxy.no-server",
            _hap(fig, "no-server") / h5,
            f"HAProxy log: {_n(_hap(fig, 'no-server'))} requests found no server up (<NOSRV>)",
        )
    killed = int(fig.target_stops or 0)
    during = fig.share_5xx_while_target_stopped
    faults = [f for f in fig.faults or [] if "down" in str(f) or "kill" in str(f)]
    if killed:
        value = during if during is not None else 1.0
        # A stopped target refuses connects (or leaves no server up). When the proxy log shows
        # its 5xx were mostly something else - closed connections, timeouts - the stop (e.g. a
        # restart that reconfigured gunicorn) is not what failed them.
        conn_share = (refused + _hap(fig, "no-server")) / h5 if h5 else None
        if conn_share is not None:
            value *= min(1.0, 2 * conn_share)
        sc.add(
            "events.target-stopped",
            value,
            f"events: target killed/stopped {killed}x"
            + (f", {_pct(during)} of proxy 5xx while it was down" if during is not None else "")
            + (f" (testbed fault {faults[0]})" if faults else "")
            + (
                f", but only {_pct(conn_share)} of the proxy's 5xx were failed connects"
                if conn_share is not None and conn_share < 0.5
                else ""
            ),
        )
    refused_client = sum(
        int(r["count"]) for r in fig.network_errors or [] if "Refused" in str(r.get("error"))
    )
    if refused_client:
        sc.add(
            "requests.refused",
            1.0,
            f"{_n(refused_client)} requests were refused at connect (ConnectionRefusedError)",
        )
    cf = _f(fig.alb_connect_fail)
    if cf and _f(fig.alb_elb_5xx):
        sc.add(
            "alb.connect-fail",
            cf / _f(fig.alb_elb_5xx),
            f"ALB log: {_n(cf)} ALB 502s with target_status_code '-' and -1/-1/-1 times (could not connect: refused, reset or unreachable)",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    return Cause(
        "target-down",
        sc.strength,
        sc.evidence,
        "Bring the target back and keep it supervised: `docker ps -a` / `docker logs academy-api` for the exit "
        "reason (OOM-killed? exit code), run it with `--restart unless-stopped`, and check `dmesg | grep -i oom`.",
        sc.signals,
    )


def _capacity(fig: Figures, ctx: Context) -> Cause | None:
    sc = _Score("capacity", fig, ctx)
    cap = fig.capacity or {}
    ev = fig.events or {}
    h5 = _hap_5xx(fig)
    r99 = fig.target_p99_over_timeout
    # Load above workers x threads only queues requests; it is a cause when failures show the
    # overload (worker timeouts/kills, gunicorn's own 5xx, 504s waiting for the target, latency
    # near the timeout). Without such a signal the pressure figures weigh little.
    specific = bool(
        ev.get("worker_timeout")
        or fig.worker_sigkill > int(_f(_rel(fig).get("oom_kills")))
        or fig.boot_loop
        or _f(fig.server_5xx)
        or _hap(fig, "server-timeout")
        or (r99 is not None and r99 >= 0.5)
        or _f(fig.alb_response_timeout_504)
        or _f(fig.alb_target_5xx)
        or _f(fig.alb_timeout_kill)
        or _busy(fig)[2] >= 0.5
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
            f"target p99 latency {_f(fig.target_p99_ms):.0f} ms = {r99:.2f}x gunicorn's --timeout {cap.get('timeout')} s",
        )
    n_busy, n_full, busy = _busy(fig)
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
    timeout_kills = fig.worker_sigkill - int(_f(_rel(fig).get("oom_kills")))
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
    fails = _f(fig.failures)
    srv = _f(fig.server_5xx)
    # Failed connects (target down, port blocked) are other causes' failures: capacity's shares
    # are taken among the failures they do not explain, so both can be found in one run.
    conn = _hap(fig, "connect-refused") + _hap(fig, "connect-timeout") + _hap(fig, "no-server")
    other = max(1.0, fails - conn) if conn else fails
    if fails and srv:
        sc.add(
            "requests.gunicorn-5xx",
            srv / other * 3,
            f"{_n(srv)} of {_n(fails)} failures were gunicorn's own 5xx pages (source 'server', no CORS headers)",
        )
    h5 = _hap_5xx(fig)
    st = _hap(fig, "server-timeout")
    if h5 and st:
        sc.add(
            "haproxy.server-timeout",
            st / max(1.0, h5 - conn) * 3,
            f"HAProxy log: {_n(st)} 504s waiting for the target's response (sH--)",
        )
    elif (
        _f(fig.proxy_504)
        and not _hap(fig, "connect-timeout")
        and not fig.present.get("haproxy_log")
    ):
        sc.add("requests.proxy-504", 1.0, f"{_n(fig.proxy_504)} proxy 504s (gateway timeout)")
    ra, rb = fig.failure_rate_at_capacity, fig.failure_rate_below_capacity
    if ra is not None and rb is not None and ra > rb:
        sc.add(
            "requests.failure-rate-at-capacity",
            (ra - rb) / ra if ra else 0,
            f"failure rate {_pct(ra)} in the {fig.seconds_at_capacity} s at >= 80% of capacity vs {_pct(rb)} below",
        )
    near = fig.share_5xx_near_worker_event
    if near and wt:
        sc.add(
            "gunicorn.near-worker-event",
            near,
            f"{_pct(near)} of proxy 5xx within 3 s of a gunicorn worker event",
        )
    rt = _f(fig.alb_response_timeout_504)
    if rt:
        sc.add(
            "alb.response-timeout",
            rt / max(1.0, _f(fig.alb_elb_5xx)) * 2,
            f"ALB log: {_n(rt)} 504s after the request reached the target (target too slow for the idle timeout)",
        )
    if _f(fig.alb_target_5xx):
        sc.add(
            "alb.target-5xx",
            1.0,
            f"ALB log: {_n(fig.alb_target_5xx)} 5xx returned by the target itself",
        )
    tk = _f(fig.alb_timeout_kill)
    if tk:
        sc.add(
            "alb.timeout-kill",
            tk / max(1.0, _f(fig.alb_elb_5xx)) * 2,
            f"ALB log: {_n(tk)} 502s where the target closed the connection at gunicorn's --timeout "
            f"({_n(fig.alb_kill_timeout_s)} s): workers killed mid-request (WORKER TIMEOUT), not a keep-alive race",
        )
    overload = bool(
        st
        or srv
        or wt
        or fig.worker_sigkill
        or _f(fig.alb_response_timeout_504)
        or _f(fig.alb_target_5xx)
        or (_f(fig.proxy_504) and not _hap(fig, "connect-timeout") and not h5)
    )
    if h5 and fails and not overload:
        # The proxy log classified every failure, and none is what overload produces (a 504
        # waiting for the target, gunicorn's own 5xx, a worker timeout): busy as the target may
        # have been, it is not what failed these requests.
        sc.damp(
            0.3,
            f"but none of the {_n(fails)} failures was an overload failure (504 waiting for the target, gunicorn 5xx, worker timeout)",
        )
    if h5 and conn / h5 > 0.5 and not specific:
        sc.damp(
            1 - conn / h5,
            f"but {_pct(conn / h5)} of the proxy's 5xx were failed connects (target down or unreachable), not overload",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    onset = fig.failure_onset_concurrency
    if onset is not None:
        inflight = fig.failure_onset_in_flight
        sc.evidence.append(
            f"failures began {(fig.failure_onset_offset_s or 0):.0f} s into {_span(ctx)} at {(fig.failure_onset_rps or 0):.0f} req/s, "
            f"{onset:.1f} concurrent by Little's law"
            + (f", {inflight:.0f} in flight at the target" if inflight is not None else "")
        )
    return Cause("capacity", sc.strength, sc.evidence, _capacity_fix(fig), sc.signals)


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
    p99 = _f(fig.target_p99_ms) / 1000
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


def _keepalive(fig: Figures, ctx: Context) -> Cause | None:
    sc = _Score("keepalive-race", fig, ctx)
    cap = fig.capacity or {}
    idle = (fig.proxy or {}).get("idle_timeout")
    ka = cap.get("keepalive")
    klass = fig.gunicorn_worker_class or cap.get("worker_class")
    p5 = _f(fig.proxy_5xx) or _f(fig.alb_elb_502)
    if not p5 and not _hap(fig, "server-closed"):
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
    h5 = _hap_5xx(fig)
    closed = _hap(fig, "server-closed")
    if h5 and closed:
        notimer = _f(fig.haproxy_server_closed_no_timer)
        sc.add(
            "haproxy.server-closed",
            closed / h5 * 1.5,
            f"HAProxy log: {_n(closed)} of {_n(h5)} 5xx were 502s where the target closed the connection (SH--/SD--), {_n(notimer)} with no server response time (-1)",
        )
    tc = _f(fig.alb_keepalive_race)
    if tc and _f(fig.alb_elb_5xx):
        other = _f(fig.alb_target_closed) - tc
        sc.add(
            "alb.keepalive-race",
            tc / _f(fig.alb_elb_5xx) * 1.5,
            f"ALB log: {_n(tc)} ALB 502s where the target closed the connection within 1 s of dispatch "
            f"(target_status_code '-', response_processing_time -1: the keep-alive signature)"
            + (
                f"; {_n(other)} more closed after longer processing, not counted as races"
                if other
                else ""
            ),
        )
    low = fig.share_5xx_low_load
    spread = fig.proxy_5xx_spread
    # ALB logs say what each closed connection was: when none closed at once, sporadic 502s are
    # the timeout kills and late closes counted there, not races.
    closes_explained = bool(_f(fig.alb_target_closed)) and not _f(fig.alb_keepalive_race)
    if low is not None and spread is not None and not closes_explained:
        sc.add(
            "requests.sporadic-low-load",
            low * spread,
            f"{_pct(low)} of proxy 5xx at low load, spread over {fig.proxy_5xx_seconds} separate seconds (max {fig.proxy_5xx_max_per_s} per s): sporadic",
        )
    reused, base = fig.share_5xx_reused, fig.share_reused
    if reused is not None and reused >= 0.8:
        sc.add(
            "requests.reused-connections",
            reused,
            f"{_pct(reused)} of proxy 5xx went out on reused connections (run baseline {_pct(base or 0)})",
        )
    if not cfg_ok and ka is None:
        sc.damp(0.7)
    # The race shows as closed connections, sporadically: failed connects or bursts are not it.
    if h5:
        closed_share = closed / h5
        if closed_share < 0.5:
            sc.damp(
                max(2 * closed_share, 0.1),
                f"but only {_pct(closed_share)} of the proxy's 5xx were closed connections",
            )
    if spread is not None and spread < 0.3:
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
        sc.damp(1 - near, f"but {_pct(near)} of them were within 3 s of a worker event")
    unh = fig.share_closed_while_unhealthy
    if unh is None:
        unh = fig.share_failures_while_unhealthy
    if unh and unh > 0.3:
        sc.damp(1 - unh, f"but {_pct(unh)} of them happened while a target was unhealthy")
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
    return Cause(
        "keepalive-race",
        sc.strength,
        sc.evidence,
        f"Keep backend connections open longer than the proxy: `gunicorn --keep-alive {new_ka}` (> idle timeout "
        f"{idle or 60} s; e.g. GUNICORN_CMD_ARGS='--keep-alive {new_ka}') with gthread/gevent workers.",
        sc.signals,
    )


def _health_check(fig: Figures, ctx: Context) -> Cause | None:
    sc = _Score("health-check-config", fig, ctx)
    n_sts, desc = _health_reason_samples(fig, STATUS_REASONS)
    if not n_sts:
        return None
    code400 = desc is not None and "400" in desc
    sc.add(
        "health.status-400" if code400 else "health.status",
        min(1.0, n_sts / 3),
        f"target health: {n_sts} failing samples with HTTP-status reason ({desc})",
    )
    app_ok = _f(fig.app_ok)
    if app_ok:
        sc.add(
            "requests.app-ok-meanwhile",
            1.0,
            f"meanwhile {_n(app_ok)} app requests with the public Host header succeeded: the app is up, only the health check is rejected",
        )
    cond = _conditional(fig)
    if cond:
        sc.add("health.unhealthy-failure-rate", cond[0], cond[1])
    h5 = _hap_5xx(fig)
    if h5 and _hap(fig, "no-server"):
        sc.add(
            "haproxy.no-server",
            _hap(fig, "no-server") / h5,
            f"HAProxy log: {_n(_hap(fig, 'no-server'))} requests found no server up (<NOSRV>) after the target was marked down",
        )
    fo = _f(fig.haproxy_failopen)
    if fo:
        sc.add(
            "haproxy.failopen",
            1.0,
            f"HAProxy log: {_n(fo)} requests were served through the fail-open path while the target "
            "was marked down (an ALB routes to unhealthy targets only when all are unhealthy)",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    hc = (fig.proxy or {}).get("health_check") or {}
    path = hc.get("path") or "/health"
    return Cause(
        "health-check-config",
        sc.strength,
        sc.evidence,
        "The health checker's Host is the target's private IP: add it to Django's ALLOWED_HOSTS "
        "(e.g. the EC2 local-ipv4 from instance metadata, or socket.gethostbyname(socket.gethostname())), "
        f"or answer {path} in a middleware placed before Django's host validation.",
        sc.signals,
    )


def _connectivity(fig: Figures, ctx: Context) -> Cause | None:
    sc = _Score("connectivity", fig, ctx)
    n_to, desc = _health_reason_samples(fig, TIMEOUT_REASONS)
    if n_to:
        sc.add(
            "health.timeout",
            min(1.0, n_to / 3),
            f"target health: {n_to} unhealthy samples with timeout reason ({desc})",
        )
    h5 = _hap_5xx(fig)
    ct = _hap(fig, "connect-timeout")
    if h5 and ct:
        sc.add(
            "haproxy.connect-timeout",
            ct / h5 * 1.5,
            f"HAProxy log: {_n(ct)} of {_n(h5)} 5xx were connect timeouts (sC--): the proxy never reached the port",
        )
    fails = _f(fig.failures)
    if fails and fig.present.get("requests") and _f(fig.app_responses) == 0 and (n_to or ct):
        sc.add(
            "requests.no-app-response",
            1.0,
            f"not one of {_n(_f(fig.requests))} requests reached the app (0 app responses)",
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
    cto = _f(fig.alb_connect_timeout_504)
    if cto:
        sc.add(
            "alb.connect-timeout",
            cto / max(1.0, _f(fig.alb_elb_5xx)) * 2,
            f"ALB log: {_n(cto)} 504s with -1 processing times (connect timeout, no target contact)",
        )
    cf = _f(fig.alb_connect_fail)
    if cf and not n_to and _f(fig.alb_elb_5xx):
        sc.add(
            "alb.connect-fail",
            cf / _f(fig.alb_elb_5xx),
            f"ALB log: {_n(cf)} 502s with -1/-1/-1 times (no connection to the target: unreachable or refused)",
        )
    if sc.strength < MIN_STRENGTH:
        return None
    port = _port(fig)
    return Cause(
        "connectivity",
        sc.strength,
        sc.evidence,
        f"Allow the ALB to reach the app port: `aws ec2 authorize-security-group-ingress --group-id <api-sg> "
        f"--protocol tcp --port {port} --source-group <alb-sg>`; check the target subnet's route table and "
        "NACLs (ephemeral ports 1024-65535 back to the ALB); `albprobe check` verifies the chain.",
        sc.signals,
    )


def _cors(fig: Figures, ctx: Context) -> Cause | None:
    bad = _f(fig.app_cors_fail)
    if not bad:
        return None
    rate = _f(fig.app_cors_fail_rate)
    steps = fig.app_cors_steps or []
    top = steps[0] if steps else {}
    origin = fig.origin or "the page origin"
    sc = _Score("cors-setup", fig, ctx)
    sc.add(
        "requests.app-cors-fail",
        max(rate, 0.3 if bad >= 3 else 0.1),
        f"{_n(bad)} of {_n(_f(fig.app_responses))} app-produced responses ({_pct(rate)}) failed the browser's CORS check for {origin}"
        + (f" at step '{top.get('step')}': {top.get('message')}" if top else ""),
    )
    step = str(top.get("step") or "")
    if "credential" in step:
        fix = f"Set CORS_ALLOW_CREDENTIALS = True and list '{origin}' in CORS_ALLOWED_ORIGINS (django-cors-headers; no wildcard with credentials)."
    elif "method" in step or "header" in step:
        fix = "Allow the request's methods/headers: extend CORS_ALLOW_METHODS / CORS_ALLOW_HEADERS (django-cors-headers)."
    else:
        fix = f"Add '{origin}' to CORS_ALLOWED_ORIGINS (django-cors-headers) and make sure CorsMiddleware sits above CommonMiddleware."
    return Cause("cors-setup", sc.strength, sc.evidence, fix, sc.signals)


def _rel(fig: Figures) -> dict[str, Any]:
    return fig.release or {}


def _targets_named(counts: dict[str, int]) -> str:
    return ", ".join(f"{t} ({_n(n)})" for t, n in sorted(counts.items()))


def _deploy(fig: Figures, ctx: Context) -> Cause | None:
    """Failures inside a deploy's deregistration / stop / registration windows."""
    rel = _rel(fig)
    total = _f(rel.get("failures"))
    inside = _f(rel.get("in_windows"))
    if not rel.get("deploys") or not total or not inside:
        return None
    sc = _Score("deploy", fig, ctx)
    sc.add(
        "events.in-deploy-window",
        inside / total * 1.5,
        f"{_n(inside)} of {_n(total)} proxy failures fell inside a target's deregistration, stop "
        f"or registration window of the deploy ({rel.get('failure_source')})",
    )
    fixes = []
    stopped = rel.get("stopped_before_deregistered") or {}
    if stopped:
        sc.add(
            "events.stopped-before-deregistered",
            1.0,
            f"the container was stopped before it was deregistered: {_targets_named(stopped)} "
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
            f"than the in-flight work: {_targets_named(short)} failures cut when it ended",
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
            f"than the in-flight work: {_targets_named(graceful)} failures after SIGTERM",
        )
        fixes.append("raise gunicorn's --graceful-timeout above the longest request")
    early = rel.get("early_register") or {}
    if early:
        sc.add(
            "events.registered-before-ready",
            1.0,
            f"the new target was registered before the app was ready: {_targets_named(early)} "
            "failures right after it turned healthy",
        )
        fixes.append(
            "make /health answer 200 only when the app can serve (migrations done, workers "
            "booted), and register the target after that"
        )
    nosrv = _f(rel.get("no_routable_503"))
    if nosrv:
        sc.add(
            "haproxy.no-routable-503",
            nosrv / total * 2,
            f"{_n(nosrv)} 503s with no routable target (every target deregistered or draining)",
        )
        fixes.append("replace targets one at a time, keeping at least one registered and healthy")
    if sc.strength < MIN_STRENGTH:
        return None
    fix = "; ".join(fixes) or (
        "deploy in the ALB's order: deregister, wait out the drain, stop gracefully, start, "
        "register, wait until healthy - one target at a time"
    )
    return Cause("deploy", sc.strength, sc.evidence, fix[0].upper() + fix[1:] + ".", sc.signals)


def _worker_kill(fig: Figures, ctx: Context) -> Cause | None:
    """The OOM killer's pattern: a worker SIGKILLed without a WORKER TIMEOUT, and its request's 502."""
    rel = _rel(fig)
    kills, near = _f(rel.get("oom_kills")), _f(rel.get("near_kill"))
    if not kills or not near:
        return None
    sc = _Score("worker-kill", fig, ctx)
    pids = ", ".join(str(p) for p in (rel.get("oom_pids") or [])[:5])
    sc.add(
        "gunicorn.oom-kill",
        kills,
        f"gunicorn: 'Worker (pid:{pids}) was sent SIGKILL! Perhaps out of memory?' x{_n(kills)}, "
        "with no WORKER TIMEOUT of that worker before it (not gunicorn's timeout kill)",
    )
    total = max(1.0, _f(rel.get("failures")))
    sc.add(
        "gunicorn.failures-near-kill",
        near / total * 2,
        f"{_n(near)} of {_n(total)} proxy failures within {NEAR_S:g} s of the kill: the "
        "request that worker was serving got the proxy's 502",
    )
    return Cause(
        "worker-kill",
        sc.strength,
        sc.evidence,
        "Find what ate the memory: `dmesg -T | grep -i -E 'killed process|oom'` on the instance, "
        "`docker stats academy-api`; give the container more memory or fewer workers, and cap a "
        "leaking worker with gunicorn `--max-requests 1000 --max-requests-jitter 100`.",
        sc.signals,
    )


def _worker_recycle(fig: Figures, ctx: Context) -> Cause | None:
    """max-requests recycling, only when it actually produced failures."""
    rel = _rel(fig)
    rec, near = _f(rel.get("recycles")), _f(rel.get("near_recycle"))
    if not rec or not near:
        return None
    sc = _Score("worker-recycle", fig, ctx)
    sc.add(
        "gunicorn.recycle",
        1.0,
        f"gunicorn: 'Autorestarting worker after current request.' x{_n(rec)} (--max-requests)",
    )
    total = max(1.0, _f(rel.get("failures")))
    sc.add(
        "gunicorn.failures-near-recycle",
        near / total * 2,
        f"{_n(near)} of {_n(total)} proxy failures within {NEAR_S:g} s of a recycle",
    )
    return Cause(
        "worker-recycle",
        sc.strength,
        sc.evidence,
        "A recycling worker closes its kept-alive connections: keep gunicorn's --keep-alive above "
        "the ALB idle timeout and use gthread workers, or raise --max-requests (with "
        "--max-requests-jitter) so recycles are rare.",
        sc.signals,
    )


def _http_redirect(fig: Figures, ctx: Context) -> Cause | None:
    """The front end calls http://; the ALB's port-80 listener redirects and the browser refuses."""
    rel = _rel(fig)
    pre, act = _f(rel.get("redirect_preflights")), _f(rel.get("redirect_actuals"))
    if not pre and not act:
        return None
    sc = _Score("http-redirect", fig, ctx)
    if pre:
        sc.add(
            "requests.preflight-redirect",
            pre / max(1.0, _f(fig.preflight)) * 2,
            f"{_n(pre)} preflights were answered with a redirect by the proxy; Chromium: "
            "'Redirect is not allowed for a preflight request.'",
        )
    if act:
        sc.add(
            "requests.redirect-no-cors",
            act / max(1.0, _f(fig.actual)) * 2,
            f"{_n(act)} requests got the proxy's redirect without CORS headers",
        )
    lines = _f(rel.get("redirect_log_lines"))
    if lines:
        sc.add(
            "haproxy.redirect",
            1.0,
            f"proxy log: {_n(lines)} requests answered by the HTTP listener's redirect to HTTPS "
            "(LR--, no target)",
        )
    origin = fig.origin or "the front end"
    return Cause(
        "http-redirect",
        sc.strength,
        sc.evidence,
        f"Call the API over https:// from {origin} (the API base URL starts with http://); the "
        "ALB's port-80 listener only redirects to HTTPS, and a browser never follows a redirect "
        "of a preflight.",
        sc.signals,
    )


PROXY_CAUSES = (
    _target_down,
    _capacity,
    _keepalive,
    _health_check,
    _connectivity,
    _deploy,
    _worker_kill,
    _worker_recycle,
    _http_redirect,
)


# ---- the decision ------------------------------------------------------------------------------


def missing_evidence(fig: Figures) -> list[str]:
    p = fig.present or {}
    out = []
    if not p.get("requests") and not p.get("alb_log"):
        out.append("requests table (requests/part-*.parquet): no per-request outcomes")
    if p.get("requests") is False and p.get("alb_log"):
        out.append(
            "browser-side CORS verdicts: ALB logs carry no response headers; run `albprobe run` or `albprobe cors` to judge the CORS setup"
        )
    if not p.get("run_json") and p.get("requests"):
        out.append("run.json: no capacity model or proxy settings")
    if not fig.capacity and (p.get("requests") or p.get("run_json")):
        out.append(
            "capacity model ([capacity] workers/threads/timeout/keepalive): capacity and keep-alive causes cannot be confirmed"
        )
    if p.get("alb_log") and not p.get("requests") and not fig.capacity:
        out.append(
            "proxy idle timeout and gunicorn --keep-alive (ALB attribute idle_timeout.timeout_seconds, [capacity] keepalive): needed to confirm a keep-alive race"
        )
    if not p.get("health"):
        out.append(
            "target health samples (health/): cannot correlate failures with unhealthy targets"
        )
    if not p.get("haproxy_log") and not p.get("alb_log"):
        out.append(
            "proxy logs (logs/haproxy-*.log or logs/alb/): no termination states / -1 timers to tell refused, timed-out and closed connections apart"
        )
    if not p.get("gunicorn_events"):
        out.append(
            "gunicorn log or events (logs/gunicorn.log): no WORKER TIMEOUT / SIGKILL / boot evidence"
        )
    if p.get("requests") and fig.share_5xx_reused is None and _f(fig.proxy_5xx):
        out.append("connection reuse (conn_reused) of the failing requests")
    return out


def _insufficient(fig: Figures, why: str, missing: list[str], advice: str = "") -> Verdict:
    return Verdict(
        "insufficient-evidence",
        f"Insufficient evidence: {why}"
        + (
            f" Missing: {'; '.join(m.split(' (')[0].split(':')[0] for m in missing[:4])}."
            if missing
            else ""
        )
        + (f" {advice}" if advice else ""),
        cross_table=fig.cross_table or [],
        missing_evidence=missing,
        figures=fig,
    )


def _more_requests(fig: Figures) -> str:
    """How to get enough requests from a load run (never said of ALB logs)."""
    d = fig.duration_s
    longer = f"{max(60, math.ceil(3 * (d or 20) / 10) * 10)}s"
    return (
        f"For more evidence, run longer (e.g. --duration {longer}) or with more users (--users): "
        f"each user waits out every slow or timed-out call, so a run of only {_n(fig.requests)} requests "
        "is too short to measure failure rates."
    )


def _independent(cause: Cause) -> bool:
    """Two or more sources agree, and at least one is not the (too few) requests."""
    src = cause.sources
    return len(src) >= 2 and any(s != "requests" for s in src)


def context_of(fig: Figures) -> Context:
    p = fig.present or {}
    return "alb-logs" if not p.get("requests") and p.get("alb_log") else "run"


def decide(
    fig: Figures | dict[str, Any],
    security_findings: list[dict[str, Any]] | None = None,
    context: Context | None = None,
) -> Verdict:
    """Turn figures (analysis.correlate.compute) into the verdict. ``context`` says what they
    were read from - a load run or ALB access logs alone - and so how the verdict is worded
    (default: inferred from which inputs are present)."""
    if isinstance(fig, dict):
        fig = Figures.from_dict(fig)
    ctx: Context = context or context_of(fig)
    missing = missing_evidence(fig)
    n = _f(fig.requests)
    alb_only = ctx == "alb-logs"
    few = not alb_only and n < MIN_REQUESTS
    if few:
        missing = missing + [
            f"enough requests: only {_n(n)} recorded (>= {MIN_REQUESTS} to measure failure rates); "
            "run longer or with more users"
        ]
    if not alb_only and _f(fig.unattributed_errors) > 0.5 * max(1.0, _f(fig.errors)):
        return _insufficient(
            fig,
            f"{_n(fig.unattributed_errors)} failing responses have no source attribution.",
            missing,
        )

    cors = _cors(fig, ctx)
    proxy_fail = _f(fig.proxy_5xx) + _f(fig.server_5xx) + _f(fig.proxy_redirect_fail)
    network = _f(fig.network)
    if alb_only:
        proxy_fail = _f(fig.alb_elb_5xx) + _f(fig.alb_target_5xx)
    causes = (
        [c for c in (f(fig, ctx) for f in PROXY_CAUSES) if c is not None]
        if (proxy_fail or network)
        else []
    )
    causes = _rank(fig, _with_target_split(fig, causes))
    corroborated = any(c.strength >= 0.5 for c in causes)
    # Network-only failures (no HTTP response) are "CORS errors" too, but without proxy-side
    # evidence they could be the client's own network: do not guess.
    if network and not proxy_fail and not corroborated and not cors:
        return _insufficient(
            fig,
            f"{_n(network)} of {_n(n)} requests failed without any HTTP response ({_top_error(fig)}), and nothing on the proxy side shows where.",
            missing,
        )
    failing = proxy_fail + (network if corroborated else 0)
    if few:
        # Too few requests for rates: a cause stands only on independent sources (target health,
        # the proxy log, gunicorn's log) that agree; otherwise say what is missing and how to get it.
        lead = causes[0] if causes else None
        if not failing and not cors and _latent(fig, ctx, few):
            pass  # nothing failed but the target was unhealthy: judged below, on health and logs
        elif not failing or lead is None or lead.strength < 0.5 or not _independent(lead):
            why = f"only {_n(n)} requests recorded (need >= {MIN_REQUESTS})"
            if lead is not None:
                why += f"; strongest lead: {lead.id} (strength {lead.strength:.2f}, from {_from(lead)})"
            return _insufficient(fig, why + ".", missing, _more_requests(fig))
        causes = [c for c in causes if c.strength >= 0.5 and _independent(c)]
    cors_count = _f(fig.app_cors_fail)
    cross = fig.cross_table or []
    sec = list(security_findings or [])
    if cors and cors_count >= max(3.0, 0.01 * _f(fig.app_responses)) and cors_count >= failing:
        all_causes = [cors] + causes
        head = cors.evidence[0] + "; "
        head += (
            f"the proxy also produced {_n(failing)} failures (see causes)."
            if failing
            else "the proxy produced no failures - fix the CORS setup, not the proxy."
        )
        return Verdict(
            "cors-setup", head[0].upper() + head[1:], all_causes, cross, sec, missing, fig
        )
    if failing:
        if cors:
            causes.append(cors)
        head = _proxy_headline(fig, failing, causes, alb_only)
        if few:
            head += (
                f" The cause rests on {_from(causes[0], without_requests=True)}; "
                f"the {_n(n)} requests add little. " + _more_requests(fig)
            )
        return Verdict("proxy", head, causes, cross, sec, missing, fig)
    if not failing and not cors:
        latent = _latent(fig, ctx, few)
        if latent:
            return Verdict(
                "proxy", _latent_headline(fig, ctx, latent[0]), latent, cross, sec, missing, fig
            )
    if cors:  # a few app CORS failures, below the noise threshold
        return Verdict("cors-setup", cors.evidence[0] + ".", [cors], cross, sec, missing, fig)
    if alb_only:
        head = f"No ALB- or target-generated 5xx in {_n(_f(fig.alb_entries))} ALB log entries."
    else:
        head = (
            f"No failures in {_n(n)} requests: no proxy or gunicorn 5xx, every app response passed CORS"
            + (f" for {fig.origin}" if fig.origin else "")
            + (f" (p99 {_f(fig.p99_ms):.0f} ms)" if fig.p99_ms is not None else "")
            + "."
        )
        if _f(fig.app_5xx):
            head += f" Note: {_n(fig.app_5xx)} app-generated 5xx (the app's own errors, with CORS headers)."
        refused = _f(fig.app_responses) - _f(fig.app_ok) - _f(fig.app_5xx)
        if refused > 0:  # e.g. 415 for a body the endpoint does not take: not proxy, not CORS
            head += (
                f" Note: {_n(refused)} app responses were 4xx: the app refused the requests itself "
                "(check the endpoint's method, body and Content-Type in the config)."
            )
    letin = _origins_let_in(sec)
    if letin:
        # Verdict logic (docs/architecture.md): the CORS setup is also at fault when a disallowed origin is let in.
        worst = letin[0]
        cause = Cause(
            "cors-setup",
            1.0,
            [f"{f.get('severity')}: {f.get('check')} - {f.get('detail')}" for f in letin],
            str(
                worst.get("fix") or "Allow only the exact front-end origins (CORS_ALLOWED_ORIGINS)."
            ),
        )
        head += (
            f" But the CORS setup lets disallowed origins in ({len(letin)} {worst.get('severity')}+ "
            f"finding(s) from the run's CORS scan, e.g. {worst.get('check')})."
        )
        return Verdict("cors-setup", head, [cause], cross, sec, missing, fig)
    return Verdict("none", head, [], cross, sec, missing, fig)


_LET_IN = ("high", "critical")


# HAProxy termination classes each cause produces: the failures it explains.
_EXPLAINS = {
    "target-down": ("connect-refused", "no-server"),
    "connectivity": ("connect-timeout",),
    "keepalive-race": ("server-closed",),
    "capacity": ("server-timeout",),
}


def _explained(fig: Figures, cause: Cause) -> float | None:
    """Failures the proxy log attributes to the cause's own failure mode (None: cannot tell)."""
    rel = _rel(fig)
    if cause.id in _RELEASE_EXPLAINS:
        return sum(_f(rel.get(k)) for k in _RELEASE_EXPLAINS[cause.id])
    if not fig.haproxy_classes or cause.id not in _EXPLAINS:
        return None
    n = sum(_hap(fig, k) for k in _EXPLAINS[cause.id])
    # A deploy's failures and a killed or recycled worker's 502s are theirs, not a target
    # crash's or a keep-alive race's, though the proxy log looks the same.
    if cause.id == "target-down":
        n -= _f(rel.get("in_windows"))
    if cause.id == "keepalive-race":
        n -= _f(rel.get("near_kill")) + _f(rel.get("near_recycle"))
    return max(0.0, n) + (_f(fig.server_5xx) if cause.id == "capacity" else 0.0)


def _with_target_split(fig: Figures, causes: list[Cause]) -> list[Cause]:
    """One bad target of N: the per-target split goes into the evidence of the target's causes."""
    pattern = (fig.target_breakdown or {}).get("one_of_n")
    if pattern:
        for c in causes:
            if c.id not in ("http-redirect", "cors-setup", "deploy"):
                c.evidence.append(pattern)
    return causes


# Failures the release figures attribute to a cause (analysis/release.py).
_RELEASE_EXPLAINS = {
    "deploy": ("in_windows",),
    "worker-kill": ("near_kill",),
    "worker-recycle": ("near_recycle",),
    "http-redirect": ("redirect_preflights", "redirect_actuals"),
}


def _rank(fig: Figures, causes: list[Cause]) -> list[Cause]:
    """Strongest first; but among the well-supported causes (>= 0.5), the one that explains the
    most failures in the proxy log leads: strength says a cause is present, the count says which
    one failed most of these requests (a one-second restart vs a race recurring all run)."""
    by_strength = sorted(causes, key=lambda c: c.strength, reverse=True)
    strong = [c for c in by_strength if c.strength >= 0.5]
    counts = [_explained(fig, c) for c in strong]
    if len(strong) < 2 or any(x is None for x in counts):
        return by_strength
    lead = max(zip(strong, counts, strict=True), key=lambda t: (t[1], t[0].strength))[0]
    return [lead] + [c for c in by_strength if c is not lead]


def _latent(fig: Figures, ctx: Context, few: bool) -> list[Cause]:
    """Nothing failed, yet the target was unhealthy for >= 10 % of the time and a cause explains
    it (the proxy failed open): the causes, strongest first; with few requests, only those that
    independent sources corroborate. Empty when there is no such case."""
    if _f(fig.share_time_unhealthy) < 0.1:
        return []
    latent = sorted(
        (c for c in (f(fig, ctx) for f in PROXY_CAUSES) if c), key=lambda c: -c.strength
    )
    if few:
        latent = [c for c in latent if _independent(c)]
    return latent if latent and latent[0].strength >= 0.5 else []


def _latent_headline(fig: Figures, ctx: Context, top: Cause) -> str:
    head = (
        f"No recorded request failed, but the target was unhealthy for {_n(_f(fig.seconds_unhealthy))} s "
        f"({_pct(_f(fig.share_time_unhealthy))} of {_span(ctx)}) and traffic reached it only because the proxy "
        f"failed open; cause: {top.id} (strength {top.strength:.2f}). With another, healthy "
        "target in the group the proxy stops routing to it, and with none it answers 502/503 - which "
        "browsers report as CORS errors."
    )
    if ctx == "run" and fig.requests < MIN_REQUESTS:
        head += f" The cause rests on {_from(top, without_requests=True)}. " + _more_requests(fig)
    return head


def _origins_let_in(sec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scan findings where a disallowed origin was admitted (severity high or critical), worst first."""
    found = [f for f in sec if isinstance(f, dict) and f.get("severity") in _LET_IN]
    return sorted(found, key=lambda f: -_LET_IN.index(f["severity"]))


def _from(cause: Cause, *, without_requests: bool = False) -> str:
    src = set(cause.sources) - ({"requests"} if without_requests else set())
    names = [name for s, name in SOURCE_NAMES.items() if s in src]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def _top_error(fig: Figures) -> str:
    errs = fig.network_errors or []
    return ", ".join(f"{e['error']} x{e['count']}" for e in errs[:2]) or "no response"


def _proxy_headline(fig: Figures, failing: float, causes: list[Cause], alb_only: bool) -> str:
    if alb_only:
        total = _f(fig.alb_entries)
        head = (
            f"{_n(_f(fig.alb_elb_5xx))} of {_n(total)} requests got a 5xx generated by the ALB itself "
            f"(target_status_code '-'; {_n(_f(fig.alb_elb_502))} x 502) and {_n(_f(fig.alb_target_5xx))} a 5xx from the target"
        )
        if _f(fig.alb_keepalive_race):
            head += (
                f"; {_n(fig.alb_keepalive_race)} of the ALB 502s carry the keep-alive signature "
                "(target closed the connection within 1 s of dispatch)"
            )
    else:
        n = _f(fig.requests)
        parts = []
        for count, label in (
            (fig.proxy_502, "502"),
            (fig.proxy_503, "503"),
            (fig.proxy_504, "504"),
        ):
            if count:
                parts.append(f"{_n(count)} x {label}")
        if _f(fig.proxy_redirect_fail):
            parts.append(f"{_n(fig.proxy_redirect_fail)} x redirect to HTTPS")
        if _f(fig.server_5xx):
            parts.append(f"{_n(fig.server_5xx)} gunicorn 5xx")
        if _f(fig.network):
            parts.append(f"{_n(fig.network)} without response")
        cors_txt = (
            "and no request reached the app"
            if not _f(fig.app_responses)
            else "while app responses passed CORS"
            if not _f(fig.app_cors_fail)
            else f"({_n(fig.app_cors_fail)} app responses also failed CORS)"
        )
        head = (
            f"{_n(failing)} of {_n(n)} requests ({_pct(failing / n)}) failed at the proxy ({', '.join(parts)}), "
            f"with no CORS headers - the browser reports them as CORS errors - {cors_txt}"
        )
    proxy_causes = [c for c in causes if c.id != "cors-setup"]
    strong = [c for c in proxy_causes if c.strength >= 0.5]
    if len(strong) > 1:  # several causes, each well supported (e.g. overload, then a crash)
        named = " and ".join(f"{c.id} ({c.strength:.2f})" for c in strong)
        head += f"; causes: {named}."
    elif proxy_causes and proxy_causes[0].strength >= 0.35:
        head += (
            f"; most likely cause: {proxy_causes[0].id} (strength {proxy_causes[0].strength:.2f})."
        )
    else:
        head += "; the cause is undetermined from the evidence available."
    return head
