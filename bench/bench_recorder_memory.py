"""Recorder memory: peak RSS after recording 100 k vs 2 M requests (realistic rows, Parquet parts).

Target: peak RSS grows by < 50 MB from 100 k to 2 M rows: the recorder's memory is bounded by its
flush buffer, not by the run's length. Each size runs in a fresh process; both in this invocation.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 50.0


def record(n: int, out: Path) -> dict:
    """Child: push n request events through the plugin's row builder into a TableWriter that
    writes its parts on a background thread (as the Locust plugin does)."""
    sys.path.insert(0, str(REPO))
    from core.rundir import RunDir, TableWriter
    from probes.loadgen.plugin import request_row

    rd = RunDir.create(out, "mem")
    # As in a Locust process: parts written on one background thread, at most 2 waiting for it.
    ex = ThreadPoolExecutor(max_workers=1)
    w = TableWriter(rd, "requests", executor=ex)
    t0 = time.time()
    statuses = (200, 200, 200, 201, 502, 500, 0)
    for i in range(n):
        st = statuses[i % len(statuses)]
        ctx = {
            "albprobe": True,
            "kind": "actual" if i % 5 else "preflight",
            "endpoint": f"ep{i % 3}",
            "path": "/api/fast",
            "status": st,
            "source": "proxy" if st == 502 else "app",
            "source_evidence": "server: awselb/2.0" if st == 502 else None,
            "cors_ok": st in (200, 201),
            "cors_step": None if st in (200, 201) else "allow-origin-missing",
            "cors_message": None
            if st in (200, 201)
            else "Access to fetch at 'https://api.hakwonplus.com/api/fast' from origin 'https://hakwonplus.com' has been blocked by CORS policy: No 'Access-Control-Allow-Origin' header is present on the requested resource.",
            "intended_ts": t0 + i * 1e-4,
            "conn_reused": bool(i % 2),
            "user_id": i % 500,
        }
        w.append(
            request_row("GET", "fast", 12.5 + (i % 100), 25, ctx, None, t0 + i * 1e-4, "local")
        )
    w.close()
    ex.shutdown()
    return {
        "rows": w.rows_written,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": time.time() - t0,
        "parts": len(rd.parts("requests")),
    }


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="albmem-") as tmp:
        res = subprocess.run(
            [sys.executable, __file__, "--child", str(n), tmp],
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(record(int(sys.argv[2]), Path(sys.argv[3]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=2_000_000)
    a = ap.parse_args()
    small, large = measure(a.small), measure(a.large)
    for r in (small, large):
        print(
            f"{r['rows']:>9,} rows: peak RSS {r['peak_rss_mb']:.1f} MB, {r['parts']} parts, "
            f"{r['rows'] / r['seconds']:,.0f} rows/s"
        )
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    verdict = "PASS" if growth < TARGET_MB else "FAIL"
    print(
        f"peak RSS growth {a.small:,} -> {a.large:,} rows: {growth:+.1f} MB  target < {TARGET_MB:.0f} MB  {verdict}"
    )
    return 0 if growth < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
