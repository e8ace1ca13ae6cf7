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

# kind -> (at_fault, top cause); None = no cause at all may be named. The first seven are the
# first release's faults on one target; the rest are the production modes among targets.
EXPECTED: dict[str, tuple[str, str | None]] = {
    "healthy": ("none", None),
    "target-down": ("proxy", "target-down"),
    "hang": ("proxy", "capacity"),
    "cors-misconfig": ("cors-setup", "cors-setup"),
    "health-host": ("proxy", "health-check-config"),
    "blocked-port": ("proxy", "connectivity"),
    "keepalive-race": ("proxy", "keepalive-race"),
    "one-target-bad": ("proxy", "target-down"),  # target-down:N, the others serving
    "deploy": ("none", None),  # a correct rolling deploy: the control
    "deploy-stop-first": ("proxy", "deploy"),
    "deploy-short-drain": ("proxy", "deploy"),  # calls in flight outlive the drain
    "deploy-early-register": ("proxy", "deploy"),  # registered before the app listens
    "worker-kill": ("proxy", "worker-kill"),
    "worker-recycle": ("none", None),  # --max-requests: graceful, the control
    "http-redirect": ("proxy", "http-redirect"),
}
KINDS = tuple(EXPECTED)
CONTROLS = ("healthy", "cors-misconfig", "deploy", "worker-recycle")
# Kinds whose scenario may run through the HTTPS listener (the ALB's 443 front with its own CA).
HTTPS_KINDS = ("healthy", "target-down", "cors-misconfig", "health-host", "one-target-bad")


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
    faults: tuple[str, ...]  # the --fault schedule, e.g. ("target-down@6s-14s",); () = none
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
    targets: int = 1
    deregistration_delay: float = 3.0
    keepalive: float = 2.0  # gunicorn --keep-alive
    max_requests: int = 0  # gunicorn --max-requests (worker recycling)
    max_requests_jitter: int = 0
    listener: str = "http"  # the testbed listener the load calls: http, https, http-redirect
    # testbed settings with no albprobe.toml key (app_boot_seconds, health_timeout)
    testbed: dict[str, float] = field(default_factory=dict)

    @property
    def expected(self) -> tuple[str, str | None]:
        return EXPECTED[self.fault]

    @property
    def window(self) -> str | None:
        """The first fault step (the single one of the first release's kinds)."""
        return self.faults[0] if self.faults else None

    @property
    def slots(self) -> int:
        return self.workers * (self.threads if self.worker_class == "gthread" else 1)

    def testbed_overrides(self) -> dict[str, object]:
        """What the runner hands the testbed besides the config: the listener and the rest."""
        return dict(self.testbed) | ({"listener": self.listener} if self.listener != "http" else {})

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
            f"keepalive = {self.keepalive}",
            f"max_requests = {self.max_requests}",
            f"max_requests_jitter = {self.max_requests_jitter}",
            "[proxy]",
            f"idle_timeout = {self.idle_timeout}",
            "[testbed]",
            f"targets = {self.targets}",
            f"deregistration_delay = {self.deregistration_delay}",
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
        extra = []
        if self.targets > 1:
            extra.append(f"{self.targets} targets drain {self.deregistration_delay:g}s")
        if self.max_requests:
            extra.append(f"max-requests {self.max_requests}+-{self.max_requests_jitter}")
        if self.listener != "http":
            extra.append(self.listener)
        extra += [f"{k} {v:g}" for k, v in sorted(self.testbed.items())]
        return (
            f"seed {self.seed}: {self.fault} {','.join(self.faults) or '-'}, {self.shape} "
            f"{self.duration}s {self.users} users, {self.worker_class} {self.workers}w"
            + (f"x{self.threads}t" if self.worker_class == "gthread" else "")
            + f" timeout {self.timeout:g}s idle {self.idle_timeout:g}s, mix {mix}"
            + (", Authorization" if self.authorization else "")
            + "".join(f", {x}" for x in extra)
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
    if fault in _PRODUCTION:
        return _PRODUCTION[fault](seed, rng)
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
    users = _users(rng, eps, think, workers, threads)
    if shape == "step":
        load |= {"step_users": max(1, users // 3), "step_every": float(max(3, duration // 4))}
    elif shape == "spike":
        load |= {
            "spike_users": users,
            "spike_at": float(duration // 3),
            "spike_for": float(max(3, duration // 4)),
        }
        users = max(2, users // 2)
    # the production fronts and groups: the HTTPS listener, and two targets behind it
    listener = "https" if fault in HTTPS_KINDS and rng.random() < 0.35 else "http"
    targets = (
        2 if fault in ("healthy", "cors-misconfig", "target-down") and rng.random() < 0.3 else 1
    )
    return Scenario(
        seed=seed,
        fault=fault,
        faults=(window,) if window else (),
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
        targets=targets,
        listener=listener,
    )


def _users(
    rng: random.Random, eps: tuple[Endpoint, ...], think: float, workers: int, threads: int
) -> int:
    """Enough traffic to judge, and no more concurrent demand than the slots serve
    (users x service / (service + think) <= 0.7 x slots): overload is no kind's story but hang's."""
    svc = _mean_service_s(eps)
    cap_users = max(2, int(0.7 * workers * threads * (svc + think) / svc)) if svc else 20
    return max(2, min(rng.randint(3, 20), cap_users))


def _base(seed: int, rng: random.Random, fault: str, **kw) -> Scenario:
    """The common draws of a production-mode scenario; ``kw`` sets what the mode fixes."""
    worker_class = kw.pop("worker_class", None) or rng.choice(("sync", "gthread"))
    workers = kw.pop("workers", None) or rng.randint(2, 4)
    threads = kw.pop("threads", None) or (rng.randint(2, 6) if worker_class == "gthread" else 1)
    eps = kw.pop("endpoints", None) or _mix(rng, rng.choice((0, 50, 150, 300)))
    think = kw.pop("think_time", None) or round(rng.uniform(0.05, 0.3), 2)
    users = kw.pop("users", None) or min(_users(rng, eps, think, workers, threads), 10)
    return Scenario(
        seed=seed,
        fault=fault,
        shape=kw.pop("shape", "users"),
        users=users,
        think_time=think,
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        timeout=float(kw.pop("timeout", 30.0)),
        idle_timeout=float(rng.choice((15, 30, 60))),
        authorization=rng.random() < 0.4,
        endpoints=eps,
        **kw,
    )


def _one_target_bad(seed: int, rng: random.Random) -> Scenario:
    targets = rng.randint(2, 3)
    bad = rng.randint(1, targets)
    start = rng.randint(3, 8)
    end = start + rng.randint(5, 10) if rng.random() < 0.5 else None
    duration = max(rng.randint(15, 25), start + 10, (end or 0) + 5)
    spec = f"target-down:{bad}@{start}s" + (f"-{end}s" if end else "")
    listener = "https" if rng.random() < 0.35 else "http"
    return _base(
        seed, rng, "one-target-bad", faults=(spec,), duration=duration, targets=targets,
        listener=listener,
    )  # fmt: skip


# Seconds one target's replacement takes on the testbed beyond its drain: SIGTERM, a new
# gunicorn booting Django, two passing checks at 1 s; with room for a busy machine.
_REPLACE_S = 9


def _deploy(seed: int, rng: random.Random, kind: str) -> Scenario:
    targets = 3 if rng.random() < 0.3 else 2
    at = rng.randint(3, 6)
    fault, delay, extra = kind, float(rng.choice((2, 3, 4))), {}
    endpoints = None
    if kind == "deploy-short-drain":
        # a correct deploy whose drain is shorter than the calls in flight
        fault, delay = "deploy", float(rng.choice((0.5, 1.0)))
        long_ms = rng.choice((2000, 2500, 3000))
        endpoints = (
            Endpoint("fast", "/api/fast", weight=rng.randint(2, 4)),
            Endpoint("long", f"/api/slow?ms={long_ms}", weight=2),
        )
        # gthread with a thread per user: the long calls never queue (no capacity story)
        extra = {"worker_class": "gthread", "workers": 2, "threads": 6, "users": rng.randint(6, 10)}
        extra["think_time"] = 0.1
    elif kind == "deploy-early-register":
        extra = {"testbed": {"app_boot_seconds": float(rng.choice((4, 5, 6)))}}
    boot = extra.get("testbed", {}).get("app_boot_seconds", 0.0)
    duration = int(at + targets * (delay + _REPLACE_S + boot) + 4)
    return _base(
        seed, rng, kind, faults=(f"{fault}@{at}s",), duration=duration, targets=targets,
        deregistration_delay=delay, endpoints=endpoints, **extra,
    )  # fmt: skip


def _worker_kill(seed: int, rng: random.Random) -> Scenario:
    workers = rng.randint(2, 4)
    slow_ms = rng.choice((300, 600, 900))  # a kill must find a request in flight
    eps = (
        Endpoint("fast", "/api/fast", weight=rng.randint(1, 3)),
        Endpoint("slow", f"/api/slow?ms={slow_ms}", weight=2),
    )
    duration = rng.randint(18, 26)
    kills = sorted(rng.sample(range(4, duration - 5), rng.randint(1, 3)))
    return _base(
        seed, rng, "worker-kill", faults=tuple(f"worker-kill@{t}s" for t in kills),
        duration=duration, worker_class="sync", workers=workers, users=workers, endpoints=eps,
        think_time=round(rng.uniform(0.1, 0.3), 2),
    )  # fmt: skip


def _worker_recycle(seed: int, rng: random.Random) -> Scenario:
    # the ALB's default 5 s check timeout: a check meeting a worker that boots Django on a busy
    # machine waits for it (a recycle is graceful; a 0.5 s timeout made it an unhealthy target)
    return _base(
        seed, rng, "worker-recycle", faults=(), duration=rng.randint(18, 26),
        keepalive=float(rng.choice((2, 5))), max_requests=rng.randint(30, 60),
        max_requests_jitter=rng.randint(5, 15), testbed={"health_timeout": 5.0},
    )  # fmt: skip


def _http_redirect(seed: int, rng: random.Random) -> Scenario:
    return _base(
        seed, rng, "http-redirect", faults=(), duration=rng.randint(10, 16),
        listener="http-redirect",
    )  # fmt: skip


_PRODUCTION = {
    "one-target-bad": _one_target_bad,
    "deploy": lambda seed, rng: _deploy(seed, rng, "deploy"),
    "deploy-stop-first": lambda seed, rng: _deploy(seed, rng, "deploy-stop-first"),
    "deploy-short-drain": lambda seed, rng: _deploy(seed, rng, "deploy-short-drain"),
    "deploy-early-register": lambda seed, rng: _deploy(seed, rng, "deploy-early-register"),
    "worker-kill": _worker_kill,
    "worker-recycle": _worker_recycle,
    "http-redirect": _http_redirect,
}
