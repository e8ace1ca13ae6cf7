"""Event-loop stalls in a one-process albprobe run: Parquet parts written in the loop vs on a thread.

A greenlet sleeps 1 ms in a loop while 20 albprobe users run without wait against the
fixed-response HAProxy frontend (bench/locust_probe.py), and records how late it wakes: a stall of
the loop delays every simulated user, and is added to the latencies they measure. Baseline, in the
same invocation: the same run with the parts written in the event loop (ALBBENCH_SYNC_WRITE=1, the
recorder before the background writer). The bare FastHttpUser is run too, as the floor (the loop's
own lateness at this load). Rounds alternate; figures are the medians over rounds.

Targets (background writer): p99.9 stall < 5 ms and max < 20 ms, at >= 8,000 req/s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, LocustRun, median, run_locust  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

P999_TARGET_MS = 5.0
MAX_TARGET_MS = 20.0
MIN_RPS = 8000.0


def _line(label: str, r: LocustRun) -> str:
    s = r.stall
    return (
        f"{label:<18} {r.rps:>7,.0f} req/s  stall p50 {s['p50_ms']:5.2f}  p99 {s['p99_ms']:6.2f}  "
        f"p99.9 {s['p999_ms']:6.2f}  max {s['max_ms']:6.2f} ms  ({s['samples']} samples)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=20)
    a = ap.parse_args()
    bare = str(REPO / "bench" / "locust_bare.py")
    browser = str(REPO / "locustfiles" / "browser.py")
    runs: dict[str, list[LocustRun]] = {"bare": [], "in the loop": [], "background": []}
    with FixedResponseProxy() as fx:
        for i in range(a.rounds):
            common = {"users": a.users, "seconds": a.seconds, "stall": True}
            runs["bare"].append(run_locust(bare, fx.url, **common))
            runs["in the loop"].append(
                run_locust(browser, fx.url, albprobe=True, sync_write=True, **common)
            )
            runs["background"].append(run_locust(browser, fx.url, albprobe=True, **common))
            print(f"round {i + 1}:", flush=True)
            for label, rs in runs.items():
                print("  " + _line(label, rs[-1]), flush=True)
    print(f"medians over {a.rounds} rounds:")
    for label, rs in runs.items():
        p999 = median([r.stall["p999_ms"] for r in rs])
        mx = median([r.stall["max_ms"] for r in rs])
        worst = max(r.stall["max_ms"] for r in rs)
        rps = median([r.rps for r in rs])
        print(
            f"  {label:<12} {rps:>7,.0f} req/s  p99.9 {p999:6.2f} ms  max {mx:6.2f} ms "
            f"(worst round {worst:.2f} ms)"
        )
    bg = runs["background"]
    p999 = median([r.stall["p999_ms"] for r in bg])
    mx = median([r.stall["max_ms"] for r in bg])
    rps = median([r.rps for r in bg])
    ok = p999 < P999_TARGET_MS and mx < MAX_TARGET_MS
    print(
        f"background writer: p99.9 {p999:.2f} ms (target < {P999_TARGET_MS:.0f}), "
        f"max {mx:.2f} ms (target < {MAX_TARGET_MS:.0f})  {'PASS' if ok else 'FAIL'}"
    )
    if rps < MIN_RPS:
        print(
            f"note: {rps:,.0f} req/s is below the {MIN_RPS:,.0f} req/s the target is set at "
            "(a busy machine); the figure is not representative"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
