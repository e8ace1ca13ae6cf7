"""albprobe's Locust plugin: recording, distributed shipping, pacing, caps and automatic abort.

Installed by importing it from a locustfile (locustfiles/browser.py). It works the same under
`albprobe run` and under plain `locust -f locustfiles/browser.py`:

* every request event becomes one row of the run directory's `requests` table (so the row count is
  Locust's own request count). Parquet parts are written on a native thread, never in the event
  loop, so a flush does not stall the simulated users (nor add to their measured latencies);
* Ctrl-C and SIGTERM stop the run in order (probes/loadgen/signals.py), and the final flush at
  `quit` lands every row Locust counted;
* on workers, rows ride in the periodic stats report (`report_to_master`), the same message as the
  stats they belong to; the master writes them. A worker that dies loses at most one report
  interval (3 s), and the master records the gap;
* or, with `load.worker_parts` / `--albprobe-worker-parts DEST` (a folder or s3://), each worker
  writes its own Parquet parts there (probes/loadgen/parts_sink.py) and its report names them;
  the master keeps only the manifest (parts.json, core/worker_parts.py) and links the parts of a
  local DEST into its run directory at the end;
* a token bucket caps each process's request rate; an abort rule stops the run when the error rate
  stays above the threshold; the master writes progress.json every second for `albprobe run`.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import worker_parts as wp
from core.rundir import SCHEMAS, RunDir, TableWriter
from probes.loadgen import final_reports, stepctl
from probes.loadgen.abort import AbortRule
from probes.loadgen.load_clock import WORKER_READY, LoadClock
from probes.loadgen.parts_sink import PARTS_KEY, PartsSink
from probes.loadgen.plans import OPEN_MODEL, REPLAY, rates
from probes.loadgen.ratelimit import TokenBucket
from probes.loadgen.signals import OrderlyStop

_REQ_COLUMNS = SCHEMAS["requests"].names
REPORT_KEY = "albprobe_rows"
SCHED_KEY = "albprobe_schedule"
# Parquet parts are written on a native thread (False: in the event loop, as before; the
# baseline of bench/bench_loop_stall.py).
BACKGROUND_WRITES = True
SWITCH_INTERVAL = 0.001  # seconds; see _open_rundir
# Seconds of heartbeat silence before the master counts a worker as missing (Locust's own is 3).
# A worker starved of CPU (a busy machine, a GC pause, boto3's import in its test start) went
# silent for longer while still loading; Locust then moved its users away and back, and the run
# was marked partial for a load that never stopped. A dead worker's gap is still timed from its
# last report, so the longer wait only delays when its users move to the others.
WORKER_SILENCE_S = 10


def new_run_id(shape: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{shape}"


class ColumnBuffer:
    """Rows kept column-wise until shipped (cheap to serialise in a Locust report)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self._cols: dict[str, list[Any]] = {c: [] for c in columns}
        self.n = 0

    def append(self, row: dict[str, Any]) -> None:
        for c in self.columns:
            self._cols[c].append(row.get(c))
        self.n += 1

    def drain(self) -> dict[str, list[Any]]:
        out, self._cols, self.n = self._cols, {c: [] for c in self.columns}, 0
        return out


def request_row(
    request_type: str,
    name: str,
    response_time: float | None,
    response_length: int | None,
    context: dict[str, Any] | None,
    exception: Any,
    start_time: float | None,
    worker_id: str,
) -> dict[str, Any]:
    """The `requests` row for one Locust request event (context carries albprobe's verdicts)."""
    ctx = context or {}
    ts = start_time if start_time is not None else time.time()
    latency = float(response_time or 0.0)
    intended = ctx.get("intended_ts")
    status = ctx.get("status")
    if status is None:  # a request albprobe's caller did not make: record what Locust knows
        status = 0 if exception else 200
    return {
        "ts": ts,
        "intended_ts": intended,
        "kind": ctx.get("kind", "actual"),
        "endpoint": ctx.get("endpoint", name),
        "method": request_type,
        "path": ctx.get("path", name),
        "status": int(status),
        "source": ctx.get("source", "network" if status == 0 else "app"),
        "source_evidence": ctx.get("source_evidence"),
        "cors_ok": ctx.get("cors_ok"),
        "cors_step": ctx.get("cors_step"),
        "cors_message": ctx.get("cors_message"),
        "latency_ms": latency,
        "co_latency_ms": (ts + latency / 1000.0 - intended) * 1000.0 if intended else None,
        "bytes": int(response_length or 0),
        "error": ctx.get("error")
        if ctx.get("error")
        else (type(exception).__name__ if exception and status == 0 else None),
        "conn_reused": ctx.get("conn_reused"),
        "worker_id": worker_id,
        "user_id": ctx.get("user_id"),
    }


