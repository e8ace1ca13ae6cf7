"""`albprobe run`: the phases of one run, in order.

validate (allow-list, caps) -> create the run directory and run.json (status "running") -> start
the target (the testbed, logging into the run directory) -> start the collectors the registry
gives for this run (albprobe/collectors.py) -> start Locust (albprobe/locust_child.py; workers when
asked) -> follow progress, advance the target's fault schedule -> on exit, Ctrl-C or SIGTERM: stop
Locust, the collectors and the target, and rewrite run.json with the final status. Nothing recorded
is lost on an interruption: every table is written in parts as the run goes, and run.json is
rewritten atomically. Child processes are core.supervisor's; AWS and the scans are collectors'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albprobe.collectors import RunSetup, check_opt_ins, collectors_for
from albprobe.locust_child import locust_command, start_locust
from albprobe.locust_child import write_effective_config as _write_effective_config
from albprobe.targets import FaultStep, TestbedTarget, UrlTarget, parse_fault_schedule, target_for
from core.collector import Collector, RunContext, merge_record
from core.config import Config, load_refusal
from core.errors import AlbprobeError, ConfigError
from core.rundir import RunDir, TableWriter
from core.supervisor import Child
from probes.loadgen.meta import config_for_record, gap_reason, rows_reason, versions
from probes.loadgen.plans import OPEN_MODEL, peak_users, rates

# Kept importable from here: the commands and tests use these names.
__all__ = [
    "FaultStep",
    "RunOptions",
    "RunResult",
    "_write_effective_config",
    "check_caps",
    "check_target_allowed",
    "execute",
    "locust_command",
    "parse_fault_schedule",
]


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
class ReplayRun:
    """`albprobe replay`: the plan Locust sends, its speed, and the lead before its offset 0.
    ``start`` (epoch) is fixed when Locust is started: Locust start + lead."""

    plan: Path
    speed: float
    lead: float
    start: float | None = None


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
    # opt-in collectors by registry name (albprobe/collectors.py), e.g. {"alb-access-logs"}
    collect: frozenset[str] = frozenset()
    replay: ReplayRun | None = None  # the replay shape's plan (albprobe/replaying.py)

    def opt_ins(self) -> frozenset[str]:
        return frozenset(self.collect) | ({"ssm-logs"} if self.ssm_logs else frozenset())


@dataclass
class RunResult:
    rundir: RunDir
    status: str
    status_reason: str | None
    summary: dict[str, Any]


class _Stop:
    """Why the run is ending early, set from a signal handler or the progress loop. While
    installed, SIGTERM and SIGINT (Ctrl-C) set it instead of killing albprobe."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.event.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.set("SIGTERM" if signum == signal.SIGTERM else "interrupted (Ctrl-C)")

    def install(self) -> None:
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread (tests): rely on the caller
            self._old = {}

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}


def validate(opts: RunOptions) -> None:
    """Refuse before anything starts: the allow-list, the caps, faults without the testbed,
    unknown opt-in collectors."""
    cfg = opts.config
    check_target_allowed(cfg)
    check_caps(cfg, opts.shape)
    if opts.shape == "rate-steps" and opts.workers:
        raise ConfigError(
            "the rate-steps shape runs in one Locust process (its parent drives it step by step)",
            hint="drop --workers",
        )
    if cfg.load.worker_parts:
        if not opts.workers:
            raise ConfigError(
                f"--worker-parts {cfg.load.worker_parts}: only workers write their own parts",
                hint="add --workers N, or drop --worker-parts (one process writes its run directory itself)",
            )
        from probes.loadgen.parts_sink import check_dest

        check_dest(cfg.load.worker_parts)  # a one-line error before anything starts
    if opts.faults and not cfg.is_testbed:
        raise ConfigError(
            "--fault needs the testbed as the target", hint="drop --fault, or use --target testbed"
        )
    check_opt_ins(opts.opt_ins())


def planned_record(cfg: Config, shape: str) -> dict[str, Any]:
    """run.json's origin, shape and config, known before the run: what `compare` needs two runs
    to agree on (with the target, which the target adds when it starts)."""
    return {
        "origin": cfg.browser.origin,
        "shape": {"name": shape, "params": dataclasses.asdict(cfg.load)},
        "config": config_for_record(cfg),
    }


