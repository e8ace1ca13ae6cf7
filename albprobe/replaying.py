"""`albprobe replay`: an incident's ALB log window sent again, and whether its 502s came back.

plan (analysis/replay_plan.py: the window line for line, in Parquet) -> diagnosis of the window
(`analyze --alb-logs`'s Verdict) -> refusals (allow-list, max_rps, max_users) -> a normal
`albprobe run` whose shape is the plan (probes/loadgen/replay.py; the testbed's fault schedule
adds the diagnosed cause with --with-cause) -> the plan kept in the run directory, and the
comparison (analysis/replay_compare.py) in its analysis.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.causes import alb_log
from analysis.replay_plan import PlanOptions, PlanSummary, build_plan
from analysis.verdict import Cause, Verdict
from core.config import Capacity, Config, TestbedGroup
from core.errors import ConfigError
from testbed.config import TARGET_FAULTS  # faults the testbed switches on one target

# Seconds between Locust's start and the plan's offset 0: Locust imports and spawns its users
# first (lines it misses are late, counted). Faults are scheduled on the same clock.
LEAD_S = 5.0
LEAD_WORKERS_S = 8.0
TAIL_S = 3.0  # after the last line: its answer, then Locust stops
# Causes a replay of the traffic alone cannot bring back, and the testbed fault that adds each
# (None: no testbed switch for it). Causes not listed (capacity) come from the traffic itself.
NOT_FROM_TRAFFIC: dict[str, str | None] = {
    "target-down": "target-down",
    "health-check-config": "health-host",
    "connectivity": "blocked-port",
    "deploy": "deploy",
    "worker-kill": "worker-kill",
    "keepalive-race": "keepalive-race",
    "cors-setup": "cors-misconfig",
    "worker-recycle": None,
    "http-redirect": None,
    # the ALB-log-only causes (analysis/causes/): a crashed or vanished target is the testbed's
    # target-down, a target that never answers before the idle timeout is its hang
    "target-crash": "target-down",
    "no-routable-target": "target-down",
    "target-timeout": "hang",
    "health-check-flapping": None,  # no testbed switch makes checks come and go
    "fixed-response": None,  # a listener rule's own answer: the testbed has no listener rules
}
_ONE_OFF = ("deploy", "worker-kill")
# What to do instead, for a cause the testbed has no switch for (default: by hand on the target)
BY_HAND = {
    "fixed-response": "it is the listener's own answer, not the targets': read the listener's "
    "rules (aws elbv2 describe-rules) instead",
}
# The replay's testbed, shaped like the original when the config does not shape it: one
# gunicorn per target on this machine, so a few targets at most; gthread workers whose threads
# hold the window's busiest moment (the catch-all sleeps each line's target time) with headroom.
MAX_TARGETS = 4
WORKERS = 2
MIN_THREADS, MAX_THREADS = 4, 64
HEADROOM = 1.5
# A window whose workers were killed at gunicorn's --timeout ran sync workers (gunicorn kills a
# sync worker whose request outlasts it; a gthread worker keeps its heartbeat while a thread
# sleeps, so the kills would not come back): one process per request at once, up to this many
# per target.
MAX_SYNC_WORKERS = 12


@dataclass(frozen=True)
class TestbedShape:
    """The testbed a replay runs on, and why it has that shape (printed with the plan)."""

    __test__ = False
    capacity: Capacity
    testbed: TestbedGroup
    why: str


def shape_testbed(cfg: Config, summary: PlanSummary, *, timeout_kills: int = 0) -> TestbedShape:
    """The original's targets (up to MAX_TARGETS) and enough gunicorn threads that the replayed
    traffic does not queue (its own overload would be a cause the original did not have), unless
    the config sets [capacity] or [testbed]: the user's testbed is kept as given.
    ``timeout_kills``: workers the window's log shows killed at gunicorn's --timeout (then sync
    workers, which gunicorn kills the same way)."""
    if cfg.capacity != Capacity() or cfg.testbed != TestbedGroup():
        return TestbedShape(cfg.capacity, cfg.testbed, "as [capacity] and [testbed] set it")
    targets = max(1, min(summary.targets, MAX_TARGETS))
    need = int(summary.peak_busy * HEADROOM) + 1
    if timeout_kills:
        workers = max(WORKERS, min(MAX_SYNC_WORKERS, -(-need // targets)))
        cap = dataclasses.replace(Capacity(), worker_class="sync", workers=workers, threads=1)
    else:
        threads = max(MIN_THREADS, min(MAX_THREADS, -(-need // (targets * WORKERS))))
        cap = dataclasses.replace(
            Capacity(), worker_class="gthread", workers=WORKERS, threads=threads
        )
    why = (
        f"shaped like the window: {summary.targets} target(s) in the log"
        + (f" (the testbed runs {MAX_TARGETS})" if summary.targets > MAX_TARGETS else "")
        + f", {summary.peak_busy} requests at the targets at once at the peak"
    )
    if timeout_kills:
        why += (
            f"; {timeout_kills} workers killed at gunicorn's --timeout in the log: sync workers, "
            "which gunicorn kills the same way"
        )
    if targets * cap.slots < summary.peak_busy:
        why += (
            f"; more than the testbed's {targets * cap.slots} slots: the replay will queue "
            "(lower --scale or --speed, or set [capacity])"
        )
    return TestbedShape(cap, dataclasses.replace(TestbedGroup(), targets=targets), why)


_WHOLE_RUN = ("keepalive-race", "cors-misconfig")  # the target's configuration, from the start


def cause_fault(cause: Cause, burst: tuple[float, float] | None, targets: int = 1) -> str | None:
    """The testbed fault that adds ``cause`` at its time, as `run --fault` reads it; ``burst`` is
    (first, last) replay second of the original's ALB-generated 5xx. None: the traffic makes this
    cause itself, or the testbed has no switch for it.

    A cause diagnosed with its own window (``cause.window``: when it struck, as an offset into
    the log window) wins over the burst. A window on one target, with a testbed of ``targets``
    > 1, puts the fault on the testbed's first target only: the original's "1 of N targets".
    The one place that maps a diagnosis to a fault.
    """
    fault = NOT_FROM_TRAFFIC.get(cause.id)
    if fault is None:
        return None
    window = getattr(cause, "window", None)
    one = targets > 1 and getattr(window, "target", None)
    if one and fault == "blocked-port":
        # the testbed blocks the whole group's port only; one target refusing connections
        # (the ALB's -1/-1/-1 502s on it alone) is what its target-down does to that target
        fault = "target-down"
    if one and fault in TARGET_FAULTS:
        fault = f"{fault}:1"
    if fault.split(":")[0] in _WHOLE_RUN:
        return f"{fault}@0s"
    first = last = None
    if window is not None:
        first = window.offset_s
        last = window.offset_s + max(0.0, window.last_ts - window.first_ts)
    if first is None and burst is not None:
        first, last = burst
    if first is None:
        return None
    if fault.split(":")[0] in _ONE_OFF:
        return f"{fault}@{first:g}s"
    return _during(fault, first, last if last is not None else first)


def _during(fault: str, first: float, last: float) -> str:
    """A fault on from ``first`` to a second past ``last`` (replay seconds)."""
    return f"{fault}@{first:g}s-{last + 1:g}s"


def shift(spec: str, by: float) -> str:
    """A fault spec moved ``by`` seconds later (the lead before the plan's offset 0)."""
    from albprobe.targets import _FAULT_SPEC

    m = _FAULT_SPEC.match(spec)
    assert m is not None, spec
    head = m["name"] + (f":{m['target']}" if m["target"] else "")
    on = float(m["on"]) + by
    return f"{head}@{on:g}s" + (f"-{float(m['off']) + by:g}s" if m["off"] else "")


@dataclass
class Diagnosis:
    """The original window's verdict, and what the replay needs to add to bring it back."""

    at_fault: str
    causes: list[dict[str, Any]]
    not_from_traffic: list[str]  # sentences: the cause and how the replay adds it
    faults: list[str]  # specs at replay seconds (without the lead)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def restart_faults(verdict: Verdict, cause: Cause, targets: int) -> list[str]:
    """A target-down read from several targets that went down and came back in turn (a deploy
    restarting each in place, analysis/causes/alb_log.came_back): one target-down per target, in
    the order they went down, on the testbed's targets 1, 2, ... (up to ``targets``), each at
    its own stretch. Empty: one target or none (``cause_fault`` places that one)."""
    pat = verdict.figures.get("alb_patterns") if cause.id == "target-down" else None
    back = alb_log.came_back(pat) if pat and targets > 1 else []
    if len(back) < 2:
        return []
    order = sorted(back, key=lambda t: float(t["refused_first_ts"]))[:targets]
    out = []
    for k, t in enumerate(order, start=1):
        # the same clock as a cause's own window (its offset into the log window)
        w = alb_log.window(pat, float(t["refused_first_ts"]), float(t["refused_last_ts"]), None)  # type: ignore[arg-type]
        out.append(_during(f"target-down:{k}", w.offset_s, w.offset_s + w.last_ts - w.first_ts))
    return out


def diagnose(verdict: Verdict, burst: tuple[float, float] | None, targets: int = 1) -> Diagnosis:
    notes, faults = [], []
    for c in verdict.causes:
        if c.id not in NOT_FROM_TRAFFIC:
            continue
        spec = cause_fault(c, burst, targets)
        if spec and not faults:  # the strongest such cause is the one the replay tests
            faults.extend(restart_faults(verdict, c, targets) or [spec])
            notes.append(
                f"{c.id} ({c.strength:.2f}): traffic alone does not create it; on the testbed, "
                f"--with-cause adds {', '.join(faults)}"
            )
        elif spec:
            notes.append(
                f"{c.id} ({c.strength:.2f}): traffic alone does not create it either (weaker; "
                f"`albprobe run --fault {spec}` adds it)"
            )
        else:
            notes.append(
                f"{c.id} ({c.strength:.2f}): traffic alone does not create it, and the testbed "
                f"has no switch for it: {BY_HAND.get(c.id, 'reproduce it on the target by hand')}"
            )
    return Diagnosis(
        verdict.at_fault,
        [{"id": c.id, "strength": round(c.strength, 3)} for c in verdict.causes],
        notes,
        faults,
    )


@dataclass
class ReplayRequest:
    source: str
    since: str | None
    until: str | None
    plan: PlanOptions
    config: Config
    s3_fetch: Callable[..., list[Path]] | None = None
    workers: int = 0
    with_cause: bool = False
    runs_root: Path = Path("runs")
    run_id: str | None = None
    gunicorn_timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    folder: Path  # plan.parquet, plan.json
    summary: PlanSummary
    diagnosis: Diagnosis
    users: int
    testbed: TestbedShape | None = None  # None: the target is not the testbed

    @property
    def plan_file(self) -> Path:
        return self.folder / "plan.parquet"


@contextmanager
def prepare(req: ReplayRequest) -> Iterator[Prepared]:
    """The plan (in a temporary folder while it is used) and the window's diagnosis."""
    import duckdb

    from analysis import pipeline, replay_compare

    t_since = pipeline.parse_when(req.since, name="--since")
    t_until = pipeline.parse_when(req.until, name="--until")
    if t_since is not None and t_until is not None and t_since >= t_until:
        raise ConfigError(
            f"--since {req.since} is not before --until {req.until}", hint="swap them"
        )
    with tempfile.TemporaryDirectory(prefix="albprobe-replay-") as tmp:
        logs = Path(tmp) / "alb-logs"
        files = pipeline.fetch_alb_logs(req.source, t_since, t_until, logs, s3_fetch=req.s3_fetch)
        folder = Path(tmp) / "plan"
        summary = build_plan(
            files,
            req.source,
            folder,
            since=t_since,
            until=t_until,
            opts=req.plan,
            load_balancer=req.config.aws.load_balancer,
        )
        local = str(logs) if logs.exists() else req.source  # s3:// was downloaded once
        verdict = pipeline.analyze_alb_logs(
            local,
            since=req.since,
            until=req.until,
            write=False,
            gunicorn_timeout=req.gunicorn_timeout,
        ).verdict
        with duckdb.connect() as con:
            b = replay_compare.original_burst(
                con, folder / "plan.parquet", req.plan.speed, alb_only=True
            )
        burst = (b.first_s, b.last_s) if b.count else None
        kills = int(verdict.figures.alb_timeout_kill or 0)
        tb = (
            shape_testbed(req.config, summary, timeout_kills=kills)
            if req.config.is_testbed
            else None
        )
        targets = tb.testbed.targets if tb is not None else 1
        yield Prepared(
            folder, summary, diagnose(verdict, burst, targets), users_for(summary, req), tb
        )


def users_for(summary: PlanSummary, req: ReplayRequest) -> int:
    """Browser users for the plan: the connections it keeps open at once (by the logged times),
    plus a second's worth of arrivals at the peak, since the replay's own answers (a new
    connection per lane, a loaded machine) take longer than the log says and a line that finds no
    idle user is dropped. Capped at max_users."""
    need = int(summary.peak_lanes * 1.2) + int(summary.peak_rps) + 2 * max(req.workers, 1)
    return max(1, min(need, req.config.safety.max_users))


def refuse(cfg: Config, prep: Prepared) -> None:
    """The caps: the scaled peak rate and the connections open at once."""
    s = prep.summary
    if s.sent and s.peak_rps > cfg.safety.max_rps:
        raise ConfigError(
            f"the replay's peak is {s.peak_rps:g} requests/s (second {s.peak_second:g}, x{s.scale:g} "
            f"scale, x{s.speed:g} speed), above safety.max_rps = {cfg.safety.max_rps:g}",
            hint="lower --scale or --speed, cut the window, or raise [safety] max_rps deliberately",
        )
    if s.peak_lanes > cfg.safety.max_users:
        raise ConfigError(
            f"the replay keeps {s.peak_lanes} connections open at once, above "
            f"safety.max_users = {cfg.safety.max_users}",
            hint="lower --scale or --speed, or raise [safety] max_users deliberately",
        )
    if not s.sent:
        raise ConfigError(
            f"nothing to send: none of the window's {s.lines:,} lines is sendable "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(s.actions.items()))})",
            hint="widen --paths or the window, or allow writes with --allow-writes and [replay.bodies]",
        )