@dataclass
class LoadSession:
    """Per-process state of the plugin (one Locust process = one session)."""

    config: Any
    shape: str
    role: str = "local"  # local | master | worker
    processes: int = 1
    rundir: RunDir | None = None
    writer: TableWriter | None = None
    sched_writer: TableWriter | None = None
    buffer: ColumnBuffer = field(default_factory=lambda: ColumnBuffer(list(_REQ_COLUMNS)))
    sched_buffer: list[list[int]] = field(default_factory=list)
    limiter: TokenBucket | None = None
    scheduler: Any = None
    user_seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    abort_reason: str | None = None
    aborted_at: float | None = None
    shape_finished: bool = False  # the shape returned None: the run ran its full course
    gaps: list[dict[str, Any]] = field(default_factory=list)
    last_report: dict[str, float] = field(default_factory=dict)
    started_at: float | None = None
    replay_start: float | None = None  # a replay's offset 0 as this process sends it
    standalone: bool = False  # no --albprobe-run-dir: this process owns run.json too
    environment: Any = None
    write_executor: Any = None  # the native thread the Parquet parts are written on
    orderly_stop: OrderlyStop | None = None
    parts: PartsSink | None = None  # worker: its own parts (worker-parts mode)
    parts_error: str | None = None  # worker: why it could not open its parts
    manifest: wp.Manifest | None = None  # master: where the workers' parts are
    clock: LoadClock = field(default_factory=LoadClock)  # master: when the duration starts
    ready_workers: set[str] = field(default_factory=set)  # master: workers past their start
    _weights: list[float] | None = None

    @property
    def worker_id(self) -> str:
        return self._worker_id

    def pick_endpoint(self, endpoints: list[Any]) -> Any:
        if self._weights is None:
            self._weights = list(itertools.accumulate(e.weight for e in self.config.endpoints))
        if len(endpoints) == 1:
            return endpoints[0]
        return endpoints[bisect.bisect_right(self._weights, random.random() * self._weights[-1])]


SESSION: LoadSession | None = None


def session() -> LoadSession:
    if SESSION is None:
        raise RuntimeError(
            "albprobe's Locust plugin is not initialised (import it from the locustfile)"
        )
    return SESSION


# ---------------------------------------------------------------------------------------------
# Locust wiring


def install() -> None:
    """Register the plugin's listeners on Locust's global events (idempotent)."""
    from locust import events

    if getattr(install, "_done", False):
        return
    install._done = True  # type: ignore[attr-defined]
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)


def _add_arguments(parser) -> None:
    g = parser.add_argument_group("albprobe")
    g.add_argument(
        "--albprobe-config",
        default=os.environ.get("ALBPROBE_CONFIG", ""),
        help="albprobe.toml (default: testbed defaults)",
    )
    g.add_argument(
        "--albprobe-run-dir",
        default=os.environ.get("ALBPROBE_RUN_DIR", ""),
        help="run directory to record into (default: a new one under ./runs)",
    )
    g.add_argument(
        "--albprobe-shape",
        default=os.environ.get("ALBPROBE_SHAPE", ""),
        help="load shape (default: the config's load.shape)",
    )
    g.add_argument(
        "--albprobe-replay-plan",
        default="",
        help="with --albprobe-shape replay: the plan.parquet of `albprobe replay`",
    )
    g.add_argument(
        "--albprobe-replay-start",
        type=float,
        default=0.0,
        help="with --albprobe-shape replay: epoch second of the plan's offset 0 (default: test start)",
    )
    g.add_argument(
        "--albprobe-replay-speed",
        type=float,
        default=1.0,
        help="with --albprobe-shape replay: time compression (2 = the window in half the time)",
    )
    g.add_argument(
        "--albprobe-worker-parts",
        default=os.environ.get("ALBPROBE_WORKER_PARTS", ""),
        help="distributed: each worker writes its own Parquet parts under this folder or "
        "s3://bucket/prefix, and the master records where (default: the config's "
        "load.worker_parts; empty = workers ship their rows to the master)",
    )
    g.add_argument(
        "--albprobe-processes",
        type=int,
        default=0,
        help="number of load processes sharing the rate caps (default: --processes or 1)",
    )


