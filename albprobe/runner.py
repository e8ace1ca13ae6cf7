"""`albprobe run` orchestration: run directory, testbed, collectors, the Locust process, finalisation.

Order of events: validate (allow-list, caps) -> create the run directory and run.json (status
"running") -> start the testbed (when it is the target) logging into the run directory -> start the
collectors -> start Locust (a child process; workers when asked) -> follow progress, apply the fault
schedule -> on exit, Ctrl-C or SIGTERM: stop Locust, the collectors and the testbed, and rewrite
run.json with the final status. Nothing recorded is lost on an interruption: every table is
written in parts as the run goes, and run.json is rewritten atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.config import Config, config_to_toml, load_refusal
from core.errors import AlbprobeError, ConfigError
from core.rundir import RunDir, TableWriter
from probes.loadgen.meta import config_for_record, versions
from probes.loadgen.plans import OPEN_MODEL, peak_users, rates

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO_ROOT / "locustfiles" / "browser.py"
_FAULT_SPEC = re.compile(r"^(?P<name>[a-z-]+)@(?P<on>[\d.]+)s?(?:-(?P<off>[\d.]+)s?)?$")


@dataclass(frozen=True)
class FaultStep:
    at: float
    fault: str
    on: bool


def parse_fault_schedule(specs: list[str], known: tuple[str, ...]) -> list[FaultStep]:
    """'target-down@20s' (on at 20 s) or 'target-down@20s-35s' (on at 20 s, off at 35 s)."""
    steps: list[FaultStep] = []
    for spec in specs:
        m = _FAULT_SPEC.match(spec.strip())
        if not m:
            raise ConfigError(
                f"--fault {spec!r}: expected NAME@START[-END], e.g. target-down@20s-35s"
            )
        name = m["name"]
        if name not in known:
            raise ConfigError(
                f"--fault {spec!r}: unknown fault {name!r}", hint=f"one of: {', '.join(known)}"
            )
        on = float(m["on"])
        steps.append(FaultStep(on, name, True))
        if m["off"]:
            off = float(m["off"])
            if off <= on:
                raise ConfigError(f"--fault {spec!r}: the end must come after the start")
            steps.append(FaultStep(off, name, False))
    return sorted(steps, key=lambda s: s.at)


def check_target_allowed(cfg: Config) -> None:
    """Load goes only to the testbed, loopback, or hosts on safety.allowed_hosts."""
    if cfg.is_testbed:
        return
    refusal = load_refusal(cfg.target, cfg)
    if refusal:
        message, _, hint = refusal.partition(" (")
        raise AlbprobeError(message, hint=hint.rstrip(")"))


def check_caps(cfg: Config, shape: str) -> None:
    load, safety = cfg.load, cfg.safety
    wanted = {
        "step": load.users,
        "users": load.users,
        "soak": load.users,
        "idle-gap": load.users,
        "spike": max(load.users, load.spike_users),
    }.get(shape, load.max_vus)
    if wanted > safety.max_users:
        raise ConfigError(
            f"the {shape} shape asks for {wanted} users, above safety.max_users = {safety.max_users}",
            hint="lower the load or raise [safety] max_users deliberately",
        )
    if shape in OPEN_MODEL:
        peak = max(rates(shape, load))
        if peak > safety.max_rps:
            raise ConfigError(
                f"the {shape} shape asks for {peak:g} iterations/s, above safety.max_rps = {safety.max_rps:g}",
                hint="lower load.rate / load.end_rate or raise [safety] max_rps deliberately",
            )


@dataclass
class RunOptions:
    config: Config
    shape: str
    workers: int = 0
    web_ui: bool = False
    faults: list[FaultStep] = field(default_factory=list)
    runs_root: Path = Path("runs")
    run_id: str | None = None
    testbed_overrides: dict[str, Any] = field(default_factory=dict)
    ssm_logs: bool = False  # opt-in: gunicorn container logs via SSM Run Command after the run


@dataclass
class RunResult:
    rundir: RunDir
    status: str
    status_reason: str | None
    summary: dict[str, Any]


class _Stop:
    """Why the run is ending early, set from a signal handler or the progress loop."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.event = threading.Event()

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()


