"""Distributed mode: a Locust master + 2 workers vs 1 process, browser user, fixed-response frontend.

Target: >= 1.6x the requests/s of one process on this 2-core machine (the client is CPU-bound in
one process; the frontend costs little). Rounds interleaved; the median of the per-round (paired) ratios is reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, locust_rps, median  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

TARGET = 1.6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=40)
    a = ap.parse_args()
    lf = str(REPO / "locustfiles" / "browser.py")
    one, two = [], []
    with FixedResponseProxy() as fx:
        for i in range(a.rounds):
            s, ns = locust_rps(lf, fx.url, users=a.users, seconds=a.seconds, albprobe=True)
            d, nd = locust_rps(
                lf, fx.url, users=a.users, seconds=a.seconds, albprobe=True, processes=2
            )
            one.append(s)
            two.append(d)
            print(
                f"round {i + 1}: 1 process {s:,.0f} req/s ({ns}), master+2 workers {d:,.0f} req/s ({nd}), x{d / s:.2f}"
            )
    ratio = median([d / s for d, s in zip(two, one, strict=True)])
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(
        f"distributed/single requests/s (median of {a.rounds} paired rounds): x{ratio:.2f}  target >= x{TARGET}  {verdict}"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