def _on_init(environment, **_kw) -> None:
    from locust.runners import MasterRunner, WorkerRunner

    from core.config import config_to_toml, load_config, load_refusal  # no locust import

    global SESSION
    opts = environment.parsed_options
    cfg = load_config(getattr(opts, "albprobe_config", "") or None)
    parts_dest = getattr(opts, "albprobe_worker_parts", "") or ""
    if parts_dest:  # the option wins over the config; it reaches the workers in the config
        import dataclasses

        cfg = dataclasses.replace(cfg, load=dataclasses.replace(cfg.load, worker_parts=parts_dest))
    shape = getattr(opts, "albprobe_shape", "") or cfg.load.shape
    runner = environment.runner
    role = (
        "master"
        if isinstance(runner, MasterRunner)
        else "worker"
        if isinstance(runner, WorkerRunner)
        else "local"
    )
    processes = getattr(opts, "albprobe_processes", 0) or max(getattr(opts, "processes", 1) or 1, 1)
    if role == "local":
        processes = 1
    s = LoadSession(config=cfg, shape=shape, role=role, processes=processes)
    s._worker_id = "local" if role == "local" else "master" if role == "master" else "w?"
    s.environment = environment
    s.orderly_stop = OrderlyStop(environment)
    SESSION = s
    ev = environment.events
    if role in ("local", "worker"):
        s.limiter = _make_limiter(cfg.safety.max_rps / processes)
        ev.request.add_listener(_on_request)
    if role == "worker":
        ev.report_to_master.add_listener(_on_report_to_master)
    if role in ("local", "master"):
        refusal = load_refusal(environment.host or "", cfg) if environment.host else None
        if refusal and not getattr(
            opts, "albprobe_run_dir", ""
        ):  # `albprobe run` checked it already
            sys.stderr.write(f"albprobe: error: {refusal}\n")
            sys.exit(2)
        if role == "master" and cfg.load.worker_parts and not getattr(opts, "albprobe_run_dir", ""):
            _check_parts_dest(cfg.load.worker_parts)  # `albprobe run` checked it already
        opts.albprobe_config_inline = config_to_toml(cfg)  # forwarded to workers at test start
        _open_rundir(s, environment)
        if role == "master" and cfg.load.worker_parts:
            s.manifest = wp.Manifest(cfg.load.worker_parts, s.rundir.path.name)
            s.manifest.write(s.rundir)
            opts.albprobe_run_id = s.rundir.path.name  # forwarded: the workers' folder name
    if role == "master":
        import locust.runners

        locust.runners.HEARTBEAT_LIVENESS = WORKER_SILENCE_S  # read at each heartbeat
        ev.worker_report.add_listener(_on_worker_report)
        runner.register_message(WORKER_READY, _on_worker_ready)
        final_reports.install(runner)
    ev.test_start.add_listener(_on_test_start)
    ev.test_stop.add_listener(_on_test_stop)
    # `quit` fires after runner.quit(), i.e. after the master has the workers' final reports
    # (final_reports: it waits for them).
    ev.quit.add_listener(_on_quit)


def _check_parts_dest(dest: str) -> None:
    from core.errors import AlbprobeError
    from probes.loadgen.parts_sink import check_dest

    try:
        check_dest(dest)
    except AlbprobeError as exc:
        sys.stderr.write(f"albprobe: error: --albprobe-worker-parts: {exc.one_line()}\n")
        sys.exit(2)


def _make_limiter(rate: float) -> TokenBucket:
    import gevent

    return TokenBucket(rate, sleep=gevent.sleep)


def _open_rundir(s: LoadSession, environment) -> None:
    opts = environment.parsed_options
    path = getattr(opts, "albprobe_run_dir", "")
    if path:
        s.rundir = RunDir(Path(path))
        s.rundir.path.mkdir(parents=True, exist_ok=True)
    else:
        s.standalone = True
        s.rundir = RunDir.create(Path("runs"), new_run_id(s.shape))
        from probes.loadgen.meta import standalone_meta

        s.rundir.write_meta(standalone_meta(s, environment, status="running"))
    (s.rundir.path / "locust").mkdir(exist_ok=True)
    if BACKGROUND_WRITES:
        from gevent.threadpool import ThreadPoolExecutor  # a native thread despite monkey-patching

        s.write_executor = ThreadPoolExecutor(max_workers=1)
        # The writer thread still holds the GIL while it turns rows into columns; the event loop
        # then waits for it at most one switch interval (5 ms by default, 1 ms here). Only the
        # two threads' turns change: with one thread running the interval does nothing.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    s.writer = TableWriter(
        s.rundir, "requests", prefix="part", threadsafe=False, executor=s.write_executor
    )
    s.sched_writer = TableWriter(
        s.rundir, "schedule", prefix="part", flush_seconds=10, executor=s.write_executor
    )


