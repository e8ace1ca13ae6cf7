"""`albprobe analyze` on a generated 10 M-request run directory: wall time and peak memory.

    .venv/bin/python bench/bench_analyze_10m.py [--requests 10000000] [--keep DIR]

The run directory (capacity mode: requests Parquet parts, health, gunicorn log; see
fixtures/synth.py write_large) is generated first (not timed). Then, in the same invocation:
  baseline: one DuckDB pass over every column of the requests table (the floor for any analysis),
  analyze:  `python -m albprobe analyze <run>` end to end (figures, verdict, plots, HTML, JSON),
each as a subprocess whose CPU time (user + sys, all threads) and peak RSS are read by its own
parent (getrusage(RUSAGE_CHILDREN)). ``--rounds`` alternates the two; the figures are medians.
Targets: analyze <= 4x the baseline (CPU time: the machine is shared; wall printed too) and
<= 2 GB; at 100 M rows also <= 60 s.
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

from bench.common import median  # noqa: E402

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
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc.returncode, dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss)
"""


def _child(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) of one command, measured by its own parent."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    rc, dt, cpu, kb = proc.stdout.split()[-4:]
    if int(rc) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({rc}): {proc.stderr[-800:]}")
    return float(dt), float(cpu), int(kb) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="0: only generate the run directory")
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
    if args.rounds < 1:
        return 0  # only make (or keep) the run directory
    base, ours = [], []
    try:
        for i in range(args.rounds):
            base.append(_child([sys.executable, "-c", BASELINE, str(run)]))
            out = root / "report"
            ours.append(
                _child([sys.executable, "-m", "albprobe", "analyze", str(run), "--out", str(out)])
            )
            print(
                f"round {i + 1}: baseline {base[-1][0]:.2f} s wall / {base[-1][1]:.2f} s CPU; "
                f"analyze {ours[-1][0]:.2f} / {ours[-1][1]:.2f}; ratio "
                f"{ours[-1][1] / base[-1][1]:.2f}x CPU ({ours[-1][0] / base[-1][0]:.2f}x wall)",
                flush=True,
            )
        summary = json.loads((out / "summary.json").read_text())
    finally:
        if tmp:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    assert summary["figures"]["requests"] == args.requests
    med = [[median([r[k] for r in rows]) for k in range(3)] for rows in (base, ours)]
    ratio = median([o[1] / b[1] for b, o in zip(base, ours, strict=True)])
    (bw, bc, bm), (aw, ac, am) = med
    print(f"medians of {args.rounds} rounds, {args.requests:,} requests:")
    print(
        f"baseline DuckDB scan of all columns: {bw:6.2f} s wall {bc:6.2f} s CPU  peak {bm:6.0f} MB"
    )
    print(
        f"albprobe analyze (end to end):       {aw:6.2f} s wall {ac:6.2f} s CPU  peak {am:6.0f} MB"
        f"  -> verdict {summary['at_fault']} / "
        f"{summary['causes'][0]['id'] if summary['causes'] else '-'}"
    )
    print(f"ratio analyze/baseline: {ratio:.2f}x CPU ({aw / bw:.2f}x wall)  target <= 4x")
    ok = ratio <= 4 and am <= 2048 and (args.requests < 100_000_000 or aw <= 60)
    print(
        f"targets: <= 4x one scan, <= 2048 MB (100 M rows: <= 60 s) -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