def _testbed_config(cfg: Config, rundir: RunDir, overrides: dict[str, Any]):
    from testbed import TestbedConfig

    cap = cfg.capacity
    kw: dict[str, Any] = dict(
        worker_class=cap.worker_class if cap.worker_class in ("sync", "gthread") else "sync",
        workers=cap.workers,
        threads=cap.threads,
        timeout=cap.timeout,
        keepalive=cap.keepalive,
        idle_timeout=cfg.proxy.idle_timeout,
        health_interval=1.0,
        health_timeout=0.5,
        healthy_threshold=2,
        unhealthy_threshold=2,
        log_dir=rundir.logs,
        front_origin=cfg.browser.origin,
    )
    kw.update(overrides)
    try:
        return TestbedConfig(**kw)
    except ValueError as exc:
        raise ConfigError(f"testbed: {exc}") from None


def _haproxy_sampler(tb) -> Callable[[], list[dict[str, Any]]]:
    from probes.health_poller import haproxy_health_row
    from testbed.haproxy import FAILOPEN, PRIMARY

    target = f"{tb.config.target_ip}:{tb.app_port}"

    def sample() -> list[dict[str, Any]]:
        now = time.time()
        rows = {s.name: s for s in tb.stats()}
        st = rows[PRIMARY]
        # Health is the primary's checks; load is the target's, whichever server row carried it
        # (with the primary DOWN, the fail-open backup on the same address takes the traffic).
        both = [r for name, r in rows.items() if name in (PRIMARY, FAILOPEN)]
        scur, qcur = sum(r.scur for r in both), sum(r.qcur for r in both)
        return [
            haproxy_health_row(
                now, target, st.status, st.check_status, st.check_code, st.last_chk, scur, qcur
            )
        ]

    return sample


def locust_command(
    opts: RunOptions, host: str, rundir: RunDir, config_path: Path, web_port: int | None
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        host,
        "--albprobe-run-dir",
        str(rundir.path),
        "--albprobe-config",
        str(config_path),
        "--albprobe-shape",
        opts.shape,
        "--stop-timeout",
        "2",
        "--csv",
        str(rundir.path / "locust" / "locust"),
        "--html",
        str(rundir.path / "locust" / "report.html"),
        "--loglevel",
        "INFO",
        "--exit-code-on-error",
        "0",
    ]
    if opts.workers > 0:
        cmd += ["--processes", str(opts.workers), "--albprobe-processes", str(opts.workers)]
    if opts.web_ui and web_port:
        cmd += [
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
            "--autostart",
            "--autoquit",
            "5",
        ]
    else:
        cmd += ["--headless", "--only-summary"]
    return cmd


def _write_effective_config(cfg: Config, path: Path) -> None:
    """The locust process reads the config back from TOML; write the effective one (no secrets)."""
    path.write_text(config_to_toml(cfg), encoding="utf-8")