def _on_request(
    request_type,
    name,
    response_time,
    response_length,
    response=None,
    context=None,
    exception=None,
    start_time=None,
    **_kw,
) -> None:
    s = session()
    if context and "ts" in context:  # albprobe's own caller: the context is the finished row
        row = context
    else:
        row = request_row(
            request_type,
            name,
            response_time,
            response_length,
            context,
            exception,
            start_time,
            s.worker_id,
        )
    if s.writer is not None:
        s.writer.append(row)
    else:
        s.buffer.append(row)


def _on_report_to_master(client_id, data) -> None:
    s = session()
    if s.parts is not None:
        from locust.runners import STATE_STOPPED

        if s.environment.runner.state == STATE_STOPPED:
            # the final report (the load has stopped): its parts are written, and uploaded,
            # before it names them, so every part the master lists exists once it ends (the
            # master waits for this report: final_reports.py)
            s.parts.close()
        data[PARTS_KEY] = s.parts.report()
    elif s.parts_error:
        data[PARTS_KEY] = {"worker_id": s.worker_id, "location": "", "error": s.parts_error}
    if s.buffer.n:
        data[REPORT_KEY] = s.buffer.drain()
    if s.scheduler is not None:
        done = s.scheduler.drain_seconds(time.time())
        if done:
            data[SCHED_KEY] = done


def _on_worker_report(client_id, data) -> None:
    s = session()
    s.last_report[client_id] = time.time()
    rows = data.get(REPORT_KEY)
    if rows and s.writer is not None:
        s.writer.append_columns(rows)
    parts = data.get(PARTS_KEY)
    if parts and s.manifest is not None:
        s.manifest.add_report(parts)
        if parts.get("error") and s.abort_reason is None:
            import gevent

            s.abort_reason = (
                f"worker {parts.get('worker_id')} cannot write its parts to "
                f"{s.manifest.dest}: {parts['error']}"
            )
            s.aborted_at = time.time()
            gevent.spawn(s.environment.runner.quit)
    for ts, scheduled, dropped in data.get(SCHED_KEY, ()):
        s.sched_writer.append({"ts": float(ts), "scheduled": scheduled, "dropped": dropped})


def _on_test_start(environment, **_kw) -> None:
    import gevent

    s = session()
    s.started_at = time.time()
    runner = environment.runner
    if s.role == "master":  # a new test (Locust's web UI can start several): a new clock
        s.clock, s.ready_workers = LoadClock(), set()
    if s.role == "worker":
        s._worker_id = f"w{getattr(runner, 'worker_index', 0)}"
        _adopt_master_settings(s, environment.parsed_options)
        _open_worker_parts(s, environment.parsed_options)
    if s.role == "local" and s.shape == stepctl.SHAPE:
        s.scheduler = _stepped_scheduler(s, runner)
        s.scheduler.start()
    elif s.role in ("local", "worker") and s.shape == REPLAY:
        s.scheduler = _replay_scheduler(s, environment)
        s.scheduler.start()
    elif s.role in ("local", "worker") and s.shape in OPEN_MODEL:
        from probes.loadgen.arrival import ArrivalScheduler, intended_times

        r0, r1 = rates(s.shape, s.config.load)
        index = getattr(runner, "worker_index", 0) if s.role == "worker" else 0
        times = intended_times(
            s.started_at,
            s.config.load.duration,
            r0 / s.processes,
            r1 / s.processes,
            offset=(index % s.processes) / s.processes,
        )
        s.scheduler = ArrivalScheduler(times)
        s.scheduler.start()
    if s.role in ("local", "master"):
        gevent.spawn(_monitor, environment)
    if s.role == "worker":  # last: the master's clock waits for this (load_clock.py)
        runner.send_message(WORKER_READY, None)


