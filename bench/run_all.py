"""`make bench`: every benchmark, one after another (never two at once on a 2-core machine).
Each prints its own ratio against a baseline measured in the same invocation; the exit code is
non-zero when any misses its target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_instrumented_user.py",
    "bench_loop_stall.py",
    "bench_distributed.py",
    "bench_master_absorb.py",
    "bench_master_ceiling.py",
    "bench_recorder_memory.py",
    "bench_analyze_10m.py",
    "bench_alb_ingest.py",
    "bench_cors_eval.py",
    "bench_replay.py",
    "bench_compare.py",
    "bench_process_starts.py",
]


def main() -> int:
    failed = []
    for name in BENCHES:
        print(f"== {name}", flush=True)
        rc = subprocess.run([sys.executable, str(HERE / name)], cwd=str(HERE.parent)).returncode
        if rc:
            failed.append(name)
    print("all benchmarks met their targets" if not failed else f"missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
