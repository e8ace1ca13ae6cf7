"""A measuring add-on loaded beside the locustfile under test (`-f user.py,bench/locust_probe.py`),
so the bare and the albprobe user are measured by the same code. Writes JSON to $ALBBENCH_OUT at
`quit`, after albprobe's own final flush (its listener was registered first):

* cpu_s / requests: the process's user + sys CPU time (every thread, so the Parquet writer thread
  is counted) and Locust's request count, from `test_start` to `quit`: start-up imports excluded,
  the final flush included;
* with ALBBENCH_STALL=1, the event loop's stalls: a greenlet sleeps 1 ms in a loop while the users
  run and records how late it wakes (milliseconds past the 1 ms);
* with ALBBENCH_SYNC_WRITE=1, albprobe writes its Parquet parts in the event loop (the behaviour
  before the background writer: the baseline of bench_loop_stall.py).
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

_STATE: dict = {"late": array("d"), "running": False}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _sample_stalls() -> None:
    late = _STATE["late"]
    clock = time.perf_counter
    while _STATE["running"]:
        t0 = clock()
        gevent.sleep(0.001)
        late.append((clock() - t0) * 1000.0 - 1.0)


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


def _on_quit(environment, **_kw) -> None:
    out = os.environ.get("ALBBENCH_OUT")
    if not out or "cpu0" not in _STATE:
        return
    late = sorted(_STATE["late"])
    data = {
        "cpu_s": _cpu() - _STATE["cpu0"],
        "wall_s": time.time() - _STATE["t0"],
        "requests": environment.stats.total.num_requests,
        "stall": {
            "samples": len(late),
            "p50_ms": _percentile(late, 0.5),
            "p99_ms": _percentile(late, 0.99),
            "p999_ms": _percentile(late, 0.999),
            "max_ms": late[-1] if late else 0.0,
        },
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