def _on_worker_ready(environment, msg, **_kw) -> None:
    s = session()
    s.ready_workers.add(msg.node_id)
    load_elapsed(time.time() - (s.started_at or time.time()))  # starts the clock if all are


def load_elapsed(since_test_start: float) -> float:
    """Seconds of the run's duration gone: from the test start in a local run, from the moment
    every worker is ready in a distributed one (probes/loadgen/load_clock.py)."""
    s = session()
    if s.role != "master":
        return since_test_start
    from locust.runners import STATE_MISSING

    connected = [c.id for c in s.environment.runner.clients.values() if c.state != STATE_MISSING]
    return s.clock.elapsed(time.time(), since_test_start, connected, s.ready_workers)


def _clock_started_at(s: LoadSession) -> float | None:
    return s.clock.began_at if s.role == "master" else s.started_at


def _stepped_scheduler(s: LoadSession, runner) -> Any:
    """The arrival scheduler of the `rate-steps` shape: steps as the parent asks for them
    (probes/loadgen/stepctl.py); its rows are flushed to disk at the end of each step."""
    from probes.loadgen.arrival import ArrivalScheduler
    from probes.loadgen.plans import make_plan

    def flush() -> None:
        if s.writer is not None:
            s.writer.close()  # flush and wait for the part; the writer stays open

    def stop() -> None:
        s.shape_finished = True  # the shape ends the run at its next tick

    plan = make_plan(s.shape, s.config.load, s.config.safety.max_users)(0.0)
    times = stepctl.SteppedTimes(
        s.rundir.path,
        users=lambda: runner.user_count,
        expected_users=plan[0] if plan else 1,
        waiting=lambda: scheduler.waiting(),
        counts=lambda: (scheduler.scheduled, scheduler.dropped),
        flush=flush,
        on_stop=stop,
        deadline=(s.started_at or time.time()) + s.config.load.duration,
    )
    scheduler = ArrivalScheduler(iter(times))
    return scheduler


# A replay's plan starts this long after the users are up, at the least.
REPLAY_MIN_LEAD_S = 1.0


def replay_start(planned: float, now: float, min_lead: float = REPLAY_MIN_LEAD_S) -> float:
    """The plan's offset 0: as planned (Locust's launch + the lead), or, when Locust's start-up
    on a busy machine outlasted the lead, ``min_lead`` after now. The whole plan moves, so that
    its first seconds are not sent in a burst; `albprobe run` times a replay's faults from this
    start (progress.json's replay_start), so they keep their place in the traffic."""
    return max(planned, now + min_lead)


def _replay_scheduler(s: LoadSession, environment) -> Any:
    """This process's share of the replay plan: lanes split by process, so that a lane's
    lines stay on one process (and one user) in order."""
    from probes.loadgen.replay import ReplayScheduler, read_lines

    opts = environment.parsed_options
    plan = getattr(opts, "albprobe_replay_plan", "")
    if not plan:
        raise RuntimeError("--albprobe-shape replay needs --albprobe-replay-plan")
    index = getattr(environment.runner, "worker_index", 0) if s.role == "worker" else 0
    start = getattr(opts, "albprobe_replay_start", 0.0) or s.started_at
    if s.role == "local":  # one process: it alone sends the plan, so it may move it
        start = replay_start(float(start), time.time())
    s.replay_start = float(start)
    lines = read_lines(
        Path(plan),
        float(start),
        float(getattr(opts, "albprobe_replay_speed", 1.0) or 1.0),
        index=index % s.processes,
        processes=s.processes,
    )
    return ReplayScheduler(lines)


def _open_worker_parts(s: LoadSession, opts) -> None:
    """Worker-parts mode (the master's config says where): this worker's own parts writer. Rows
    then go to it (``_on_request`` appends to ``s.writer``), never into the report."""
    dest = s.config.load.worker_parts
    if not dest or s.parts is not None:
        return
    from core.errors import AlbprobeError

    run_id = getattr(opts, "albprobe_run_id", "") or new_run_id(s.shape)
    if s.write_executor is None:
        from gevent.threadpool import ThreadPoolExecutor

        s.write_executor = ThreadPoolExecutor(max_workers=1)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    try:
        s.parts = PartsSink(dest, run_id, s.worker_id, s.write_executor)
    except (AlbprobeError, OSError) as exc:  # rows keep riding to the master; it aborts the run
        s.parts_error = exc.one_line() if isinstance(exc, AlbprobeError) else str(exc)
        return
    s.writer = s.parts.writer