def execute(
    opts: RunOptions,
    *,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    console_log: Callable[[str], None] = lambda s: None,
) -> RunResult:
    """Run one load test end to end. Never raises after the run directory exists without first
    finalising it (status partial + reason)."""
    cfg = opts.config
    check_target_allowed(cfg)
    check_caps(cfg, opts.shape)
    if opts.faults and not cfg.is_testbed:
        raise ConfigError(
            "--fault needs the testbed as the target", hint="drop --fault, or use --target testbed"
        )
    from probes.loadgen.plugin import new_run_id

    run_id = opts.run_id or new_run_id(opts.shape)
    opts.runs_root.mkdir(parents=True, exist_ok=True)
    try:
        rundir = RunDir.create(opts.runs_root, run_id)
    except FileExistsError:
        raise ConfigError(
            f"run directory {opts.runs_root / run_id} already exists", hint="pick another --run-id"
        ) from None
    (rundir.path / "locust").mkdir()
    started = time.time()
    meta: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "status_reason": None,
        "started_at": started,
        "ended_at": None,
        "origin": cfg.browser.origin,
        "shape": {"name": opts.shape, "params": dataclasses.asdict(cfg.load)},
        "config": config_for_record(cfg),
        "versions": versions(),
        "workers": {
            "mode": "distributed" if opts.workers else "local",
            "count": max(opts.workers, 1),
            "gaps": [],
        },
        "peak_users": peak_users(opts.shape, cfg.load, cfg.safety.max_users),
    }
    rundir.write_meta(meta)
    events = TableWriter(rundir, "events", prefix="run", flush_seconds=2.0)
    stop = _Stop()
    tb = poller = proc = None
    locust_log = None
    old_handlers: dict[int, Any] = {}

    def on_signal(signum, _frame):
        stop.set("SIGTERM" if signum == signal.SIGTERM else "interrupted (Ctrl-C)")

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.signal(sig, on_signal)
    except ValueError:  # not the main thread (tests): rely on the caller
        old_handlers = {}

    def record_event(ev: dict[str, Any]) -> None:
        events.append(ev)

    error: BaseException | None = None
    try:
        if cfg.is_testbed:
            from testbed import Testbed

            tb = Testbed(_testbed_config(cfg, rundir, opts.testbed_overrides))
            tb.add_listener(record_event)
            console_log("starting the testbed (HAProxy as the ALB -> gunicorn -> Django)")
            tb.start()
            host = tb.url
            d = tb.describe()
            meta.update(
                target={"kind": "testbed", "url": tb.url, "host": "127.0.0.1"},
                capacity=d["capacity"],
                proxy=d["proxy"],
                testbed={"faults": d["faults"], "fault_timeline": [], "app_url": tb.app_url},
            )
            with contextlib.suppress(TimeoutError):
                tb.wait_for_health("UP", 10)
            poller = _start_poller(rundir, _haproxy_sampler(tb), 0.5)
        else:
            host = cfg.target
            meta.update(
                target={"kind": "url", "url": cfg.target, "host": urlsplit(cfg.target).hostname},
                capacity=dataclasses.asdict(cfg.capacity) | {"slots": cfg.capacity.slots},
                proxy={
                    "kind": "alb",
                    "idle_timeout": cfg.proxy.idle_timeout,
                    "health_check": dataclasses.asdict(cfg.aws.health_check),
                },
            )
            poller = _start_alb_poller(cfg, rundir, meta, console_log)
        _cors_scan(cfg, host, meta, console_log)
        rundir.write_meta(meta)
        cfg_path = rundir.path / "locust" / "albprobe.toml"
        _write_effective_config(cfg, cfg_path)
        web_port = None
        if opts.web_ui:
            from testbed.ports import free_port

            web_port = free_port()
            meta["web_ui"] = f"http://127.0.0.1:{web_port}"
            rundir.write_meta(meta)
            console_log(f"Locust web UI: {meta['web_ui']}")
        cmd = locust_command(opts, host, rundir, cfg_path, web_port)
        locust_log = open(rundir.path / "locust" / "locust.log", "wb")  # noqa: SIM115 - child's output
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        # Locust gets its own process group: a terminal Ctrl-C reaches us, and we stop it in order.
        proc = subprocess.Popen(
            cmd,
            stdout=locust_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,
        )
        load_start = time.time()
        pending = list(opts.faults)
        # Locust ignores --run-time under a shape; this bound is ours (plus start-up and drain).
        deadline = load_start + cfg.load.duration + 60
        while proc.poll() is None:
            if stop.event.wait(0.25):
                break
            if time.time() > deadline:
                stop.set("hard time limit: the load process did not end by itself")
                break
            elapsed = time.time() - load_start
            while pending and pending[0].at <= elapsed and tb is not None:
                step = pending.pop(0)
                tb.set_fault(step.fault, step.on)
                meta["testbed"]["fault_timeline"].append([time.time(), step.fault, step.on])
                if tb.capacity() != meta["capacity"]:  # keepalive-race swaps the worker class
                    meta["capacity"] = tb.capacity()
                    meta["testbed"].setdefault("capacity_changes", []).append(
                        [time.time(), tb.capacity()]
                    )
                console_log(f"{elapsed:5.1f}s fault {step.fault} {'on' if step.on else 'off'}")
            if on_progress:
                on_progress(_read_progress(rundir, tb, elapsed))
        _stop_locust(proc, stop.reason)
    except KeyboardInterrupt:
        stop.set("interrupted (Ctrl-C)")
        if proc is not None:
            _stop_locust(proc, stop.reason)
    except BaseException as exc:
        stop.set(
            "error: "
            + (exc.one_line() if isinstance(exc, AlbprobeError) else f"{type(exc).__name__}: {exc}")
        )
        if proc is not None:
            _stop_locust(proc, stop.reason)
        error = exc
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        if locust_log:
            locust_log.close()
        if poller is not None:
            poller.stop()
        if tb is not None:
            tb.stop()
        events.close()
        if not cfg.is_testbed:
            _collect_cloudwatch(cfg, rundir, meta)
            if opts.ssm_logs:
                _collect_ssm_logs(cfg, rundir, meta, console_log)
        result = _finalise(rundir, meta, stop.reason, proc, poller)
    if error is not None:
        raise error
    return result


