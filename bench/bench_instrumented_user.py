"""Instrumented browser user vs a bare FastHttpUser: client CPU time per request.

Both run in one Locust process against the same fixed-response HAProxy frontend; the bare user
sends the byte-identical request with nothing judged, attributed or recorded. The primary figure
is the Locust process's CPU time (user + sys, every thread, so the Parquet writer is counted) per
request, from test start to the end of the final flush (bench/locust_probe.py): it measures what
albprobe's instrumentation costs the client, and is far steadier on a shared 2-core machine than
requests/s (paired throughput ratios ranged 0.57 to 1.38). Rounds alternate A/B; the figure is the
median of the per-round (paired) ratios, with their spread. The throughput ratio is printed too.

Target: the instrumented user costs <= 1.08x the bare user's CPU per request.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, median, run_locust  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

TARGET = 1.08


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=20)
    a = ap.parse_args()
    bare = str(REPO / "bench" / "locust_bare.py")
    browser = str(REPO / "locustfiles" / "browser.py")
    cpu_ratios, rps_ratios = [], []
    with FixedResponseProxy() as fx:
        for i in range(a.rounds):
            b = run_locust(bare, fx.url, users=a.users, seconds=a.seconds)
            c = run_locust(browser, fx.url, users=a.users, seconds=a.seconds, albprobe=True)
            cpu_ratios.append(c.cpu_us_per_request / b.cpu_us_per_request)
            rps_ratios.append(c.rps / b.rps)
            print(
                f"round {i + 1}: bare {b.cpu_us_per_request:6.1f} us/req ({b.rps:,.0f} req/s), "
                f"instrumented {c.cpu_us_per_request:6.1f} us/req ({c.rps:,.0f} req/s), "
                f"CPU ratio {cpu_ratios[-1]:.3f}",
                flush=True,
            )
    ratio = median(cpu_ratios)
    ok = ratio <= TARGET
    print(
        f"instrumented/bare requests/s (median, secondary): {median(rps_ratios):.3f} "
        f"(rounds {min(rps_ratios):.2f}-{max(rps_ratios):.2f})"
    )
    print(
        f"instrumented/bare CPU per request (median of {a.rounds} paired rounds): {ratio:.3f} "
        f"(rounds {min(cpu_ratios):.3f}-{max(cpu_ratios):.3f})  target <= {TARGET}  "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
