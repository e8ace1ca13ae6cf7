"""A measuring add-on loaded beside the locustfile under test (`-f user.py,bench/locust_probe.py`),
so the bare and the albprobe user are measured by the same code. Writes JSON to $ALBBENCH_OUT at
`quit`, after albprobe's own final flush (its listener was registered first):

* cpu_s / requests: the process's user + sys CPU time (every thread, so the Parquet writer thread
  is counted) and Locust's request count, from `test_start` to `quit`: start-up imports excluded,
  the final flush included;
* with ALBBENCH_STALL=1, the event loop's stalls: a greenlet sleeps 1 ms in a loop while the users
  run and records how late it wakes (milliseconds past the 1 ms), raw and net of the time the OS
  kept the process off the CPU;
* with ALBBENCH_SYNC_WRITE=1, albprobe writes its Parquet parts in the event loop (the behaviour
  before the background writer: the baseline of bench_loop_stall.py); ALBBENCH_SWITCH_MS sets the
  GIL switch interval albprobe uses with its writer thread (default 1 ms).
"""

from __future__ import annotations

import json
import os
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


def _on_test_start(environment, **_kw) -> None:
    _STATE["cpu0"] = _cpu()
    _STATE["t0"] = time.time()
    if os.environ.get("ALBBENCH_STALL") == "1":
        _STATE["running"] = True
        gevent.spawn(_sample_stalls)


def _on_test_stopping(environment, **_kw) -> None:
    _STATE["running"] = False


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
