"""Instrumented browser user vs a bare FastHttpUser, same fixed-response HAProxy frontend.

Target: the browser-faithful user (CORS verdict, attribution, per-request Parquet recording, rate
cap) keeps >= 90 % of the bare user's requests/s. A/B rounds are interleaved and the median of the
per-round (paired) ratios is reported, because this 2-core machine is noisy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, locust_rps, paired_rounds  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

TARGET = 0.90


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=20)
    a = ap.parse_args()
    bare = str(REPO / "bench" / "locust_bare.py")
    browser = str(REPO / "locustfiles" / "browser.py")
    with FixedResponseProxy() as fx:
        return paired_rounds(
            a.rounds,
            lambda: locust_rps(bare, fx.url, users=a.users, seconds=a.seconds),
            lambda: locust_rps(browser, fx.url, users=a.users, seconds=a.seconds, albprobe=True),
            labels=("bare", "instrumented"),
            target=TARGET,
            what="instrumented/bare requests/s",
        )


if __name__ == "__main__":
    sys.exit(main())
