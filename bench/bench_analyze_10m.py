"""`albprobe analyze` on a generated 10 M-request run directory: wall time and peak memory.

    .venv/bin/python bench/bench_analyze_10m.py [--requests 10000000] [--keep DIR]

The run directory (capacity mode: requests Parquet parts, health, gunicorn log; see
fixtures/synth.py write_large) is generated first (not timed). Then, in the same invocation:
  baseline: one DuckDB pass over every column of the requests table (the floor for any analysis),
  analyze:  `python -m albprobe analyze <run>` end to end (figures, verdict, plots, HTML, JSON),
each as a subprocess whose peak RSS is read by its own parent (getrusage(RUSAGE_CHILDREN)).
Targets: analyze <= 15 s and <= 2 GB on the 2-core reference machine; the ratio to the baseline
is printed so the figure travels between machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET memory_limit='1500MB'")
print(con.execute(
    "SELECT count(*), sum(ts), sum(latency_ms), count(DISTINCT source), sum(status), "
    "count(*) FILTER (WHERE cors_ok), sum(bytes), count(cors_message) "
    f"FROM read_parquet('{sys.argv[1]}/requests/*.parquet')").fetchone())
"""


_MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
dt = time.perf_counter() - t
sys.stderr.write(rc.stderr[-800:])
print(rc.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _child(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one command, measured by its own parent process."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    rc, dt, kb = proc.stdout.split()[-3:]
    if int(rc) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({rc}): {proc.stderr[-800:]}")
    return float(dt), int(kb) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument(
        "--keep", type=Path, default=None, help="reuse/keep the generated run under DIR"
    )
    args = ap.parse_args()
    from fixtures import synth

    tmp = None
    root = args.keep or Path(tmp := tempfile.mkdtemp(prefix="bench-10m-"))
    run = root / f"synth-large-{args.requests}"
    if not run.exists():
        t = time.perf_counter()
        synth.write_large(root, args.requests)
        print(
            f"generated {args.requests:,} requests in {time.perf_counter() - t:.1f} s "
            f"({sum(p.stat().st_size for p in (run / 'requests').glob('*.parquet')) / 1e6:.0f} MB Parquet)"
        )
    try:
        base_s, base_mb = _child([sys.executable, "-c", BASELINE, str(run)])
        out = root / "report"
        an_s, an_mb = _child(
            [sys.executable, "-m", "albprobe", "analyze", str(run), "--out", str(out)]
        )
        summary = json.loads((out / "summary.json").read_text())
    finally:
        if tmp:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    assert summary["figures"]["requests"] == args.requests
    print(f"baseline DuckDB scan of all columns: {base_s:6.2f} s  peak {base_mb:7.0f} MB")
    print(
        f"albprobe analyze (end to end):       {an_s:6.2f} s  peak {an_mb:7.0f} MB  -> verdict {summary['at_fault']}"
        f" / {summary['causes'][0]['id'] if summary['causes'] else '-'}"
    )
    print(f"ratio analyze/baseline: {an_s / base_s:.1f}x time")
    ok = an_s <= 15 and an_mb <= 2048
    print(f"targets: <= 15 s and <= 2048 MB -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
