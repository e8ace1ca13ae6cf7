"""Shared helpers of the benchmarks: run Locust headless for a while, read its request rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def locust_rps(
    locustfile: str,
    host: str,
    *,
    users: int,
    seconds: int,
    processes: int = 0,
    albprobe: bool = False,
) -> tuple[float, int]:
    """Run Locust headless; return (requests/s over the run, requests). The albprobe user is run
    through its own shape (users for ``seconds``); the bare user with -u/-t."""
    with tempfile.TemporaryDirectory(prefix="albbench-") as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            locustfile,
            "--headless",
            "--host",
            host,
            "--json-file",
            str(stats.with_suffix("")),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO))
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
    total = sum(s["num_requests"] for s in data)
    start = min(s["start_time"] for s in data)
    end = max(s["last_request_timestamp"] for s in data)
    return total / max(end - start, 1e-9), total


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
