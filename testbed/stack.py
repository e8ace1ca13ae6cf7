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
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.supervisor import Child, ChildSpec, spawn
from testbed import group
from testbed.blackhole import Blackhole
from testbed.config import FAULTS, TARGET_FAULTS, TestbedConfig
from testbed.errors import TestbedError
from testbed.group import TargetSlot
from testbed.gunicorn_proc import REPO_ROOT, GunicornProcess, GunicornSpec
from testbed.haproxy import (
    BACKEND,
    BLOCKED,
    HaproxyLayout,
    HaproxyProcess,
    ServerStat,
    parse_show_stat,
    render_config,
    runtime_command,
)
from testbed.ports import free_port, port_bindable, port_open
from testbed.procstat import ProcUsage, workers_usage
from testbed.sidecar import HealthSidecar
from testbed.tls import TlsFiles

EventListener = Callable[[dict[str, Any]], None]


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


_BOOT = re.compile(r"Booting worker with pid")
# Settings-level faults take effect when gunicorn's workers re-import the settings (SIGHUP).
_RELOAD_FAULTS = {"cors-misconfig", "health-host"}
# The orders a deploy replaces targets in (docs/testbed.md, "Deploys").
DEPLOY_ORDERS = ("correct", "stop-first", "early-register")


class Testbed:
    __test__ = False

    def __init__(self, config: TestbedConfig | None = None) -> None:
        self.config = config or TestbedConfig()
        self.faults: set[str] = set(self.config.faults)
        self.events: list[dict[str, Any]] = []
        self._listeners: list[EventListener] = []
        self._lock = threading.RLock()
        self._tmp: Path | None = None
        self.slots: list[TargetSlot] = []
        self._sidecars: list[HealthSidecar] = []
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._haproxy: HaproxyProcess | None = None
        # keepalive-race: one latency relay per racing target, {target index: (relay, port)}
        self._relays: dict[int, tuple[Child, int]] = {}
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
        """gunicorn directly (the first target), bypassing the proxy."""
        return f"http://{self.config.target_ip}:{self.app_port}"

    @property
    def target_labels(self) -> list[str]:
        """Each target's "ip:port", as the X-Albprobe-Target header and the health table name it."""
        return [f"{ip}:{self.app_port}" for ip in self.config.target_ips]

    @property
    def stats_url(self) -> str | None:
        return f"http://127.0.0.1:{self.stats_port}/stats" if self.stats_port else None

    @property
    def gunicorn_log(self) -> Path:
        assert self.log_dir is not None
        return self.log_dir / "gunicorn.log"

    def gunicorn_log_of(self, index: int) -> Path:
        """Target 1 logs to gunicorn.log (as with one target), target N to gunicorn-N.log."""
        assert self.log_dir is not None
        return self.gunicorn_log if index == 1 else self.log_dir / f"gunicorn-{index}.log"

    def slot(self, index: int) -> TargetSlot:
        """Target ``index`` (1-based); one that does not exist is a one-line error."""
        if not 1 <= index <= self.config.targets:
            raise TestbedError(
                f"target {index} does not exist",
                hint=f"the testbed has {self.config.targets} target(s): name 1..{self.config.targets}",
            )
        return self.slots[index - 1]

    @property
    def stats_socket(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "haproxy.sock"

    # ---- events ------------------------------------------------------------------------------
    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def _emit(
        self,
        kind: str,
        detail: str | None = None,
        pid: int | None = None,
        target: str | None = None,
    ) -> None:
        """Publish an event. Callers emit it *before* the state change it reports, under the
        lock: readers poll that state without the lock (wait_drained, wait_registered_healthy,
        slot.initial), and one that sees the new state must find its event (issue 24)."""
        ev = {
            "ts": time.time(),
            "source": "testbed",
            "kind": kind,
            "detail": detail,
            "pid": pid,
            "target": target,
        }
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

    def _pick_app_port(self) -> int:
        """One port for every target (like production's 8000 on each task), free on each address."""
        ips = self.config.target_ips
        if self.config.app_port:
            for ip in ips:
                self._pick_port(ip, self.config.app_port, "app", "--app-port")
            return self.config.app_port
        for _ in range(50):
            port = free_port(ips[0])
            if all(port_bindable(ip, port) for ip in ips[1:]):
                return port
        raise TestbedError("no port is free on every target address", hint="retry")

    def start(self) -> None:
        cfg = self.config
        for ip in cfg.target_ips:
            if not port_bindable(ip, 0):
                raise TestbedError(
                    f"cannot bind the target address {ip}",
                    hint="pass --target-ip 127.0.0.1 (the health-host fault then cannot tell the hosts apart)",
                )
        self._closing.clear()
        self._tmp = Path(tempfile.mkdtemp(prefix="albtb-"))
        # Absolute: the children run in other folders (gunicorn in the repository root).
        self.log_dir = Path(cfg.log_dir).resolve() if cfg.log_dir else self._tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.app_port = self._pick_app_port()
            busy = self._tmp / "busy"
            busy.mkdir()
            self.slots = [
                TargetSlot(i, ip, self.app_port) for i, ip in enumerate(cfg.target_ips, 1)
            ]
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
            for slot in self.slots:
                if not self._is_down(slot):
                    self._start_gunicorn(slot)
                if self._races(slot):
                    self._start_relay(slot)
            self._start_haproxy()
            self.started = True
            self._emit("testbed_started", json.dumps(self.describe()["urls"]))
            for f in sorted(self.faults):
                self._emit("fault_on", f)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._closing.set()  # a deploy or drain in progress stops at its next step
        for t in self._threads:
            t.join(self.config.graceful_timeout + 10)
        self._threads.clear()
        with self._lock:
            for slot in self.slots:
                if slot.drain_timer is not None:
                    slot.drain_timer.cancel()
            if self._haproxy:
                self._haproxy.stop()
                self._haproxy = None
            for index in list(self._relays):
                self._stop_relay(index)
            for slot in self.slots:
                if slot.gunicorn:
                    slot.gunicorn.stop()
                    slot.gunicorn = None
            for sidecar in self._sidecars:
                sidecar.close()
            self._sidecars.clear()
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
        hosts = [(self.front_port, self.config.front_host)]
        hosts += [(port, "127.0.0.1") for _, port in self._relays.values()]
        hosts += [(self.app_port, ip) for ip in self.config.target_ips]
        hosts += [
            (self.https_port, self.config.front_host),
            (self.redirect_port, self.config.front_host),
        ]
        if self.stats_port:
            hosts.append((self.stats_port, "127.0.0.1"))
        return sorted({p for p, h in hosts if p and port_open(h, p)})

    # ---- children ----------------------------------------------------------------------------
    def _faults_of(self, slot: TargetSlot) -> set[str]:
        return self.faults | slot.faults

    def _is_down(self, slot: TargetSlot) -> bool:
        return "target-down" in self._faults_of(slot)

    def _races(self, slot: TargetSlot) -> bool:
        """keepalive-race on this target (switched for the whole group or for it alone)."""
        return "keepalive-race" in self._faults_of(slot)

    def _state_file(self, slot: TargetSlot) -> Path:
        assert self._tmp is not None
        return self._tmp / f"state-{slot.index}.json"

    def _state(self, slot: TargetSlot) -> dict[str, Any]:
        return {
            "faults": sorted(self._faults_of(slot)),
            "target_ip": slot.ip,
            "front_origin": self.config.front_origin,
            "hang_seconds": self.config.effective_hang_seconds,
        }

    def _write_state(self) -> None:
        for slot in self.slots:
            path = self._state_file(slot)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._state(slot)))
            os.replace(tmp, path)
            # mtime resolution can hide two writes in the same tick from the app's cache
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, time.time_ns()))

    def _gunicorn_spec(self, slot: TargetSlot | None = None) -> GunicornSpec:
        cfg = self.config
        assert self._tmp is not None
        slot = slot or (
            self.slots[0] if self.slots else TargetSlot(1, cfg.target_ip, self.app_port)
        )
        race = self._races(slot)
        return GunicornSpec(
            bind_host=slot.ip,
            port=self.app_port,
            # The race needs persistent backend connections: sync workers always close them.
            worker_class="gthread" if race else cfg.worker_class,
            workers=cfg.workers,
            threads=cfg.threads,
            timeout=cfg.timeout,
            keepalive=cfg.race_keepalive if race else cfg.keepalive,
            error_log=self.gunicorn_log_of(slot.index),
            state_file=self._state_file(slot),
            label=slot.label,
            busy_dir=self._tmp / "busy",
            graceful_timeout=cfg.graceful_timeout,
            max_requests=cfg.max_requests,
            max_requests_jitter=cfg.max_requests_jitter,
        )

    def gunicorn_spec(self) -> GunicornSpec:
        return self._gunicorn_spec()

    def _start_gunicorn(self, slot: TargetSlot) -> None:
        g = GunicornProcess(self._gunicorn_spec(slot))
        pid = g.start()
        host, port = slot.ip, self.app_port
        assert g.proc is not None
        g.proc.wait_ready(lambda: port_open(host, port), 30, f"listening on {host}:{port}")
        self._emit("target_started", f"gunicorn on {slot.label}", pid, slot.label)
        slot.gunicorn = g

    def _kill_gunicorn(self, slot: TargetSlot) -> None:
        if slot.gunicorn:
            pid = slot.gunicorn.kill()
            self._emit("target_killed", "gunicorn master and workers sent SIGKILL", pid, slot.label)
            slot.gunicorn = None

    def _restart_gunicorn(self, slot: TargetSlot) -> None:
        if slot.gunicorn:
            slot.gunicorn.stop()
            slot.gunicorn = None
        self._start_gunicorn(slot)

    def _start_relay(self, slot: TargetSlot) -> None:
        """The latency relay in front of one target (upstream: that target's own address)."""
        running = self._relays.get(slot.index)
        if running and running[0].alive():
            return
        port = free_port("127.0.0.1")
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
            f"{slot.ip}:{self.app_port}",
            "--delay-ms",
            f"{self.config.relay_delay_ms:g}",
        ]
        relay = spawn(ChildSpec(f"latency relay ({slot.label})", argv, env=env, cwd=REPO_ROOT))
        try:
            relay.wait_ready(lambda: port_open("127.0.0.1", port), 15, "listening")
        except BaseException:
            relay.stop(5)
            raise
        self._relays[slot.index] = (relay, port)

    def _stop_relay(self, index: int) -> None:
        relay = self._relays.pop(index, None)
        if relay is not None:
            relay[0].stop(5)

    def _route(self, slot: TargetSlot) -> tuple[str, int]:
        """Where the proxy's connections to a target really go."""
        if "blocked-port" in self.faults:
            return self._blackhole.host, self._blackhole.port
        if self._races(slot):
            return "127.0.0.1", self._relays[slot.index][1]
        return slot.ip, self.app_port

    def _start_haproxy(self) -> None:
        assert self._tmp is not None and self.log_dir is not None
        routes = [self._route(slot) for slot in self.slots]
        route_map = self._tmp / "route.map"
        route_map.write_text(f"route {self._backend()}\n")
        layout = HaproxyLayout(
            self.front_port,
            routes[0][0],
            routes[0][1],
            self.stats_socket,
            self.stats_port,
            self._tmp / "core.sock",
            route_map,
            (self._blackhole.host, self._blackhole.port),
            more_servers=tuple(routes[1:]),
            https_port=self.https_port or None,
            tls_pem=self.tls.server_pem if self.tls else None,
            redirect_port=self.redirect_port or None,
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

    def _set_route(self, slots: list[TargetSlot] | None = None) -> None:
        """Re-route ``slots`` (default: every target); the others keep their connections."""
        for slot in self.slots if slots is None else slots:
            host, port = self._route(slot)
            group.set_addr(self.stats_socket, slot, host, port, self.config.fail_open)
        # Traffic takes the blocked backend (connect timeouts -> the ALB's 504) or the normal one.
        out = runtime_command(
            self.stats_socket, f"set map {self._tmp / 'route.map'} route {self._backend()}"
        )
        if out.strip():
            raise TestbedError(f"haproxy refused to switch the route: {out.strip()}")

    def _boot_count(self, slot: TargetSlot) -> int:
        try:
            log = self.gunicorn_log_of(slot.index).read_text(errors="replace")
            return len(_BOOT.findall(log))
        except OSError:
            return 0

    def _reload_gunicorn(self, slot: TargetSlot) -> None:
        """SIGHUP and wait until every worker has been replaced (so the new settings serve)."""
        if not (slot.gunicorn and slot.gunicorn.alive()):
            return
        before = self._boot_count(slot)
        slot.gunicorn.reload()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._boot_count(slot) < before + self.config.workers:
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
            for slot in self.slots:
                if self._is_down(slot):
                    continue
                booted = self._boot_count(slot)
                self._restart_gunicorn(slot)
                # The port opens with the master; the workers boot after it. Measurements and
                # load must see every worker of the new setting.
                deadline = time.monotonic() + 30
                while self._boot_count(slot) < booted + workers:
                    if time.monotonic() > deadline:
                        raise TestbedError(
                            f"gunicorn on {slot.label} booted {self._boot_count(slot) - booted} "
                            f"of {workers} workers in 30 s: {_last_line(self.gunicorn_log_of(slot.index))}"
                        )
                    time.sleep(0.05)
            self._emit("target_reconfigured", json.dumps(self.capacity()))
        for i in range(1, self.config.targets + 1):
            self.wait_for_health("UP", target=i)

    def worker_usage(self, target: int = 1) -> list[ProcUsage]:
        """Memory and CPU time of each gunicorn worker of a target now (empty when it is down)."""
        g = self.slot(target).gunicorn if self.slots else None
        return workers_usage(g.pid) if g is not None and g.pid and g.alive() else []

    # ---- faults ------------------------------------------------------------------------------
    def set_fault(self, name: str, on: bool, target: int | None = None) -> None:
        """Switch a fault on or off while the testbed runs: on every target, or on ``target``
        (1-based; the faults of testbed.config.TARGET_FAULTS)."""
        if name not in FAULTS:
            raise TestbedError(f"unknown fault {name!r}", hint=f"one of: {', '.join(FAULTS)}")
        if target is not None and name not in TARGET_FAULTS:
            raise TestbedError(
                f"fault {name!r} switches the whole target group, not one target",
                hint=f"faults that name a target: {', '.join(TARGET_FAULTS)}",
            )
        with self._lock:
            if target is not None:
                slot = self.slot(target)
                if (name in slot.faults) == on:
                    return
                (slot.faults.add if on else slot.faults.discard)(name)
                affected = [slot]
            else:
                if (name in self.faults) == on:
                    return
                (self.faults.add if on else self.faults.discard)(name)
                affected = self.slots
            self._write_state()
            if name == "target-down":
                for slot in affected:
                    if self._is_down(slot):
                        self._kill_gunicorn(slot)
                    elif slot.gunicorn is None:
                        self._start_gunicorn(slot)
            elif name in _RELOAD_FAULTS:
                for slot in affected:
                    self._reload_gunicorn(slot)
            elif name == "blocked-port":
                self._set_route()
            elif name == "keepalive-race":
                for slot in affected:
                    if self._races(slot):
                        self._start_relay(slot)
                    if not self._is_down(slot):
                        self._restart_gunicorn(slot)  # worker class and keep-alive change
                self._set_route(affected)
                for slot in affected:
                    if not self._races(slot):
                        self._stop_relay(slot.index)
            label = self.slot(target).label if target is not None else None
            self._emit("fault_on" if on else "fault_off", name, target=label)

    # ---- health ------------------------------------------------------------------------------
    def stats(self) -> list[ServerStat]:
        return parse_show_stat(runtime_command(self.stats_socket, "show stat"))

    def target_stats(self) -> list[tuple[str, ServerStat]]:
        """Each target as the ALB shows it: (ip:port, its state, last check and load)."""
        rows = self.stats()
        return [(slot.label, group.target_view(slot, rows)) for slot in self.slots]

    def server_status(self, target: int = 1) -> ServerStat:
        return group.target_view(self.slot(target), self.stats())

    def health_budget(self) -> float:
        """Seconds enough for the checker to cross either threshold, with room for a busy
        machine: every check may run to its timeout, and three times that again."""
        c = self.config
        checks = max(c.healthy_threshold, c.unhealthy_threshold) + 2
        return 3.0 * checks * (c.health_interval + c.health_timeout)

    def wait_for_health(
        self,
        state: str,
        timeout: float | None = None,
        *,
        check_status: str | tuple[str, ...] | None = None,
        target: int = 1,
    ) -> ServerStat:
        """Wait until the proxy's health check reports the target UP or DOWN (and, when given,
        the last check's status, or one of several, e.g. L7STS: a slow first check can take it
        DOWN as L7TOUT)."""
        want = state.upper()
        statuses = (check_status,) if isinstance(check_status, str) else check_status
        deadline = time.monotonic() + (self.health_budget() if timeout is None else timeout)
        st = self.server_status(target)
        while not st.status.startswith(want) or (
            statuses is not None and st.check_status not in statuses
        ):
            if time.monotonic() > deadline or self._closing.is_set():
                raise TimeoutError(
                    f"target {target} stayed {st.status} ({st.check_status} {st.last_chk}), wanted {want}"
                )
            time.sleep(0.1)
            st = self.server_status(target)
        return st

    # ---- registration ------------------------------------------------------------------------
    def deregister(self, target: int) -> None:
        """The ALB's deregistration: the target drains for deregistration_delay (no new requests,
        in-flight ones finish), then its connections are closed and it leaves the group."""
        with self._lock:
            slot = self.slot(target)
            if not slot.registered:
                return
            delay = self.config.deregistration_delay
            self._emit("target_deregistered", f"delay={delay:g}", target=slot.label)
            slot.registered = slot.initial = False
            slot.drained.clear()
            group.set_admin_state(self.stats_socket, slot, "drain", self.config.fail_open)
            slot.drain_timer = threading.Timer(delay, self._drain_over, (slot,))
            slot.drain_timer.daemon = True
            slot.drain_timer.start()

    def _drain_over(self, slot: TargetSlot) -> None:
        with self._lock:
            if slot.registered or self._closing.is_set():
                return
            group.shutdown_sessions(self.stats_socket, slot, self.config.fail_open)
            group.set_admin_state(self.stats_socket, slot, "maint", self.config.fail_open)
            slot.drain_timer = None
            self._emit("target_drained", "connections closed", target=slot.label)
            slot.drained.set()

    def register(self, target: int) -> None:
        """The ALB's registration: the target gets traffic only once it passes its health checks
        (target_healthy is emitted then)."""
        with self._lock:
            slot = self.slot(target)
            if slot.registered:
                return
            if slot.drain_timer is not None:
                slot.drain_timer.cancel()
                slot.drain_timer = None
            self._emit("target_registered", target=slot.label)
            slot.registered = slot.initial = True
            group.force_check_down(self.stats_socket, slot)
            # Fail open must not reach it either before it is healthy: its backup waits.
            group.set_admin_state(
                self.stats_socket, slot, "ready", self.config.fail_open, backup=False
            )
        self._background(self._await_healthy, slot)

    def _await_healthy(self, slot: TargetSlot) -> None:
        while slot.registered and slot.initial and not self._closing.is_set():
            try:
                if self.server_status(slot.index).is_up:
                    with self._lock:
                        if not slot.registered:
                            return
                        group.set_admin_state(
                            self.stats_socket, slot, "ready", self.config.fail_open
                        )
                        self._emit("target_healthy", target=slot.label)
                        slot.initial = False
                    return
            except (OSError, StopIteration, KeyError):
                pass  # the proxy is restarting or stopping
            time.sleep(0.1)

    def wait_registered_healthy(self, target: int, timeout: float | None = None) -> None:
        slot = self.slot(target)
        deadline = time.monotonic() + (self.health_budget() if timeout is None else timeout)
        while slot.initial and slot.registered:
            if time.monotonic() > deadline or self._closing.is_set():
                raise TimeoutError(f"target {slot.label} did not turn healthy")
            time.sleep(0.1)

    def wait_drained(self, target: int, timeout: float | None = None) -> None:
        slot = self.slot(target)
        limit = self.config.deregistration_delay + 30 if timeout is None else timeout
        if not slot.drained.wait(limit) and not self._closing.is_set():
            raise TimeoutError(f"target {slot.label} did not finish draining")

    def stop_target(self, target: int) -> None:
        """Stop a target's gunicorn the graceful way: SIGTERM, its workers finish their requests
        within --graceful-timeout, then the group is killed."""
        slot = self.slot(target)
        with self._lock:
            g = slot.gunicorn
            if g is None:
                return
            self._emit(
                "target_stopped",
                f"signal=SIGTERM graceful={self.config.graceful_timeout:g}",
                g.pid,
                slot.label,
            )
            slot.gunicorn = None
        g.stop()

    def start_target(self, target: int) -> None:
        slot = self.slot(target)
        with self._lock:
            if slot.gunicorn is None and not self._closing.is_set():
                self._start_gunicorn(slot)

    def kill_worker(self, target: int = 1, wait: float = 10.0) -> int | None:
        """The OOM killer's pattern: SIGKILL one gunicorn worker (not the master) of ``target``,
        one that is serving a request when there is one within ``wait`` s."""
        slot = self.slot(target)
        assert self._tmp is not None
        g = slot.gunicorn
        if g is None:
            return None
        deadline = time.monotonic() + wait
        while True:
            workers = g.worker_pids()
            busy = [p for p in workers if (self._tmp / "busy" / str(p)).exists()]
            if busy or time.monotonic() > deadline or self._closing.is_set():
                break
            time.sleep(0.02)
        victims = busy or workers
        if not victims:
            return None
        pid = victims[0]
        # Recorded before the signal: gunicorn logs the kill once it reaps the worker, and a
        # reader that saw that line must find the event.
        self._emit(
            "worker_killed",
            f"signal=SIGKILL {'during a request' if busy else 'idle'}",
            pid,
            slot.label,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill_worker_soon(self, target: int = 1) -> threading.Thread:
        """kill_worker in the background (it may wait for a busy worker)."""
        return self._background(self.kill_worker, target)

    # ---- deploys -----------------------------------------------------------------------------
    def _background(self, fn: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:  # a run must not die of it: say so in the events
                if not self._closing.is_set():
                    self._emit("testbed_error", f"{fn.__name__}: {type(exc).__name__}: {exc}")

        t = threading.Thread(target=run, name=f"testbed-{fn.__name__}", daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def deploy(self, order: str = "correct", wait: bool = False) -> threading.Thread:
        """A rolling replacement of every target, one at a time, in the background.

        ``correct``: deregister, drain, SIGTERM within the graceful timeout, start, register,
        wait until healthy. ``stop-first``: the container stops (SIGTERM) first and the target
        is deregistered once its health checks have failed.
        ``early-register``: the new target's health check passes before its app listens."""
        if order not in DEPLOY_ORDERS:
            raise TestbedError(
                f"unknown deploy order {order!r}", hint=f"one of: {', '.join(DEPLOY_ORDERS)}"
            )
        t = self._background(self._deploy, order)
        if wait:
            t.join()
        return t

    def _deploy(self, order: str) -> None:
        self._emit("deploy_started", order)
        for slot in self.slots:
            if self._closing.is_set():
                return
            i = slot.index
            if order == "stop-first":
                # The container goes first; the target is deregistered only once the ALB has
                # noticed (its checks fail), the usual tail of a stop-before-deregister deploy.
                self.stop_target(i)
                with contextlib.suppress(TimeoutError):
                    self.wait_for_health("DOWN", target=i)
                self.deregister(i)
            else:
                self.deregister(i)
                self.wait_drained(i)
                self.stop_target(i)
            if order == "early-register":
                self._early_register(slot)
            else:
                if order == "stop-first":
                    self.wait_drained(i)
                self.start_target(i)
                self.register(i)
                self.wait_registered_healthy(i)
        self._emit("deploy_finished", order)

    def _early_register(self, slot: TargetSlot) -> None:
        """Registered before the app is ready: its health check is answered by a sidecar, so it
        turns healthy at once while gunicorn is still booting (it listens a health budget later)."""
        sidecar = HealthSidecar(slot.ip)
        port = sidecar.open()
        self._sidecars.append(sidecar)
        srv = f"{group.check_backend(slot.index)}/{slot.name}"
        runtime_command(self.stats_socket, f"set server {srv} addr {slot.ip} port {port}")
        self.register(slot.index)
        self.wait_registered_healthy(slot.index)
        # The app's boot outlasts the checks: traffic meanwhile finds the port closed.
        self._closing.wait(self.config.app_boot_seconds)
        self.start_target(slot.index)

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
            "targets": self.target_labels,
            "load_balancing": cfg.load_balancing,
            "deregistration_delay": cfg.deregistration_delay,
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
                    "host_headers": self.target_labels,
                },
            },
            "config": {
                k: (sorted(v) if isinstance(v, frozenset) else str(v) if isinstance(v, Path) else v)
                for k, v in asdict(cfg).items()
            },
        }