def _create_run(opts: RunOptions) -> tuple[RunDir, dict[str, Any]]:
    """The run directory and its run.json, status "running"."""
    from probes.loadgen.plugin import new_run_id

    cfg = opts.config
    run_id = opts.run_id or new_run_id(opts.shape)
    opts.runs_root.mkdir(parents=True, exist_ok=True)
    try:
        rundir = RunDir.create(opts.runs_root, run_id)
    except FileExistsError:
        raise ConfigError(
            f"run directory {opts.runs_root / run_id} already exists", hint="pick another --run-id"
        ) from None
    (rundir.path / "locust").mkdir()
    meta: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "status_reason": None,
        "started_at": time.time(),
        "ended_at": None,
        **planned_record(cfg, opts.shape),
        "versions": versions(),
        "workers": {
            "mode": "distributed" if opts.workers else "local",
            "count": max(opts.workers, 1),
            "gaps": [],
        },
        "peak_users": peak_users(opts.shape, cfg.load, cfg.safety.max_users),
    }
    rundir.write_meta(meta)
    return rundir, meta


def _trusting_target_ca(opts: RunOptions, target: UrlTarget | TestbedTarget) -> RunOptions:
    """The testbed's HTTPS listener has a CA made at start-up: the load user trusts it (and still
    verifies), unless the config names its own bundle."""
    ca = target.testbed.ca_file if target.testbed is not None else None
    if ca is None or opts.config.browser.ca_bundle:
        return opts
    browser = dataclasses.replace(opts.config.browser, ca_bundle=str(ca))
    return dataclasses.replace(opts, config=dataclasses.replace(opts.config, browser=browser))


def _error_reason(exc: BaseException) -> str:
    return "error: " + (
        exc.one_line() if isinstance(exc, AlbprobeError) else f"{type(exc).__name__}: {exc}"
    )


def execute(
    opts: RunOptions,
    *,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    console_log: Callable[[str], None] = lambda s: None,
) -> RunResult:
    """Run one load test end to end. Never raises after the run directory exists without first
    finalising it (status partial + reason)."""
    validate(opts)
    rundir, meta = _create_run(opts)
    cfg = opts.config
    events = TableWriter(rundir, "events", prefix="run", flush_seconds=2.0)
    stop = _Stop()
    stop.install()
    target: UrlTarget | TestbedTarget | None = None
    run: RunContext | None = None
    collectors: list[Collector] = []
    locust: Child | None = None
    error: BaseException | None = None
    try:
        target = target_for(cfg, rundir, opts.testbed_overrides, opts.faults, events.append)
        target.start(meta, console_log)
        opts = _trusting_target_ca(opts, target)
        run = RunContext(rundir, cfg, target.url, meta["started_at"], console_log)
        collectors = collectors_for(RunSetup(cfg, target.testbed, opts.opt_ins()))
        for c in collectors:
            c.start(run)
            merge_record(meta, c.result().record)
        rundir.write_meta(meta)
        locust = start_locust(opts, target.url, rundir, meta, console_log)
        # A replay's faults are on its plan's clock: the plan's offset 0 minus the lead. One
        # process may move the plan when its start-up outlasted the lead, and says where in
        # progress.json; workers keep the planned start (Locust's launch + the lead).
        clock, lead = None, None
        if opts.replay and opts.replay.start:
            lead = opts.replay.lead
            clock = opts.replay.start - lead if opts.workers else None
        _follow(locust, stop, target, cfg, rundir, meta, on_progress, console_log, clock, lead)
    except KeyboardInterrupt:
        stop.set("interrupted (Ctrl-C)")
    except BaseException as exc:
        stop.set(_error_reason(exc))
        error = exc
    finally:
        if locust is not None:
            locust.stop()  # signals still only set the stop reason: the stop is not cut short
        stop.restore()
        for c in collectors:
            _stop_collector(c, run, meta)
        if target is not None:
            target.stop()
        events.close()
        result = _finalise(rundir, meta, stop.reason, locust)
    if error is not None:
        raise error
    return result


def _follow(
    locust: Child,
    stop: _Stop,
    target: UrlTarget | TestbedTarget,
    cfg: Config,
    rundir: RunDir,
    meta: dict[str, Any],
    on_progress: Callable[[dict[str, Any]], None] | None,
    log: Callable[[str], None],
    clock: float | None = None,
    replay_lead: float | None = None,
) -> None:
    """Until Locust ends, a stop is asked or the hard time limit: progress and the fault schedule.
    ``clock``: the epoch the fault schedule counts from when the load has a fixed one (a
    distributed replay's plan); None = the load's start as Locust reports it, or with
    ``replay_lead`` the replay's offset 0 as Locust reports it, minus the lead."""
    launched = time.time()
    # The fault schedule counts from the load's first second, as Locust reports it in
    # progress.json; until then nothing is due (Locust's start-up took 5 s and more on a busy
    # machine, and a fault timed from the launch came and went before the first request).
    load_start: float | None = clock
    # Locust ignores --run-time under a shape; this bound is ours (plus start-up and drain).
    deadline = launched + cfg.load.duration + 60
    while locust.alive():
        if stop.event.wait(0.25):
            break
        now = time.time()
        if now > deadline:
            stop.set("hard time limit: the load process did not end by itself")
            break
        if load_start is None:
            load_start = _load_started(rundir, replay_lead)
            if load_start is not None:
                deadline = max(deadline, load_start + cfg.load.duration + 60)
        elapsed = now - load_start if load_start is not None else 0.0
        if load_start is not None:
            target.advance(elapsed, meta, log)
        if on_progress:
            on_progress(_read_progress(rundir, target, elapsed))


