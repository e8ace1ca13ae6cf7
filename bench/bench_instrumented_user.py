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

from bench.common import REPO, locust_rps, median  # noqa: E402
from testbed.fixed import FixedResponseProxy  # noqa: E402

TARGET = 0.90


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=20)
    a = ap.parse_args()
    bare, inst = [], []
    with FixedResponseProxy() as fx:
        for i in range(a.rounds):
            b, nb = locust_rps(
                str(REPO / "bench" / "locust_bare.py"), fx.url, users=a.users, seconds=a.seconds
            )
            s, ns = locust_rps(
                str(REPO / "locustfiles" / "browser.py"),
                fx.url,
                users=a.users,
                seconds=a.seconds,
                albprobe=True,
            )
            bare.append(b)
            inst.append(s)
            print(
                f"round {i + 1}: bare {b:,.0f} req/s ({nb}), instrumented {s:,.0f} req/s ({ns}), ratio {s / b:.3f}"
            )
    ratio = median([s / b for s, b in zip(inst, bare, strict=True)])
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(
        f"instrumented/bare requests/s (median of {a.rounds} paired rounds): {ratio:.3f}  target >= {TARGET}  {verdict}"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
