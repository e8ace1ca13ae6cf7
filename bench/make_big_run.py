"""A large run directory made from a smaller one: its time span repeated ``--copies`` times.

    .venv/bin/python bench/make_big_run.py SRC DST [--copies 10]

Copy k (0-based) of every requests part has its ``ts`` and ``intended_ts`` shifted by k x the run's
span (run.json ended_at - started_at), so a 10 M-row, 500-s run becomes a 100 M-row, 5,000-s
run with the same per-second shape; parts keep their size and order (one 1 M-row row group
each, time-ordered, as the recorder writes them). The health samples and the gunicorn log's
lines after the start are repeated the same way; run.json gets the new end and counts.
Nothing in SRC is modified. With ``bench_analyze_10m.py --keep DIR --requests N`` this makes
the 100 M-row figure of bench/README.md reproducible:

    .venv/bin/python bench/bench_analyze_10m.py --keep /tmp/b --rounds 0       # makes the 10 M run
    .venv/bin/python bench/make_big_run.py /tmp/b/synth-large-10000000 /tmp/b/synth-large-100000000
    .venv/bin/python bench/bench_analyze_10m.py --keep /tmp/b --requests 100000000 --rounds 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import time
from pathlib import Path

import duckdb

_GLOG_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000\]")


def _lit(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def _shift_log(lines: list[str], start: float, by: float) -> list[str]:
    """The lines stamped at or after ``start``, their timestamps moved by ``by`` seconds."""
    out = []
    for line in lines:
        m = _GLOG_TS.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        if t.timestamp() < start:
            continue
        new = (t + dt.timedelta(seconds=by)).strftime("%Y-%m-%d %H:%M:%S")
        out.append(f"[{new} +0000]" + line[m.end() :])
    return out


def make(src: Path, dst: Path, copies: int) -> None:
    meta = json.loads((src / "run.json").read_text(encoding="utf-8"))
    span = float(meta["ended_at"]) - float(meta["started_at"])
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order=true")  # each part stays in time order
    dst.mkdir(parents=True)
    (dst / "requests").mkdir()
    parts = sorted((src / "requests").glob("*.parquet"))
    rows = 0
    for k in range(copies):
        for i, p in enumerate(parts):
            out = dst / "requests" / f"part-{k * len(parts) + i:05d}.parquet"
            con.execute(
                f"COPY (SELECT * REPLACE (ts + {k * span!r} AS ts, "
                f"intended_ts + {k * span!r} AS intended_ts) FROM read_parquet({_lit(p)})) "
                f"TO {_lit(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
            )
        print(f"copy {k + 1}/{copies} written", flush=True)
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet({_lit(dst / 'requests' / '*.parquet')})"
    ).fetchall()[0][0]
    for table in ("health", "metrics", "events", "schedule"):
        tparts = sorted((src / table).glob("*.parquet")) if (src / table).is_dir() else []
        if not tparts:
            continue
        (dst / table).mkdir()
        shifted = " UNION ALL ".join(
            f"SELECT * REPLACE (ts + {k * span!r} AS ts) FROM read_parquet({_lit(p)})"
            for k in range(copies)
            for p in tparts
        )
        con.execute(
            f"COPY ({shifted}) TO {_lit(dst / table / 'part-00000.parquet')} (FORMAT parquet)"
        )
    if (src / "logs").is_dir():
        (dst / "logs").mkdir()
        for log in (src / "logs").iterdir():
            if log.name.startswith("gunicorn") and log.is_file():
                first = log.read_text(encoding="utf-8").splitlines()
                lines = list(first)
                for k in range(1, copies):
                    lines += _shift_log(first, float(meta["started_at"]), k * span)
                (dst / "logs" / log.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            elif log.is_file():
                shutil.copy2(log, dst / "logs" / log.name)
    meta["ended_at"] = float(meta["started_at"]) + copies * span
    meta.setdefault("counts", {})["requests"] = int(rows)
    (dst / "run.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path, help="run directory to repeat (not modified)")
    ap.add_argument("dst", type=Path, help="new run directory (must not exist)")
    ap.add_argument("--copies", type=int, default=10)
    args = ap.parse_args()
    if args.dst.exists():
        raise SystemExit(f"{args.dst} exists")
    t = time.perf_counter()
    make(args.src, args.dst, args.copies)
    size = sum(p.stat().st_size for p in (args.dst / "requests").glob("*.parquet"))
    print(
        f"{args.dst}: {args.copies} copies in {time.perf_counter() - t:.0f} s, {size / 1e6:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
