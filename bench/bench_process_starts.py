"""The CPU of starting the processes every run starts: a Locust process, and a testbed gunicorn
with its workers. Baseline and candidate alternate, in one invocation; CPU time is the figure
(getrusage of the reaped children), medians over rounds.

    .venv/bin/python bench/bench_process_starts.py [--rounds 7] [--workers 4]

  Locust     `python -m locust --version` (Locust's own start: imports and gevent's patching)
             vs `python -m probes.loadgen.launch --version` (albprobe's Locust child).
  gunicorn   the testbed app from start until every worker has answered, then stopped, with 1
             and with N workers: without vs with the master's library imports
             (testbed/app/gunicorn_conf.py). The figure is a worker's boot, (CPU(N) - CPU(1)) /
             (N - 1): what every worker costs, at start and again at each kill, recycle or reload.
Targets: Locust's start at most 0.85x, a worker's boot at most 0.7x its baseline's CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import median  # noqa: E402
from testbed.gunicorn_proc import GunicornSpec  # noqa: E402
from testbed.ports import free_port  # noqa: E402

TARGETS = {"locust": 0.85, "gunicorn": 0.7}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="testbed.app.settings")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def locust_start(module: str) -> float:
    before = _children_cpu()
    subprocess.run(
        [sys.executable, "-m", module, "--version"],
        cwd=ROOT,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return _children_cpu() - before


def _answers(port: int) -> bool:
    import http.client

    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health", headers={"Host": "127.0.0.1"})
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def _booted(log: Path, workers: int) -> bool:
    try:
        return log.read_text().count("Booting worker") >= workers
    except OSError:
        return False


def gunicorn_start(workers: int, master_imports: bool, tmp: Path) -> float:
    port = free_port()
    log = tmp / f"g-{port}.log"
    spec = GunicornSpec(
        bind_host="127.0.0.1",
        port=port,
        worker_class="sync",
        workers=workers,
        threads=1,
        timeout=30,
        keepalive=2,
        error_log=log,
        state_file=tmp / "state.json",
    )
    argv = spec.argv()
    if not master_imports:
        i = argv.index("--config")
        del argv[i : i + 2]
    before = _children_cpu()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        # every worker booted and one of them answering (a worker answers once its app is in)
        while not (_booted(log, workers) and _answers(port)):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"gunicorn did not come up: {log.read_text()[-500:]}")
            time.sleep(0.05)
        # each worker imports the app before it accepts; send one request per worker so that
        # all have (sync workers: one request at a time each)
        for _ in range(workers * 3):
            _answers(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return _children_cpu() - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workers", type=int, default=6)
    args = ap.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="albbench-starts-") as d:
        tmp = Path(d)
        (tmp / "state.json").write_text("{}")
        rows = {"locust": ([], []), "gunicorn": ([], [])}
        whole: tuple[list[float], list[float]] = ([], [])
        n = args.workers
        for _ in range(args.rounds):
            rows["locust"][0].append(locust_start("locust"))
            rows["locust"][1].append(locust_start("probes.loadgen.launch"))
            for k, master_imports in enumerate((False, True)):
                one = gunicorn_start(1, master_imports, tmp)
                many = gunicorn_start(n, master_imports, tmp)
                rows["gunicorn"][k].append((many - one) / (n - 1))
                whole[k].append(many)
    labels = {
        "locust": ("python -m locust", "probes.loadgen.launch"),
        "gunicorn": ("a worker's boot, plain", "with the master's imports"),
    }
    for what, (base, cand) in rows.items():
        b, c = median(base), median(cand)
        ratio = c / b
        ok = ratio <= TARGETS[what]
        failed |= not ok
        print(
            f"{what:9s} {labels[what][0]}: {b:.2f} s CPU   {labels[what][1]}: {c:.2f} s CPU   "
            f"ratio {ratio:.2f} (target <= {TARGETS[what]}) {'met' if ok else 'MISSED'}"
        )
        print(f"          rounds: {[round(x, 2) for x in base]} vs {[round(x, 2) for x in cand]}")
    print(
        f"gunicorn  whole start with {n} workers (master included): {median(whole[0]):.2f} s CPU "
        f"plain, {median(whole[1]):.2f} s with the master's imports"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
