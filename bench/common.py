"""Shared helpers of the benchmarks: run Locust headless for a while, read its request rate, CPU time
and event-loop stalls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BENCH_CONFIG = """
[load]
think_time = 0.0
[safety]
max_rps = 1000000.0
max_users = 1000
[[endpoints]]
name = "fast"
path = "/api/fast"
"""


PROBE = str(REPO / "bench" / "locust_probe.py")


@dataclass(frozen=True)
class LocustRun:
    """One headless Locust run: its request rate and, from bench/locust_probe.py, its CPU time and
    event-loop stalls between `test_start` and `quit`."""

    rps: float
    requests: int
    cpu_s: float
    probe_requests: int
    stall: dict[str, float]
    stall_net: dict[str, float]
    gc: dict[str, dict[str, float]]
    flush_ms: list[float]

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / max(self.probe_requests, 1) * 1e6


def run_locust(
    locustfile: str,
    host: str,
    *,
    users: int,
    seconds: int,
    processes: int = 0,
    albprobe: bool = False,
    stall: bool = False,
    sync_write: bool = False,
    env_extra: dict[str, str] | None = None,
) -> LocustRun:
    """Run Locust headless with the measuring add-on. The albprobe user is run through its own
    shape (users for ``seconds``); the bare user with -u/-t."""
    with tempfile.TemporaryDirectory(prefix="albbench-") as tmp:
        stats = Path(tmp) / "stats.json"
        probe_out = Path(tmp) / "probe.json"
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{locustfile},{PROBE}",
            "--headless",
            "--host",
            host,
            "--json-file",
            str(stats.with_suffix("")),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO), ALBBENCH_OUT=str(probe_out))
        env["ALBBENCH_STALL"] = "1" if stall else "0"
        env["ALBBENCH_SYNC_WRITE"] = "1" if sync_write else "0"
        env.update(env_extra or {})
        if albprobe:
            cfg = Path(tmp) / "bench.toml"
            load = f"think_time = 0.0\nusers = {users}\nspawn_rate = {users}\nduration = {seconds}"
            cfg.write_text(BENCH_CONFIG.replace("think_time = 0.0", load))
            cmd += [
                "--albprobe-config",
                str(cfg),
                "--albprobe-shape",
                "users",
                "--albprobe-run-dir",
                str(Path(tmp) / "run"),
            ]
        else:
            cmd += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s"]
        if processes:
            cmd += ["--processes", str(processes)]
            if albprobe:
                cmd += ["--albprobe-processes", str(processes)]
        subprocess.run(
            cmd, cwd=str(REPO), env=env, timeout=seconds + 120, capture_output=True, check=False
        )
        data = json.loads(stats.read_text())
        probe = json.loads(probe_out.read_text()) if probe_out.exists() else {}
    total = sum(s["num_requests"] for s in data)
    start = min(s["start_time"] for s in data)
    end = max(s["last_request_timestamp"] for s in data)
    return LocustRun(
        rps=total / max(end - start, 1e-9),
        requests=total,
        cpu_s=probe.get("cpu_s", 0.0),
        probe_requests=probe.get("requests", 0),
        stall=probe.get("stall", {}),
        stall_net=probe.get("stall_net", {}),
        gc=probe.get("gc", {}),
        flush_ms=probe.get("flush_ms", []),
    )


def locust_rps(locustfile: str, host: str, **kw) -> tuple[float, int]:
    """(requests/s over the run, requests) of ``run_locust``."""
    r = run_locust(locustfile, host, **kw)
    return r.rps, r.requests


def median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def paired_rounds(
    rounds: int, baseline, candidate, *, labels: tuple[str, str], target: float, what: str
) -> int:
    """Run baseline() then candidate() ``rounds`` times (each returns (req/s, requests)), print each
    round and the median of the per-round ratios candidate/baseline; 0 when it meets ``target``."""
    ratios = []
    for i in range(rounds):
        b, nb = baseline()
        c, nc = candidate()
        ratios.append(c / b)
        print(
            f"round {i + 1}: {labels[0]} {b:,.0f} req/s ({nb}), {labels[1]} {c:,.0f} req/s ({nc}), "
            f"ratio {c / b:.3f}",
            flush=True,
        )
    ratio = median(ratios)
    verdict = "PASS" if ratio >= target else "FAIL"
    print(f"{what} (median of {rounds} paired rounds): {ratio:.3f}  target >= {target}  {verdict}")
    return 0 if ratio >= target else 1
