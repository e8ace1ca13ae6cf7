"""The figures of one analysis, as a typed record (what analysis.correlate computes, what
analysis.verdict reads).

Every figure is a field: reading a misspelt one is an AttributeError, building the record from a
dict with an unknown key is a KeyError, not a silent 0. ``None`` means "not measured" (the input
was missing), which the verdict tells apart from zero. summary.json keeps the figures as a dict
(``to_dict``), and ``--fail-on`` reads them by name (``figures["p99_ms"]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

Row = dict[str, Any]

# field name -> the figure's public name where that is not a Python identifier
_ALIASES = {"rate_5xx": "5xx_rate"}
_FROM_ALIAS = {v: k for k, v in _ALIASES.items()}


@dataclass
class Figures:
    present: dict[str, bool]  # which inputs the run directory / log source had
    # run.json
    capacity: Row | None = None
    proxy: Row | None = None
    origin: str | None = None
    run_status: str | None = None
    # requests table: counts
    requests: int = 0
    actual: int | None = None
    preflight: int | None = None
    first_ts: float | None = None
    last_ts: float | None = None
    duration_s: float | None = None
    errors: int | None = None
    n5xx: int | None = None
    proxy_5xx: int | None = None
    proxy_502: int | None = None
    proxy_503: int | None = None
    proxy_504: int | None = None
    server_5xx: int | None = None
    network: int | None = None
    app_responses: int | None = None
    app_ok: int | None = None
    app_5xx: int | None = None
    app_400: int | None = None
    cors_fail: int | None = None
    app_cors_fail: int | None = None
    unattributed: int | None = None
    unattributed_errors: int | None = None
    proxy_5xx_reuse_known: int | None = None
    proxy_5xx_reused: int | None = None
    reuse_known: int | None = None
    reused: int | None = None
    failures: int | None = None
    # requests table: rates (fractions) and latencies (ms)
    error_rate: float | None = None
    rate_5xx: float | None = None  # "5xx_rate"
    failure_rate: float | None = None
    app_cors_fail_rate: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    lat_max: float | None = None
    latency_source: str | None = None
    co_measured: bool | None = None
    co_n: int | None = None
    co_p50_ms: float | None = None
    co_p99_ms: float | None = None
    target_p50_ms: float | None = None
    target_p99_ms: float | None = None
    target_max_ms: float | None = None
    tlat_max: float | None = None
    app_ok_mean: float | None = None
    share_5xx_reused: float | None = None
    share_reused: float | None = None
    cross_table: list[Row] = field(default_factory=list)
    by_status: list[Row] = field(default_factory=list)
    app_cors_steps: list[Row] = field(default_factory=list)
    network_errors: list[Row] = field(default_factory=list)
    # target health samples
    health_targets: int | None = None
    health_samples: int | None = None
    health_unhealthy_samples: int | None = None
    max_queued: int | None = None
    health_collectors: list[str] | None = None
    health_reasons: list[Row] = field(default_factory=list)
    # HAProxy log (the testbed's proxy)
    haproxy_lines: int | None = None
    haproxy_classes: dict[str, int] = field(default_factory=dict)
    haproxy_5xx: int | None = None
    haproxy_by_class_status: list[Row] = field(default_factory=list)
    haproxy_503_as_502: int | None = None
    haproxy_server_closed_no_timer: int | None = None
    haproxy_failopen: int | None = None
    haproxy_max_srv_conn: int | None = None
    haproxy_max_srv_queue: int | None = None
    # ALB access logs
    alb_entries: int | None = None
    alb_first_ts: float | None = None
    alb_last_ts: float | None = None
    alb_elb_5xx: int | None = None
    alb_elb_502: int | None = None
    alb_elb_503: int | None = None
    alb_elb_504: int | None = None
    alb_target_5xx: int | None = None
    alb_connect_fail: int | None = None
    alb_target_closed: int | None = None  # 502s where the target closed: the three kinds below
    alb_keepalive_race: int | None = None  # closed < 0.1 s after dispatch (a reused connection)
    alb_timeout_kill: int | None = None  # closed at gunicorn's --timeout (a worker killed)
    alb_closed_late: int | None = None  # closed after seconds of processing, not at the timeout
    alb_kill_timeout_s: float | None = None  # the --timeout the timeout_kill count assumed
    alb_connect_timeout_504: int | None = None
    alb_response_timeout_504: int | None = None
    alb_client_gave_up: int | None = None
    alb_targets: int | None = None
    alb_target_ms: list[float] | None = None
    alb_patterns: Row | None = None  # AlbPatterns.to_dict(): per target life, kinds, 503 seconds
    # CloudWatch
    cloudwatch: dict[str, Row] | None = None
    # gunicorn and testbed events
    events: dict[str, int] = field(default_factory=dict)
    worker_sigkill: int = 0
    target_stops: int = 0
    gunicorn_worker_class: str | None = None
    faults: list[str] = field(default_factory=list)
    worker_restarts: int = 0
    boot_loop: bool = False
    # derived: capacity
    slots: int | None = None
    capacity_total: int | None = None
    peak_littles_concurrency: float | None = None
    peak_in_flight: float | None = None
    peak_concurrency: float | None = None
    utilisation: float | None = None
    target_p99_over_timeout: float | None = None
    target_max_over_timeout: float | None = None
    # derived: failures vs health, worker events, load
    seconds_unhealthy: int | None = None
    share_time_unhealthy: float | None = None
    failure_rate_unhealthy: float | None = None
    failure_rate_healthy: float | None = None
    share_failures_while_unhealthy: float | None = None
    health_failure_lag_s: int | None = None
    health_failure_r: float | None = None
    share_5xx_near_worker_event: float | None = None
    share_5xx_while_target_stopped: float | None = None
    share_closed_near_worker_event: float | None = None  # HAProxy closed-connection 502s only
    share_closed_while_unhealthy: float | None = None
    share_5xx_low_load: float | None = None
    proxy_5xx_seconds: int | None = None
    proxy_5xx_max_per_s: int | None = None
    proxy_5xx_spread: float | None = None
    concurrency_failure_r: float | None = None
    failure_rate_at_capacity: float | None = None
    failure_rate_below_capacity: float | None = None
    seconds_at_capacity: int | None = None
    failure_onset_ts: float | None = None
    failure_onset_offset_s: float | None = None
    failure_onset_rps: float | None = None
    failure_onset_concurrency: float | None = None
    failure_onset_in_flight: float | None = None
    service_ms: float | None = None
    offered_rps_p95: float | None = None
    needed_slots: float | None = None
    recommended_threads: int | None = None
    recommended_workers: int | None = None
    # several targets, the release, workers, redirects (analysis/targets.py, analysis/release.py)
    target_breakdown: Row | None = None  # TargetBreakdown.to_dict(): failures per target
    release: Row | None = None  # ReleaseFigures.to_dict(): deploy windows, kills, recycles
    proxy_redirect_fail: int | None = None  # requests the proxy answered 3xx, failing CORS
    # Locust load processes lost mid-run (run.json workers.gaps): {worker_id, from, to, reason}
    worker_gaps: list[Row] = field(default_factory=list)
    worker_gap_seconds: int | None = None  # seconds of the timeline a gap touches
    # inputs
    parse: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Figures:
        """Strict: an unknown key (a misspelt figure) raises KeyError naming it."""
        names = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in d.items():
            name = _FROM_ALIAS.get(k, k)
            if name not in names:
                raise KeyError(f"unknown figure {k!r} (analysis/figures.py lists them)")
            kw[name] = v
        if "present" not in kw:
            raise KeyError("figure 'present' is required (which inputs were read)")
        for name in (
            "cross_table",
            "by_status",
            "app_cors_steps",
            "network_errors",
            "faults",
            "worker_gaps",
        ):
            if kw.get(name) is None and name in kw:
                kw[name] = []
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return {_ALIASES.get(k, k): v for k, v in asdict(self).items()}

    def __getitem__(self, key: str) -> Any:
        """By public name (``figures["5xx_rate"]``); an unknown name raises KeyError."""
        name = _FROM_ALIAS.get(key, key)
        if name not in self.__dataclass_fields__:
            raise KeyError(f"unknown figure {key!r}")
        return getattr(self, name)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and _FROM_ALIAS.get(key, key) in self.__dataclass_fields__

    def get(self, key: str, default: Any = None) -> Any:
        """Like dict.get for reports, but an unknown name still raises KeyError."""
        v = self[key]
        return default if v is None else v
