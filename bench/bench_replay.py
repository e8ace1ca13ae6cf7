"""`albprobe replay` fidelity and memory (issue 20), as ratios measured in this invocation.

fidelity: steady ALB windows (every request on its own connection, as browsers behind a CDN
look) replayed on the testbed with --workers 2, at x1 (a 10 s window at R/s) and x10 (a 100 s
window at R/10 per second, sent in 10 s), for a ladder of rates R. For each: the per-second
request count vs the log's (max error over the full seconds, as a share of the rate; target
<= 2 %), the p99 lateness of the send time vs the intended time (target <= 10 ms) and the dropped
lines. Reported: the highest R meeting both targets at x1 and at x10. The baseline, in the same
invocation at each rate: albprobe's own open model (`run --shape constant-rate`, --workers 2),
whose send lateness is what this machine's load gives any schedule; the replay's p99 lateness is
reported as a ratio to it too (target: <= 1.5, the replay adds no lateness of its own), with the
1-minute load average (the figures only mean something on a quiet machine).

memory: peak RSS of building the plan and streaming it (what a Locust process reads) for a 100 k,
a 500 k and a 1 M-line window, each in a fresh process. DuckDB works under a 256 MB cap and spills
to disk past it, and the plan is streamed in batches, so the peak stops growing once the cap is
reached. Target: the 1 M window's peak within 1.15x of the 500 k window's (flat in the window's
length); the 1 M / 100 k ratio is reported too.

    .venv/bin/python bench/bench_replay.py [--part fidelity|memory] [--rates 100,200,400]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ERROR_MAX = 0.02
LATENESS_P99_MAX_MS = 10.0
MEMORY_RATIO_MAX = 1.15
BASELINE_RATIO_MAX = 1.5
T0 = 1_796_000_000.0
CONFIG = """
[safety]
max_rps = 100000.0
max_users = 2000
[capacity]
worker_class = "gthread"
workers = 2
threads = 8
"""


def _window(folder: Path, seconds: float, rate: float) -> None:
    from fixtures import alb_window as aw

    aw.write(folder, (aw.line(e) for e in aw.steady(T0, seconds, rate)), per_file=200_000)


def _replay(tmp: Path, rate: float, speed: float) -> dict:
    """One replay on the testbed; its fidelity figures (analysis/replay_compare.fidelity)."""
    logs = tmp / f"logs-{rate:g}-{speed:g}"
    _window(logs, 10 * speed, rate / speed)
    cfg = tmp / "albprobe.toml"
    cfg.write_text(CONFIG)
    run_id = f"r{rate:g}x{speed:g}"
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    cmd = [
        sys.executable, "-m", "albprobe", "replay", "-c", str(cfg), "--alb-logs", str(logs),
        "--speed", f"{speed:g}", "--workers", "2", "--runs-dir", str(tmp / "runs"),
        "--run-id", run_id,
    ]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env, timeout=600)
    summary = tmp / "runs" / run_id / "report" / "summary.json"
    if not summary.exists():
        print(f"replay at {rate:g}/s x{speed:g} failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        return {"rate": rate, "speed": speed, "ok": False, "error": p.stdout[-300:]}
    s = json.loads(summary.read_text())
    meta = json.loads((tmp / "runs" / run_id / "run.json").read_text())
    fid = s["replay"]["fidelity"]
    # full seconds only: the first and last replay seconds hold a part of a second's lines
    per = s["tables"]["replay: per second (original vs replay)"]
    errs = [
        abs(r["replay_rps"] - r["original_rps"]) / r["original_rps"]
        for r in per[1:-1]
        if r["original_rps"]
    ]
    return {
        "rate": rate,
        "speed": speed,
        "sent": fid["sent"],
        "planned": fid["planned"],
        "dropped": meta["counts"]["dropped_iterations"],
        "max_second_error": max(errs) if errs else None,
        "lateness_p50_ms": fid["lateness_p50_ms"],
        "lateness_p99_ms": fid["lateness_p99_ms"],
        "ok": bool(errs)
        and max(errs) <= ERROR_MAX
        and (fid["lateness_p99_ms"] or 0) <= LATENESS_P99_MAX_MS,
    }


def _baseline(tmp: Path, rate: float) -> dict:
    """The same send rate through albprobe's own open model (`run --shape constant-rate`, one
    GET per iteration, --workers 2): the lateness this machine gives any arrival schedule now."""
    import duckdb

    cfg = tmp / "base.toml"
    cfg.write_text(CONFIG + '[[endpoints]]\nname = "fast"\npath = "/api/fast"\n')
    run_id = f"base{rate:g}"
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    cmd = [
        sys.executable, "-m", "albprobe", "run", "-c", str(cfg), "--shape", "constant-rate",
        "--rate", f"{rate:g}", "--users", str(int(rate) + 10), "--duration", "10s",
        "--workers", "2", "--runs-dir", str(tmp / "runs"), "--run-id", run_id, "--no-analyze",
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env, timeout=600)
    req = tmp / "runs" / run_id / "requests"
    if not req.exists():
        return {"rate": rate, "lateness_p99_ms": None}
    row = duckdb.sql(
        "SELECT quantile_cont((ts - intended_ts) * 1000, 0.5), "
        "quantile_cont((ts - intended_ts) * 1000, 0.99), count(*) "
        f"FROM read_parquet('{req}/*.parquet') WHERE intended_ts IS NOT NULL"
    ).fetchall()[0]
    return {"rate": rate, "lateness_p50_ms": row[0], "lateness_p99_ms": row[1], "requests": row[2]}


def fidelity(rates: list[float], speeds: list[float]) -> dict:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as t:
        for rate in rates:
            base = _baseline(Path(t), rate)
            for speed in speeds:
                r = _replay(Path(t), rate, speed)
                r["load_avg_1m"] = round(os.getloadavg()[0], 2)
                r["baseline_constant_rate"] = base
                b = base.get("lateness_p99_ms")
                r["lateness_p99_vs_baseline"] = (
                    round(r["lateness_p99_ms"] / b, 3) if b and r.get("lateness_p99_ms") else None
                )
                r["ok_vs_baseline"] = (
                    r.get("max_second_error") is not None
                    and r["max_second_error"] <= ERROR_MAX
                    and r["lateness_p99_vs_baseline"] is not None
                    and r["lateness_p99_vs_baseline"] <= BASELINE_RATIO_MAX
                )
                results.append(r)
                print(json.dumps(r), flush=True)
    best = {
        f"x{speed:g}": max(
            (r["rate"] for r in results if r["speed"] == speed and r["ok"]), default=None
        )
        for speed in speeds
    }
    vs_base = {
        f"x{speed:g}": max(
            (r["rate"] for r in results if r["speed"] == speed and r["ok_vs_baseline"]),
            default=None,
        )
        for speed in speeds
    }
    return {
        "results": results,
        "highest_rate_meeting_targets": best,
        "highest_rate_within_baseline": vs_base,
    }


def _memory_child(n: int, tmp: Path) -> dict:
    """Child: build the plan of an n-line window and stream it as a Locust process does."""
    from analysis.replay_plan import build_plan
    from probes.loadgen.replay import read_lines

    logs = tmp / "logs"
    _window(logs, n / 1000, 1000.0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.time()
    files = sorted(logs.iterdir())
    summary = build_plan(files, str(logs), tmp / "plan")
    built = time.time() - t0
    plan_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    count = sum(1 for _ in read_lines(tmp / "plan" / "plan.parquet", 0.0, 1.0))
    return {
        "lines": n,
        "sent": summary.sent,
        "streamed": count,
        "build_s": round(built, 1),
        "rss_before_mb": round(base, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_plan_mb": round(plan_rss, 1),
    }


def memory() -> dict:
    out = {}
    for n in (100_000, 500_000, 1_000_000):
        with tempfile.TemporaryDirectory(prefix="bench-replay-mem-") as t:
            p = subprocess.run(
                [sys.executable, __file__, "--child", str(n), t],
                capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
            if p.returncode:
                raise SystemExit(p.stderr[-3000:])
            out[n] = json.loads(p.stdout.strip().splitlines()[-1])
            print(json.dumps(out[n]), flush=True)
    small, mid, big = (out[n]["peak_rss_mb"] for n in (100_000, 500_000, 1_000_000))
    return {
        "runs": list(out.values()),
        "peak_rss_ratio_1m_vs_500k": round(big / mid, 3),
        "peak_rss_ratio_1m_vs_100k": round(big / small, 3),
        "target": f"1m/500k <= {MEMORY_RATIO_MAX}",
        "ok": big / mid <= MEMORY_RATIO_MAX,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("fidelity", "memory", "all"), default="all")
    ap.add_argument("--rates", default="50,100,200,400")
    ap.add_argument("--speeds", default="1,10")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_memory_child(int(a.child[0]), Path(a.child[1]))))
        return 0
    report = {}
    if a.part in ("memory", "all"):
        report["memory"] = memory()
    if a.part in ("fidelity", "all"):
        report["fidelity"] = fidelity(
            [float(x) for x in a.rates.split(",")], [float(x) for x in a.speeds.split(",")]
        )
    print(json.dumps(report, indent=2))
    missed = (a.part != "fidelity" and not report["memory"]["ok"]) or (
        a.part != "memory" and None in report["fidelity"]["highest_rate_meeting_targets"].values()
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
