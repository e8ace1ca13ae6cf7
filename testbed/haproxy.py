"""HAProxy in the ALB's role: configuration, process, and the runtime API (stats socket)."""

from __future__ import annotations

import csv
import io
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from core.supervisor import Child, ChildSpec, run_to_end, spawn
from testbed.config import ALGORITHMS, TestbedConfig

ERRORPAGES = Path(__file__).parent / "errorpages"
BACKEND = "be_targets"
BLOCKED = "be_blocked"
PRIMARY = "target"
FAILOPEN = "target-failopen"


def server_name(index: int) -> str:
    """HAProxy's name of target ``index`` (1-based) in the routing backend: target, target-2, ..."""
    return PRIMARY if index == 1 else f"{PRIMARY}-{index}"


def failopen_name(index: int) -> str:
    return f"{server_name(index)}-failopen"


def check_backend(index: int) -> str:
    """The backend whose one server runs target ``index``'s health checks (its own Host header);
    the routing server tracks it."""
    return f"be_check_{index}"


# HAProxy lower-cases header names; the ALB (HTTP/1.1) does not. Restore the ones people read.
_CASE_ADJUST = (
    "Server",
    "Content-Type",
    "Content-Length",
    "Connection",
    "Date",
    "Vary",
    "Allow",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
    "Cross-Origin-Opener-Policy",
    "Referrer-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
)


def _ms(seconds: float) -> str:
    return f"{max(int(seconds * 1000), 1)}ms"


@dataclass(frozen=True)
class HaproxyLayout:
    """Where HAProxy listens and where it sends traffic (the target, or a relay/blackhole)."""

    front_port: int
    server_host: str
    server_port: int
    stats_socket: Path
    stats_port: int | None
    core_socket: Path
    route_map: Path | None = None  # runtime switch between the normal and the blocked backend
    blocked_addr: tuple[str, int] | None = None  # the SYN-dropping socket of `blocked-port`
    https_port: int | None = None  # port 443's role: TLS, ALPN h2 and http/1.1
    tls_pem: Path | None = None  # certificate chain + key (testbed/tls.py)
    redirect_port: int | None = None  # port 80's role: the ALB's redirect to HTTPS
    more_servers: tuple[tuple[str, int], ...] = ()  # targets 2..N (where traffic to them goes)

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        return ((self.server_host, self.server_port), *self.more_servers)


def _tls_frontends(cfg: TestbedConfig, layout: HaproxyLayout) -> tuple[str, str]:
    """The HTTPS bind line of the ALB's face, and the port-80 frontend that redirects to it."""
    if not (layout.https_port and layout.tls_pem):
        return "", ""
    bind = (
        f"    bind {cfg.front_host}:{layout.https_port} ssl crt {layout.tls_pem} alpn h2,http/1.1\n"
    )
    if not layout.redirect_port:
        return bind, ""
    # The ALB's default redirect action: HTTPS, the request's host, port 443's role, the same
    # path and query, 301. It answers before any target is involved, preflights included.
    redirect = f"""
frontend fe_redirect
    bind {cfg.front_host}:{layout.redirect_port}
    option h1-case-adjust-bogus-client
    # logged like the ALB logs its redirect action: 301, no target (<NOSRV>), local (LR--)
    http-request redirect location https://%[req.hdr(host),field(1,:)]:{layout.https_port}%[capture.req.uri] code 301
    http-after-response set-header Server awselb/2.0
"""
    return bind, redirect


