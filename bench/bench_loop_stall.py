"""Event-loop stalls in a one-process albprobe run: Parquet parts written in the loop vs on a thread.

A greenlet sleeps 1 ms in a loop while 20 albprobe users run without wait against the
fixed-response HAProxy frontend (bench/locust_probe.py), and records how late it wakes: a stall of
the loop delays every simulated user, and is added to the latencies they measure. Baseline, in the
same invocation: the same run with the parts written in the event loop (ALBBENCH_SYNC_WRITE=1, the
recorder before the background writer). The bare FastHttpUser is run too, as the floor (the loop's
own lateness at this load). Rounds alternate; figures are the medians over rounds.

Each wake's lateness is also taken net of the time the OS kept the process's main thread waiting
for a CPU (its run-queue delay, from /proc/thread-self/schedstat): on a shared machine the raw
figure is mostly other processes' load. The verdict is on the net figure; both are printed.
Also printed: how long each flush of the requests writer kept the event loop (the whole Parquet
write in the loop, the hand-over with the background writer), which no other load disturbs.

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


def _figs(s: dict[str, float]) -> str:
    return (
        f"p50 {s['p50_ms']:5.2f}  p99 {s['p99_ms']:6.2f}  p99.9 {s['p999_ms']:6.2f}  "
        f"max {s['max_ms']:6.2f} ms"
    )


def _flushes(r: LocustRun) -> str:
    f = sorted(r.flush_ms)
    return f"{len(f)} flushes kept the loop: median {f[len(f) // 2]:.2f} ms, longest {f[-1]:.2f} ms"


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
                r = rs[-1]
                print(
                    f"  {label:<12} {r.rps:>7,.0f} req/s  raw {_figs(r.stall)}\n"
                    f"  {'':<12} {r.stall['samples']:>7} samples  net {_figs(r.stall_net)}"
                    + (f"\n  {'':<12} {_flushes(r)}" if r.flush_ms else ""),
                    flush=True,
                )
    print(f"medians over {a.rounds} rounds (net of the OS run-queue wait; raw in brackets):")
    verdict = {}
    for label, rs in runs.items():
        fig = {
            k: (median([r.stall_net[k] for r in rs]), median([r.stall[k] for r in rs]))
            for k in ("p999_ms", "max_ms")
        }
        worst = max(r.stall_net["max_ms"] for r in rs)
        rps = median([r.rps for r in rs])
        verdict[label] = fig
        print(
            f"  {label:<12} {rps:>7,.0f} req/s  p99.9 {fig['p999_ms'][0]:6.2f} "
            f"({fig['p999_ms'][1]:.2f}) ms  max {fig['max_ms'][0]:6.2f} ({fig['max_ms'][1]:.2f}) ms"
            f"  worst round max {worst:.2f} ms"
            + (
                f"; longest flush in the loop {max(max(r.flush_ms) for r in rs):.2f} ms"
                if all(r.flush_ms for r in rs)
                else ""
            )
        )
    p999, mx = verdict["background"]["p999_ms"][0], verdict["background"]["max_ms"][0]
    rps = median([r.rps for r in runs["background"]])
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
