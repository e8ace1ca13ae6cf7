"""Distributed mode: a Locust master + 2 workers vs 1 process, browser user, fixed-response frontend.

Target: >= 1.6x the requests/s of one process on this 2-core machine (the client is CPU-bound in
one process; the frontend costs little). Rounds interleaved; the median of the per-round (paired) ratios is reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, locust_rps, paired_rounds  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

TARGET = 1.6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=40)
    a = ap.parse_args()
    lf = str(REPO / "locustfiles" / "browser.py")
    with FixedResponseProxy() as fx:
        return paired_rounds(
            a.rounds,
            lambda: locust_rps(lf, fx.url, users=a.users, seconds=a.seconds, albprobe=True),
            lambda: locust_rps(
                lf, fx.url, users=a.users, seconds=a.seconds, albprobe=True, processes=2
            ),
            labels=("1 process", "master+2 workers"),
            target=TARGET,
            what="distributed/single requests/s",
        )


if __name__ == "__main__":
    sys.exit(main())