def _targets_config(cfg: TestbedConfig, layout: HaproxyLayout) -> str:
    """The target group: one routing server per target tracking its own health-check server, and
    (fail open) one check-less backup per target, used only when every routing server is down."""
    purge = f"pool-purge-delay {_ms(cfg.idle_timeout)}"
    routing, checks = [], []
    for i, ((host, port), ip) in enumerate(zip(layout.servers, cfg.target_ips, strict=False), 1):
        name = server_name(i)
        routing.append(f"    server {name} {host}:{port} track {check_backend(i)}/{name} {purge}")
        if cfg.fail_open:
            # The ALB fails open: with every target unhealthy it still routes to them. A
            # check-less backup per target is exactly that (allbackups spreads over all).
            routing.append(f"    server {failopen_name(i)} {host}:{port} backup {purge}")
        checks.append(f"""
backend {check_backend(i)}
    # The ALB's health checker: GET /health, Host = target private IP:port, its User-Agent, matcher 200.
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host {ip}:{cfg.app_port} hdr User-Agent ELB-HealthChecker/2.0
    http-check expect status 200
    server {name} {host}:{port} check inter {_ms(cfg.health_interval)} rise {cfg.healthy_threshold} fall {cfg.unhealthy_threshold}
""")
    return (
        f"""
backend {BACKEND}
    balance {ALGORITHMS[cfg.load_balancing]}
{"    option allbackups" + chr(10) if cfg.fail_open else ""}    # The ALB keeps idle backend connections for reuse up to its idle timeout.
    http-reuse always
"""
        + "\n".join(routing)
        + "\n"
        + "".join(checks)
    )


def render_config(cfg: TestbedConfig, layout: HaproxyLayout) -> str:
    """The haproxy.cfg text. Pure, so the ALB semantics it encodes are unit-testable."""
    case_adjust = "\n".join(f"    h1-case-adjust {h.lower()} {h}" for h in _CASE_ADJUST)
    route = blocked = ""
    if layout.route_map and layout.blocked_addr:
        # `set map` on the runtime API flips the route: the blocked backend's connect failures
        # are timeouts, which the ALB answers with 504 (refused connects stay 502 above).
        route = f"    use_backend %[str(route),map({layout.route_map},{BACKEND})]\n"
        host, port = layout.blocked_addr
        blocked = f"""
backend {BLOCKED}
    errorfile 503 {ERRORPAGES / "alb-504.http"}
    server {PRIMARY}-blocked {host}:{port}
"""
    tls_bind, redirect = _tls_frontends(cfg, layout)
    stats = (
        f"""
listen stats
    bind 127.0.0.1:{layout.stats_port}
    stats enable
    stats uri /stats
    stats refresh 2s
"""
        if layout.stats_port
        else ""
    )
    return f"""# Generated by albprobe's testbed: HAProxy playing the AWS Application Load Balancer.
global
    log stdout format raw local0 info
    stats socket {layout.stats_socket} mode 600 level admin
    maxconn 8000
{case_adjust}

defaults
    mode http
    log global
    option httplog
    # The ALB's connection idle timeout covers idle clients and silent targets (-> 504).
    timeout client {_ms(cfg.idle_timeout)}
    timeout server {_ms(cfg.idle_timeout)}
    timeout http-keep-alive {_ms(cfg.idle_timeout)}
    timeout http-request {_ms(cfg.idle_timeout)}
    timeout connect {_ms(cfg.connect_timeout)}
    timeout check {_ms(cfg.health_timeout)}
    # The ALB does not retry a failed target connection.
    retries 0
    # ALB-identical error pages. HAProxy answers 503 when it cannot connect (refused, reset,
    # connect timeout); the ALB answers 502 there, so 503 carries the ALB's 502 page.
    errorfile 502 {ERRORPAGES / "alb-502.http"}
    errorfile 503 {ERRORPAGES / "alb-502.http"}
    errorfile 504 {ERRORPAGES / "alb-504.http"}

frontend fe_alb
    # The ALB's face: keeps client connections alive. Each request goes on a fresh internal
    # connection to fe_core, because HAProxy silently closes a kept-alive client connection
    # when a reused target connection fails (so that browsers retry), where the ALB answers 502.
    bind {cfg.front_host}:{layout.front_port}
{tls_bind}    option h1-case-adjust-bogus-client
    no log
    default_backend be_core

backend be_core
    option http-server-close
    timeout server {_ms(cfg.idle_timeout + 5)}
    timeout connect 5s
    server core unix@{layout.core_socket}

frontend fe_core
    bind unix@{layout.core_socket}
    # No registered target, or none routable (all draining / deregistered): the ALB's own 503.
    http-request return status 503 errorfile {ERRORPAGES / "alb-503.http"} if {{ nbsrv({BACKEND}) eq 0 }}
{route}    default_backend {BACKEND}
{_targets_config(cfg, layout)}{blocked}{redirect}{stats}"""


