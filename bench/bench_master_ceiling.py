"""The distributed master's ceiling over ZMQ: at which rate of rows does it fall behind, and does
the worker-parts mode lift it?

    .venv/bin/python bench/bench_master_ceiling.py [--rates 20000,50000,100000,150000,200000,300000]
        [--seconds 30] [--workers 2] [--modes ship,parts]
    .venv/bin/python bench/bench_master_ceiling.py --quick      # about a minute: does it work

For each mode and each total rate: a real Locust master (`locust --master`, this plugin, its run
directory) and N real workers (plain processes, over ZMQ on 127.0.0.1) running
bench/locust_rowgen.py, whose users make rows at the rate without sending any request (so the
workers stay cheap and the master is what is measured). Modes: `ship` (rows ride in the workers'
stats reports and the master writes them, the default) and `parts` (each worker writes its own
parts, the master records where: --albprobe-worker-parts).

Figures, per run:
- master CPU: user + sys of the master process (every thread) over the load's steady window
  (from 3 s after the start to the end), from /proc/<pid>/stat; as a share of one core, and per
  row above the master's CPU at the lowest rate of the same mode (Locust's own loop);
- lag: for every Parquet part, its file's modification time (when it was written) minus its
  rows' send times (`ts`): the median row's lag (weighted by rows), the largest, and its growth
  (least-squares slope of a part's oldest-row lag against the part's write time, seconds of lag
  per second of run). A master that keeps up has a bounded lag (a report interval of 3 s + the
  handling + a flush interval of 2 s) and a slope near 0; one that falls behind has a lag that
  grows for as long as the run lasts;
- rows: made by the workers, recorded (counts.requests) and Locust's count (counts.locust_requests),
  and how long the master took to end after the load did (draining its backlog);
- verdict BEHIND when the lag grows by more than 0.1 s per second, or rows were lost, or the
  master's drain took more than 10 s; else KEEPS UP.
The ceiling is the highest rate that kept up. Workers' CPU is printed too (on one machine they
share the cores with the master: on 2 cores, rows of 2 workers cost the master its core sooner).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testbed.ports import free_port  # noqa: E402

LOCUSTFILE = str(REPO / "bench" / "locust_rowgen.py")
TICK_S = os.sysconf("SC_CLK_TCK")
WARMUP_S = 3.0
CONFIG = """
[load]
users = {workers}
spawn_rate = {workers}
duration = {seconds}
think_time = 0.0
[safety]
max_rps = 100000000.0
max_users = 1000
abort_error_rate = 1.0
"""


def _cpu(pid: int) -> float | None:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / TICK_S  # utime, stime (fields 14, 15)


def _rss_peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Result:
    mode: str
    rate: int
    master_cpu_share: float  # CPU seconds per second of the steady window
    master_cpu_s: float  # CPU seconds from the load's start to the master's exit (drain included)
    elapsed_s: float  # wall seconds of the same span
    workers_cpu_share: float
    lag_p50: float
    lag_max: float
    lag_slope: float
    generated: int
    recorded: int
    locust: int
    drain_s: float
    rss_mb: float
    window_s: float

    @property
    def lost(self) -> int:
        return self.generated - self.recorded

    @property
    def behind(self) -> bool:
        growing = self.lag_slope == self.lag_slope and self.lag_slope > 0.1  # nan: too few parts
        lost = self.lost > max(10, self.generated * 0.001)
        return growing or lost or self.lag_max > 15 or self.drain_s > 10

    @property
    def cpu_us_per_row(self) -> float:
        """Master CPU from the load's start to its exit per row recorded (Locust's own loop
        included: an overestimate at low rates)."""
        return self.master_cpu_s / max(self.recorded, 1) * 1e6

    def marginal_us_per_row(self, low: Result) -> float:
        """Master CPU per added row between the lowest rate of the mode and this one."""
        if self.rate <= low.rate:
            return float("nan")
        share = self.master_cpu_s / self.elapsed_s - low.master_cpu_s / low.elapsed_s
        return share / (self.rate - low.rate) * 1e6


def _lag(run: Path, steady_from: float) -> tuple[float, float, float]:
    """(median row lag, max lag, slope of the oldest-row lag over write time) from the parts; the
    slope over the parts written from ``steady_from`` on (nan with fewer than 5 of them)."""
    import duckdb

    parts = sorted((run / "requests").glob("*.parquet"))
    if not parts:
        return float("nan"), float("nan"), float("nan")
    mtime = {str(p): p.stat().st_mtime for p in parts}
    rows = duckdb.sql(
        "select filename, count(*), min(ts), avg(ts) from "
        f"read_parquet({[str(p) for p in parts]!r}, filename=true) group by filename"
    ).fetchall()
    per = sorted((mtime[f], n, mtime[f] - mn, mtime[f] - avg) for f, n, mn, avg in rows)
    total = sum(n for _, n, _, _ in per)
    acc, p50 = 0, 0.0
    for _, n, _, mean_lag in sorted(per, key=lambda x: x[3]):
        acc += n
        if acc >= total / 2:
            p50 = mean_lag
            break
    lag_max = max(x[2] for x in per)
    steady = [x for x in per if x[0] >= steady_from]
    xs, ys = [x[0] for x in steady], [x[2] for x in steady]
    if len(xs) < 5:
        return p50, lag_max, float("nan")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return p50, lag_max, slope


def run_once(mode: str, rate: int, *, seconds: int, workers: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="albceiling-") as tmp:
        t = Path(tmp)
        cfg = t / "bench.toml"
        cfg.write_text(CONFIG.format(workers=workers, seconds=seconds))
        run = t / "run"
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            ALBBENCH_ROWS_PER_S=str(rate),
            ALBBENCH_WORKERS=str(workers),
            ALBBENCH_OUT=str(t),
        )
        env.pop("ALBPROBE_CONFIG", None)
        port = free_port()
        base = [sys.executable, "-m", "locust", "-f", LOCUSTFILE]
        master_cmd = [
            *base,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "--headless",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--host",
            "http://127.0.0.1:9",  # never called: the users make rows, not requests
            "--albprobe-config",
            str(cfg),
            "--albprobe-shape",
            "users",
            "--albprobe-processes",
            str(workers),
            "--albprobe-run-dir",
            str(run),
        ]
        if mode == "parts":
            master_cmd += ["--albprobe-worker-parts", str(t / "parts")]
        worker_cmd = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        log = open(t / "master.log", "w")  # noqa: SIM115
        master = subprocess.Popen(master_cmd, cwd=str(t), env=env, stdout=log, stderr=log)
        procs = [master] + [
            subprocess.Popen(
                worker_cmd,
                cwd=str(t),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        try:
            started = _wait_started(run, master, budget=120)
            cpu_start = _cpu(master.pid) or 0.0
            _sleep_until(started + WARMUP_S)
            c0 = [_cpu(p.pid) or 0.0 for p in procs]
            w0 = time.time()
            end = started + seconds
            rss = 0.0
            while time.time() < end - 0.5 and master.poll() is None:
                rss = max(rss, _rss_peak_mb(master.pid) or 0.0)
                time.sleep(0.25)
            c1 = [_cpu(p.pid) or 0.0 for p in procs]
            window = time.time() - w0
            rss = max(rss, _rss_peak_mb(master.pid) or 0.0)
            cpu_end = _wait_cpu(master, timeout=seconds + 180)
            drain = time.time() - end
            elapsed = time.time() - started
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(10)
            log.close()
        summary = run / "locust" / "summary.json"
        counts = json.loads(summary.read_text()) if summary.exists() else {}
        generated = sum(json.loads(f.read_text())["rows"] for f in t.glob("gen-*.json"))
        p50, lag_max, slope = _lag(run, started + WARMUP_S + 3)
        return Result(
            mode=mode,
            rate=rate,
            master_cpu_share=(c1[0] - c0[0]) / window,
            master_cpu_s=cpu_end - cpu_start,
            elapsed_s=elapsed,
            workers_cpu_share=sum(b - a for a, b in zip(c0[1:], c1[1:], strict=True)) / window,
            lag_p50=p50,
            lag_max=lag_max,
            lag_slope=slope,
            generated=generated,
            recorded=int(counts.get("rows") or 0),
            locust=int(counts.get("locust_requests") or 0),
            drain_s=drain,
            rss_mb=rss,
            window_s=window,
        )


def _wait_cpu(proc: subprocess.Popen, timeout: float) -> float:
    """Wait for the process to end; its CPU seconds (every thread, from its rusage)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid, _status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = 0  # reaped here: Popen must not wait for it again
            return ru.ru_utime + ru.ru_stime
        time.sleep(0.1)
    raise RuntimeError("the master did not end")


