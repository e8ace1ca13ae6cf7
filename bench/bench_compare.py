"""`albprobe compare`: false alarms, power and speed (docs/compare.md; figures in bench/README.md).

    .venv/bin/python bench/bench_compare.py [--part false-alarms|power|speed|all]
        [--pairs 20] [--testbed-pairs 3] [--requests 10000000]

false-alarms  20 seeded pairs of synthetic run directories with the same distribution
              (fixtures/synth_compare.py: per-second shared slowness, bursty failures), judged
              with the block-based tests (the default) and with the naive row-based ones; plus
              a few real testbed pairs of one setting. A false alarm = overall "fail".
              Goal: <= 5 % at the defaults.
power         +5 / +10 / +20 % latency on one endpoint, and +0.5 / +1 / +2 point proxy-5xx
              steps, at 500 and 2,000 requests per endpoint: the share of pairs where that
              endpoint's figure is judged regressed. Goal: >= 95 % at +20 % with 2,000.
speed         two 10 M-row runs (fixtures/synth.py write_large): `albprobe compare` against one
              `albprobe analyze`, each a child process, in the same invocation. Goal: <= 2x,
              with both runs analysed before (as `albprobe run` leaves them); the time
              when neither was analysed (compare analyses both) is printed too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.compare import Settings, compare_runs  # noqa: E402
from fixtures import synth_compare as sc  # noqa: E402

LATENCY = ("p50", "p95", "p99", "latency_shift")


def _judge(a: Path, b: Path, settings: Settings):
    return compare_runs(a, b, settings=settings, with_verdicts=False)


def false_alarms(pairs: int, root: Path) -> dict:
    out = {}
    runs = [
        (
            sc.write_run(root, f"fa-{i}-a", seed=1000 + 2 * i),
            sc.write_run(root, f"fa-{i}-b", seed=1001 + 2 * i),
        )
        for i in range(pairs)
    ]
    variants = (
        ("block", Settings()),
        ("naive", Settings(blocks=False)),
        (
            "block, no minimum effect",
            Settings(min_latency_effect=0, min_rate_effect=0, min_latency_ms=0),
        ),
        (
            "naive, no minimum effect",
            Settings(blocks=False, min_latency_effect=0, min_rate_effect=0, min_latency_ms=0),
        ),
    )
    for label, settings in variants:
        fails = figs = figs_regressed = nominal = 0
        for a, b in runs:
            cmp = _judge(a, b, settings)
            fails += cmp.overall.result == "fail"
            tested = [f for f in cmp.figures if f.tested]
            figs += len(tested)
            figs_regressed += sum(f.judgement == "regressed" for f in tested)
            # calibration: under the null, about 5 % of the raw p-values are below 0.05
            nominal += sum(f.p is not None and f.p < 0.05 for f in tested)
        out[label] = {
            "pairs": pairs,
            "false_alarms": fails,
            "rate": fails / pairs,
            "figures_regressed_share": figs_regressed / max(figs, 1),
            "raw_p_below_005_share": nominal / max(figs, 1),
        }
        print(
            f"false alarms ({label}): {fails}/{pairs} pairs = {fails / pairs:.0%}"
            f"  (figures regressed: {figs_regressed}/{figs}; raw p < 0.05: {nominal / max(figs, 1):.1%})",
            flush=True,
        )
    return out


TESTBED_CONFIG = """
[load]
think_time = 0.0
[capacity]
worker_class = "gthread"
workers = 2
threads = 32
[[endpoints]]
name = "steady"
path = "/api/slow?ms=300"
[[endpoints]]
name = "slow"
path = "/api/slow?ms=600"
[[endpoints]]
name = "fast"
path = "/api/fast"
"""


def testbed_pairs(n: int, root: Path, duration: str) -> dict:
    """Real pairs: the same config run twice on the testbed (HAProxy, gunicorn, Django)."""
    cfg = root / "tb.toml"
    cfg.write_text(TESTBED_CONFIG)
    res = {"block": 0, "naive": 0, "block_25": 0, "block_no_floor": 0, "pairs": n, "results": []}
    for i in range(n):
        paths = []
        for side in ("a", "b"):
            run_id = f"tb-{i}-{side}"
            r = subprocess.run(
                [sys.executable, "-m", "albprobe", "run", "--runs-dir", str(root / "runs"),
                 "--config", str(cfg), "--shape", "users", "--users", "32", "--duration",
                 duration, "--run-id", run_id, "--no-analyze"],
                cwd=ROOT, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if r.returncode:
                raise SystemExit(f"testbed run failed: {r.stderr[-1500:]}")
            paths.append(root / "runs" / run_id)
        row = {}
        variants = (
            ("block", Settings()),  # the defaults: +10 % and 2 ms
            ("naive", Settings(blocks=False)),
            ("block_25", Settings(min_latency_effect=0.25)),  # what tests/compare use
            ("block_no_floor", Settings(min_latency_ms=0.0)),  # --min-latency-ms 0
        )
        for label, settings in variants:
            cmp = _judge(paths[0], paths[1], settings)
            row[label] = cmp.overall.result
            if cmp.overall.result == "fail":
                row[label] += (
                    " ("
                    + ", ".join(
                        f"{f.key} {f.effect:+.0%}"
                        if f.unit == "ms"
                        else f"{f.key} {f.effect * 100:+.2f} pt"
                        for f in cmp.figures
                        if f.judgement == "regressed"
                    )
                    + ")"
                )
            res[label] += cmp.overall.result == "fail"
        res["results"].append(row)
        print(f"testbed pair {i + 1}/{n}: {row}", flush=True)
    return res


def power(pairs: int, root: Path) -> list[dict]:
    rows = []
    s = Settings()
    cells = [("latency", x) for x in (1.05, 1.10, 1.20)] + [
        ("fail", x) for x in (0.005, 0.01, 0.02)
    ]
    for n in (500, 2000):
        for kind, x in cells:
            hits = 0
            for i in range(pairs):
                seed = 5000 + 10 * i + n
                a = sc.write_run(root, f"pw-{n}-{kind}-{x}-{i}-a", seed=seed, per_endpoint=n)
                kw = (
                    {"latency_scale": {"slow": x}}
                    if kind == "latency"
                    else {"fail_step": {"write": x}}
                )
                b = sc.write_run(
                    root, f"pw-{n}-{kind}-{x}-{i}-b", seed=seed + 1, per_endpoint=n, **kw
                )
                cmp = _judge(a, b, s)
                if kind == "latency":
                    hit = any(
                        f.scope == "slow" and f.name in LATENCY and f.judgement == "regressed"
                        for f in cmp.figures
                    )
                else:
                    hit = any(
                        f.scope == "write"
                        and f.name == "proxy_5xx_rate"
                        and f.judgement == "regressed"
                        for f in cmp.figures
                    )
                hits += hit
                shutil.rmtree(a)
                shutil.rmtree(b)
            label = f"+{x - 1:.0%} latency" if kind == "latency" else f"+{x * 100:g} pt proxy 5xx"
            rows.append(
                {"requests_per_endpoint": n, "change": label, "detected": hits, "pairs": pairs}
            )
            print(f"power n={n:5d} {label:18s}: {hits}/{pairs} = {hits / pairs:.0%}", flush=True)
    return rows


def speed(requests: int, root: Path) -> dict:
    from bench.bench_analyze_10m import _child
    from fixtures import synth

    runs = []
    for k, seed in enumerate((11, 12)):
        d = root / f"speed-{k}"
        if (d / f"synth-large-{requests}").exists():  # --keep: generated before
            runs.append(d / f"synth-large-{requests}")
            continue
        t = time.perf_counter()
        runs.append(synth.write_large(d, requests, seed=seed))
        print(
            f"generated run {k + 1}: {requests:,} requests in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    for r in runs:
        shutil.rmtree(r / "report", ignore_errors=True)
    for c in ("c1", "c2"):
        shutil.rmtree(root / c, ignore_errors=True)
    py = [sys.executable, "-m", "albprobe"]
    analyze_s, analyze_cpu, analyze_mb = _child([*py, "analyze", str(runs[0])])
    _child([*py, "analyze", str(runs[1])])
    warm_s, warm_cpu, warm_mb = _child(
        [*py, "compare", str(runs[0]), str(runs[1]), "-o", str(root / "c1")]
    )
    for r in runs:
        shutil.rmtree(r / "report")
    cold_s, cold_cpu, cold_mb = _child(
        [*py, "compare", str(runs[0]), str(runs[1]), "-o", str(root / "c2")]
    )
    doc = json.loads((root / "c1" / "compare.json").read_text())
    res = {
        "requests_per_run": requests,
        "analyze_s": analyze_s,
        "analyze_cpu_s": analyze_cpu,
        "analyze_mb": analyze_mb,
        "compare_s": warm_s,
        "compare_cpu_s": warm_cpu,
        "compare_mb": warm_mb,
        "compare_unanalysed_s": cold_s,
        "compare_unanalysed_cpu_s": cold_cpu,
        "compare_unanalysed_mb": cold_mb,
        "ratio": warm_s / analyze_s,
        "ratio_unanalysed": cold_s / analyze_s,
        "overall": doc["overall"]["result"],
    }
    print(
        f"analyze one run: {analyze_s:.1f} s wall, {analyze_cpu:.1f} s CPU ({analyze_mb:.0f} MB); "
        f"compare two: {warm_s:.1f} s wall, {warm_cpu:.1f} s CPU ({warm_mb:.0f} MB) = "
        f"{res['ratio']:.2f}x; compare two never analysed: {cold_s:.1f} s wall, {cold_cpu:.1f} s "
        f"CPU ({cold_mb:.0f} MB, the parent) = {res['ratio_unanalysed']:.2f}x",
        flush=True,
    )
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--part", default="all", choices=["all", "false-alarms", "testbed", "power", "speed"]
    )
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--testbed-pairs", type=int, default=3)
    ap.add_argument("--testbed-duration", default="10s")
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument(
        "--keep", type=Path, default=None, help="speed: keep/reuse the 10 M-row runs here"
    )
    args = ap.parse_args()
    ok = True
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        root = Path(tmp)
        if args.part in ("all", "false-alarms"):
            fa = false_alarms(args.pairs, root)
            result["false_alarms"] = fa
            ok &= fa["block"]["rate"] <= 0.05
        if args.part in ("all", "false-alarms", "testbed") and args.testbed_pairs:
            tb = testbed_pairs(args.testbed_pairs, root, args.testbed_duration)
            result["testbed_pairs"] = tb
        if args.part in ("all", "power"):
            result["power"] = pw = power(args.pairs, root)
            top = next(
                r
                for r in pw
                if r["requests_per_endpoint"] == 2000 and r["change"] == "+20% latency"
            )
            ok &= top["detected"] / top["pairs"] >= 0.95
        if args.part in ("all", "speed"):
            result["speed"] = sp = speed(args.requests, args.keep or root)
            ok &= sp["ratio"] <= 2.0
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(
        f"targets (false alarms <= 5 %, power >= 95 % at +20 %/2000, speed <= 2x): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
