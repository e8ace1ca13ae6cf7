"""ALB access-log ingest: albprobe end to end vs its own parser vs GoAccess, ratios from one invocation.

    .venv/bin/python bench/bench_alb_ingest.py [--lines 1000000] [--rounds 3] [--objects 8]

One generated log (``fixtures.synth.alb_lines``), written as one plain-text file and as
``--objects`` .log.gz objects (as the ALB delivers them). Each round, in turn:
  GoAccess 1.7     --log-format=AWSALB on the plain file, writing its JSON report (subprocess);
  end to end       `albprobe analyze --alb-logs` on the plain file: summary.json + HTML (subprocess);
  parse alone      albprobe's DuckDB ingest of every field of the plain file, in this process;
  end to end, .gz  `albprobe analyze --alb-logs` on the .gz objects (subprocess);
  .gz thread split the ingest of the .gz objects in this process, CPU time per thread
                   (/proc/self/task): the objects are read in parallel when two threads share it.
CPU time (user + sys, all threads; a subprocess's from getrusage(RUSAGE_CHILDREN)) is the primary
figure: the reference machine is shared. Wall time is printed too. Ratios are per round, then the
median over rounds. Targets: end to end <= 1.5x the parse alone, and >= 4x GoAccess's lines/s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import median  # noqa: E402


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of a subprocess."""
    c, t = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    dt, dc = time.perf_counter() - t, _cpu(resource.RUSAGE_CHILDREN) - c
    if proc.returncode not in (0, 1):  # albprobe exits 1 when a --fail-on breaches; none here
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dt, dc