def _wait_started(run: Path, proc: subprocess.Popen, budget: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget:
        if proc.poll() is not None:
            raise RuntimeError(f"the master ended early (exit code {proc.returncode})")
        try:
            started = json.loads((run / "progress.json").read_text()).get("started_at")
            if started:
                return float(started)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the load did not start")


def _sleep_until(t: float) -> None:
    while (d := t - time.time()) > 0:
        time.sleep(min(d, 0.2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="20000,50000,100000,150000,200000,300000")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--modes", default="ship,parts")
    ap.add_argument("--quick", action="store_true", help="2 rates x 6 s per mode (~1 min)")
    a = ap.parse_args()
    if a.quick:
        a.rates, a.seconds = "5000,40000", 6
    rates = [int(x) for x in a.rates.split(",")]
    print(
        "mode     rows/s  master CPU  us/row  marginal  workers CPU  lag p50  lag max  "
        "lag growth  made -> recorded (Locust)      drain  master RSS  verdict",
        flush=True,
    )
    ceilings: dict[str, int | None] = {}
    for mode in a.modes.split(","):
        low: Result | None = None
        ceilings[mode] = None
        for rate in sorted(rates):
            r = run_once(mode, rate, seconds=a.seconds, workers=a.workers)
            low = low or r
            verdict = "BEHIND" if r.behind else "KEEPS UP"
            if not r.behind:
                ceilings[mode] = rate
            print(
                f"{mode:<6} {rate:>8,}  {r.master_cpu_share:>10.1%}  {r.cpu_us_per_row:>6.2f}  "
                f"{r.marginal_us_per_row(low):>8.2f}  {r.workers_cpu_share:>11.0%}  "
                f"{r.lag_p50:>6.2f}s  {r.lag_max:>6.2f}s  {r.lag_slope:>+8.3f}s/s  "
                f"{r.generated:>9,} -> {r.recorded:>9,} ({r.locust:>9,})  {r.drain_s:>5.1f}s  "
                f"{r.rss_mb:>7.0f} MB  {verdict}",
                flush=True,
            )
    print(
        "master CPU: share of one core over the steady window; us/row: master CPU from the "
        "load's start to its exit per recorded row; marginal: per added row above the lowest rate"
    )
    for mode, c in ceilings.items():
        print(
            f"{mode}: highest rate that kept up: {c:,} rows/s"
            if c
            else f"{mode}: none of the rates kept up"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