def _adopt_master_settings(s: LoadSession, opts) -> None:
    """A worker takes the master's effective config, shape and process count (Locust forwards
    the master's custom options with every spawn): one run, one set of settings."""
    import tomllib

    from core.config import config_from_dict

    inline = getattr(opts, "albprobe_config_inline", "")
    if inline:
        s.config = config_from_dict(tomllib.loads(inline))
        s._weights = None
    s.shape = getattr(opts, "albprobe_shape", "") or s.config.load.shape
    s.processes = max(getattr(opts, "albprobe_processes", 0) or s.processes, 1)
    s.limiter = _make_limiter(s.config.safety.max_rps / s.processes)


def _monitor(environment) -> None:
    """Master/local, once a second: progress file, worker gaps, the abort rule."""
    import gevent
    from locust.runners import STATE_MISSING, STATE_STOPPED, STATE_STOPPING

    s = session()
    safety = s.config.safety
    rule = AbortRule(safety.abort_error_rate, safety.abort_after)
    runner = environment.runner
    _write_progress(s, runner, environment.stats.total, time.time())  # the start, at once
    while True:
        gevent.sleep(1.0)
        # Checked after the sleep: workers leave the master once the run stops (the quit
        # messages follow STOPPING), and a worker that left then is no gap.
        if runner.state in (STATE_STOPPING, STATE_STOPPED) or s.abort_reason is not None:
            break
        now = time.time()
        total = environment.stats.total
        if s.role == "master":
            _track_gaps(s, runner, now, STATE_MISSING)
            if s.manifest is not None and s.manifest.changed:
                s.manifest.write(s.rundir)  # a master that dies leaves where the parts are
        if s.role == "local" and s.scheduler is not None:
            for ts, scheduled, dropped in s.scheduler.drain_seconds(now):
                s.sched_writer.append({"ts": float(ts), "scheduled": scheduled, "dropped": dropped})
        _write_progress(s, runner, total, now)
        reason = rule.check(now, total.num_requests, total.num_failures)
        if reason:
            s.abort_reason, s.aborted_at = reason, now
            _write_progress(s, runner, total, now)
            gevent.spawn(runner.quit)


def _track_gaps(s: LoadSession, runner, now: float, missing_state: str) -> None:
    """Open a gap when a worker that reported goes missing or away; close it if it comes back.
    Workers are named w<index>, as in their request rows."""
    present = {c.id: c.state for c in runner.clients.values()}
    open_gaps = {g["client_id"]: g for g in s.gaps if g["to"] is None}
    for cid, last in list(s.last_report.items()):
        gone = cid not in present or present[cid] == missing_state
        if gone and cid not in open_gaps:
            s.gaps.append(
                _gap(runner, cid, last, "heartbeat lost" if cid in present else "worker gone")
            )
        elif not gone and cid in open_gaps:
            open_gaps[cid]["to"] = now


def _gap(runner, client_id: str, last_report: float, reason: str) -> dict[str, Any]:
    return {
        "worker_id": f"w{runner.get_worker_index(client_id)}",
        "client_id": client_id,
        "from": last_report,
        "to": None,
        "reason": reason,
    }


def _track_silent_workers(s: LoadSession, runner) -> None:
    """At quit: a worker that reported but never answered the master's `quit` (its final
    report and goodbye; final_reports.py) died in the run's last seconds, before its silence
    made it missing. What it did since its last report is lost: a gap, as for any lost worker."""
    open_gaps = {g["client_id"] for g in s.gaps if g["to"] is None}
    for cid, last in s.last_report.items():
        if cid in runner.clients and cid not in open_gaps:
            s.gaps.append(_gap(runner, cid, last, "no final report"))


def _write_progress(s: LoadSession, runner, total, now: float) -> None:
    if s.rundir is None:
        return
    data = {
        "ts": now,
        # the load's own start: `albprobe run` times the fault schedule from it, not from the
        # launch of a process that may take seconds to import on a busy machine
        "started_at": s.started_at,
        # when the duration started counting (load_clock.py); a fault schedule counts from it
        "clock_started_at": _clock_started_at(s),
        "replay_start": s.replay_start,
        "users": runner.user_count,
        "rps": round(total.current_rps, 1),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rows": _rows_recorded(s),
        "p50": total.get_current_response_time_percentile(0.5),
        "p99": total.get_current_response_time_percentile(0.99),
        "abort_reason": s.abort_reason,
        "errors": {str(e.error): e.occurrences for e in list(runner.stats.errors.values())[:20]},
    }
    tmp = s.rundir.path / "progress.json.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, s.rundir.path / "progress.json")


