"""gunicorn workers x threads for a target throughput, from the service time and the CPU share.

The arithmetic (Little's law and the GIL), step by step in ``Recommendation.arithmetic``:

* concurrency in flight L = T x S; slots = ceil(L x (1 + headroom)).
* CPU share c = CPU time / service time. A gunicorn worker is one Python process, so its threads
  share one core (the GIL): a worker can overlap at most 1/c requests. With c <= 1/2 the endpoint
  mix is I/O-bound and gthread gives the same slots as sync for far less memory (threads share a
  worker's memory); above that threads only queue on the GIL, and sync workers are the better fit.
* at least two workers, so that one crash or restart does not take the target down.
* gthread keeps connections open between requests: its --keep-alive must outlast the proxy's idle
  timeout, or the proxy reuses a connection gunicorn is closing (a 502: the keep-alive race).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

IO_BOUND_SHARE = 0.5
MIN_WORKERS = 2


def safe_keepalive(proxy_idle_timeout: float | None) -> int:
    """gunicorn --keep-alive that outlasts the proxy's idle timeout (the ALB default is 60 s)."""
    return int((proxy_idle_timeout or 60) + 5)


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """Memory of one gunicorn worker, and where the figure comes from."""

    per_worker_mb: float
    source: str  # "testbed (PSS of N workers)", "docker stats via SSM", "--worker-memory"
    limit_mb: float | None = None  # the container's or host's memory limit, when known


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    worker_class: str
    workers: int
    threads: int
    target_rps: float
    service_ms: float
    headroom: float
    cpu_share: float | None
    slots: int
    capacity_rps: float  # what the recommended setting can serve at the measured service time
    memory_total_mb: float | None = None
    arithmetic: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    memory: Memory | None = None
    why_class: str = ""
    keepalive: int | None = None  # gthread only: seconds, above the proxy's idle timeout

    @property
    def gunicorn_args(self) -> str:
        args = f"--workers {self.workers} --worker-class {self.worker_class}"
        if self.worker_class == "gthread":
            args += f" --threads {self.threads} --keep-alive {self.keepalive}"
        return args

    def to_json(self) -> dict[str, Any]:
        return {
            "worker_class": self.worker_class,
            "workers": self.workers,
            "threads": self.threads,
            "keepalive": self.keepalive,
            "gunicorn_args": self.gunicorn_args,
            "target_rps": self.target_rps,
            "service_ms": self.service_ms,
            "headroom": self.headroom,
            "cpu_share": self.cpu_share,
            "slots": self.slots,
            "capacity_rps": self.capacity_rps,
            "memory_per_worker_mb": self.memory.per_worker_mb if self.memory else None,
            "memory_source": self.memory.source if self.memory else None,
            "memory_limit_mb": self.memory.limit_mb if self.memory else None,
            "memory_total_mb": self.memory_total_mb,
            "why_class": self.why_class,
            "arithmetic": list(self.arithmetic),
            "notes": list(self.notes),
        }


@dataclass
class _Lines:
    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.lines.append(text)


