"""Seeded, randomised testbed scenarios for the verdict sweep (bench/sweep.py).

Pure: ``generate(seed)`` draws one scenario from its own ``random.Random(seed)``, so a failing seed
is replayed exactly. Each scenario injects one testbed fault (or none) and records what the
verdict must say: ``at_fault`` and the top cause (``None`` = no cause may be named).

The draws keep each fault able to show itself within the run (a hang needs a gunicorn timeout
shorter than the run; the keep-alive race needs idle gaps around the backend keep-alive) and keep
the control runs (healthy, cors-misconfig) under the target's capacity, so that a verdict naming a
proxy cause there is the verdict's error, not the load's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

# fault -> (at_fault, top cause); None = no cause at all may be named
EXPECTED: dict[str, tuple[str, str | None]] = {
    "healthy": ("none", None),
    "target-down": ("proxy", "target-down"),
    "hang": ("proxy", "capacity"),
    "cors-misconfig": ("cors-setup", "cors-setup"),
    "health-host": ("proxy", "health-check-config"),
    "blocked-port": ("proxy", "connectivity"),
    "keepalive-race": ("proxy", "keepalive-race"),
}
KINDS = tuple(EXPECTED)
CONTROLS = ("healthy", "cors-misconfig")


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    method: str = "GET"
    weight: int = 1
    json_body: bool = False  # a JSON POST: always preflighted by the browser


@dataclass(frozen=True)
class Scenario:
    seed: int
    fault: str  # one of KINDS
    window: str | None  # the --fault schedule, e.g. "target-down@6s-14s"; None for healthy
    shape: str
    duration: int  # seconds
    users: int
    think_time: float
    worker_class: str
    workers: int
    threads: int
    timeout: float  # gunicorn --timeout
    idle_timeout: float  # the proxy's idle timeout
    authorization: bool  # send Authorization (every call preflighted)
    endpoints: tuple[Endpoint, ...] = field(default_factory=tuple)
    load: dict[str, float] = field(default_factory=dict)  # shape-specific [load] keys

    @property
    def expected(self) -> tuple[str, str | None]:
        return EXPECTED[self.fault]

    @property
    def slots(self) -> int:
        return self.workers * (self.threads if self.worker_class == "gthread" else 1)

    def config_toml(self) -> str:
        """The albprobe.toml the scenario runs with (target = the local testbed)."""
        lines = [
            'target = "testbed"',
            "[safety]",
            "abort_after = 600.0",  # keep the whole window: a sweep run must complete
            "[load]",
            f'shape = "{self.shape}"',
            f"duration = {float(self.duration)}",
            f"users = {self.users}",
            f"think_time = {self.think_time}",
            f"spawn_rate = {float(max(self.users, 1))}",
        ]
        lines += [f"{k} = {v}" for k, v in sorted(self.load.items())]
        lines += [
            "[capacity]",
            f'worker_class = "{self.worker_class}"',
            f"workers = {self.workers}",
            f"threads = {self.threads}",
            f"timeout = {self.timeout}",
            "[proxy]",
            f"idle_timeout = {self.idle_timeout}",
        ]
        for e in self.endpoints:
            lines += [
                "[[endpoints]]",
                f'name = "{e.name}"',
                f"path = {json.dumps(e.path)}",
                f'method = "{e.method}"',
                f"weight = {e.weight}",
            ]
            if e.json_body:
                lines += [
                    'headers = { "Content-Type" = "application/json" }',
                    "body = " + json.dumps('{"title": "sweep"}'),
                ]
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        mix = "+".join(f"{e.name}x{e.weight}" for e in self.endpoints)
        return (
            f"seed {self.seed}: {self.window or 'healthy'}, {self.shape} {self.duration}s "
            f"{self.users} users, {self.worker_class} {self.workers}w"
            + (f"x{self.threads}t" if self.worker_class == "gthread" else "")
            + f" timeout {self.timeout:g}s idle {self.idle_timeout:g}s, mix {mix}"
            + (", Authorization" if self.authorization else "")
        )


def _mix(rng: random.Random, slow_ms: int) -> tuple[Endpoint, ...]:
    eps = [Endpoint("fast", "/api/fast", weight=rng.randint(2, 6))]
    if rng.random() < 0.7:
        eps.append(Endpoint("write", "/api/items", "POST", rng.randint(1, 3), json_body=True))
    if slow_ms and rng.random() < 0.6:
        eps.append(Endpoint("slow", f"/api/slow?ms={slow_ms}", weight=rng.randint(1, 2)))
    return tuple(eps)


def _mean_service_s(eps: tuple[Endpoint, ...]) -> float:
    """Rough mean service time of a mix (the fast calls take a few ms)."""
    total = sum(e.weight for e in eps)
    slow = sum(e.weight * int(e.path.split("ms=")[1]) / 1000 for e in eps if "ms=" in e.path)
    return (slow + 0.01 * total) / total


def generate(seed: int) -> Scenario:
    """One scenario, a pure function of ``seed``."""
    rng = random.Random(seed)
    fault = KINDS[seed % len(KINDS)] if seed >= 0 else rng.choice(KINDS)
    # every kind gets its turn in a sweep of consecutive seeds; the rest is drawn
    worker_class = rng.choice(("sync", "gthread"))
    workers = rng.randint(1, 4)
    threads = rng.randint(2, 8) if worker_class == "gthread" else 1
    timeout = float(rng.choice((3, 5, 10, 30)))
    idle_timeout = float(rng.choice((10, 15, 30, 60)))
    duration = rng.randint(15, 30)
    authorization = rng.random() < 0.4
    shape = rng.choice(("users", "step", "spike"))
    slow_ms = rng.choice((0, 50, 150, 300))
    load: dict[str, float] = {}
    window: str | None = None
    if fault == "keepalive-race":
        shape = "idle-gap"  # the race needs idle gaps around the backend keep-alive (1 s)
        load = {"gap": round(rng.uniform(1.0, 1.8), 2), "gap_jitter": 0.5}
        duration = rng.randint(25, 35)
        window = fault + "@0s"
    elif fault == "hang":
        timeout = float(rng.choice((2, 3, 5)))  # hung calls must outlive it within the run
        start = rng.randint(2, 8)
        duration = max(duration, start + int(timeout) + 12)
        window = f"{fault}@{start}s-{duration - 2}s"
    elif fault == "target-down":
        start = rng.randint(3, 10)
        end = start + rng.randint(5, 10) if rng.random() < 0.6 else None
        duration = max(duration, start + 10, (end or 0) + 5)
        window = f"{fault}@{start}s" + (f"-{end}s" if end else "")
    elif fault == "blocked-port":
        start = rng.randint(0, 5)
        duration = max(duration, start + 15)  # the connect timeout is 10 s
        window = f"{fault}@{start}s"
    elif fault in ("health-host", "cors-misconfig"):
        start = rng.randint(0, 4)
        window = f"{fault}@{start}s"
    eps = _mix(rng, slow_ms)
    think = round(rng.uniform(0.05, 0.5), 2)
    # Users: enough traffic to judge, and (except where the fault is overload) no more concurrent
    # demand than the slots can serve: users x service / (service + think) <= 0.7 x slots.
    svc = _mean_service_s(eps)
    cap_users = max(2, int(0.7 * workers * threads * (svc + think) / svc)) if svc else 20
    users = max(2, min(rng.randint(3, 20), cap_users))
    if shape == "step":
        load |= {"step_users": max(1, users // 3), "step_every": float(max(3, duration // 4))}
    elif shape == "spike":
        load |= {
            "spike_users": users,
            "spike_at": float(duration // 3),
            "spike_for": float(max(3, duration // 4)),
        }
        users = max(2, users // 2)
    return Scenario(
        seed=seed,
        fault=fault,
        window=window,
        shape=shape,
        duration=duration,
        users=users,
        think_time=think,
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        timeout=timeout,
        idle_timeout=idle_timeout,
        authorization=authorization,
        endpoints=eps,
        load=load,
    )
