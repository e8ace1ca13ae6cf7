"""ALB access-log ingest, lines/s: albprobe vs GoAccess on the same generated file, one invocation.

    .venv/bin/python bench/bench_alb_ingest.py [--lines 1000000]

Both tools read the same plain-text ALB log (GoAccess 1.7 with --log-format=AWSALB, writing its
JSON report; albprobe with `albprobe analyze --alb-logs`, writing summary.json + HTML). Both are
timed end to end as subprocesses (process start included); albprobe's parse-only time (DuckDB
ingest of every field) is shown too. Target: albprobe >= 2x GoAccess lines/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t
    if proc.returncode not in (0, 1):  # albprobe exits 1 when a --fail-on breaches; none here
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    goaccess = shutil.which("goaccess")
    if not goaccess:
        raise SystemExit("goaccess is not installed (apt-get install goaccess)")
    from fixtures import synth

    with tempfile.TemporaryDirectory(prefix="bench-alb-") as tmp:
        work = Path(tmp)
        log = work / "logs" / "bench_alb.log"
        log.parent.mkdir()
        t = time.perf_counter()
        with open(log, "w", encoding="utf-8") as fh:
            for line in synth.alb_lines(args.lines, seed=9):
                fh.write(line + "\n")
        print(
            f"generated {args.lines:,} lines ({log.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s"
        )
        # Warm the page cache once so neither tool pays for the first read.
        log.read_bytes()

        ga_json = work / "goaccess.json"
        ga_s = _timed(
            [goaccess, str(log), "--log-format=AWSALB", "--no-global-config", "-o", str(ga_json)],
            work,
        )
        ga_valid = json.loads(ga_json.read_text())["general"]["valid_requests"]

        ours_s = _timed(
            [
                sys.executable,
                "-m",
                "albprobe",
                "analyze",
                "--alb-logs",
                str(log.parent),
                "--out",
                str(work / "rep"),
            ],
            ROOT,
        )
        summary = json.loads((work / "rep" / "summary.json").read_text())
        parsed = summary["figures"]["parse"]["alb"]["parsed"]

        from analysis import dataset
        from analysis.parsers import alb

        con = dataset.connect()
        t = time.perf_counter()
        st = alb.load(con, [log])
        parse_s = time.perf_counter() - t
        con.close()

    assert ga_valid == args.lines, f"GoAccess parsed {ga_valid:,} of {args.lines:,} lines"
    assert parsed == st.parsed == args.lines, f"albprobe parsed {parsed:,} of {args.lines:,} lines"
    ga_rate, ours_rate, parse_rate = args.lines / ga_s, args.lines / ours_s, args.lines / parse_s
    ratio = ours_rate / ga_rate
    print(f"GoAccess 1.7 (AWSALB, JSON report):         {ga_s:6.2f} s  {ga_rate:>12,.0f} lines/s")
    print(
        f"albprobe analyze --alb-logs (end to end):   {ours_s:6.2f} s  {ours_rate:>12,.0f} lines/s"
    )
    print(
        f"albprobe ALB parser only (DuckDB ingest):   {parse_s:6.2f} s  {parse_rate:>12,.0f} lines/s"
    )
    print(
        f"ratio albprobe/GoAccess (end to end): {ratio:.1f}x  (target >= 2x) -> {'PASS' if ratio >= 2 else 'FAIL'}"
    )
    return 0 if ratio >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
