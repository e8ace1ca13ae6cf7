"""Testbed configuration: the capacity model, the ALB knobs and the fault switches."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

FAULTS: tuple[str, ...] = (
    "target-down",  # gunicorn killed (and restarted when switched off)
    "hang",  # API requests outlive gunicorn's --timeout
    "cors-misconfig",  # the front origin removed from CORS_ALLOWED_ORIGINS
    "health-host",  # ALLOWED_HOSTS rejects the health checker's Host (the target IP)
    "blocked-port",  # the proxy cannot reach the app port (SYNs dropped, like a security group)
    "keepalive-race",  # backend keep-alive < proxy idle reuse, behind a latency relay
)
WORKER_CLASSES = ("sync", "gthread")
# The ALB's listeners the load can be pointed at: the plain forwarding listener (the testbed's
# historic default), port 443's role (TLS + ALPN h2), port 80's role (301 to HTTPS).
LISTENERS = ("http", "https", "http-redirect")
# Faults that can name one target (NAME:INDEX); the others switch the whole target group.
TARGET_FAULTS: tuple[str, ...] = ("target-down", "hang", "health-host", "keepalive-race")
# The target group's load_balancing.algorithm.type, and HAProxy's name for it.
ALGORITHMS = {"round_robin": "roundrobin", "least_outstanding_requests": "leastconn"}


@dataclass(frozen=True)
class TestbedConfig:
    """Defaults are the production shape, with health checks sped up so a run sees state changes.

    Ports 0 mean "pick a free one" (what tests do); `albprobe testbed up` uses 8000 for the app
    like production.
    """

    __test__ = False  # not a pytest test class

    front_host: str = "127.0.0.1"
    front_port: int = 0
    target_ip: str = "127.0.0.2"  # the target's "private IP": what the health checker sends as Host
    app_port: int = 0
    stats_port: int | None = 0  # HTTP stats page; None = none
    # the ALB's HTTPS front: a CA and certificate made at start-up (testbed/tls.py)
    tls: bool = True  # False = no HTTPS and no redirect listener
    https_port: int = 0  # port 443's role
    redirect_port: int = 0  # port 80's role: 301 to https://host:https_port/path
    listener: str = "http"  # which listener `url` (what the load calls) names: one of LISTENERS
    # gunicorn capacity model
    worker_class: str = "sync"
    workers: int = 2
    threads: int = 4  # used by gthread only
    timeout: float = 30.0
    keepalive: float = 2.0
    # the ALB's knobs
    idle_timeout: float = 60.0
    connect_timeout: float = 10.0
    health_interval: float = 2.0
    health_timeout: float = 1.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    fail_open: bool = True  # all targets unhealthy -> the ALB still routes to them
    # the target group: N targets on 127.0.0.2, 127.0.0.3, ... (each its own gunicorn)
    targets: int = 1
    load_balancing: str = "round_robin"  # or least_outstanding_requests
    deregistration_delay: float = 300.0  # the ALB's default drain
    graceful_timeout: float = 5.0  # gunicorn --graceful-timeout
    max_requests: int = 0  # gunicorn --max-requests (0 = never recycle a worker)
    max_requests_jitter: int = 0
    app_boot_seconds: float = 5.0  # deploy-early-register: how long the new app takes to listen
    # faults
    faults: frozenset[str] = field(default_factory=frozenset)
    hang_seconds: float | None = None  # default: gunicorn timeout + 30 s
    race_keepalive: float = 1.0  # gunicorn --keep-alive while keepalive-race is on
    relay_delay_ms: float = 150.0  # one-way latency the relay adds in keepalive-race
    front_origin: str = "https://hakwonplus.com"
    log_dir: Path | None = None  # default: a fresh temporary folder

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(
                f"unknown testbed fault {sorted(unknown)[0]!r}; known: {', '.join(FAULTS)}"
            )
        if self.worker_class not in WORKER_CLASSES:
            raise ValueError(
                f"worker_class must be one of {WORKER_CLASSES}, got {self.worker_class!r}"
            )
        if self.listener not in LISTENERS:
            raise ValueError(f"listener must be one of {LISTENERS}, got {self.listener!r}")
        if self.listener != "http" and not self.tls:
            raise ValueError(f"listener {self.listener!r} needs tls on")
        if self.workers < 1 or self.threads < 1:
            raise ValueError("workers and threads must be >= 1")
        if not 1 <= self.targets <= 50:
            raise ValueError(f"targets must be between 1 and 50, got {self.targets}")
        if self.load_balancing not in ALGORITHMS:
            raise ValueError(
                f"load_balancing must be one of {', '.join(ALGORITHMS)}, got {self.load_balancing!r}"
            )
        if self.deregistration_delay < 0 or self.graceful_timeout < 0:
            raise ValueError("deregistration_delay and graceful_timeout must be >= 0")
        if self.max_requests < 0 or self.max_requests_jitter < 0:
            raise ValueError("max_requests and max_requests_jitter must be >= 0")

    def with_faults(self, *faults: str) -> TestbedConfig:
        return replace(self, faults=frozenset(faults))

    @property
    def target_ips(self) -> tuple[str, ...]:
        """The targets' "private IPs": target_ip, then the next loopback addresses."""
        head, last = self.target_ip.rsplit(".", 1)
        return tuple(f"{head}.{int(last) + i}" for i in range(self.targets))

    @property
    def effective_hang_seconds(self) -> float:
        return self.hang_seconds if self.hang_seconds is not None else self.timeout + 30.0
