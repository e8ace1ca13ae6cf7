"""The testbed: HAProxy (as the ALB) -> gunicorn -> Django, with fault switches.

    with Testbed(TestbedConfig(faults=frozenset({"cors-misconfig"}))) as tb:
        httpx.get(tb.url + "/api/fast", headers={"Origin": "https://hakwonplus.com"})
        tb.set_fault("target-down", True)
        tb.wait_for_health("DOWN", timeout=20)

Every child process is ours, started through core.supervisor (its own session and process group)
and ended with its group on stop().
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.supervisor import Child, ChildSpec, spawn
from testbed.blackhole import Blackhole
from testbed.config import FAULTS, TestbedConfig
from testbed.errors import TestbedError
from testbed.gunicorn_proc import REPO_ROOT, GunicornProcess, GunicornSpec
from testbed.haproxy import (
    BACKEND,
    BLOCKED,
    FAILOPEN,
    PRIMARY,
    HaproxyLayout,
    HaproxyProcess,
    ServerStat,
    parse_show_stat,
    render_config,
    runtime_command,
)
from testbed.ports import free_port, port_bindable, port_open
from testbed.procstat import ProcUsage, workers_usage
from testbed.tls import TlsFiles

EventListener = Callable[[dict[str, Any]], None]
_BOOT = re.compile(r"Booting worker with pid")
# Settings-level faults take effect when gunicorn's workers re-import the settings (SIGHUP).
_RELOAD_FAULTS = {"cors-misconfig", "health-host"}


class Testbed:
    __test__ = False

    def __init__(self, config: TestbedConfig | None = None) -> None:
        self.config = config or TestbedConfig()
        self.faults: set[str] = set(self.config.faults)
        self.events: list[dict[str, Any]] = []
        self._listeners: list[EventListener] = []
        self._lock = threading.RLock()
        self._tmp: Path | None = None
        self._gunicorn: GunicornProcess | None = None
        self._haproxy: HaproxyProcess | None = None
        self._relay: Child | None = None
        self._relay_port = 0
        self._blackhole = Blackhole()
        self.front_port = self.app_port = self.https_port = self.redirect_port = 0
        self.tls: TlsFiles | None = None
        self.stats_port: int | None = None
        self.log_dir: Path | None = None
        self.haproxy_logs: list[Path] = []
        self.started = False

    # ---- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Through the proxy: what browsers (and the load) talk to, on the configured listener."""
        return {
            "http": self.http_url,
            "https": self.https_url,
            "http-redirect": self.redirect_url,
        }[self.config.listener]

    @property
    def http_url(self) -> str:
        """The plain forwarding listener."""
        return f"http://{self.config.front_host}:{self.front_port}"

    @property
    def https_url(self) -> str:
        """Port 443's role: TLS with the testbed CA's certificate, HTTP/2 offered by ALPN."""
        return f"https://{self.config.front_host}:{self.https_port}" if self.https_port else ""

    @property
    def redirect_url(self) -> str:
        """Port 80's role: every request gets the ALB's 301 to https_url."""
        return f"http://{self.config.front_host}:{self.redirect_port}" if self.redirect_port else ""

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate that clients trust to verify https_url (None without TLS)."""
        return self.tls.ca_cert if self.tls else None

    @property
    def app_url(self) -> str:
        """gunicorn directly (the target), bypassing the proxy."""
        return f"http://{self.config.target_ip}:{self.app_port}"

    @property
    def stats_url(self) -> str | None:
        return f"http://127.0.0.1:{self.stats_port}/stats" if self.stats_port else None

    @property
    def gunicorn_log(self) -> Path:
        assert self.log_dir is not None
        return self.log_dir / "gunicorn.log"

    @property
    def stats_socket(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "haproxy.sock"

    # ---- events ------------------------------------------------------------------------------
    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def _emit(self, kind: str, detail: str | None = None, pid: int | None = None) -> None:
        ev = {"ts": time.time(), "source": "testbed", "kind": kind, "detail": detail, "pid": pid}
        self.events.append(ev)
        for listener in self._listeners:
            with contextlib.suppress(Exception):  # a broken listener must not break the testbed
                listener(ev)

    # ---- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Testbed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pick_port(self, host: str, wanted: int | None, what: str, flag: str) -> int:
        if not wanted:
            return free_port(host)
        if not port_bindable(host, wanted):
            raise TestbedError(
                f"{what} port {host}:{wanted} is already in use",
                hint=f"free it, or pass {flag} 0 to pick a free port",
            )
        return wanted

    def start(self) -> None:
        cfg = self.config
        if not port_bindable(cfg.target_ip, 0):
            raise TestbedError(
                f"cannot bind the target address {cfg.target_ip}",
                hint="pass --target-ip 127.0.0.1 (the health-host fault then cannot tell the hosts apart)",
            )
        self._tmp = Path(tempfile.mkdtemp(prefix="albtb-"))
        self.log_dir = Path(cfg.log_dir) if cfg.log_dir else self._tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.app_port = self._pick_port(cfg.target_ip, cfg.app_port, "app", "--app-port")
            self.front_port = self._pick_port(cfg.front_host, cfg.front_port, "proxy", "--port")
            if cfg.tls:
                from testbed.tls import API_HOST, generate

                self.tls = generate(self._tmp / "tls", (API_HOST, cfg.front_host))
                self.https_port = self._pick_port(
                    cfg.front_host, cfg.https_port, "HTTPS", "--https-port"
                )
                self.redirect_port = self._pick_port(
                    cfg.front_host, cfg.redirect_port, "redirect", "--redirect-port"
                )
            if cfg.stats_port is not None:
                self.stats_port = self._pick_port(
                    "127.0.0.1", cfg.stats_port, "stats", "--stats-port"
                )
            self._blackhole.open()
            self._write_state()
            if "target-down" not in self.faults:
                self._start_gunicorn()
            if "keepalive-race" in self.faults:
                self._start_relay()
            self._start_haproxy()
            self.started = True
            self._emit("testbed_started", json.dumps(self.describe()["urls"]))
            for f in sorted(self.faults):
                self._emit("fault_on", f)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        with self._lock:
            if self._haproxy:
                self._haproxy.stop()
                self._haproxy = None
            self._stop_relay()
            if self._gunicorn:
                self._gunicorn.stop()
                self._gunicorn = None
            self._blackhole.close()
            self.tls = None
            if self.started:
                self._emit("testbed_stopped")
            self.started = False
            if self._tmp:
                # Sockets, state and config; logs too unless the caller gave a log_dir elsewhere.
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def listening_ports(self) -> list[int]:
        """Ports of ours still accepting connections (empty after a clean stop)."""
        hosts = {
            self.front_port: self.config.front_host,
            self.app_port: self.config.target_ip,
            self._relay_port: "127.0.0.1",
            self.https_port: self.config.front_host,
            self.redirect_port: self.config.front_host,
        }
        if self.stats_port:
            hosts[self.stats_port] = "127.0.0.1"
        return [p for p, h in hosts.items() if p and port_open(h, p)]

    # ---- children ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "faults": sorted(self.faults),
            "target_ip": self.config.target_ip,
            "front_origin": self.config.front_origin,
            "hang_seconds": self.config.effective_hang_seconds,
        }

    def _write_state(self) -> None:
        assert self._tmp is not None
        path = self._tmp / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state()))
        os.replace(tmp, path)
        # mtime resolution can hide two writes in the same tick from the app's cache
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, time.time_ns()))

    def _gunicorn_spec(self) -> GunicornSpec:
        cfg = self.config
        race = "keepalive-race" in self.faults
        assert self._tmp is not None
        return GunicornSpec(
            bind_host=cfg.target_ip,
            port=self.app_port,
            # The race needs persistent backend connections: sync workers always close them.
            worker_class="gthread" if race else cfg.worker_class,
            workers=cfg.workers,
            threads=cfg.threads,
            timeout=cfg.timeout,
            keepalive=cfg.race_keepalive if race else cfg.keepalive,
            error_log=self.gunicorn_log,
            state_file=self._tmp / "state.json",
        )

    def gunicorn_spec(self) -> GunicornSpec:
        return self._gunicorn_spec()

    def _start_gunicorn(self) -> None:
        g = GunicornProcess(self._gunicorn_spec())
        pid = g.start()
        host, port = self.config.target_ip, self.app_port
        assert g.proc is not None
        g.proc.wait_ready(lambda: port_open(host, port), 30, f"listening on {host}:{port}")
        self._gunicorn = g
        self._emit("target_started", f"gunicorn on {self.config.target_ip}:{self.app_port}", pid)

    def _kill_gunicorn(self) -> None:
        if self._gunicorn:
            pid = self._gunicorn.kill()
            self._gunicorn = None
            self._emit("target_killed", "gunicorn master and workers sent SIGKILL", pid)

    def _restart_gunicorn(self) -> None:
        if self._gunicorn:
            self._gunicorn.stop()
            self._gunicorn = None
        self._start_gunicorn()

    def _start_relay(self) -> None:
        if self._relay and self._relay.alive():
            return
        self._relay_port = port = free_port("127.0.0.1")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        argv = [
            sys.executable,
            "-m",
            "testbed.relay",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            f"{self.config.target_ip}:{self.app_port}",
            "--delay-ms",
            f"{self.config.relay_delay_ms:g}",
        ]
        self._relay = spawn(ChildSpec("latency relay", argv, env=env, cwd=REPO_ROOT))
        try:
            self._relay.wait_ready(lambda: port_open("127.0.0.1", port), 15, "listening")
        except BaseException:
            self._relay = None
            raise

    def _stop_relay(self) -> None:
        if self._relay is not None:
            self._relay.stop(5)
            self._relay = None

    def _route(self) -> tuple[str, int]:
        """Where the proxy's connections to the target really go."""
        if "blocked-port" in self.faults:
            return self._blackhole.host, self._blackhole.port
        if "keepalive-race" in self.faults:
            return "127.0.0.1", self._relay_port
        return self.config.target_ip, self.app_port

    def _start_haproxy(self) -> None:
        assert self._tmp is not None and self.log_dir is not None
        host, port = self._route()
        route_map = self._tmp / "route.map"
        route_map.write_text(f"route {self._backend()}\n")
        layout = HaproxyLayout(
            self.front_port,
            host,
            port,
            self.stats_socket,
            self.stats_port,
            self._tmp / "core.sock",
            route_map,
            (self._blackhole.host, self._blackhole.port),
            self.https_port or None,
            self.tls.server_pem if self.tls else None,
            self.redirect_port or None,
        )
        cfg_path = self._tmp / "haproxy.cfg"
        cfg_path.write_text(render_config(self.config_for_render(), layout))
        n = len(list(self.log_dir.glob("haproxy-*.log"))) + 1
        log_path = self.log_dir / f"haproxy-{n}.log"
        hp = HaproxyProcess(cfg_path, log_path)
        hp.check_config()
        child = hp.start()
        self.haproxy_logs.append(log_path)
        host, port, sock = self.config.front_host, self.front_port, self.stats_socket
        child.wait_ready(
            lambda: port_open(host, port) and sock.exists(), 25, f"listening on {host}:{port}"
        )
        self._haproxy = hp

    def config_for_render(self) -> TestbedConfig:
        """The config with the actually chosen ports (the health-check Host names the app port)."""
        from dataclasses import replace

        return replace(self.config, app_port=self.app_port)

    def _backend(self) -> str:
        return BLOCKED if "blocked-port" in self.faults else BACKEND

    def _set_route(self) -> None:
        host, port = self._route()
        for server in (PRIMARY, FAILOPEN) if self.config.fail_open else (PRIMARY,):
            out = runtime_command(
                self.stats_socket, f"set server {BACKEND}/{server} addr {host} port {port}"
            )
            if "not" in out.lower() and "changed" not in out.lower():
                raise TestbedError(f"haproxy refused to re-route {server}: {out.strip()}")
            # Connections pooled towards the old address must not carry on.
            runtime_command(self.stats_socket, f"shutdown sessions server {BACKEND}/{server}")
        # Traffic takes the blocked backend (connect timeouts -> the ALB's 504) or the normal one.
        out = runtime_command(
            self.stats_socket, f"set map {self._tmp / 'route.map'} route {self._backend()}"
        )
        if out.strip():
            raise TestbedError(f"haproxy refused to switch the route: {out.strip()}")

    def _boot_count(self) -> int:
        try:
            return len(_BOOT.findall(self.gunicorn_log.read_text(errors="replace")))
        except OSError:
            return 0

    def _reload_gunicorn(self) -> None:
        """SIGHUP and wait until every worker has been replaced (so the new settings serve)."""
        if not (self._gunicorn and self._gunicorn.alive()):
            return
        before = self._boot_count()
        self._gunicorn.reload()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._boot_count() < before + self.config.workers:
            time.sleep(0.05)
        time.sleep(0.3)  # the old workers finish their graceful exit

    # ---- capacity ----------------------------------------------------------------------------
    def reconfigure(
        self, *, worker_class: str, workers: int, threads: int, keepalive: float | None = None
    ) -> None:
        """Restart gunicorn with another capacity model (what `albprobe tune` proves), and
        wait until the proxy's health check has it UP again."""
        from dataclasses import replace

        try:
            new = replace(
                self.config,
                worker_class=worker_class,
                workers=workers,
                threads=threads,
                keepalive=self.config.keepalive if keepalive is None else keepalive,
            )
        except ValueError as exc:
            raise TestbedError(f"testbed: {exc}") from None
        with self._lock:
            self.config = new
            if "target-down" not in self.faults:
                booted = self._boot_count()
                self._restart_gunicorn()
                # The port opens with the master; the workers boot after it. Measurements and
                # load must see every worker of the new setting.
                deadline = time.monotonic() + 30
                while self._boot_count() < booted + workers:
                    if time.monotonic() > deadline:
                        raise TestbedError(
                            f"gunicorn booted {self._boot_count() - booted} of {workers} workers "
                            f"in 30 s: {self._log_tail(self.gunicorn_log)}"
                        )
                    time.sleep(0.05)
            self._emit("target_reconfigured", json.dumps(self.capacity()))
        self.wait_for_health("UP")

    def worker_usage(self) -> list[ProcUsage]:
        """Memory and CPU time of each gunicorn worker now (empty when gunicorn is down)."""
        g = self._gunicorn
        return workers_usage(g.pid) if g is not None and g.pid and g.alive() else []

    # ---- faults ------------------------------------------------------------------------------
    def set_fault(self, name: str, on: bool) -> None:
        """Switch a fault on or off while the testbed runs."""
        if name not in FAULTS:
            raise TestbedError(f"unknown fault {name!r}", hint=f"one of: {', '.join(FAULTS)}")
        with self._lock:
            if (name in self.faults) == on:
                return
            (self.faults.add if on else self.faults.discard)(name)
            self._write_state()
            if name == "target-down":
                if on:
                    self._kill_gunicorn()
                else:
                    self._start_gunicorn()
            elif name in _RELOAD_FAULTS:
                self._reload_gunicorn()
            elif name == "blocked-port":
                self._set_route()
            elif name == "keepalive-race":
                if on:
                    self._start_relay()
                if "target-down" not in self.faults:
                    self._restart_gunicorn()  # worker class and keep-alive change
                self._set_route()
                if not on:
                    self._stop_relay()
            self._emit("fault_on" if on else "fault_off", name)

    # ---- health ------------------------------------------------------------------------------
    def stats(self) -> list[ServerStat]:
        return parse_show_stat(runtime_command(self.stats_socket, "show stat"))

    def server_status(self) -> ServerStat:
        return next(s for s in self.stats() if s.name == PRIMARY)

    def health_budget(self) -> float:
        """Seconds enough for the checker to cross either threshold, with room for a busy
        machine: every check may run to its timeout, and three times that again."""
        c = self.config
        checks = max(c.healthy_threshold, c.unhealthy_threshold) + 2
        return 3.0 * checks * (c.health_interval + c.health_timeout)

    def wait_for_health(
        self, state: str, timeout: float | None = None, *, check_status: str | None = None
    ) -> ServerStat:
        """Wait until the proxy's health check reports the target UP or DOWN (and, when given,
        the last check's status, e.g. L7STS: a slow first check can take it DOWN as L7TOUT)."""
        want = state.upper()
        deadline = time.monotonic() + (self.health_budget() if timeout is None else timeout)
        st = self.server_status()
        while not st.status.startswith(want) or (
            check_status is not None and st.check_status != check_status
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"target stayed {st.status} ({st.check_status} {st.last_chk}), wanted {want}"
                )
            time.sleep(0.1)
            st = self.server_status()
        return st

    # ---- description -------------------------------------------------------------------------
    def capacity(self) -> dict[str, Any]:
        spec = self._gunicorn_spec()
        threads = spec.threads if spec.worker_class == "gthread" else 1
        return {
            "worker_class": spec.worker_class,
            "workers": spec.workers,
            "threads": threads,
            "timeout": spec.timeout,
            "keepalive": spec.keepalive,
            "slots": spec.workers * threads,
        }

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "urls": {
                "proxy": self.url,
                "http": self.http_url,
                "https": self.https_url or None,
                "redirect": self.redirect_url or None,
                "app": self.app_url,
                "stats": self.stats_url,
            },
            "listener": cfg.listener,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "faults": sorted(self.faults),
            "capacity": self.capacity(),
            "proxy": {
                "kind": "haproxy-testbed",
                "idle_timeout": cfg.idle_timeout,
                "connect_timeout": cfg.connect_timeout,
                "fail_open": cfg.fail_open,
                "health_check": {
                    "path": "/health",
                    "interval": cfg.health_interval,
                    "timeout": cfg.health_timeout,
                    "healthy_threshold": cfg.healthy_threshold,
                    "unhealthy_threshold": cfg.unhealthy_threshold,
                    "matcher": "200",
                    "host_header": f"{cfg.target_ip}:{self.app_port}",
                },
            },
            "config": {
                k: (sorted(v) if isinstance(v, frozenset) else str(v) if isinstance(v, Path) else v)
                for k, v in asdict(cfg).items()
            },
        }
