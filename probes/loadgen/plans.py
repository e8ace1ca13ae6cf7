"""Load shapes as pure functions of run time: (users, spawn_rate) or None to stop.

locustfiles/shapes.py wraps these in a Locust LoadTestShape; keeping the arithmetic here makes it
testable without importing locust (which monkey-patches the process).
"""

from __future__ import annotations

import math
from collections.abc import Callable

Plan = Callable[[float], "tuple[int, float] | None"]
# rate-steps: arrival-rate steps asked for one at a time by the parent (probes/loadgen/stepctl.py,
# albprobe tune); load.rate is the highest rate it may ask for.
OPEN_MODEL = ("constant-rate", "ramping-rate", "rate-steps")
# `albprobe replay`: an open model too, whose arrivals are an ALB log's (probes/loadgen/replay.py)
REPLAY = "replay"


def make_plan(shape: str, load, max_users: int) -> Plan:
    """Build the user-count plan for ``shape`` from a config.Load, capped at ``max_users``."""
    d = load.duration

    def cap(n: float) -> int:
        return max(1, min(int(n), max_users))

    if shape in ("users", "idle-gap"):
        return lambda t: (cap(load.users), load.spawn_rate) if t < d else None
    if shape == "step":

        def step(t: float) -> tuple[int, float] | None:
            if t >= d:
                return None
            n = load.step_users * (1 + math.floor(t / load.step_every))
            return cap(min(n, load.users)), max(load.step_users, 1.0)

        return step
    if shape == "spike":

        def spike(t: float) -> tuple[int, float] | None:
            if t >= d:
                return None
            if load.spike_at <= t < load.spike_at + load.spike_for:
                return cap(load.spike_users), float(max(load.spike_users, 1))
            return cap(load.users), float(max(load.users, 1))

        return spike
    if shape == "soak":
        ramp = min(60.0, d / 10)
        return lambda t: (cap(load.users), max(load.users / ramp, 1.0)) if t < d else None
    if shape in OPEN_MODEL or shape == REPLAY:
        # A pool of virtual users, all spawned at once; the arrival scheduler paces them.
        return lambda t: (cap(load.max_vus), float(max(load.max_vus, 1))) if t < d else None
    raise ValueError(f"unknown shape {shape!r}")


def rates(shape: str, load) -> tuple[float, float]:
    """(start_rate, end_rate) of the open model, iterations/s for the whole run."""
    if shape in ("constant-rate", "rate-steps"):
        return load.rate, load.rate
    return load.start_rate, load.end_rate


def peak_users(shape: str, load, max_users: int) -> int:
    plan = make_plan(shape, load, max_users)
    samples = [plan(t) for t in range(int(load.duration) + 1)]
    return max((s[0] for s in samples if s), default=0)