def run_options(req: ReplayRequest, prep: Prepared) -> Any:
    """The `albprobe run` of the plan: the replay shape, enough users, the faults on the plan's
    clock (after the lead)."""
    from albprobe.runner import ReplayRun, RunOptions, parse_fault_schedule
    from testbed.config import FAULTS

    lead = LEAD_WORKERS_S if req.workers else LEAD_S
    tail = TAIL_S + min(60.0, _max_target_s(prep))
    cfg = req.config
    load = dataclasses.replace(
        cfg.load, duration=lead + prep.summary.duration_s + tail, max_vus=prep.users
    )
    # (the command refused --with-cause without the testbed; runner.validate refuses faults too)
    faults = [shift(f, lead) for f in prep.diagnosis.faults] if req.with_cause else []
    overrides: dict[str, Any] = {}
    if prep.testbed is not None:
        cfg = dataclasses.replace(cfg, capacity=prep.testbed.capacity, testbed=prep.testbed.testbed)
        # the ALB's health check, not the testbed's 1-s one: how long a dead target kept
        # getting requests is part of the incident (ALB defaults: 30 s x 2 failures to take it out)
        hc = cfg.aws.health_check
        overrides = dict(
            health_interval=hc.interval,
            health_timeout=hc.timeout,
            healthy_threshold=hc.healthy_threshold,
            unhealthy_threshold=hc.unhealthy_threshold,
        )
    return RunOptions(
        config=dataclasses.replace(cfg, load=load),
        testbed_overrides=overrides,
        shape="replay",
        workers=req.workers,
        faults=parse_fault_schedule(faults, FAULTS),
        runs_root=req.runs_root,
        run_id=req.run_id,
        replay=ReplayRun(prep.plan_file, req.plan.speed, lead),
    )