def _thread_cpu() -> dict[str, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        f = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[task.name] = (int(f[11]) + int(f[12])) / tick
    return out


def _parse_alone(paths: list[Path], fields: tuple[str, ...] | None) -> tuple[float, float, int]:
    from analysis import dataset
    from analysis.parsers import alb

    con = dataset.connect()
    c, t = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    st = alb.load(con, paths, fields=fields)
    dt, dc = time.perf_counter() - t, _cpu(resource.RUSAGE_SELF) - c
    con.close()
    return dt, dc, st.parsed


def _gz_split(paths: list[Path]) -> list[float]:
    """CPU seconds of the two busiest threads while the .gz objects are ingested."""
    from analysis import dataset
    from analysis.parsers import alb

    con = dataset.connect()
    before = _thread_cpu()
    alb.load(con, paths, fields=alb.ANALYSIS_FIELDS)
    after = _thread_cpu()
    con.close()
    return sorted((after[k] - before.get(k, 0.0) for k in after), reverse=True)[:2]


def _analyze(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "albprobe", "analyze", "--alb-logs", str(src), "--out", str(out)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--objects", type=int, default=8, help=".log.gz objects for the .gz runs")
    args = ap.parse_args()
    goaccess = shutil.which("goaccess")
    if not goaccess:
        raise SystemExit("goaccess is not installed (apt-get install goaccess)")
    from fixtures import synth

    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-alb-") as tmp:
        work = Path(tmp)
        plain, gzdir = work / "logs", work / "gz"
        plain.mkdir()
        gzdir.mkdir()
        log = plain / "bench_alb.log"
        t = time.perf_counter()
        lines = list(synth.alb_lines(args.lines, seed=9))
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        per = -(-len(lines) // args.objects)
        for k in range(args.objects):
            name = f"123456789012_elasticloadbalancing_us-east-2_app.bench_20261126T13{k:02d}Z_10.0.0.{k}_b{k}.log.gz"
            with gzip.open(gzdir / name, "wt", encoding="utf-8", compresslevel=6) as fh:
                fh.write("\n".join(lines[k * per : (k + 1) * per]) + "\n")
        del lines
        gz_files = sorted(gzdir.iterdir())
        print(
            f"generated {args.lines:,} lines ({log.stat().st_size / 1e6:.0f} MB; "
            f"{args.objects} .gz objects, {sum(p.stat().st_size for p in gz_files) / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        log.read_bytes()  # warm the page cache once so no tool pays for the first read
        for i in range(args.rounds):
            ga_json = work / "goaccess.json"
            ga = _timed(
                [
                    goaccess,
                    str(log),
                    "--log-format=AWSALB",
                    "--no-global-config",
                    "-o",
                    str(ga_json),
                ],
                work,
            )
            ga_valid = json.loads(ga_json.read_text())["general"]["valid_requests"]
            e2e = _timed(_analyze(plain, work / "rep"), ROOT)
            parsed = json.loads((work / "rep" / "summary.json").read_text())["figures"]["parse"]
            p_wall, p_cpu, p_n = _parse_alone([log], None)
            gz = _timed(_analyze(gzdir, work / "rep-gz"), ROOT)
            gz_parsed = json.loads((work / "rep-gz" / "summary.json").read_text())["figures"][
                "parse"
            ]["alb"]["parsed"]
            split = _gz_split(gz_files)
            assert ga_valid == args.lines, f"GoAccess parsed {ga_valid:,} of {args.lines:,}"
            assert parsed["alb"]["parsed"] == p_n == gz_parsed == args.lines, "albprobe lost lines"
            r = {
                "ga_wall": ga[0],
                "ga_cpu": ga[1],
                "e2e_wall": e2e[0],
                "e2e_cpu": e2e[1],
                "parse_wall": p_wall,
                "parse_cpu": p_cpu,
                "gz_wall": gz[0],
                "gz_cpu": gz[1],
                "gz_thread1": split[0],
                "gz_thread2": split[1],
            }
            rows.append(r)
            print(
                f"round {i + 1}: GoAccess {ga[0]:.2f} s wall / {ga[1]:.2f} s CPU; end to end "
                f"{e2e[0]:.2f} / {e2e[1]:.2f}; parse alone {p_wall:.2f} / {p_cpu:.2f}; "
                f".gz end to end {gz[0]:.2f} / {gz[1]:.2f}; .gz ingest threads "
                f"{split[0]:.2f} + {split[1]:.2f} s CPU; e2e/parse {e2e[1] / p_cpu:.2f}x CPU "
                f"({e2e[0] / p_wall:.2f}x wall); GoAccess/e2e {ga[1] / e2e[1]:.2f}x CPU "
                f"({ga[0] / e2e[0]:.2f}x wall)",
                flush=True,
            )

    def med(f) -> float:
        return median([f(r) for r in rows])

    e2e_parse = med(lambda r: r["e2e_cpu"] / r["parse_cpu"])
    ga_e2e = med(lambda r: r["ga_cpu"] / r["e2e_cpu"])
    print(f"medians of {len(rows)} rounds ({args.lines:,} lines):")
    for label, key in (
        ("GoAccess 1.7 (AWSALB, JSON report)", "ga"),
        ("albprobe analyze --alb-logs (end to end)", "e2e"),
        ("albprobe ALB parser only (every field)", "parse"),
        (f"albprobe analyze --alb-logs, {args.objects} .gz objects", "gz"),
    ):
        c = med(lambda r, k=key: r[f"{k}_cpu"])
        w = med(lambda r, k=key: r[f"{k}_wall"])
        print(
            f"  {label:44s} CPU {c:6.2f} s  wall {w:6.2f} s  {args.lines / c:>10,.0f} lines/CPU-s"
        )
    t1, t2 = med(lambda r: r["gz_thread1"]), med(lambda r: r["gz_thread2"])
    print(f"  .gz ingest: busiest two threads {t1:.2f} s + {t2:.2f} s CPU (both cores used)")
    print(
        f"ratio end to end / parse alone: {e2e_parse:.2f}x CPU "
        f"({med(lambda r: r['e2e_wall'] / r['parse_wall']):.2f}x wall)  target <= 1.5x"
    )
    print(
        f"ratio albprobe / GoAccess lines/s: {ga_e2e:.2f}x CPU "
        f"({med(lambda r: r['ga_wall'] / r['e2e_wall']):.2f}x wall)  target >= 4x"
    )
    ok = e2e_parse <= 1.5 and ga_e2e >= 4
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
