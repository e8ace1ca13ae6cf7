"""`albprobe tune` orchestration: open-model steps until the SLO breaks, then the fit, the
recommendation and, on the testbed, the proof at the recommended setting.

The steps of a pass run in one Locust process: one `albprobe run` of the `rate-steps` shape
(albprobe/stepped.py) into <tune dir>/steps/<pass>/, asked for one at a time, each next rate chosen
from the previous step's figures (read from its rows). On the testbed the tuner owns the testbed for the whole session, so
that it can read the gunicorn workers' memory and CPU time around each step and restart gunicorn
with the recommended setting; the steps then target its proxy URL.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.capacity import (
    Memory,
    PassResult,
    StepFigures,
    StepWindow,
    TuneResult,
    check_slo,
    next_rate,
    recommend,
    summarise_pass,
    window_figures,
)
from analysis.reports.thresholds import Threshold
from core.config import Capacity, Config
from core.errors import AlbprobeError, ConfigError

Log = Callable[[str], None]


@dataclass
class TuneOptions:
    config: Config
    slo: list[Threshold]
    out: Path
    start_rate: float = 5.0
    growth: float = 1.5
    max_rate: float | None = None  # default: [safety] max_rps
    resolution: float = 0.1
    step_duration: float = 10.0
    budget: int = 8  # steps per pass
    target_rps: float | None = None  # default: the lowest offered rate that broke the SLO
    headroom: float = 0.3
    cpu_share: float | None = None
    worker_memory_mb: float | None = None
    memory_limit_mb: float | None = None
    ssm_stats: bool = False
    prove: bool = True
    max_threads: int = 8


@dataclass
class _Session:
    opts: TuneOptions
    log: Log
    url: str
    tb: Any = None  # the Testbed, when it is the target
    interrupted: str | None = None
    pss_mb: list[float] = field(default_factory=list)  # mean worker PSS after each step
    cap: Capacity | None = None  # the setting the current pass loads (recorded in its run.json)

    @property
    def cfg(self) -> Config:
        return self.opts.config


def validate(opts: TuneOptions) -> None:
    """Bad tuning arguments get one line naming the option and the fix."""
    safety = opts.config.safety
    max_rate = opts.max_rate if opts.max_rate is not None else safety.max_rps
    checks = [
        (opts.start_rate > 0, "--start-rate must be > 0"),
        (opts.growth > 1, "--growth must be > 1 (e.g. 1.5)"),
        (0 < opts.resolution < 1, "--resolution must be between 0 and 1 (e.g. 0.1)"),
        (opts.step_duration >= 2, "--step must be at least 2s"),
        (opts.budget >= 1, "--steps must be >= 1"),
        (opts.headroom >= 0, "--headroom must be >= 0"),
        (opts.target_rps is None or opts.target_rps > 0, "--target-rps must be > 0"),
        (opts.cpu_share is None or 0 < opts.cpu_share <= 1, "--cpu-share must be in (0, 1]"),
        (opts.worker_memory_mb is None or opts.worker_memory_mb > 0, "--worker-memory must be > 0"),
        (opts.memory_limit_mb is None or opts.memory_limit_mb > 0, "--memory-limit must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if max_rate > safety.max_rps:
        raise ConfigError(
            f"--max-rate {max_rate:g} is above safety.max_rps = {safety.max_rps:g}",
            hint="lower --max-rate or raise [safety] max_rps deliberately",
        )
    if opts.target_rps is not None and opts.prove and opts.target_rps > safety.max_rps:
        raise ConfigError(
            f"--target-rps {opts.target_rps:g} is above safety.max_rps = {safety.max_rps:g}, "
            "so the proof could not run it",
            hint="lower --target-rps, pass --no-prove, or raise [safety] max_rps deliberately",
        )
    if opts.start_rate > max_rate:
        raise ConfigError(f"--start-rate {opts.start_rate:g} is above the max rate {max_rate:g}")
    if opts.ssm_stats and opts.config.is_testbed:
        raise ConfigError(
            "--ssm-stats reads a real target's containers", hint="drop it for the testbed"
        )


def _capacity_dict(cap: Capacity) -> dict[str, Any]:
    return {
        "worker_class": cap.worker_class,
        "workers": cap.workers,
        "threads": cap.threads if cap.worker_class == "gthread" else 1,
        "slots": cap.slots,
        "keepalive": cap.keepalive,
    }


def _cpu(s: _Session) -> tuple[float, float | None] | None:
    """CPU seconds of the current workers and the seconds they waited for a CPU; a worker
    replaced mid-step makes the delta unusable, which the caller sees as a decrease and drops."""
    if s.tb is None:
        return None
    usage = s.tb.worker_usage()
    if not usage:
        return None
    waits = [u.wait_seconds for u in usage]
    wait = None if any(w is None for w in waits) else sum(w for w in waits if w is not None)
    return sum(u.cpu_seconds for u in usage), wait


def cpu_share_of(
    cpu_seconds: float, wait_seconds: float | None, requests: int, service_ms: float
) -> float | None:
    """The share of a request's service time its worker spends on a CPU. The service time was
    measured on this machine: time a worker spent runnable but waiting for a core (other
    processes' load, not the request's work) is taken out of it, so a busy machine does not
    make a CPU-bound endpoint look I/O-bound."""
    busy = requests * service_ms / 1000.0 - (wait_seconds or 0.0)
    busy = max(busy, cpu_seconds)  # never above 1: the wait cannot exceed the time in system
    return min(1.0, cpu_seconds / busy) if busy > 0 else None


def _describe(step: StepFigures, holds: bool, failed: tuple[str, ...]) -> str:
    x = f"{step.throughput_rps:.1f}" if step.throughput_rps is not None else "-"
    p99 = f"{step.p99_ms:.0f} ms" if step.p99_ms is not None else "-"
    verdict = "holds" if holds else "BROKEN: " + "; ".join(failed)
    return (
        f"  {step.offered_rps:7.2f} req/s offered -> {x} req/s done, p99 {p99}, "
        f"5xx {step.rate_5xx or 0:.1%}  SLO {verdict}"
    )


Rates = Callable[[list[tuple[float, bool]]], "float | None"]


def _steps(s: _Session, pass_name: str, rates: Rates, most: int) -> list[StepFigures]:
    """The steps of one pass, all in one Locust process (albprobe/stepped.py): ``rates`` gives
    each next rate from the (rate, SLO held) pairs so far. A step the abort rule cut short ends
    that process; the pass goes on in a new one."""
    from albprobe.stepped import SteppedOptions, run_stepped

    o = s.opts
    steps: list[StepFigures] = []
    tried: list[tuple[float, bool]] = []
    cpu0: list[tuple[float, float | None] | None] = [None]

    def next_rate() -> float | None:
        rate = rates(tried) if s.interrupted is None else None
        cpu0[0] = _cpu(s)
        return rate

    def on_step(run_dir: Path, window: StepWindow) -> None:
        cpu1 = _cpu(s)
        if s.tb is not None:
            pss = [u.pss_mb if u.pss_mb is not None else u.rss_mb for u in s.tb.worker_usage()]
            if pss:
                s.pss_mb.append(sum(pss) / len(pss))
        c0 = cpu0[0]
        cpu = wait = None
        if c0 is not None and cpu1 is not None and cpu1[0] >= c0[0]:
            cpu = cpu1[0] - c0[0]
            if c0[1] is not None and cpu1[1] is not None and cpu1[1] >= c0[1]:
                wait = cpu1[1] - c0[1]
        step = window_figures(run_dir, window, cpu_seconds=cpu, cpu_wait_seconds=wait)
        check = check_slo(step, o.slo)
        s.log(_describe(step, check.holds, check.failed))
        steps.append(step)
        tried.append((window.offered_rps, check.holds))

    segment = 0
    # rates() is pure: a pass (or, after an abort, a new process) starts only with a step to run.
    while s.interrupted is None and len(steps) < most and rates(tried) is not None:
        segment += 1
        before = len(steps)
        result = run_stepped(
            SteppedOptions(
                config=dataclasses.replace(s.cfg, target=s.url, capacity=s.cap),
                runs_root=o.out / "steps",
                run_id=pass_name if segment == 1 else f"{pass_name}-{segment}",
                step_duration=o.step_duration,
                max_rate=_max_rate(s),
                max_steps=most - len(steps),
            ),
            next_rate,
            on_step,
        )
        reason = result.status_reason or ""
        if result.status == "partial" and ("Ctrl-C" in reason or "SIGTERM" in reason):
            s.interrupted = reason
        if result.status == "complete" or len(steps) == before:
            break
    return steps


def _max_rate(s: _Session) -> float:
    return s.opts.max_rate if s.opts.max_rate is not None else s.cfg.safety.max_rps


def _search(s: _Session, pass_name: str) -> tuple[list[StepFigures], list[str]]:
    """Grow, then bisect, until the planner is done or the budget is spent."""
    o = s.opts

    def rates(tried: list[tuple[float, bool]]) -> float | None:
        return next_rate(
            tried,
            start=o.start_rate,
            growth=o.growth,
            max_rate=_max_rate(s),
            resolution=o.resolution,
            budget=o.budget,
        )

    steps = _steps(s, pass_name, rates, o.budget)
    notes = [
        f"the step at {st.offered_rps:g} req/s was cut short by the abort rule "
        f"({st.status_reason}); it counts as a broken SLO and no higher rate was tried"
        for st in steps
        if st.status == "aborted"
    ]
    if s.interrupted:
        notes.append(f"tuning stopped early: {s.interrupted}")
    return steps, notes


def _fixed(s: _Session, pass_name: str, rates: list[float]) -> list[StepFigures]:
    return _steps(
        s,
        pass_name,
        lambda tried: rates[len(tried)] if len(tried) < len(rates) else None,
        len(rates),
    )


def _measurements(s: _Session, before: PassResult) -> tuple[dict[str, Any], Memory | None]:
    """Service time (the lowest step's mean time in system), CPU share, memory per worker."""
    o = s.opts
    complete = [st for st in before.steps if st.status == "complete" and st.mean_ms]
    lowest = min(complete, key=lambda st: st.offered_rps) if complete else None
    m: dict[str, Any] = {"service_ms": lowest.mean_ms if lowest else None}
    m["service_source"] = (
        f"mean time in system at the lowest step ({lowest.offered_rps:g} req/s)" if lowest else None
    )
    cpu_share, cpu_source = o.cpu_share, "--cpu-share" if o.cpu_share else None
    if cpu_share is None and s.tb is not None and lowest is not None:
        measured = [st for st in before.steps if st.cpu_seconds is not None]
        waits = [st.cpu_wait_seconds for st in measured]
        wait = None if None in waits else sum(w for w in waits if w is not None)
        if measured and lowest.mean_ms:
            cpu_share = cpu_share_of(
                sum(st.cpu_seconds or 0.0 for st in measured),
                wait,
                sum(st.ok for st in measured),
                lowest.mean_ms,
            )
            cpu_source = "testbed: gunicorn workers' CPU time / (requests x service time" + (
                " - time they waited for a CPU)" if wait is not None else ")"
            )
    m["cpu_share"], m["cpu_source"] = cpu_share, cpu_source
    m["cores"] = os.cpu_count() if s.tb is not None else None
    memory = None
    if o.worker_memory_mb is not None:
        memory = Memory(
            per_worker_mb=o.worker_memory_mb, source="--worker-memory", limit_mb=o.memory_limit_mb
        )
    elif s.pss_mb:
        memory = Memory(
            per_worker_mb=max(s.pss_mb),
            source="testbed: peak mean PSS of the gunicorn workers",
            limit_mb=o.memory_limit_mb,
        )
    elif o.ssm_stats:
        memory = _ssm_memory(s)
    m["memory"] = dataclasses.asdict(memory) if memory else None
    return m, memory


def _ssm_memory(s: _Session) -> Memory | None:
    """Opt-in, read-only: `docker stats` + `docker top` of the API container on each instance
    target, through SSM Run Command. Trouble is logged; the recommendation then says memory is
    unknown."""
    from probes.aws.collectors import container_memory_via_ssm
    from probes.aws.gather import resolve_target_group
    from probes.aws.session import AwsClients

    aws = s.cfg.aws
    if not (aws.target_group or aws.load_balancer):
        s.log("--ssm-stats: set [aws] load_balancer or target_group to find the instances")
        return None
    try:
        clients = AwsClients.from_config(aws)
        _, tg = resolve_target_group(clients, aws.load_balancer, aws.target_group)
        desc = clients.elbv2.describe_target_health(TargetGroupArn=tg)
        ids = [d["Target"]["Id"] for d in desc["TargetHealthDescriptions"]]
        readings = [
            container_memory_via_ssm(clients, i, aws.container) for i in ids if i.startswith("i-")
        ]
    except Exception as exc:
        why = exc.one_line() if isinstance(exc, AlbprobeError) else f"{type(exc).__name__}: {exc}"
        s.log(f"--ssm-stats: {why}")
        return None
    per = [r.per_worker_mb for r in readings if r.per_worker_mb]
    limits = [r.limit_mb for r in readings if r.limit_mb]
    if not per:
        s.log("--ssm-stats: no gunicorn worker found in `docker top` of the container")
        return None
    return Memory(
        per_worker_mb=max(per),
        source=f"docker top via SSM on {len(readings)} instance(s): worker RSS (shared pages "
        "counted in each, so an upper bound)",
        limit_mb=s.opts.memory_limit_mb
        if s.opts.memory_limit_mb is not None
        else min(limits, default=None),
    )


def tune(opts: TuneOptions, *, log: Log = lambda s: None) -> TuneResult:
    validate(opts)
    cfg = opts.config
    opts.out.mkdir(parents=True, exist_ok=True)
    if cfg.is_testbed:
        from testbed import Testbed

        tb = Testbed(_testbed_config(cfg, opts.out))
        log(
            f"starting the testbed: gunicorn {cfg.capacity.workers} x {cfg.capacity.worker_class}"
            + (
                f" x {cfg.capacity.threads} threads"
                if cfg.capacity.worker_class == "gthread"
                else ""
            )
        )
        with tb:
            tb.wait_for_health("UP")
            return _session(_Session(opts, log, tb.url, tb))
    return _session(_Session(opts, log, cfg.target))


def _session(s: _Session) -> TuneResult:
    o, cfg = s.opts, s.cfg
    slo_text = tuple(t.text for t in o.slo)
    s.log(f"pass 1: the current setting, SLO {' and '.join(slo_text)}")
    t0 = time.monotonic()
    s.cap = cfg.capacity
    steps, notes = _search(s, "before")
    before = summarise_pass("before", _capacity_dict(cfg.capacity), steps, o.slo, notes)
    statements = [before.knee.statement, *notes]
    measurements, memory = _measurements(s, before)
    rec = None
    if before.knee.step is None or measurements["service_ms"] is None:
        statements.append("no recommendation: no step held the SLO")
    else:
        knee = before.knee
        target = o.target_rps or (
            knee.broke.offered_rps if knee.broke else max(st.offered_rps for st in before.steps)
        )
        rec = recommend(
            target_rps=target,
            service_ms=measurements["service_ms"],
            headroom=o.headroom,
            cpu_share=measurements["cpu_share"],
            cores=measurements["cores"],
            memory=memory,
            max_threads=o.max_threads,
            # N* is a finding only when a measured step beyond it really lost throughput.
            usl_peak_concurrency=(
                before.fit.peak_concurrency if before.fit.retrograde_measured else None
            ),
            proxy_idle_timeout=cfg.proxy.idle_timeout,
        )
        s.log(f"recommendation for {target:g} req/s: gunicorn {rec.gunicorn_args}")
    after = None
    if rec is not None and s.tb is not None and o.prove and s.interrupted is None:
        new = Capacity(
            worker_class=rec.worker_class,
            workers=rec.workers,
            threads=rec.threads,
            timeout=cfg.capacity.timeout,
            keepalive=rec.keepalive if rec.keepalive is not None else cfg.capacity.keepalive,
        )
        s.log(f"pass 2: restarting gunicorn with {rec.gunicorn_args}; the same steps again")
        s.tb.reconfigure(
            worker_class=new.worker_class,
            workers=new.workers,
            threads=new.threads,
            keepalive=new.keepalive,
        )
        rates = sorted({st.offered_rps for st in before.steps} | {rec.target_rps})
        s.cap = new
        after_steps = _fixed(s, "after", rates)
        after = summarise_pass("after", _capacity_dict(new), after_steps, o.slo)
    elif rec is not None and s.tb is None:
        statements.append(
            "not proven: the proof restarts gunicorn, which albprobe only does on the testbed; "
            "deploy the setting and run `albprobe tune` again"
        )
    result = TuneResult(
        target=cfg.target,
        slo=slo_text,
        before=before,
        recommendation=rec,
        after=after,
        statements=tuple(statements),
        measurements=measurements | {"elapsed_s": time.monotonic() - t0},
    )
    if after is not None and rec is not None:
        verb = "holds" if result.proof_holds else "does NOT hold"
        proof = (
            f"proof: at {rec.gunicorn_args} the SLO {verb} at the target {rec.target_rps:g} req/s"
        )
        result = dataclasses.replace(result, statements=(*result.statements, proof))
    return result


def _testbed_config(cfg: Config, out: Path):
    from testbed import TestbedConfig

    cap = cfg.capacity
    try:
        return TestbedConfig(
            worker_class=cap.worker_class,
            workers=cap.workers,
            threads=cap.threads,
            timeout=cap.timeout,
            keepalive=cap.keepalive,
            idle_timeout=cfg.proxy.idle_timeout,
            health_interval=1.0,
            health_timeout=0.5,
            log_dir=out / "testbed-logs",
            front_origin=cfg.browser.origin,
        )
    except ValueError as exc:
        raise ConfigError(f"testbed: {exc}") from None


def default_out(root: Path) -> Path:
    return root / f"tune-{time.strftime('%Y%m%d-%H%M%S')}"


__all__ = ["TuneOptions", "default_out", "tune", "validate"]