def _start_poller(rundir: RunDir, sampler, interval: float):
    from probes.health_poller import HealthPoller

    return HealthPoller(sampler, rundir, interval=interval).start()


def _aws_clients(cfg: Config):
    from probes.aws.session import AwsClients

    return AwsClients.from_config(cfg.aws)


def _start_alb_poller(
    cfg: Config, rundir: RunDir, meta: dict[str, Any], console_log: Callable[[str], None]
):
    """Target health from the ALB during a run against a real URL, when [aws] names the load
    balancer or target group. AWS trouble is reported and the run goes on without the poller."""
    if not (cfg.aws.target_group or cfg.aws.load_balancer):
        return None
    from probes.aws.collectors import TargetHealthPoller
    from probes.aws.gather import resolve_target_group

    try:
        clients = _aws_clients(cfg)
        lb_arn, tg_arn = resolve_target_group(clients, cfg.aws.load_balancer, cfg.aws.target_group)
    except AlbprobeError as exc:
        console_log(f"ALB target-health poller not started: {exc.one_line()}")
        meta["aws"] = {"error": exc.one_line()}
        return None
    meta["aws"] = {"load_balancer_arn": lb_arn, "target_group_arn": tg_arn}
    console_log(
        f"polling ALB target health every {cfg.aws.poll_interval:g}s ({tg_arn.rsplit(':', 1)[-1]})"
    )
    return TargetHealthPoller(clients, tg_arn, rundir, interval=cfg.aws.poll_interval).start()


def _collect_cloudwatch(cfg: Config, rundir: RunDir, meta: dict[str, Any]) -> None:
    """CloudWatch series for the run window, after the run (best effort, reported in run.json)."""
    aws = meta.get("aws") or {}
    if not aws.get("target_group_arn") or not aws.get("load_balancer_arn"):
        return
    from probes.aws.collectors import collect_cloudwatch

    try:
        n = collect_cloudwatch(
            _aws_clients(cfg),
            aws["load_balancer_arn"],
            aws["target_group_arn"],
            meta["started_at"] - 60,
            time.time() + 60,
            rundir,
        )
        aws["cloudwatch_rows"] = n
    except AlbprobeError as exc:
        aws["cloudwatch_error"] = exc.one_line()
    except Exception as exc:  # a collector must not cost the run its finalisation
        aws["cloudwatch_error"] = f"{type(exc).__name__}: {exc}"[:300]