@dataclass(frozen=True)
class ServerStat:
    """One row of `show stat` for a server, in the fields the testbed and collectors use."""

    name: str
    status: str  # UP, DOWN, "UP 1/2", MAINT, no check
    check_status: str  # L7OK, L7STS, L4CON, L4TOUT, L7TOUT, ...
    check_code: str  # HTTP status of the last check, when L7
    last_chk: str
    scur: int
    qcur: int
    hrsp_5xx: int
    econ: int
    eresp: int
    stot: int
    backend: str = BACKEND  # pxname: the routing backend, or a target's health-check backend

    @property
    def is_up(self) -> bool:
        return self.status.startswith("UP")

    @property
    def is_down(self) -> bool:
        return self.status.startswith("DOWN")


def _int(v: str) -> int:
    return int(v) if v and v.lstrip("-").isdigit() else 0


def parse_show_stat(text: str) -> list[ServerStat]:
    """Parse `show stat` CSV (header line starts with '# ')."""
    lines = text.lstrip("# ").splitlines()
    rows = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("svname") in ("FRONTEND", "BACKEND") or not row.get("svname"):
            continue
        rows.append(
            ServerStat(
                name=row["svname"],
                status=row.get("status", ""),
                check_status=(row.get("check_status") or "").lstrip("* "),
                check_code=row.get("check_code", ""),
                last_chk=row.get("last_chk", ""),
                scur=_int(row.get("scur", "")),
                qcur=_int(row.get("qcur", "")),
                hrsp_5xx=_int(row.get("hrsp_5xx", "")),
                econ=_int(row.get("econ", "")),
                eresp=_int(row.get("eresp", "")),
                stot=_int(row.get("stot", "")),
                backend=row.get("pxname", ""),
            )
        )
    return rows


def runtime_command(socket_path: Path, command: str, timeout: float = 2.0) -> str:
    """Send one command to HAProxy's runtime API (the stats socket) and return its answer.

    A socket not there yet, or there with nobody listening, is HAProxy starting or restarting
    (a route or fault change restarts it): retried until ``timeout``, then the error is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _runtime_command_once(socket_path, command, timeout)
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _runtime_command_once(socket_path: Path, command: str, timeout: float) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(socket_path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if not path:
        from testbed.errors import TestbedError

        raise TestbedError(
            "haproxy is not installed",
            hint="run `make setup` (installs it with apt-get) or `apt-get install haproxy`",
        )
    return path


class HaproxyProcess:
    """One HAProxy started in the foreground (-db), logging to its own file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: Child | None = None

    def check_config(self) -> None:
        code, output = run_to_end(
            "haproxy -c", [haproxy_binary(), "-c", "-f", str(self.config_path)], timeout=30
        )
        if code != 0:
            from testbed.errors import TestbedError

            alerts = [ln for ln in output.splitlines() if "ALERT" in ln]
            raise TestbedError(
                f"generated haproxy config is invalid: {alerts[0] if alerts else code}"
            )

    def start(self) -> Child:
        # HAProxy clears O_APPEND on stdout, so each start gets its own log file. Its own session
        # (core.supervisor): a terminal's Ctrl-C reaches albprobe first, which stops it in order.
        self.proc = spawn(
            ChildSpec(
                "haproxy",
                [haproxy_binary(), "-db", "-f", str(self.config_path)],
                output=self.log_path,
            )
        )
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            self.proc.stop(timeout)
            self.proc = None