def recommend(
    *,
    target_rps: float,
    service_ms: float,
    headroom: float = 0.3,
    cpu_share: float | None = None,
    cores: int | None = None,
    memory: Memory | None = None,
    max_threads: int = 8,
    usl_peak_concurrency: float | None = None,
    proxy_idle_timeout: float | None = None,
) -> Recommendation:
    if target_rps <= 0 or service_ms <= 0:
        raise ValueError("target_rps and service_ms must be > 0")
    s = service_ms / 1000.0
    a = _Lines()
    notes: list[str] = []
    load = target_rps * s
    slots = max(1, math.ceil(load * (1 + headroom) - 1e-9))
    a.add(
        f"in flight at the target: L = T x S = {target_rps:g} req/s x {service_ms:.0f} ms = {load:.2f}"
    )
    a.add(f"slots with {headroom:.0%} headroom: ceil({load:.2f} x {1 + headroom:g}) = {slots}")
    threads_cap = 1
    if cpu_share is None:
        why = (
            "the CPU share of the service time is unknown, so the safe choice is sync "
            "(measure it on the testbed, or pass --cpu-share)"
        )
    else:
        cpu_busy = load * cpu_share
        a.add(
            f"CPU share c = {cpu_share:.1%} of the service time -> {cpu_busy:.2f} core(s) busy at the target"
        )
        if cores is not None and cpu_busy * (1 + headroom) > cores:
            notes.append(
                f"the target needs {cpu_busy * (1 + headroom):.1f} cores with headroom and the host "
                f"has {cores}: no gunicorn setting fixes that; add instances or make requests cheaper"
            )
        if cpu_share <= IO_BOUND_SHARE:
            threads_cap = max(2, min(max_threads, math.floor(1 / max(cpu_share, 1e-6))))
            why = (
                f"I/O-bound (c = {cpu_share:.0%} <= {IO_BOUND_SHARE:.0%}): a worker's threads overlap "
                f"the waiting, up to 1/c = {1 / max(cpu_share, 1e-6):.0f} per worker (capped at "
                f"{max_threads}), so gthread gives the slots for a fraction of sync's memory"
            )
        else:
            why = (
                f"CPU-bound (c = {cpu_share:.0%} > {IO_BOUND_SHARE:.0%}): threads in one worker "
                "queue on the GIL, so each slot needs its own process: sync"
            )
    if threads_cap >= 2:
        cpu_workers = math.ceil(load * (cpu_share or 0) * (1 + headroom))
        workers = max(MIN_WORKERS, math.ceil(slots / threads_cap), cpu_workers)
        threads = math.ceil(slots / workers)
        worker_class = "gthread"
        a.add(
            f"gthread: workers = max({MIN_WORKERS}, ceil({slots} / {threads_cap}), CPU {cpu_workers}) = "
            f"{workers}; threads = ceil({slots} / {workers}) = {threads}"
        )
        keepalive: int | None = safe_keepalive(proxy_idle_timeout)
        a.add(
            f"gthread keeps connections open: --keep-alive {keepalive} s > the proxy's idle "
            f"timeout {proxy_idle_timeout or 60:g} s, so the proxy never reuses a closing one"
        )
    else:
        keepalive = None
        workers, threads, worker_class = max(MIN_WORKERS, slots), 1, "sync"
        a.add(f"sync: workers = max({MIN_WORKERS}, {slots}) = {workers}")
        if cores is not None and workers > 2 * cores + 1 and (cpu_share or 1) > IO_BOUND_SHARE:
            notes.append(
                f"{workers} CPU-bound workers on {cores} cores: beyond about 2 x cores + 1 "
                "they only add context switches"
            )
    provided = workers * threads
    capacity = provided / s
    if cpu_share:
        capacity = min(capacity, workers / (s * cpu_share))  # one core per worker at most
    a.add(
        f"capacity: {provided} slots / {service_ms:.0f} ms = {capacity:.1f} req/s "
        f"(target {target_rps:g} req/s, {capacity / target_rps - 1:+.0%})"
    )
    total = None
    if memory is not None:
        total = workers * memory.per_worker_mb
        a.add(
            f"memory: {workers} workers x {memory.per_worker_mb:.0f} MB ({memory.source}) = {total:.0f} MB"
        )
        if memory.limit_mb is not None:
            if total > memory.limit_mb * 0.8:
                notes.append(
                    f"{total:.0f} MB of workers against a {memory.limit_mb:.0f} MB limit: this "
                    "trades 502s for OOM kills; raise the limit, add instances"
                    + (
                        " or use gthread with more threads per worker"
                        if worker_class == "sync"
                        else ""
                    )
                )
            else:
                a.add(f"fits the {memory.limit_mb:.0f} MB limit ({total / memory.limit_mb:.0%})")
    else:
        notes.append(
            "memory per worker unknown: check that the workers fit the host before deploying "
            "(--worker-memory, or --ssm-stats against a real target)"
        )
    if usl_peak_concurrency is not None and usl_peak_concurrency < provided:
        notes.append(
            f"the USL fit predicts throughput peaks at {usl_peak_concurrency:.1f} requests in "
            f"flight, below the {provided} slots: a shared resource (database, lock) limits "
            "throughput, and more slots beyond that lower it"
        )
    return Recommendation(
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        target_rps=target_rps,
        service_ms=service_ms,
        headroom=headroom,
        cpu_share=cpu_share,
        slots=provided,
        capacity_rps=capacity,
        memory_total_mb=total,
        arithmetic=tuple(a.lines),
        notes=tuple(notes),
        memory=memory,
        why_class=why,
        keepalive=keepalive,
    )