def _max_target_s(prep: Prepared) -> float:
    import duckdb

    from analysis.parsers.common import sql_str

    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT coalesce(max(target_ms), 0) / 1000 FROM read_parquet({sql_str(str(prep.plan_file))}) "
            "WHERE action = 'send'"
        ).fetchall()[0]
    return float(row[0])


def keep_plan(rundir: Path, prep: Prepared, req: ReplayRequest, start: float | None) -> None:
    """The plan and the replay's facts into the run directory (run.json ``replay``)."""
    from core.rundir import RunDir

    dest = rundir / "replay"
    dest.mkdir(exist_ok=True)
    for name in ("plan.parquet", "plan.json"):
        shutil.copy2(prep.folder / name, dest / name)
    rd = RunDir(rundir)
    meta = rd.read_meta()
    meta["replay"] = {
        "source": req.source,
        "since": req.since,
        "until": req.until,
        "start": start,
        "speed": req.plan.speed,
        "scale": req.plan.scale,
        "with_cause": req.with_cause,
        "faults": prep.diagnosis.faults if req.with_cause else [],
        "diagnosis": prep.diagnosis.to_dict(),
        "not_from_traffic": "; ".join(prep.diagnosis.not_from_traffic) or None,
        "plan": prep.summary.to_dict(),
    }
    meta["files"] = sorted(p.name for p in rundir.iterdir() if p.name != "run.json")
    rd.write_meta(meta)