def _stop_collector(c: Collector, run: RunContext | None, meta: dict[str, Any]) -> None:
    """Stop one collector and merge what it wrote; its failure is recorded, never the run's end."""
    try:
        if run is not None:
            c.stop(run)
        merge_record(meta, c.result().record)
    except Exception as exc:
        meta.setdefault("collector_errors", {})[c.name] = f"{type(exc).__name__}: {exc}"[:300]


def _load_started(rundir: RunDir, replay_lead: float | None = None) -> float | None:
    """When the load's duration started counting, once progress.json says (a local run: its
    test start; a distributed one: when its workers were ready, probes/loadgen/load_clock.py);
    for a replay (``replay_lead``), its plan's offset 0 minus the lead (the faults' clock)."""
    if replay_lead is not None:
        start = replay_started(rundir)
        return start - replay_lead if start else None
    try:
        progress = json.loads((rundir.path / "progress.json").read_text())
    except (OSError, ValueError):
        return None
    started = progress.get("clock_started_at", progress.get("started_at"))
    return float(started) if started else None


def replay_started(rundir: RunDir) -> float | None:
    """A replay's offset 0 as its one Locust process sent it (progress.json), if it said."""
    try:
        start = json.loads((rundir.path / "progress.json").read_text()).get("replay_start")
    except (OSError, ValueError):
        return None
    return float(start) if start else None


def _read_progress(
    rundir: RunDir, target: UrlTarget | TestbedTarget, elapsed: float
) -> dict[str, Any]:
    try:
        data = json.loads((rundir.path / "progress.json").read_text())
    except (OSError, ValueError):
        data = {}
    data["elapsed"] = elapsed
    with contextlib.suppress(Exception):
        status = target.status()
        if status:
            data["target"] = status
    return data


def _finalise(
    rundir: RunDir, meta: dict[str, Any], stop_reason: str | None, locust: Child | None
) -> RunResult:
    summary_path = rundir.path / "locust" / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        summary = {}
    gathered, parts_error = _gather_parts(rundir)
    rows = sum(pq_rows(p) for p in rundir.parts("requests"))
    rows += gathered.rows_elsewhere if gathered else 0  # s3:// parts not downloaded: as claimed
    if summary.get("abort_reason"):
        status, reason = "aborted", summary["abort_reason"]
    elif stop_reason:
        status, reason = "partial", stop_reason
    elif not summary:
        code = locust.poll() if locust is not None else None
        status, reason = (
            "partial",
            f"locust exited with code {code} without a summary (see locust/locust.log)",
        )
    else:
        status, reason = "complete", None
    gaps = summary.get("gaps", [])
    lost = gap_reason(gaps, summary.get("started_at"), meta["workers"]["count"])
    if lost and status == "complete":  # the load the run was asked for did not all go out
        status, reason = "partial", lost
    short = rows_reason(
        rows,
        summary.get("locust_requests"),
        meta["workers"]["mode"] == "distributed" and not summary.get("worker_parts"),
    )
    if short and status == "complete":  # what Locust counted is not all on disk
        status, reason = "partial", short
    if summary.get("worker_parts"):
        meta["worker_parts"] = dict(summary["worker_parts"])
        if gathered is not None:
            meta["worker_parts"]["missing"] = gathered.missing[:20]
            meta["worker_parts"]["mismatched"] = gathered.mismatched[:20]
            meta["worker_parts"]["not_downloaded_rows"] = gathered.rows_elsewhere
        if parts_error:
            meta["worker_parts"]["gather_error"] = parts_error
        if gathered is not None and gathered.missing and status == "complete":
            status, reason = (
                "partial",
                f"{len(gathered.missing)} worker part(s) listed in parts.json were not found "
                f"(first: {gathered.missing[0]})",
            )
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
    # when the duration started counting (later than the start when workers were slow to start)
    meta["workers"]["clock_started_at"] = summary.get("clock_started_at")
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


def _gather_parts(rundir: RunDir) -> tuple[Any, str | None]:
    """Worker-parts mode: the workers' parts into the run directory (s3:// downloaded). A
    failed download is recorded, never the run's end: `albprobe analyze` tries again."""
    from albprobe import parts
    from core import worker_parts as wp

    try:
        return parts.gather(rundir.path), None
    except AlbprobeError as exc:
        try:
            return wp.gather(rundir), exc.one_line()  # count what could not be fetched
        except AlbprobeError as exc2:
            return None, exc2.one_line()


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return 0
