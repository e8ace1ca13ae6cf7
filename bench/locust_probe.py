"""A measuring add-on loaded beside the locustfile under test (`-f user.py,bench/locust_probe.py`),
so the bare and the albprobe user are measured by the same code. Writes JSON to $ALBBENCH_OUT at
`quit`, after albprobe's own final flush (its listener was registered first):

* cpu_s / requests: the process's user + sys CPU time (every thread, so the Parquet writer thread
  is counted) and Locust's request count, from `test_start` to `quit`: start-up imports excluded,
  the final flush included;
* with ALBBENCH_STALL=1, the event loop's stalls: a greenlet sleeps 1 ms in a loop while the users
  run and records how late it wakes (milliseconds past the 1 ms), raw and net of the time the OS
  kept the process off the CPU;
* the time each flush of albprobe's requests writer keeps the event loop (flush_ms);
* with ALBBENCH_SYNC_WRITE=1, albprobe writes its Parquet parts in the event loop (the behaviour
  before the background writer: the baseline of bench_loop_stall.py); ALBBENCH_SWITCH_MS sets the
  GIL switch interval albprobe uses with its writer thread (default 1 ms).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from array import array

import gevent
from locust import events

if os.environ.get("ALBBENCH_SYNC_WRITE") == "1":
    from probes.loadgen import plugin

    plugin.BACKGROUND_WRITES = False
if os.environ.get("ALBBENCH_SWITCH_MS"):
    from probes.loadgen import plugin

    plugin.SWITCH_INTERVAL = float(os.environ["ALBBENCH_SWITCH_MS"]) / 1000.0

_STATE: dict = {"late": array("d"), "net": array("d"), "running": False}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _sample_stalls() -> None:
    """Sleep 1 ms in a loop; record how late each wake is, raw and net of the time the OS kept
    this thread waiting for a CPU (its run-queue delay, /proc/thread-self/schedstat). On a shared
    machine the raw figure is mostly other processes' load; the net one is the loop's own."""
    late, net = _STATE["late"], _STATE["net"]
    clock = time.perf_counter
    try:
        sched = open("/proc/thread-self/schedstat", "rb")  # noqa: SIM115 (read all along)
    except OSError:
        sched = None

    def run_delay_ms() -> float:
        if sched is None:
            return 0.0
        sched.seek(0)
        return int(sched.read().split()[1]) / 1e6

    while _STATE["running"]:
        d0, t0 = run_delay_ms(), clock()
        gevent.sleep(0.001)
        raw = (clock() - t0) * 1000.0 - 1.0
        late.append(raw)
        net.append(max(0.0, raw - (run_delay_ms() - d0)))


def _on_gc(phase: str, info: dict) -> None:
    """Time the interpreter's garbage collections per generation (a full one walks the whole
    heap in one go: a stall of its own, with or without albprobe)."""
    if phase == "start":
        _STATE["gc_t0"] = time.perf_counter()
    elif "gc_t0" in _STATE:
        ms = (time.perf_counter() - _STATE.pop("gc_t0")) * 1000.0
        gen = _STATE.setdefault("gc", {}).setdefault(
            str(info["generation"]), {"count": 0, "max_ms": 0.0, "total_ms": 0.0}
        )
        gen["count"] += 1
        gen["max_ms"] = max(gen["max_ms"], ms)
        gen["total_ms"] += ms


def _time_flushes() -> None:
    """Time each flush of albprobe's requests writer where it runs, in the event loop: the
    whole Parquet write when written in the loop, the hand-over (and any back-pressure wait)
    with the background writer. Independent of the machine's other load, unlike the stalls."""
    try:
        from probes.loadgen import plugin
    except ImportError:
        return
    writer = plugin.SESSION.writer if plugin.SESSION is not None else None
    if writer is None:
        return
    flush, times = writer.flush, _STATE.setdefault("flush_ms", array("d"))

    def timed() -> None:
        t0 = time.perf_counter()
        flush()
        times.append((time.perf_counter() - t0) * 1000.0)

    writer.flush = timed


def _on_test_start(environment, **_kw) -> None:
    gc.callbacks.append(_on_gc)
    if "probes.loadgen.plugin" in sys.modules:
        _time_flushes()
    _STATE["cpu0"] = _cpu()
    _STATE["t0"] = time.time()
    if os.environ.get("ALBBENCH_STALL") == "1":
        _STATE["running"] = True
        gevent.spawn(_sample_stalls)


def _on_test_stopping(environment, **_kw) -> None:
    _STATE["running"] = False
    if _on_gc in gc.callbacks:
        gc.callbacks.remove(_on_gc)


def _percentile(sorted_xs: list[float], q: float) -> float:
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))] if sorted_xs else 0.0


def _stall_figures(xs: list[float]) -> dict[str, float]:
    return {
        "samples": len(xs),
        "p50_ms": _percentile(xs, 0.5),
        "p99_ms": _percentile(xs, 0.99),
        "p999_ms": _percentile(xs, 0.999),
        "max_ms": xs[-1] if xs else 0.0,
    }


def _on_quit(environment, **_kw) -> None:
    out = os.environ.get("ALBBENCH_OUT")
    if not out or "cpu0" not in _STATE:
        return
    data = {
        "cpu_s": _cpu() - _STATE["cpu0"],
        "wall_s": time.time() - _STATE["t0"],
        "requests": environment.stats.total.num_requests,
        "stall": _stall_figures(sorted(_STATE["late"])),
        "stall_net": _stall_figures(sorted(_STATE["net"])),
        "gc": _STATE.get("gc", {}),
        "flush_ms": list(_STATE.get("flush_ms", ())),
    }
    with open(out, "w") as f:
        json.dump(data, f)


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    # Registered here, after albprobe's init listener registered its own `quit` listener: ours
    # then runs after albprobe's final flush, which is thus measured.
    ev = environment.events
    ev.test_start.add_listener(_on_test_start)
    ev.test_stopping.add_listener(_on_test_stopping)
    ev.quit.add_listener(lambda **kw: _on_quit(environment, **kw))