def _collect_ssm_logs(cfg: Config, rundir: RunDir, meta: dict[str, Any], console_log) -> None:
    """Opt-in: `docker logs <container> --since <run start>` on each instance target, through SSM
    Run Command, into logs/gunicorn-ssm-<instance>.log (the analyzer reads logs/gunicorn*.log).
    Best effort: each failure is recorded in run.json, the run is kept."""
    aws = meta.get("aws") or {}
    if not aws.get("target_group_arn"):
        aws["ssm_logs_error"] = "no target group resolved (set [aws] load_balancer or target_group)"
        meta["aws"] = aws
        return
    from probes.aws.collectors import fetch_gunicorn_logs_via_ssm

    clients = _aws_clients(cfg)
    try:
        desc = clients.elbv2.describe_target_health(TargetGroupArn=aws["target_group_arn"])
        instances = [
            d["Target"]["Id"]
            for d in desc["TargetHealthDescriptions"]
            if d["Target"]["Id"].startswith("i-")
        ]
    except Exception as exc:
        aws["ssm_logs_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return
    fetched, errors = [], {}
    for iid in instances:
        try:
            path = fetch_gunicorn_logs_via_ssm(
                clients,
                iid,
                meta["started_at"] - 5,
                rundir.logs / f"gunicorn-ssm-{iid}.log",
                container=cfg.aws.container,
            )
            fetched.append(path.name)
        except AlbprobeError as exc:
            errors[iid] = exc.one_line()
        except Exception as exc:  # one instance's trouble must not cost the others
            errors[iid] = f"{type(exc).__name__}: {exc}"[:300]
    aws["ssm_logs"] = fetched
    if errors:
        aws["ssm_logs_errors"] = errors
    console_log(
        f"SSM: fetched {len(fetched)} container log(s)"
        + (f", {len(errors)} failed" if errors else "")
    )


def _cors_scan(cfg: Config, host: str, meta: dict[str, Any], console_log) -> None:
    """Before the load: the CORS misconfiguration scan on one GET endpoint (a dozen crafted-origin
    requests, not load). Findings go to run.json, where the analyzer counts an admitted
    disallowed origin against the CORS setup. Scan trouble is recorded, never fatal."""
    from probes.cors_scan import scan

    ep = next((e for e in cfg.endpoints if e.method == "GET"), cfg.endpoints[0])
    url = host.rstrip("/") + ep.path
    try:
        report = scan(url, cfg.browser.origin, timeout=10.0)
    except Exception as exc:
        meta["cors_scan"] = {"url": url, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return
    meta["security_findings"] = [dataclasses.asdict(f) for f in report.findings]
    meta["cors_scan"] = {
        "url": url,
        "worst": report.worst,
        "findings": len(report.findings),
        "inconclusive": list(report.inconclusive),
    }
    if report.findings:
        console_log(
            f"CORS scan: {len(report.findings)} finding(s), worst {report.worst} (see run.json)"
        )


def _read_progress(rundir: RunDir, tb, elapsed: float) -> dict[str, Any]:
    try:
        data = json.loads((rundir.path / "progress.json").read_text())
    except (OSError, ValueError):
        data = {}
    data["elapsed"] = elapsed
    if tb is not None:
        with contextlib.suppress(Exception):
            st = tb.server_status()
            data["target"] = f"{st.status} ({st.check_status})"
    return data


def _stop_locust(proc: subprocess.Popen, reason: str | None) -> None:
    """Ask Locust to stop, then insist. SIGINT, not SIGTERM: in a headless shape run Locust waits on
    the shape before it installs its SIGTERM handler, but it catches KeyboardInterrupt there and
    shuts down in order (final worker reports, summary)."""
    if proc.poll() is not None:
        return
    if reason:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30 if reason else 60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # Workers forked by --processes share the group; none may outlive the run.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _finalise(
    rundir: RunDir, meta: dict[str, Any], stop_reason: str | None, proc, poller
) -> RunResult:
    summary_path = rundir.path / "locust" / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        summary = {}
    rows = sum(pq_rows(p) for p in rundir.parts("requests"))
    if summary.get("abort_reason"):
        status, reason = "aborted", summary["abort_reason"]
    elif stop_reason:
        status, reason = "partial", stop_reason
    elif not summary:
        code = proc.returncode if proc is not None else None
        status, reason = (
            "partial",
            f"locust exited with code {code} without a summary (see locust/locust.log)",
        )
    else:
        status, reason = "complete", None
    gaps = summary.get("gaps", [])
    meta.update(
        status=status,
        status_reason=reason,
        ended_at=time.time(),
        counts={
            "requests": rows,
            "locust_requests": summary.get("locust_requests"),
            "locust_failures": summary.get("locust_failures"),
            "dropped_iterations": summary.get("dropped_iterations", 0),
            "scheduled_iterations": summary.get("scheduled_iterations", 0),
        },
        files=sorted(p.name for p in rundir.path.iterdir() if p.name != "run.json"),
    )
    meta["workers"]["gaps"] = gaps
    if poller is not None:
        meta["collectors"] = {
            "health": {
                "samples": poller.samples,
                "errors": poller.errors,
                "last_error": poller.last_error,
                "kind": "alb" if (meta.get("aws") or {}).get("target_group_arn") else "haproxy",
            }
        }
    if gaps:
        w = TableWriter(rundir, "events", prefix="gaps")
        for g in gaps:
            w.append(
                {
                    "ts": g["from"],
                    "source": "locust",
                    "kind": "worker_gap",
                    "detail": f"{g['worker_id']}: no data {g['from']:.1f}-{g['to']:.1f} ({g['reason']})",
                }
            )
        w.close()
    rundir.write_meta(meta)
    return RunResult(rundir, status, reason, summary)


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return 0