def _rows_recorded(s: LoadSession) -> int:
    """Rows on disk (master/local), plus the rows the workers' parts hold (worker-parts mode)."""
    rows = s.writer.rows_written if s.writer else 0
    return rows + (s.manifest.rows if s.manifest is not None else 0)


def _on_test_stop(environment, **_kw) -> None:
    s = session()
    if s.scheduler is not None:
        s.scheduler.stop()


def _on_quit(exit_code: int = 0, **_kw) -> None:
    """Final flush (master/local): every row Locust counted is on disk before the process ends."""
    s = session()
    environment = s.environment
    if s.role == "worker":
        if s.parts is not None:
            s.parts.close()
            if s.write_executor is not None:
                s.write_executor.shutdown()
            s.parts.cleanup()
        return
    now = time.time()
    if s.role == "master":
        _track_silent_workers(s, environment.runner)
    for g in s.gaps:
        if g["to"] is None:
            g["to"] = now
    if s.scheduler is not None:
        for ts, scheduled, dropped in s.scheduler.drain_seconds(now + 2):
            s.sched_writer.append({"ts": float(ts), "scheduled": scheduled, "dropped": dropped})
    # close() waits for the parts still being written on the writer thread.
    if s.writer:
        s.writer.close()
    if s.sched_writer:
        s.sched_writer.close()
    if s.write_executor is not None:
        s.write_executor.shutdown()
    gathered = None
    if s.manifest is not None and s.rundir is not None:
        s.manifest.write(s.rundir)
        # a local DEST's parts, linked in (s3:// stays there); a worker's last part may be
        # named before it is on disk
        gathered = wp.gather(s.rundir, wait=5.0)
    total = environment.stats.total
    dropped = scheduled = 0
    if s.rundir and s.rundir.parts("schedule"):
        sched = s.rundir.read_table("schedule").to_pydict()
        dropped, scheduled = (
            sum(x or 0 for x in sched["dropped"]),
            sum(x or 0 for x in sched["scheduled"]),
        )
    summary = {
        "locust_requests": total.num_requests,
        "locust_failures": total.num_failures,
        "rows": (s.writer.rows_written if s.writer else 0)
        + (gathered.rows_here + gathered.rows_elsewhere if gathered else 0),
        "gaps": s.gaps,
        "abort_reason": s.abort_reason,
        "dropped_iterations": dropped,
        "scheduled_iterations": scheduled,
        "processes": s.processes,
        "role": s.role,
        "started_at": s.started_at,
        "clock_started_at": _clock_started_at(s),
        "ended_at": now,
        "rate_cap_waited_s": round(s.limiter.waited, 3) if s.limiter else None,
    }
    if s.manifest is not None:
        summary["worker_parts"] = s.manifest.summary()
        if gathered is not None and (gathered.missing or gathered.mismatched):
            summary["worker_parts"]["missing"] = gathered.missing[:20]
            summary["worker_parts"]["mismatched"] = gathered.mismatched[:20]
    if s.rundir:
        (s.rundir.path / "locust" / "summary.json").write_text(json.dumps(summary, indent=2))
        if s.abort_reason:
            ev = TableWriter(s.rundir, "events", prefix="abort")
            ev.append(
                {
                    "ts": s.aborted_at or now,
                    "source": "albprobe",
                    "kind": "abort",
                    "detail": s.abort_reason,
                }
            )
            ev.close()
        if s.standalone:
            from probes.loadgen.meta import gap_reason, rows_reason, standalone_meta

            summary["gap_reason"] = gap_reason(s.gaps, s.started_at, s.processes)
            summary["rows_reason"] = rows_reason(
                summary["rows"], summary["locust_requests"], s.role == "master" and not s.manifest
            )
            if s.abort_reason:
                status = "aborted"
            elif summary["gap_reason"] or summary["rows_reason"]:
                status = "partial"
            elif s.shape_finished:
                status = "complete"
            else:
                status, summary["abort_reason"] = (
                    "partial",
                    "stopped before the shape's end (Ctrl-C or SIGTERM)",
                )
            s.rundir.write_meta(standalone_meta(s, environment, status=status, summary=summary))
